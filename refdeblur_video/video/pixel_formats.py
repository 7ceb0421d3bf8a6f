"""What a libav pixel format holds: depth, chroma subsampling, RGB or YUV, alpha, gray."""

from __future__ import annotations

from dataclasses import dataclass

import av


@dataclass(frozen=True)
class FormatTraits:
    """What a pixel format holds, as the writer weighs formats against each other."""

    name: str
    bits: int
    sub_w: int  # log2 horizontal chroma subsampling
    sub_h: int
    rgb: bool
    alpha: bool
    gray: bool
    odd: bool  # palette / bayer / bitstream / float: never chosen by default


def format_traits(name: str) -> FormatTraits:
    """The traits of the libav pixel format ``name`` (ValueError for an unknown name)."""
    fmt = av.VideoFormat(name)
    comps = list(fmt.components)
    colour = [c for c in comps if not c.is_alpha]
    return FormatTraits(
        name=name,
        bits=max((c.bits for c in colour), default=8),
        # log2 of the subsampling: 16 samples over their chroma count (4:1:1 is 2)
        sub_w=(16 // fmt.chroma_width(16)).bit_length() - 1,
        sub_h=(16 // fmt.chroma_height(16)).bit_length() - 1,
        rgb=bool(fmt.is_rgb),
        alpha=any(c.is_alpha for c in comps),
        gray=len(colour) == 1,
        odd=bool(
            fmt.has_palette or fmt.is_bayer or fmt.is_bit_stream or "f16" in name or "f32" in name
        ),
    )


def has_trait(pix_fmt: str | None, what: str) -> bool:
    """Whether ``pix_fmt`` has the trait ``what`` (rgb, alpha, gray); False for no format or
    one libav does not know."""
    try:
        return getattr(format_traits(pix_fmt), what)
    except (ValueError, TypeError):
        return False


def has_alpha(pix_fmt: str | None) -> bool:
    """Whether frames of ``pix_fmt`` carry an alpha plane (a GIF's palette decodes so);
    False for no format or one libav does not know."""
    return has_trait(pix_fmt, "alpha")

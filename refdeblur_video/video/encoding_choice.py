"""How the output is encoded: its container, encoder, pixel format and encoder options.

- **Container**: the output's suffix names it (:func:`container_for`), unless given.
- **Encoder**: the input's video format (H.264, HEVC, VP9, VP8, AV1, ProRes, FFV1, MPEG-2)
  is coded again where the container holds it, the encoder is built in and takes the pixel
  format asked for (:func:`default_codec`), so
  the output plays where the input did; 8-bit RGB H.264 stays RGB (libx264rgb); otherwise
  libvpx-vp9 for WebM and libx264 for everything else. HEVC in MP4/MOV gets the ``hvc1``
  sample entry Apple's players take (:data:`CODEC_TAGS`). A name FFmpeg does not know is
  matched to the encoder it most likely means (:func:`encoder_meant`: h265 is libx265).
- **Pixel format** (:func:`choose_pix_fmt`): the input's chroma layout and bit depth where
  the encoder takes them, otherwise the nearest format it does take (no depth loss before no
  extra chroma subsampling before the same RGB/YUV family); what that choice drops is said
  (:func:`lost_detail`, :func:`deeper_format` for HDR at 8 bits).
- **Options** (:func:`encoder_options`): ``crf`` and ``preset`` mapped onto each encoder's own
  (x264/x265 names; VP9/AV1 get a matching speed; CRF 0 is lossless at every depth with x264
  and x265), interlaced fields coded as fields by x264, HDR10's metadata given to x265, and
  x264 kept off its AVX-512 code, which makes runs differ.

The advice in the writer's errors comes from here too: where an encoder's video can go
instead (:func:`codec_elsewhere`), which settings an encoder refused (:func:`settings_note`).
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import av

from refdeblur_video.errors import UserError
from refdeblur_video.video.containers import CONTAINERS, container_holds
from refdeblur_video.video.hdr import Hdr10, x265_params
from refdeblur_video.video.pixel_formats import FormatTraits, format_traits, has_trait
from refdeblur_video.video.presets import X264_PRESETS

__all__ = ["CODEC_TAGS", "FIELD_CODERS", "INTERLACED", "choose_pix_fmt", "codec_elsewhere",
           "coded_format", "container_for", "deeper_format", "default_codec", "encoder_meant",
           "encoder_options", "lost_detail", "settings_note"]


def container_for(path: str | os.PathLike, container_format: str | None = None) -> str:
    """FFmpeg muxer name for ``path`` (its suffix) unless ``container_format`` is given."""
    if container_format:
        try:
            av.ContainerFormat(container_format, "w")
        except (ValueError, av.FFmpegError) as exc:
            raise UserError(f"unknown output container format {container_format!r}") from exc
        return container_format
    suffix = Path(path).suffix.lower()
    if suffix not in CONTAINERS:
        known = ", ".join(CONTAINERS)
        raise UserError(f"cannot tell the container of {Path(path).name!r}; use one of {known}")
    return CONTAINERS[suffix]


#: The encoder that codes each source format again, and the containers that hold it. The
#: output then plays wherever the input did: a phone's 10-bit HEVC re-coded as H.264 would
#: be 10-bit H.264, which hardly any player or browser decodes; a ProRes or FFV1 master
#: stays an editing or archival file.
_SAME_FORMAT = {
    "h264": ("libx264", frozenset({"mp4", "mov", "matroska", "mpegts"})),
    "hevc": ("libx265", frozenset({"mp4", "mov", "matroska", "mpegts"})),
    "vp9": ("libvpx-vp9", frozenset({"mp4", "matroska", "webm"})),
    "vp8": ("libvpx", frozenset({"matroska", "webm"})),
    "av1": ("libsvtav1", frozenset({"mp4", "matroska", "webm"})),
    "prores": ("prores_ks", frozenset({"mov", "matroska"})),
    "ffv1": ("ffv1", frozenset({"matroska"})),
    # a DVB or DVD recording: the set-top box or player that took it takes it back
    "mpeg2video": ("mpeg2video", frozenset({"mpegts", "matroska"})),
}
# Apple's players take HEVC in MP4/MOV only under this sample entry (FFmpeg writes hev1)
CODEC_TAGS = {("libx265", "mp4"): "hvc1", ("libx265", "mov"): "hvc1"}


def default_codec(container_format: str, source_codec: str = "", source_pix_fmt: str = "",
                  interlaced: bool = False, pix_fmt: str | None = None) -> str:
    """The encoder of ``source_codec``'s format (the input's, as FFmpeg names the format:
    h264, hevc, vp9, vp8, av1, prores, ffv1, mpeg2video) where the container holds it and
    the encoder is built in (8-bit H.264 coded as RGB, ``source_pix_fmt`` gbrp: libx264rgb,
    which keeps it RGB); otherwise libvpx-vp9 for WebM and libx264 for everything else, and
    for ``interlaced`` MPEG-2 (its encoder here codes the frames as progressive, since PyAV
    cannot mark a frame's field order: x264 codes the fields). A ``pix_fmt`` asked for that
    the input's encoder does not take (10-bit from MPEG-2) goes to the fallback too."""
    encoder, containers = _SAME_FORMAT.get(source_codec, ("", frozenset()))
    if interlaced and encoder == "mpeg2video":
        encoder = ""
    if pix_fmt and encoder in av.codecs_available:
        taken = av.Codec(encoder, "w").video_formats or []
        if pix_fmt not in {f.name for f in taken}:
            encoder = ""
    if encoder == "libx264" and has_trait(source_pix_fmt, "rgb") \
            and format_traits(source_pix_fmt).bits <= 8:  # x264's RGB mode is 8-bit only
        encoder = "libx264rgb"
    if container_format in containers and encoder in av.codecs_available:
        return encoder
    return "libvpx-vp9" if container_format == "webm" else "libx264"


def choose_pix_fmt(codec_name: str, source_pix_fmt: str, requested: str | None = None) -> str:
    """The encoder pixel format: ``requested`` if the codec takes it, else the source's own
    format if supported, else the nearest supported one (no depth loss > no extra chroma
    subsampling > same RGB/YUV family > smallest change; alpha, gray and palette avoided)."""
    codec = av.Codec(codec_name, "w")
    supported = [f.name for f in codec.video_formats or []]
    if requested:
        try:
            av.VideoFormat(requested)
        except (ValueError, TypeError) as exc:
            raise UserError(f"unknown pixel format {requested!r}") from exc
        if supported and requested not in supported:
            raise UserError(
                f"encoder {codec_name} cannot take pixel format {requested}; "
                f"it supports {', '.join(supported)}"
            )
        return requested
    if not supported or source_pix_fmt in supported:
        return source_pix_fmt or (supported[0] if supported else "yuv420p")
    try:
        src = format_traits(source_pix_fmt)
    except (ValueError, TypeError):
        src = format_traits("yuv420p")

    def key(item: tuple[int, str]) -> tuple:
        index, name = item
        c = format_traits(name)
        depth_loss = max(0, src.bits - c.bits)
        chroma_loss = max(0, c.sub_w - src.sub_w) + max(0, c.sub_h - src.sub_h)
        chroma_excess = max(0, src.sub_w - c.sub_w) + max(0, src.sub_h - c.sub_h)
        unwanted = (c.alpha and not src.alpha) + (c.gray and not src.gray) + 4 * c.odd
        legacy = name.startswith(("yuvj", "nv"))
        return (
            unwanted,
            depth_loss > 0,
            chroma_loss,
            c.rgb != src.rgb,
            depth_loss,
            chroma_excess,
            max(0, c.bits - src.bits),
            legacy,
            index,
        )

    return min(enumerate(supported), key=key)[1]


def lost_detail(source_pix_fmt: str, chosen: FormatTraits) -> list[str]:
    """What of a YUV or grey source's samples an encoder format drops: chroma resolution,
    bit depth (an RGB source has its own warning)."""
    try:
        source = format_traits(source_pix_fmt)
    except (ValueError, TypeError):
        return []
    if source.rgb or chosen.rgb:
        return []
    lost = []
    if not source.gray and (chosen.sub_w > source.sub_w or chosen.sub_h > source.sub_h):
        lost.append("chroma resolution")
    if chosen.bits < source.bits:
        lost.append(f"{source.bits}-bit samples")
    return lost


def deeper_format(codec_name: str, traits: FormatTraits) -> str | None:
    """The encoder's format of 10 bits or more nearest ``traits`` (same chroma layout and
    family first), or None where it has none (mpeg4, VP8)."""
    candidates = []
    for fmt in av.Codec(codec_name, "w").video_formats or []:
        with contextlib.suppress(ValueError, TypeError):
            other = format_traits(fmt.name)
            if other.bits >= 10 and not other.alpha and not other.odd:
                candidates.append((other.sub_w != traits.sub_w or other.sub_h != traits.sub_h,
                                   other.rgb != traits.rgb, other.bits, fmt.name))
    return min(candidates)[-1] if candidates else None


def _has_avx512() -> bool:
    """Whether this CPU runs AVX-512 (as NumPy's own dispatch detected it)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # NumPy 1.x
        try:
            from numpy.core._multiarray_umath import __cpu_features__
        except ImportError:
            return False
    return bool(__cpu_features__.get("AVX512F"))


#: the highest constant rate factor each encoder takes (x264 and x265 clamp a higher one to
#: their worst quality without a word)
_MAX_CRF = {"libx264": 51, "libx264rgb": 51, "libx265": 51, "libvpx-vp9": 63, "libvpx": 63,
            "libsvtav1": 63, "libaom-av1": 63, "mjpeg": 51, "mpeg2video": 51,
            "mpeg1video": 51, "mpeg4": 51}

# encoders with no rate factor: a fixed quantiser instead of FFmpeg's default 200 kb/s
_QUANTISED = ("mjpeg", "mpeg2video", "mpeg1video", "mpeg4")


_QP_TO_LAMBDA = 118  # FFmpeg's FF_QP2LAMBDA


_TOP_FIELD_FIRST = (2, 4)  # AVFieldOrder values; 3 and 5 are bottom field first
INTERLACED = (2, 3, 4, 5)
#: the encoders that code an interlaced frame's fields as fields (the others' output is
#: interlaced only by its container's tag, where the container has one)
FIELD_CODERS = ("libx264", "libx264rgb")


def encoder_options(codec_name: str, crf: int | None, preset: str | None,
                    hdr: Hdr10 | None = None, field_order: int = 0) -> dict[str, str]:
    """``codec_name``'s own options for ``crf``, ``preset``, HDR10 and the field order."""
    highest = _MAX_CRF.get(codec_name)
    if crf is not None and highest is not None and crf > highest:
        raise UserError(f"--crf {crf} is beyond {codec_name}'s range (0 to {highest}; lower "
                        "is better quality)")
    opts: dict[str, str] = {}
    speed = X264_PRESETS.index(preset) if preset in X264_PRESETS else 5
    if codec_name in ("libx264", "libx264rgb") and _has_avx512():
        # x264's AVX-512 routines (its macroblock-tree lookahead) read memory they never
        # wrote: the same frames then encode to different files from run to run, and a
        # resumed run no longer matches an uninterrupted one. Its AVX2 code does not, and
        # is as fast here.
        opts["x264-params"] = "asm=AVX2"
    if field_order in INTERLACED and codec_name in FIELD_CODERS:
        # code the fields as fields, so that a player deinterlaces them again (other
        # encoders have the field order in the stream's tags only)
        opts["flags"] = "+ildct+ilme"
        first = "tff=1" if field_order in _TOP_FIELD_FIRST else "bff=1"
        opts["x264-params"] = ":".join(filter(None, (opts.get("x264-params"), first)))
    if codec_name in ("libx264", "libx264rgb", "libx265"):
        # CRF 0 asks for lossless, which x264 gives only at 8 bits (its CRF scale moves by 6
        # per extra bit) and x265 never: QP 0 and x265's lossless mode are, at any depth.
        if crf == 0 and codec_name != "libx265":
            opts["qp"] = "0"
        elif crf is not None:
            opts["crf"] = str(crf)
        if preset:
            opts["preset"] = preset
        if codec_name == "libx265":
            params = ["log-level=error"] + ["lossless=1"] * (crf == 0)
            if hdr is not None:
                params.append(x265_params(hdr))
            opts["x265-params"] = ":".join(params)
    elif codec_name in ("libvpx-vp9", "libvpx"):
        if crf is not None:
            opts.update(crf=str(crf), b="0")
        opts.update({"row-mt": "1", "deadline": "good", "cpu-used": str(max(0, 8 - speed))})
    elif codec_name == "libsvtav1":
        if crf is not None:
            opts["crf"] = str(crf)
        opts["preset"] = str(min(12, 4 + 8 - speed))
    elif codec_name == "libaom-av1":
        if crf is not None:
            opts.update(crf=str(crf), b="0")
        opts["cpu-used"] = str(min(8, 8 - speed))
    elif codec_name in _QUANTISED:
        if codec_name == "mjpeg":
            # JPEG's standard range is full; the video's own (limited) range is kept and
            # tagged, which FFmpeg calls unofficial, rather than every sample converted
            opts["strict"] = "unofficial"
        # a fixed quantiser (FFmpeg's -q:v, 1 best to 31) instead of its default 200 kb/s:
        # CRF 0-51 mapped onto q 1-6 (16, the default, is 2; JPEG past q 7 looks broken)
        quality = max(1, round((16 if crf is None else crf) / 8))
        opts.update(flags="+qscale", global_quality=str(quality * _QP_TO_LAMBDA))
    return opts


def settings_note(crf: int | None, preset: str | None) -> str:
    """The rate and speed settings an encoder refused, for its error line."""
    given = [f"--{name} {value}" for name, value in (("crf", crf), ("preset", preset))
             if value is not None]
    return f" (with {' '.join(given)})" if given else ""


# what people call an encoder that FFmpeg names otherwise (h264, hevc, vp9 and av1 it
# maps to an encoder itself)
_ENCODER_NICKNAMES = {"h265": "libx265", "h.265": "libx265", "x265": "libx265",
                      "h.264": "libx264", "x264": "libx264", "avc": "libx264"}


def encoder_meant(name: str) -> str | None:
    """The encoder a name FFmpeg does not know most likely means (FFmpeg's names are lower
    case: HEVC is hevc), or None."""
    lower = name.lower()
    if lower in _ENCODER_NICKNAMES:
        return _ENCODER_NICKNAMES[lower]
    try:
        av.Codec(lower, "w")
    except (ValueError, av.FFmpegError):
        return None
    return lower if lower != name else None


def coded_format(encoder: str) -> str:
    """The format (FFmpeg's codec name) that ``encoder`` writes: h264 for libx264."""
    try:
        return av.Codec(encoder, "w").canonical_name
    except (ValueError, av.FFmpegError):
        return encoder


def codec_elsewhere(codec_name: str) -> str:
    """Where a video encoder's output can go instead: the output suffixes whose container
    holds it, or (none does: huffyuv, utvideo go in AVI only) a lossless codec that fits."""
    suffixes = []
    for suffix, format_name in CONTAINERS.items():
        with contextlib.suppress(ValueError, av.FFmpegError), \
                av.open(io.BytesIO(), "w", format=format_name) as scratch:
            scratch.add_stream(codec_name, rate=25)
            if container_holds(format_name, coded_format(codec_name)):
                suffixes.append(suffix)
    if suffixes:
        return f"name the output {' or '.join(suffixes)}"
    return ("no output this tool writes can (AVI is read only); --codec ffv1 into .mkv is "
            "lossless too")

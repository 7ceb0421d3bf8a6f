"""Decoded planes in NumPy, and RGB <-> YUV with the stream's own matrix and range.

A frame's planes are kept as decoded (:func:`frame_planes`) so that a frame the pipeline
passes through can be encoded again from them, never through RGB (:func:`video_frame`).

:class:`YuvConverter` turns planar YUV (8 to 16 bits, any 2^n chroma subsampling) into RGB
and back in floating point, with the matrix (BT.601, BT.709, BT.2020, FCC, SMPTE 240M) and
range (limited or full) the stream is tagged with, rounding to nearest. Chroma is taken
down by a box average (centred samples) and brought up bilinearly, then corrected so that
each block keeps its sample's mean: YUV -> RGB -> YUV gives the planes back but for rounding
and what RGB clips, so the areas of a restored frame the network left alone keep their
colour detail. (swscale's default conversions, used before, are biased: a round trip
through 4:2:0 came out about one code value darker.)

An untagged stream gets the matrix players guess for it (mpv, VLC, browsers): BT.709 from
1280 columns or above 576 lines, BT.601 below. Reader and writer use the same guess, so a
restored frame goes back to YUV the way it came out.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import cv2
import numpy as np

__all__ = ["PlaneLayout", "YuvConverter", "alpha_samples", "frame_planes", "matrix_of",
           "pad_planes", "plane_layout", "plane_samples", "video_frame", "yuv_converter"]

# AVColorSpace -> (Kr, Kb)
_MATRICES = {
    1: (0.2126, 0.0722),  # BT.709
    4: (0.30, 0.11),  # FCC
    5: (0.299, 0.114),  # BT.470BG (BT.601 625 lines)
    6: (0.299, 0.114),  # SMPTE 170M (BT.601 525 lines)
    7: (0.212, 0.087),  # SMPTE 240M
    9: (0.2627, 0.0593),  # BT.2020 non-constant luminance
    10: (0.2627, 0.0593),  # BT.2020 constant luminance, approximated as swscale does
}
_UNSPECIFIED = (0, 2, 3)  # RGB on a YUV format, unspecified, reserved: guess by size
_AVCOL_RANGE_JPEG = 2


@dataclass(frozen=True)
class PlaneLayout:
    """How a planar pixel format lays out its samples: one component per plane."""

    pix_fmt: str
    bits: int
    shift_w: int  # log2 of the chroma subsampling
    shift_h: int
    n_planes: int
    yuv: bool  # planes Y, U, V (what :class:`YuvConverter` handles), then alpha if any
    alpha: bool = False  # the last plane is transparency, full size

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if self.bits <= 8 else "<u2")

    def plane_sizes(self, width: int, height: int) -> list[tuple[int, int]]:
        """(height, width) of each plane for a ``width x height`` frame."""
        if not self.yuv:
            return [(height, width)] * self.n_planes
        chroma = (-(-height >> self.shift_h), -(-width >> self.shift_w))
        return [(height, width), chroma, chroma] + [(height, width)] * self.alpha


def plane_layout(pix_fmt: str) -> PlaneLayout | None:
    """The layout of ``pix_fmt`` when its planes can be kept as NumPy arrays: planar YUV,
    gray and planar RGB, with or without a last alpha plane, 8 to 16 bits in native
    (little-endian) order. None for packed, semi-planar (NV12), big-endian, palette, float
    and hardware formats."""
    try:
        fmt = av.VideoFormat(pix_fmt)
    except (ValueError, TypeError):
        return None
    comps = list(fmt.components)
    bits = {c.bits for c in comps}
    if (
        not comps
        or len(bits) != 1
        or not 8 <= max(bits) <= 16
        or sorted(c.plane for c in comps) != list(range(len(comps)))
        or any(c.is_alpha for c in comps[:-1])
        or fmt.has_palette or fmt.is_bayer or fmt.is_bit_stream or fmt.is_big_endian
        or "f16" in pix_fmt or "f32" in pix_fmt
        or len(comps) - comps[-1].is_alpha not in (1, 3)
    ):
        return None
    alpha = bool(comps[-1].is_alpha)
    wide = 1 << 12
    return PlaneLayout(
        pix_fmt=pix_fmt,
        bits=max(bits),
        shift_w=(wide // fmt.chroma_width(wide)).bit_length() - 1,
        shift_h=(wide // fmt.chroma_height(wide)).bit_length() - 1,
        n_planes=len(comps),
        yuv=len(comps) - alpha == 3 and not fmt.is_rgb,
        alpha=alpha,
    )


def plane_samples(plane: av.video.plane.VideoPlane, dtype: np.dtype) -> np.ndarray:
    """A view of one plane's samples as a 2-D array (line padding cut off): writable, in
    the frame's own memory."""
    rows = np.frombuffer(plane, dtype).reshape(plane.height, plane.line_size // dtype.itemsize)
    return rows[:, : plane.width]


def frame_planes(frame: av.VideoFrame, layout: PlaneLayout) -> tuple[np.ndarray, ...]:
    """Copies of ``frame``'s planes as 2-D arrays (line padding removed)."""
    return tuple(plane_samples(plane, layout.dtype).copy() for plane in frame.planes)


def video_frame(planes: tuple[np.ndarray, ...], layout: PlaneLayout) -> av.VideoFrame:
    """A new :class:`av.VideoFrame` holding exactly ``planes`` (from :func:`frame_planes`)."""
    height, width = planes[0].shape
    frame = av.VideoFrame(width, height, layout.pix_fmt)
    for plane, samples in zip(frame.planes, planes, strict=True):
        plane_samples(plane, layout.dtype)[:] = samples
    return frame


def pad_planes(planes: tuple[np.ndarray, ...], layout: PlaneLayout, width: int,
               height: int) -> tuple[np.ndarray, ...]:
    """``planes`` grown to a ``width x height`` frame by repeating the last column/row."""
    sizes = layout.plane_sizes(width, height)
    return tuple(
        np.pad(p, ((0, h - p.shape[0]), (0, w - p.shape[1])), mode="edge")
        if p.shape != (h, w) else p
        for p, (h, w) in zip(planes, sizes, strict=True)
    )


def _default_matrix(width: int, height: int) -> int:
    return 1 if width >= 1280 or height > 576 else 6


def matrix_of(colorspace: int, width: int, height: int) -> tuple[float, float] | None:
    """The (Kr, Kb) that YUV samples tagged ``colorspace`` are read with in a frame of
    ``width`` x ``height`` (an untagged one's guessed by its size); None where unknown."""
    if colorspace in _UNSPECIFIED:
        colorspace = _default_matrix(width, height)
    return _MATRICES.get(colorspace)


@dataclass(frozen=True)
class YuvConverter:
    """RGB <-> planar YUV for one layout, matrix and range, in float with round to nearest."""

    layout: PlaneLayout
    kr: float
    kb: float
    full_range: bool

    def _forward(self, rgb_max: float) -> np.ndarray:
        """3x4 affine map from RGB (0..rgb_max) to Y, Cb, Cr in code values."""
        kr, kb = self.kr, self.kb
        kg = 1.0 - kr - kb
        to_ypbpr = np.array([
            [kr, kg, kb],
            [-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5],
            [0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))],
        ])
        step = float(1 << (self.layout.bits - 8))
        if self.full_range:
            top = float((1 << self.layout.bits) - 1)
            scale, offset = np.diag([top, top, top]), np.array([0.0, 1, 1]) * (top + 1) / 2
        else:
            scale, offset = np.diag([219.0, 224, 224]) * step, np.array([16.0, 128, 128]) * step
        return np.hstack([scale @ to_ypbpr / rgb_max, offset[:, None]])

    def to_rgb(self, planes: tuple[np.ndarray, ...], dtype: type = np.uint8) -> np.ndarray:
        """``H x W x 3`` RGB of ``dtype`` (uint8, or uint16 on the full 0..65535 scale); an
        alpha plane after Y, U and V is left out."""
        top = float(np.iinfo(dtype).max)
        forward = self._forward(top)
        inverse = np.linalg.inv(forward[:, :3])
        affine = np.hstack([inverse, -inverse @ forward[:, 3:] + 0.5])  # +0.5: round below
        luma = planes[0].astype(np.float32)
        height, width = luma.shape
        chroma = [self._upsample(p.astype(np.float32), width, height) for p in planes[1:3]]
        rgb = cv2.transform(cv2.merge([luma, *chroma]), affine.astype(np.float32))
        return _quantise(rgb, top, dtype)

    def from_rgb(self, image: np.ndarray) -> tuple[np.ndarray, ...]:
        """The Y, U, V planes of an RGB ``uint8``/``uint16`` image."""
        top = float(np.iinfo(image.dtype).max)
        affine = self._forward(top)
        affine[:, 3] += 0.5  # round to nearest: the truncation below then rounds half up
        ycc = cv2.transform(image.astype(np.float32), affine.astype(np.float32))
        luma, cb, cr = cv2.split(ycc)
        code_max = float((1 << self.layout.bits) - 1)
        dtype = self.layout.dtype
        return (_quantise(luma, code_max, dtype), _quantise(self._downsample(cb), code_max, dtype),
                _quantise(self._downsample(cr), code_max, dtype))

    def _upsample(self, plane: np.ndarray, width: int, height: int) -> np.ndarray:
        fx, fy = 1 << self.layout.shift_w, 1 << self.layout.shift_h
        if fx == fy == 1:
            return plane
        rows, cols = plane.shape
        size = (cols * fx, rows * fy)
        full = cv2.resize(plane, size, interpolation=cv2.INTER_LINEAR)
        if full.shape != (height, width):  # odd size: the edge as the box average sees it
            full = np.pad(full[:height, :width], ((0, size[1] - height), (0, size[0] - width)),
                          mode="edge")
        # Each block keeps its sample's mean, so that the box average gives the decoded
        # chroma back: an untouched area of a restored frame keeps its colour detail.
        residual = plane - cv2.resize(full, (cols, rows), interpolation=cv2.INTER_AREA)
        cv2.add(full, cv2.resize(residual, size, interpolation=cv2.INTER_NEAREST), dst=full)
        return full[:height, :width]

    def _downsample(self, plane: np.ndarray) -> np.ndarray:
        fx, fy = 1 << self.layout.shift_w, 1 << self.layout.shift_h
        if fx == fy == 1:
            return plane
        height, width = plane.shape
        pad = ((0, -height % fy), (0, -width % fx))
        if any(p for _, p in pad):
            plane = np.pad(plane, pad, mode="edge")
        size = (plane.shape[1] // fx, plane.shape[0] // fy)
        return cv2.resize(plane, size, interpolation=cv2.INTER_AREA)  # exact box average


def alpha_samples(alpha: np.ndarray, bits: int) -> np.ndarray:
    """Transparency of 8 or 16 bits (as RGBA holds it) as samples of ``bits``, by bit
    shifts, as swscale's RGBA of a deeper alpha plane has them (so a plane read that way
    comes back exactly)."""
    have = alpha.dtype.itemsize * 8
    values = alpha.astype(np.uint32)
    if have > bits:
        shift = have - bits
        values = np.minimum((values + (1 << (shift - 1))) >> shift, (1 << bits) - 1)
    elif have < bits:
        values = values << (bits - have)
    return values.astype(np.uint8 if bits <= 8 else np.dtype("<u2"))


def _quantise(values: np.ndarray, top: float, dtype) -> np.ndarray:
    """Values already offset by +0.5, clipped to 0..top and truncated: rounds to nearest."""
    np.clip(values, 0.0, top, out=values)
    return values.astype(dtype)


def yuv_converter(pix_fmt: str, colorspace: int, color_range: int, width: int,
                  height: int) -> YuvConverter | None:
    """The converter for a stream's format and colour tags, None where this module cannot
    convert (not planar YUV, or a matrix other than those listed above, e.g. YCgCo)."""
    layout = plane_layout(pix_fmt)
    if layout is None or not layout.yuv:
        return None
    if colorspace in _UNSPECIFIED:
        colorspace = _default_matrix(width, height)
    if colorspace not in _MATRICES:
        return None
    full = color_range == _AVCOL_RANGE_JPEG or pix_fmt.startswith("yuvj")
    kr, kb = _MATRICES[colorspace]
    return YuvConverter(layout, kr, kb, full)

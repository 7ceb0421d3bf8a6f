"""HDR10's static metadata: the mastering display and the content light level.

Decoders attach both to the frames of an HDR10 stream (SEI messages in HEVC); PyAV hands
them out as FFmpeg's structs, which :func:`hdr10_of` reads. x265 writes them again from
its own parameters (:func:`x265_params`), in its units: chromaticities in 1/50000,
luminance in 1/10000 cd/m². Without them a player falls back on guesses about the display
the video was graded on, and HDR10 tone-maps differently.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction

import av

__all__ = ["Hdr10", "hdr10_of", "side_data_of", "x265_params"]

# AVMasteringDisplayMetadata: display_primaries[3][2] (r, g, b) and white_point[2] as
# AVRationals, min_luminance, max_luminance (AVRationals), has_primaries, has_luminance
_MASTERING = struct.Struct("<22i")
_LIGHT_LEVEL = struct.Struct("<2I")  # AVContentLightMetadata: MaxCLL, MaxFALL


@dataclass(frozen=True)
class Hdr10:
    """HDR10's static metadata in x265's units."""

    primaries: tuple[int, ...]  # x, y of red, green, blue and the white point, in 1/50000
    luminance: tuple[int, int]  # the mastering display's max and min, in 1/10000 cd/m²
    light_level: tuple[int, int] = (0, 0)  # MaxCLL, MaxFALL in cd/m² (0: not given)


def _ratio(numerator: int, denominator: int, unit: int) -> int:
    return round(Fraction(numerator, denominator or 1) * unit)


def side_data_of(frame: av.VideoFrame) -> dict[str, bytes]:
    """A decoded frame's side data as bytes, by type name. PyAV iterates a frame's side
    data as the data itself up to 18.1.0, as its types from 18.1.1 (a mapping)."""
    side = frame.side_data
    items = (key if hasattr(key, "type") else side[key] for key in side)
    return {data.type.name: bytes(data) for data in items}


def hdr10_of(frame: av.VideoFrame) -> Hdr10 | None:
    """The HDR10 metadata a decoded frame carries; None without a complete mastering
    display (x265 needs its primaries and luminance both)."""
    found = side_data_of(frame)
    mastering = found.get("MASTERING_DISPLAY_METADATA", b"")
    if len(mastering) < _MASTERING.size:
        return None
    values = _MASTERING.unpack_from(mastering)
    if not (values[20] and values[21]):
        return None
    pairs = list(zip(values[0:20:2], values[1:20:2], strict=True))
    primaries = tuple(_ratio(n, d, 50000) for n, d in pairs[:8])
    low, high = (_ratio(n, d, 10000) for n, d in pairs[8:10])
    light = found.get("CONTENT_LIGHT_LEVEL", b"")
    levels = _LIGHT_LEVEL.unpack_from(light) if len(light) >= _LIGHT_LEVEL.size else (0, 0)
    return Hdr10(primaries, (high, low), (int(levels[0]), int(levels[1])))


def x265_params(hdr: Hdr10) -> str:
    """x265's parameters that write ``hdr`` into the stream (its SEI messages)."""
    (rx, ry, gx, gy, bx, by, wx, wy), (high, low) = hdr.primaries, hdr.luminance
    params = (f"hdr10=1:master-display=G({gx},{gy})B({bx},{by})R({rx},{ry})"
              f"WP({wx},{wy})L({high},{low})")
    if any(hdr.light_level):
        params += f":max-cll={hdr.light_level[0]},{hdr.light_level[1]}"
    return params

"""What a restored photo keeps of its file's metadata: the EXIF (camera, time, place) and the
colour description (ICC profile, CICP), read and written by OpenCV's metadata codecs.
A profile of another colour space than the samples written is left out: CMYK (which
OpenCV decodes to RGB), and a grey profile on colour samples or the reverse (a grey photo
with transparency is written as three equal colours).

The restored samples are written upright (the EXIF orientation is applied on reading), so
the kept EXIF says orientation 1; its thumbnail, a small copy of the blurry photo, is left
out. The EXIF is patched in place, never rebuilt, so that the offsets inside a maker note
stay valid. XMP is left out: it may carry an orientation of its own and settings made for
the original samples.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import cv2
import numpy as np

from .jpeg_segments import PAYLOAD_LIMIT, after_app_segments, segment

# the output formats OpenCV writes EXIF and colour profiles into
METADATA_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
JPEG_SUFFIXES = (".jpg", ".jpeg")
# the most a JPEG marker segment holds, less its header (OpenCV splits no chunk over several)
JPEG_SEGMENT_BYTES = 65_000

_NAMES = {cv2.IMAGE_METADATA_EXIF: "EXIF", cv2.IMAGE_METADATA_ICCP: "colour profile",
          cv2.IMAGE_METADATA_CICP: "colour description"}
_KEPT = tuple(_NAMES)
# the colour spaces (ICC header, bytes 16-19) of the samples written: RGB, or grey as read
_WRITTEN_SPACES = (b"RGB ", b"GRAY")
# a (classic) TIFF file's first bytes, by byte order: the structure an EXIF block shares
TIFF_SIGNATURES = (b"II*\0", b"MM\0*")
_APP2 = 0xE2
_ICC_HEADER = b"ICC_PROFILE\x00"
_ORIENTATION_TAG = 0x0112
_X_RESOLUTION, _Y_RESOLUTION, _RESOLUTION_UNIT = 0x011A, 0x011B, 0x0128
_RATIONAL = 5
_SANE_DPI = (1.0, 100_000.0)  # a resolution outside is a writer's mistake, not a size
_UNSIGNED = {3: "H", 4: "I"}  # the orientation's TIFF types, SHORT (as the standard has it)
# and LONG (as some writers store it), by their struct format


@dataclass(frozen=True)
class PhotoMetadata:
    """Metadata chunks as OpenCV's ``imencodeWithMetadata`` takes them, by type."""

    chunks: dict[int, bytes] = field(default_factory=dict)
    left_out: tuple[str, ...] = ()  # what the file held that is not kept (XMP), by name

    def __bool__(self) -> bool:
        return bool(self.chunks)

    @classmethod
    def kept_from(cls, types: tuple | list, chunks: tuple | list) -> PhotoMetadata:
        """The chunks a restored photo keeps, from ``cv2.imdecodeWithMetadata``'s output,
        and what is left out by name."""
        kept: dict[int, bytes] = {}
        left_out: list[str] = []
        for kind, chunk in zip(types, chunks, strict=True):
            kind, data = int(kind), np.asarray(chunk, np.uint8).tobytes()
            if kind == cv2.IMAGE_METADATA_XMP and data.strip(b"\0 "):
                left_out.append("XMP")
            if kind == cv2.IMAGE_METADATA_EXIF:
                data = upright_exif(data)
            elif kind == cv2.IMAGE_METADATA_ICCP and data[16:20] not in _WRITTEN_SPACES:
                data = b""  # a CMYK or Lab profile would misdescribe the RGB samples written
            if kind in _KEPT and data:
                kept[kind] = data
        return cls(kept, tuple(left_out))

    def oriented(self, orientation: int) -> PhotoMetadata:
        """These chunks with the EXIF saying ``orientation``: for samples written back as
        the file stored them."""
        exif = self.chunks.get(cv2.IMAGE_METADATA_EXIF)
        if exif is None or orientation == 1:
            return self
        return PhotoMetadata({**self.chunks,
                              cv2.IMAGE_METADATA_EXIF: upright_exif(exif, orientation)},
                             self.left_out)

    def too_large_for(self, suffix: str) -> list[str]:
        """What a file of ``suffix`` cannot hold for its size, by name and size: a JPEG
        holds its EXIF in one marker segment of at most 64 KiB (a colour profile is split
        over several, as the ICC specifies)."""
        if suffix not in JPEG_SUFFIXES:
            return []
        return [f"{_NAMES[kind]} ({len(data) // 1024} KiB)"
                for kind, data in self.chunks.items()
                if len(data) > JPEG_SEGMENT_BYTES and kind != cv2.IMAGE_METADATA_ICCP]

    def encode(self, suffix: str, samples: np.ndarray,
               params: list[int]) -> tuple[bool, np.ndarray]:
        """``cv2.imencode`` with these chunks written in, where ``suffix`` holds them (and
        their size, :meth:`too_large_for`)."""
        space = b"GRAY" if samples.ndim == 2 else b"RGB "  # as written, not as read
        kept = {kind: data for kind, data in self.chunks.items()
                if kind != cv2.IMAGE_METADATA_ICCP or data[16:20] == space}
        split = None  # a JPEG's profile over one segment: written after OpenCV, in parts
        if suffix in JPEG_SUFFIXES:
            if len(kept.get(cv2.IMAGE_METADATA_ICCP, b"")) > JPEG_SEGMENT_BYTES:
                split = kept.pop(cv2.IMAGE_METADATA_ICCP)
            kept = {k: v for k, v in kept.items() if len(v) <= JPEG_SEGMENT_BYTES}
        ok, encoded = self._encoded(suffix, samples, params, kept)
        if ok and split is not None:
            encoded = np.frombuffer(with_icc_segments(encoded.tobytes(), split), np.uint8)
        return ok, encoded

    @staticmethod
    def _encoded(suffix: str, samples: np.ndarray, params: list[int],
                 kept: dict[int, bytes]) -> tuple[bool, np.ndarray]:
        if not kept or suffix not in METADATA_SUFFIXES:
            return cv2.imencode(suffix, samples, params)
        kinds = list(kept)
        data = [np.frombuffer(kept[k], np.uint8) for k in kinds]
        quiet = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # we say it
        try:
            return cv2.imencodeWithMetadata(suffix, samples, kinds, data, params)
        except cv2.error:
            return False, np.empty(0, np.uint8)
        finally:
            cv2.utils.logging.setLogLevel(quiet)


def with_icc_segments(encoded: bytes, profile: bytes) -> bytes:
    """A JPEG's bytes with ``profile`` in numbered ``ICC_PROFILE`` APP2 segments (the ICC
    specification's way for a profile larger than one segment)."""
    room = PAYLOAD_LIMIT - len(_ICC_HEADER) - 2  # each part: header, number, count
    parts = [profile[at:at + room] for at in range(0, len(profile), room)]
    if len(parts) > 255:
        return encoded
    added = b"".join(segment(_APP2, _ICC_HEADER + bytes([number, len(parts)]) + part)
                     for number, part in enumerate(parts, start=1))
    return after_app_segments(encoded, added)


def exif_orientation(exif: bytes) -> int:
    """The orientation tag (1-8) of ``exif`` (as :func:`upright_exif` takes it); 1, upright,
    where it has none or cannot be parsed."""
    found = _ifd0(exif)
    if found is None or found.orientation is None:
        return 1
    return struct.unpack_from(found.orientation, found.data, found.orientation_at)[0]


def exif_density(exif: bytes) -> tuple[float, float] | None:
    """The pixel density (x, y) in dots per metre that ``exif``'s IFD0 gives (X/YResolution
    and ResolutionUnit), or None: a camera's JPEG often has no JFIF header to hold it."""
    found = _ifd0(exif)
    if found is None:
        return None
    data, order = found.data, found.order
    rational: dict[int, float] = {}
    unit = 2  # inches, where the tag is absent
    for entry in range(found.first, found.end, 12):
        tag, kind, count = struct.unpack_from(order + "HHI", data, entry)
        if tag in (_X_RESOLUTION, _Y_RESOLUTION) and kind == _RATIONAL and count == 1:
            (offset,) = struct.unpack_from(order + "I", data, entry + 8)
            if offset + 8 <= len(data):
                top, bottom = struct.unpack_from(order + "II", data, offset)
                if top and bottom:
                    rational[tag] = top / bottom
        elif tag == _RESOLUTION_UNIT and kind in _UNSIGNED:
            unit = struct.unpack_from(order + _UNSIGNED[kind], data, entry + 8)[0]
    metres = {2: 0.0254, 3: 0.01}.get(unit)
    if metres is None or len(rational) < 2:
        return None
    density = rational[_X_RESOLUTION] / metres, rational[_Y_RESOLUTION] / metres
    low, high = (dpi / 0.0254 for dpi in _SANE_DPI)
    return density if all(low <= d <= high for d in density) else None


def ifd0_tags(tiff: bytes) -> set[int]:
    """The tags IFD0 of ``tiff`` (a TIFF file's bytes or an EXIF block) holds; none where it
    cannot be parsed."""
    found = _ifd0(tiff)
    if found is None:
        return set()
    return {struct.unpack_from(found.order + "H", found.data, entry)[0]
            for entry in range(found.first, found.end, 12)}


def upright_exif(exif: bytes, orientation: int = 1) -> bytes:
    """``exif`` (TIFF-structured, an ``Exif\\0\\0`` header allowed) with ``orientation``
    (1, upright, unless the samples are written as stored) and no thumbnail (IFD1); empty
    where it cannot be parsed."""
    found = _ifd0(bytearray(exif))
    if found is None:
        return b""
    if found.orientation is not None:
        struct.pack_into(found.orientation, found.data, found.orientation_at, orientation)
    struct.pack_into(found.order + "I", found.data, found.end, 0)  # the thumbnail unlinked
    return bytes(found.data)


@dataclass
class _Ifd0:
    order: str  # struct's byte-order prefix
    data: bytes | bytearray  # the TIFF structure, its Exif header dropped
    first: int  # IFD0's first entry
    end: int  # past IFD0's last entry: where the link to the next IFD sits
    orientation: str | None = None  # the orientation value's struct format, where present
    orientation_at: int = 0  # and its offset


def _ifd0(exif: bytes | bytearray) -> _Ifd0 | None:
    """IFD0 of ``exif`` (an ``Exif\\0\\0`` header allowed; a bytearray to be patched, bytes
    to be read, not copied), None where it cannot be parsed."""
    data = exif[6:] if exif.startswith(b"Exif\0\0") else exif
    order = {b"II": "<", b"MM": ">"}.get(bytes(data[:2]))
    if order is None or len(data) < 8:
        return None
    (ifd,) = struct.unpack_from(order + "I", data, 4)
    if ifd + 2 > len(data):
        return None
    (count,) = struct.unpack_from(order + "H", data, ifd)
    found = _Ifd0(order, data, ifd + 2, ifd + 2 + 12 * count)
    if found.end + 4 > len(data):
        return None
    for entry in range(found.first, found.end, 12):
        tag, kind = struct.unpack_from(order + "HH", data, entry)
        if tag == _ORIENTATION_TAG and kind in _UNSIGNED:  # one value, at the value's start
            found.orientation, found.orientation_at = order + _UNSIGNED[kind], entry + 8
    return found

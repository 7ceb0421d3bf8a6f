"""What a photo file carries beside its samples that OpenCV neither reads nor writes: its
pixel density (a JPEG's JFIF header, a PNG's ``pHYs`` chunk: the size it prints at), a
PNG's text (``tEXt``, ``zTXt``, ``iTXt``: a title, an author, a copyright) and a JPEG's
IPTC record. They are read from the input's bytes and written into the encoded output's,
where its format has a place for them; what has none is named, so that its loss is said.

A PNG's XMP (a text chunk of its own keyword) and the profiles ImageMagick stores as text
are left out, as the other formats' XMP is (:mod:`refdeblur_video.photo_metadata`): they
may describe the original samples' orientation or colours.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import cv2

from .jpeg_segments import SOI
from .photo_iptc import iptc_record, with_iptc
from .photo_metadata import METADATA_SUFFIXES, TIFF_SIGNATURES, exif_density

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
_XMP_KEYWORD = b"XML:com.adobe.xmp"
_METRES_PER_INCH = 0.0254
_JFIF = b"JFIF\0"
# the outputs the pixel density is written into
_DENSITY_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
# JFIF units: 1 dots per inch, 2 dots per centimetre (0: an aspect ratio, no size)
_JFIF_METRES = {1: _METRES_PER_INCH, 2: 0.01}


@dataclass(frozen=True)
class PhotoExtras:
    """A photo's pixel density and PNG text, as its file holds them."""

    dots_per_metre: tuple[float, float] | None = None  # (x, y) as shown; None: no size
    png_text: tuple[bytes, ...] = ()  # whole chunks (length, type, data, CRC), in order
    iptc: bytes | None = None  # a JPEG's IPTC record (:mod:`refdeblur_video.photo_iptc`)
    density_in_exif: bool = False  # the density came from the EXIF, which carries it along

    @classmethod
    def read(cls, data: bytes, turned: bool = False, exif: bytes | None = None
             ) -> PhotoExtras:
        """From a file's bytes (a JPEG, PNG or TIFF; other formats hold none of these here)
        and its ``exif``, whose resolution stands in where the file gives none (a camera's
        JPEG); ``turned``: the photo is shown a quarter turn from its samples (EXIF), so its
        horizontal density is the stored vertical one."""
        density, text, iptc, in_exif = None, (), None, False
        if data.startswith(PNG_SIGNATURE):
            chunks = list(_png_chunks(data))
            text = tuple(whole for kind, body, whole in chunks
                         if kind in _TEXT_CHUNKS and not _describes_the_samples(body))
            density = next((_png_density(body) for kind, body, _ in chunks
                            if kind == b"pHYs"), None)
        elif data.startswith(SOI):
            density, iptc = _jfif_density(data), iptc_record(data)
        if density is None and data[:4] in TIFF_SIGNATURES:  # a TIFF's own tags
            density = exif_density(data)
        elif density is None and exif:
            density = exif_density(exif)
            in_exif = density is not None
        if density is not None and turned:
            density = density[::-1]
        return cls(density, text, iptc, in_exif)

    def left_out_by(self, suffix: str) -> list[str]:
        """What an output of ``suffix`` has no place for, by name."""
        kind = suffix.lower()
        lost = []
        in_exif = self.density_in_exif and kind in METADATA_SUFFIXES  # kept there
        if self.dots_per_metre and kind not in _DENSITY_SUFFIXES and not in_exif:
            lost.append(f"pixel density ({self.dots_per_inch()[0]:g} dpi)")
        if self.png_text and kind != ".png":
            lost.append("text (" + ", ".join(_keywords(self.png_text)) + ")")
        if self.iptc and kind not in (".jpg", ".jpeg"):
            lost.append("IPTC record (caption, keywords, copyright)")
        return lost

    def dots_per_inch(self) -> tuple[float, float]:
        x, y = self.dots_per_metre or (0.0, 0.0)
        return round(x * _METRES_PER_INCH, 2), round(y * _METRES_PER_INCH, 2)

    def encoder_params(self, suffix: str) -> list[int]:
        """``cv2.imencode`` parameters that carry them (a TIFF's resolution tags)."""
        if not self.dots_per_metre or suffix.lower() not in (".tif", ".tiff"):
            return []
        x, y = self.dots_per_inch()
        return [cv2.IMWRITE_TIFF_RESUNIT, 2, cv2.IMWRITE_TIFF_XDPI, max(1, round(x)),
                cv2.IMWRITE_TIFF_YDPI, max(1, round(y))]

    def written_into(self, suffix: str, encoded: bytes) -> bytes:
        """``encoded`` (OpenCV's file of ``suffix``) with them written in where it has a
        place: a PNG's ``pHYs`` and text chunks after its header, a JPEG's JFIF density."""
        kind = suffix.lower()
        if kind == ".png" and encoded.startswith(PNG_SIGNATURE):
            added = b"".join(self.png_text)
            if self.dots_per_metre:
                x, y = (max(1, round(v)) for v in self.dots_per_metre)
                added = _png_chunk(b"pHYs", struct.pack(">IIB", x, y, 1)) + added
            header_end = len(PNG_SIGNATURE) + 8 + 13 + 4  # IHDR: 13 bytes of data
            return encoded[:header_end] + added + encoded[header_end:]
        if kind in (".jpg", ".jpeg"):
            if self.dots_per_metre and _has_jfif(encoded):
                x, y = self.dots_per_inch()
                dpi = struct.pack(">BHH", 1, min(65535, max(1, round(x))),
                                  min(65535, max(1, round(y))))
                encoded = encoded[:13] + dpi + encoded[18:]
            if self.iptc:
                encoded = with_iptc(encoded, self.iptc)
        return encoded


def _describes_the_samples(body: bytes) -> bool:
    """A text chunk that is XMP or a profile stored as text (ImageMagick's ``Raw profile
    type exif``, ``xmp``, ``icc``, ...): it may hold the original's orientation or colour
    space, which the restored file describes anew, so it is left out as XMP is."""
    keyword = body.split(b"\0", 1)[0]
    return keyword == _XMP_KEYWORD or keyword.startswith(b"Raw profile type")


def _png_chunks(data: bytes):
    """(type, data, whole chunk) of each chunk of a PNG file, until IEND or damage."""
    at = len(PNG_SIGNATURE)
    while at + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        end = at + 12 + length
        if end > len(data):
            return
        yield kind, data[at + 8:at + 8 + length], data[at:end]
        if kind == b"IEND":
            return
        at = end


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return (struct.pack(">I", len(body)) + kind + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))


def _png_density(body: bytes) -> tuple[float, float] | None:
    if len(body) != 9:
        return None
    x, y, unit = struct.unpack(">IIB", body)
    return (float(x), float(y)) if unit == 1 and x and y else None  # 0: aspect only


def _has_jfif(data: bytes) -> bool:
    """A JFIF header (APP0) right after the start of image, long enough to hold a
    density."""
    return (data[2:4] == b"\xff\xe0" and data[6:11] == _JFIF
            and struct.unpack(">H", data[4:6])[0] >= 16 and len(data) >= 18)


def _jfif_density(data: bytes) -> tuple[float, float] | None:
    if not _has_jfif(data):
        return None
    unit, x, y = struct.unpack(">BHH", data[13:18])
    metres = _JFIF_METRES.get(unit)
    return (x / metres, y / metres) if metres and x and y else None


def _keywords(chunks: tuple[bytes, ...]) -> list[str]:
    """The keywords of PNG text chunks (the text before its first zero byte)."""
    names = []
    for chunk in chunks:
        keyword = chunk[8:].split(b"\0", 1)[0].decode("latin-1")
        if keyword not in names:
            names.append(keyword)
    return names

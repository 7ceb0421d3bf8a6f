"""A JPEG file's marker segments before its image data: walked to read what OpenCV does
not (IPTC), and added to what OpenCV wrote (an IPTC record, an ICC profile too large for
one segment)."""

from __future__ import annotations

import struct
from collections.abc import Iterator

SOI = b"\xff\xd8"
# the most a segment's payload holds (its length field counts itself)
PAYLOAD_LIMIT = 65533


def segments(data: bytes) -> Iterator[tuple[int, bytes, int, int]]:
    """(marker, payload, start, end) of each segment of a JPEG file's bytes up to its image
    data; it stops at damage."""
    at = len(SOI)
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xDA:  # start of scan: the image data follows
            return
        length = struct.unpack(">H", data[at + 2:at + 4])[0]
        end = at + 2 + length
        if length < 2 or end > len(data):
            return
        yield marker, data[at + 4:end], at, end
        at = end


def segment(marker: int, payload: bytes) -> bytes:
    """One segment's bytes (``payload`` at most :data:`PAYLOAD_LIMIT`)."""
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload


def after_app_segments(encoded: bytes, added: bytes) -> bytes:
    """``encoded`` (a JPEG) with ``added`` segments after its leading APPn segments (JFIF,
    EXIF, ICC), where readers look for metadata."""
    at = len(SOI)
    for marker, _, _, end in segments(encoded):
        if not 0xE0 <= marker <= 0xEF:
            break
        at = end
    return encoded[:at] + added + encoded[at:]

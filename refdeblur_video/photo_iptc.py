"""A JPEG's IPTC record (caption, keywords, copyright, credit): what a photographer or an
agency wrote about the picture, true of the restored photo as of the original. It lives in
a Photoshop ``APP13`` segment among other image resources; only the IPTC one is carried
over (the others include a thumbnail of the blurry original and settings made for its
samples). OpenCV neither reads nor writes it.
"""

from __future__ import annotations

import struct

from .jpeg_segments import PAYLOAD_LIMIT, SOI, after_app_segments, segment, segments

_APP13 = 0xED
_PHOTOSHOP = b"Photoshop 3.0\x00"
_RESOURCE = b"8BIM"
_IPTC_ID = 0x0404


def iptc_record(data: bytes) -> bytes | None:
    """The IPTC record of a JPEG file's bytes (its datasets), or None."""
    if not data.startswith(SOI):
        return None
    for marker, payload, _, _ in segments(data):
        if marker == _APP13 and payload.startswith(_PHOTOSHOP):
            found = _resource(payload[len(_PHOTOSHOP):], _IPTC_ID)
            if found:
                return found
    return None


def _resource(block: bytes, wanted: int) -> bytes | None:
    """The data of image resource ``wanted`` in a Photoshop resource block."""
    at = 0
    while at + 12 <= len(block) and block[at:at + 4] == _RESOURCE:
        ident = struct.unpack(">H", block[at + 4:at + 6])[0]
        name_length = block[at + 6]
        at += 6 + (name_length + 1 + (name_length + 1) % 2)  # a Pascal name, padded even
        if at + 4 > len(block):
            return None
        size = struct.unpack(">I", block[at:at + 4])[0]
        data = block[at + 4:at + 4 + size]
        if ident == wanted:
            return data
        at += 4 + size + size % 2
    return None


def with_iptc(encoded: bytes, record: bytes) -> bytes:
    """A JPEG's bytes with ``record`` written in an APP13 segment after its leading
    APPn segments (JFIF, EXIF, ICC); unchanged where it does not fit one segment."""
    block = (_PHOTOSHOP + _RESOURCE + struct.pack(">HBBI", _IPTC_ID, 0, 0, len(record))
             + record + b"\x00" * (len(record) % 2))
    if len(block) > PAYLOAD_LIMIT or not encoded.startswith(SOI):
        return encoded
    return after_app_segments(encoded, segment(_APP13, block))

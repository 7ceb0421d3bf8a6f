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
# Photoshop's and other editors' image resource signatures
_SIGNATURES = (_RESOURCE, b"MeSa", b"PHUT", b"AgHg", b"DCSR")
_IPTC_ID = 0x0404


def iptc_record(data: bytes) -> bytes | None:
    """The IPTC record of a JPEG file's bytes (its datasets), or None."""
    if not data.startswith(SOI):
        return None
    # a resource block over one segment continues in the next, each with its header
    block = b"".join(payload[len(_PHOTOSHOP):] for marker, payload, _, _ in segments(data)
                     if marker == _APP13 and payload.startswith(_PHOTOSHOP))
    return _resource(block, _IPTC_ID) or None


def _resource(block: bytes, wanted: int) -> bytes | None:
    """The data of image resource ``wanted`` in a Photoshop resource block."""
    at = 0
    while at + 12 <= len(block) and block[at:at + 4] in _SIGNATURES:
        ident = struct.unpack(">H", block[at + 4:at + 6])[0]
        name_length = block[at + 6]
        at += 6 + (name_length + 1 + (name_length + 1) % 2)  # a Pascal name, padded even
        if at + 4 > len(block):
            return None
        size = struct.unpack(">I", block[at:at + 4])[0]
        if at + 4 + size > len(block):  # cut short: no part of it is trusted
            return None
        data = block[at + 4:at + 4 + size]
        if ident == wanted:
            return data
        at += 4 + size + size % 2
    return None


def with_iptc(encoded: bytes, record: bytes) -> bytes:
    """A JPEG's bytes with ``record`` written in APP13 segments (one, or more in turn for a
    large record) after its leading APPn segments (JFIF, EXIF, ICC)."""
    block = (_RESOURCE + struct.pack(">HBBI", _IPTC_ID, 0, 0, len(record)) + record
             + b"\x00" * (len(record) % 2))
    if not encoded.startswith(SOI):
        return encoded
    room = PAYLOAD_LIMIT - len(_PHOTOSHOP)  # a larger block continues in the next segment
    parts = [block[at:at + room] for at in range(0, len(block), room)]
    return after_app_segments(encoded, b"".join(segment(_APP13, _PHOTOSHOP + part)
                                                for part in parts))

"""Video input/output: probing, decoding to RGB frames, encoding with timing/colour/audio kept.

The names below load on first use, so that :mod:`.sources` (image folders, and videos
through OpenCV) works on a machine without PyAV.
"""

from __future__ import annotations

from ..lazy import lazy_exports

_WHERE = {
    "CorruptVideoWarning": "reader",
    "Frame": "frame",
    "VideoInfo": "metadata",
    "VideoReader": "reader",
    "VideoWriter": "writer",
    "choose_pix_fmt": "encoding_choice",
    "open_reader": "reader",
    "probe": "metadata",
}

__all__ = sorted(_WHERE)

__getattr__ = lazy_exports(__name__, _WHERE)

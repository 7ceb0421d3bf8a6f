"""The containers the writer writes, by output suffix (no PyAV here: the command line checks
output names with it before anything slow loads)."""

from __future__ import annotations

#: Output suffixes and the FFmpeg muxer each one selects.
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mkv": "matroska", ".mov": "mov", ".webm": "webm"}

__all__ = ["CONTAINERS"]

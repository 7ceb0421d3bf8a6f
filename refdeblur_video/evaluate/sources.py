"""Frames to evaluate: from a video file, a folder of images, or a single image.

Every frame comes out as an ``H x W x 3`` RGB ``uint8`` array, because the metrics are
defined on 8-bit frames: ``uint16`` sources (full 0..65535 scale) are mapped to 8 bits with
:func:`~refdeblur_video.image_files.to_uint8` (``round(x * 255 / 65535)``).

- A folder is read in natural order of the file names (``frame2.png`` before
  ``frame10.png``); the suffixes of :data:`refdeblur_video.image_files.IMAGE_SUFFIXES` are
  read, other files ignored. Frame ``i`` is the ``i``-th image (0-based).
- A video is decoded with :func:`refdeblur_video.video.reader.open_reader`; frame numbers are
  the reader's ``index``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from refdeblur_video import image_files
from refdeblur_video.errors import UserError
from refdeblur_video.image_files import IMAGE_SUFFIXES, is_image_path, read_image, to_uint8


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its number in the source, RGB uint8 pixels, time when known."""

    index: int
    image: np.ndarray
    time_s: float | None = None


def list_images(folder: Path) -> list[Path]:
    """Image files of ``folder`` in natural order; a :class:`UserError` if there are none."""
    files = image_files.list_images(folder)
    if not files:
        raise UserError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {folder}")
    return files


def load_image(path: str | Path) -> np.ndarray:
    """Read one image file as RGB uint8 (grey is repeated, alpha dropped, 16-bit mapped)."""
    return to_uint8(read_image(path))


def count_frames(path: str | Path) -> int | None:
    """Number of frames when it is known without decoding (folders, images), else None."""
    path = _existing(path)
    if path.is_dir():
        return len(list_images(path))
    if is_image_path(path):
        return 1
    return None


def announced_frames(path: str | Path) -> int | None:
    """Frame count for a progress bar: exact for folders, the container's claim for videos."""
    known = count_frames(path)
    if known is not None:
        return known
    from refdeblur_video.video.metadata import probe

    try:
        return probe(path).frame_count
    except Exception:  # a progress bar is not worth failing for
        return None


def iter_frames(path: str | Path) -> Iterator[Frame]:
    """Frames of a video file, a folder of images or one image, in order, as RGB uint8."""
    path = _existing(path)
    if path.is_dir():
        for index, file in enumerate(list_images(path)):
            yield Frame(index, load_image(file))
    elif is_image_path(path):
        yield Frame(0, load_image(path))
    else:
        yield from _iter_video(path)


def fetch_frames(path: str | Path, positions: Iterable[int]) -> dict[int, np.ndarray]:
    """Only the frames at these 0-based positions in decoding order (early-stopping pass)."""
    wanted = set(positions)
    path = _existing(path)
    if path.is_dir():
        files = list_images(path)
        return {i: load_image(files[i]) for i in sorted(wanted) if 0 <= i < len(files)}
    found: dict[int, np.ndarray] = {}
    if not wanted:
        return found
    last = max(wanted)
    with closing(iter_frames(path)) as frames:  # closes the decoder when stopping early
        for position, frame in enumerate(frames):
            if position in wanted:
                found[position] = frame.image
            if position >= last:
                break
    return found


def describe(path: str | Path) -> str:
    """Short name of a source for messages and reports."""
    return Path(path).name or str(path)


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise UserError(f"no such file or folder: {path}")
    return path


def _iter_video(path: Path) -> Iterator[Frame]:
    from refdeblur_video.video.reader import open_reader

    with open_reader(path) as reader:
        for decoded in reader:
            yield Frame(int(decoded.index), to_uint8(decoded.image), decoded.time_s)

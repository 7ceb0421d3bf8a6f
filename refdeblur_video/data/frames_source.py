"""Frame input/output for the triplet builders: videos, image folders and PNG files.

Frames are ``H x W x 3`` RGB arrays (``uint8``, or ``uint16`` for 16-bit PNGs). Videos are
decoded with the project reader (:func:`refdeblur_video.video.reader.open_reader`) when it is
available, else with PyAV, else with ``cv2.VideoCapture`` (``reader="auto"``); the GPU training
machine may have OpenCV but no PyAV.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from pathlib import Path

import cv2
import numpy as np

from refdeblur_video.data.photo_clips import is_photo, pan_clip, seed_for
from refdeblur_video.errors import UserError
from refdeblur_video.image_files import list_images, read_image, to_uint8, write_image

READERS = ("auto", "project", "av", "cv2")
PHOTO_CLIP_FRAMES = 24


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Write an RGB ``uint8``/``uint16`` array as PNG (``path`` ends in ``.png``), creating
    parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, image)


def _iter_project(path: Path) -> Iterator[np.ndarray]:
    from refdeblur_video.video.reader import open_reader

    reader = open_reader(path)
    if hasattr(reader, "__enter__"):
        with reader as frames:
            for frame in frames:
                yield frame.image
    else:
        for frame in reader:
            yield frame.image


def _iter_av(path: Path) -> Iterator[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24")


def _iter_cv2(path: Path) -> Iterator[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise UserError(f"cannot open video {path}")
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def _pick_reader(reader: str) -> str:
    if reader not in READERS:
        raise UserError(f"unknown video reader {reader!r}: choose one of {', '.join(READERS)}")
    if reader != "auto":
        return reader
    try:
        import refdeblur_video.video.reader  # noqa: F401

        return "project"
    except ImportError:
        pass
    try:
        import av  # noqa: F401

        return "av"
    except ImportError:
        return "cv2"


def iter_frames(
    source: str | Path, wanted: Collection[int] | None = None, reader: str = "auto"
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, RGB image)`` of a video file or an image folder.

    ``wanted`` restricts the frames returned (a folder then reads only those files; a video is
    decoded up to the last wanted frame).
    """
    source = Path(source)
    if not source.exists():
        raise UserError(f"not found: {source}")
    if source.is_dir():
        files = list_images(source)
        for index, file in enumerate(files):
            if wanted is None or index in wanted:
                yield index, read_image(file)
        return
    last = max(wanted) if wanted else None
    if wanted is not None and last is None:
        return
    decoder = {"project": _iter_project, "av": _iter_av, "cv2": _iter_cv2}[_pick_reader(reader)]
    try:
        for index, image in enumerate(decoder(source)):
            if wanted is None or index in wanted:
                yield index, image
            if last is not None and index >= last:
                return
    except UserError:
        raise
    except Exception as exc:  # decoder-specific errors (av.error.*, OSError, ...)
        raise UserError(f"cannot decode video {source}: {exc}") from None


def count_frames(source: str | Path, reader: str = "auto") -> int:
    """Number of frames of a video file or image folder (videos: by demuxing, without decoding
    when PyAV is present; falls back to a full decode)."""
    source = Path(source)
    if not source.exists():
        raise UserError(f"not found: {source}")
    if source.is_dir():
        return len(list_images(source))
    chosen = _pick_reader(reader)
    if chosen in ("project", "av"):
        try:
            import av

            with av.open(str(source)) as container:
                stream = container.streams.video[0]
                return sum(1 for packet in container.demux(stream) if packet.size)
        except ImportError:
            pass
        except Exception as exc:
            raise UserError(f"cannot read video {source}: {exc}") from None
    return sum(1 for _ in iter_frames(source, reader=reader))


def resize_max_side(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """Downsize (INTER_AREA) so that the longer side is at most ``max_side`` (None: as is)."""
    if not max_side or max(image.shape[:2]) <= max_side:
        return image
    scale = max_side / max(image.shape[:2])
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def load_video_frames(
    path: str | Path,
    max_frames: int | None = None,
    reader: str = "auto",
    *,
    stride: int = 1,
    max_side: int | None = None,
) -> list[np.ndarray]:
    """Decode a video (or image folder) into memory as a list of RGB ``uint8`` frames.

    A single photo becomes a short clip filmed by a virtual hand-held camera
    (:func:`refdeblur_video.data.photo_clips.pan_clip`, ``PHOTO_CLIP_FRAMES`` frames).

    ``reader``: ``"auto"`` (project reader, else PyAV, else OpenCV), ``"project"``, ``"av"`` or
    ``"cv2"``. ``stride`` keeps every n-th frame, ``max_frames`` caps how many are kept and
    ``max_side`` downsizes (INTER_AREA) frames whose longer side exceeds it.
    """
    if stride < 1:
        raise UserError("stride must be at least 1")
    if is_photo(path):  # a still photo: filmed by a drifting virtual camera
        rng = np.random.default_rng(seed_for(path))
        clip = pan_clip(to_uint8(read_image(path)), max_frames or PHOTO_CLIP_FRAMES, rng=rng)
        return [resize_max_side(frame, max_side) for frame in clip[::stride]]
    frames: list[np.ndarray] = []
    for index, image in iter_frames(path, reader=reader):
        if index % stride:
            continue
        frames.append(resize_max_side(to_uint8(image), max_side))
        if max_frames is not None and len(frames) >= max_frames:
            break
    if not frames:
        raise UserError(f"no frames could be read from {path}")
    return frames


def relative_to(path: str | Path, folder: str | Path) -> str:
    """``path`` relative to ``folder`` with '/' separators (absolute if that is impossible)."""
    try:
        return Path(os.path.relpath(Path(path).resolve(), Path(folder).resolve())).as_posix()
    except ValueError:  # different drives on Windows
        return Path(path).resolve().as_posix()

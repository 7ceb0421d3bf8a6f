"""Frames of any input: a video file, a folder of images or one image file.

Every frame is a :class:`~refdeblur_video.video.frame.Frame` whose image is ``H x W x 3`` RGB
in the source's sample type (``uint8``, or ``uint16`` on the full 0..65535 scale for deeper
sources); ``uint8=True`` maps deeper frames to 8 bits with
:func:`~refdeblur_video.image_files.to_uint8` (``round(x * 255 / 65535)``), as the metrics
want. Frames are numbered from 0.

- A folder is read in natural order of the file names (``frame2.png`` before
  ``frame10.png``); the suffixes of :data:`refdeblur_video.image_files.IMAGE_SUFFIXES` are
  read, other files ignored. Frame ``i`` is the ``i``-th image.
- An image file is one frame.
- A video is decoded by ``reader``: ``"project"``
  (:func:`refdeblur_video.video.reader.open_reader`: timestamps, the stream's colour matrix,
  damaged streams salvaged), ``"av"`` (plain PyAV to rgb24), ``"cv2"``
  (``cv2.VideoCapture``) or ``"auto"``: the project reader, else PyAV, else OpenCV (the GPU
  training machine may have OpenCV but no PyAV, so nothing here imports PyAV up front). The
  ``av`` and ``cv2`` readers give no timestamps.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from contextlib import closing
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from refdeblur_video import image_files
from refdeblur_video.errors import FrameSizeError, UserError
from refdeblur_video.image_files import IMAGE_SUFFIXES, is_image_path, read_image, to_uint8
from refdeblur_video.video.frame import Frame

__all__ = [
    "READERS",
    "announced_frames",
    "count_frames",
    "fetch_frames",
    "iter_frames",
    "known_frames",
    "load_image",
]

READERS = ("auto", "project", "av", "cv2")


def iter_frames(
    source: str | Path,
    wanted: Collection[int] | None = None,
    reader: str = "auto",
    *,
    uint8: bool = False,
) -> Iterator[Frame]:
    """The frames of ``source`` in order; ``wanted`` restricts them to those numbers (a folder
    then reads only those files, a video is decoded up to the last one)."""
    source = _existing(source)
    if source.is_dir():
        first = None  # the first file read, and its image's size
        for index, file in enumerate(_images_in(source)):
            if wanted is None or index in wanted:
                image = load_image(file) if uint8 else read_image(file)
                first = first or (file, image.shape[:2])
                if image.shape[:2] != first[1]:  # a frame and its reference must line up
                    raise FrameSizeError(
                        f"the frames of {source} differ in size: {first[0].name} is "
                        f"{first[1][1]}x{first[1][0]}, {file.name} {image.shape[1]}x"
                        f"{image.shape[0]}")
                yield _untimed(index, image)
    elif is_image_path(source):
        if wanted is None or 0 in wanted:
            yield _untimed(0, load_image(source) if uint8 else read_image(source))
    else:
        yield from _video_frames(source, wanted, reader, uint8)


def fetch_frames(
    source: str | Path, positions: Iterable[int], reader: str = "auto", *, uint8: bool = False
) -> dict[int, np.ndarray]:
    """Only the images at these frame numbers, by number (one pass that stops early)."""
    with closing(iter_frames(source, set(positions), reader, uint8=uint8)) as frames:
        return {frame.index: frame.image for frame in frames}


def load_image(path: str | Path) -> np.ndarray:
    """Read one image file as RGB uint8 (grey is repeated, alpha dropped, 16-bit mapped)."""
    return to_uint8(read_image(path))


def known_frames(source: str | Path) -> int | None:
    """Number of frames when it is known without opening a video (folders, images), else
    None."""
    source = _existing(source)
    if source.is_dir():
        return len(_images_in(source))
    if is_image_path(source):
        return 1
    return None


def count_frames(source: str | Path, reader: str = "auto") -> int:
    """Number of frames (videos: by demuxing, without decoding, when PyAV is present; else
    by a full decode)."""
    known = known_frames(source)
    if known is not None:
        return known
    if _pick_reader(reader) in ("project", "av"):
        try:
            import av

            from refdeblur_video.video.metadata import main_video_stream

            with av.open(str(source)) as container:
                stream = main_video_stream(container)
                return sum(1 for packet in container.demux(stream) if packet.size)
        except ImportError:
            pass
        except Exception as exc:
            why = getattr(exc, "strerror", None) or exc  # libav's words, not its error number
            raise UserError(f"cannot read video {source}: {why}") from None
    return sum(1 for _ in iter_frames(source, reader=reader))


def announced_frames(source: str | Path) -> int | None:
    """Frame count for a progress bar: exact for folders, the container's claim for videos."""
    known = known_frames(source)
    if known is not None:
        return known
    from refdeblur_video.video.metadata import probe

    try:
        return probe(source).frame_count
    except Exception:  # a progress bar is not worth failing for
        return None


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise UserError(f"no such file or folder: {path}")
    return path


def _images_in(folder: Path) -> list[Path]:
    files = image_files.list_images(folder)
    if not files:
        raise UserError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {folder}")
    return files


def _untimed(index: int, image: np.ndarray) -> Frame:
    return Frame(index, None, Fraction(1), image)


def _video_frames(
    path: Path, wanted: Collection[int] | None, reader: str, uint8: bool
) -> Iterator[Frame]:
    last = max(wanted) if wanted else None
    if wanted is not None and last is None:
        return
    decode = {"project": _decode_project, "av": _decode_av, "cv2": _decode_cv2}
    try:
        for frame in decode[_pick_reader(reader)](path):
            if wanted is None or frame.index in wanted:
                yield frame.with_image(to_uint8(frame.image)) if uint8 else frame
            if last is not None and frame.index >= last:
                return
    except UserError:
        raise
    except Exception as exc:  # decoder-specific errors (av.error.*, OSError, ...)
        raise UserError(f"cannot decode video {path}: {exc}") from None


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


def _decode_project(path: Path) -> Iterator[Frame]:
    from refdeblur_video.video.reader import open_reader

    with open_reader(path) as frames:
        yield from frames


def _decode_av(path: Path) -> Iterator[Frame]:
    import av

    from refdeblur_video.video.metadata import main_video_stream

    with av.open(str(path)) as container:
        stream = main_video_stream(container)
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            yield _untimed(index, frame.to_ndarray(format="rgb24"))


def _decode_cv2(path: Path) -> Iterator[Frame]:
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise UserError(f"cannot open video {path}")
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield _untimed(index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            index += 1
    finally:
        capture.release()

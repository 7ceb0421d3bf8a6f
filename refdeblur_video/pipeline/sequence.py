"""Image sequences: a folder of frames (an editor's export, a camera's burst or time-lapse)
restored as a video's frames are, into a folder of the same file names.

A frame the network does not touch is copied byte for byte; a restored one is written in
its own file's format with its metadata, transparency and bit depth. The frames are written
into a hidden folder inside the output folder and moved into place only once every frame is
done, so an interrupted or failed run leaves the output folder as it was.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..errors import UserError
from ..image_files import png_has_alpha, read_image, read_photo, write_image
from ..video.frame import Frame
from .forced_reference import ForcedReference
from .into_folder import restore_into_folder, say_what_images_ignore
from .options import DeblurOptions
from .preflight import check_sequence, makes_video, say_subfolder_videos, unlike_frames
from .stream import WorkItem

if TYPE_CHECKING:
    from ..model.restorer import Restorer
    from .run import RunSummary

__all__ = ["SequenceSource", "deblur_sequence", "say_if_one_image", "sequence_frames"]

log = logging.getLogger("refdeblur_video")


def sequence_frames(files: list[Path], alpha: bool = False) -> Iterator[Frame]:
    """The frames of an image sequence's ``files`` (in natural order), all of one size and
    sample type (a frame and its reference must line up), as one error naming the files
    where they are not; with ``alpha``, each with its transparency (where it has one)."""
    first: tuple[Path, np.ndarray] | None = None
    for index, path in enumerate(files):
        photo = read_photo(path) if alpha else None
        image = photo.image if photo is not None else read_image(path)
        if first is None:
            first = path, image
        elif image.shape[:2] != first[1].shape[:2] or image.dtype != first[1].dtype:
            raise UserError(unlike_frames(path.parent, (first[0], first[1]), (path, image)))
        yield Frame(index, None, Fraction(1), image,
                    alpha=None if photo is None else photo.alpha)


class SequenceSource:
    """An image sequence read as a video at ``rate`` frames a second, for a run that makes
    it into one: :attr:`info` (the video it makes: the frames' size, yuv420p, 10-bit from
    16-bit images, BT.709 colour, no sound) and its frames, timed; use it in ``with``, as
    a video's reader."""

    def __init__(self, folder: str | os.PathLike, rate: Fraction) -> None:
        from ..image_files import list_images
        from ..video.metadata import VideoInfo

        self.files = list_images(folder)
        self.rate = rate
        photo = read_photo(self.files[0])
        first = photo.image
        deep = first.dtype != np.uint8
        untagged = VideoInfo.for_frames(first.shape[1], first.shape[0], rate,
                                        bit_depth=10 if deep else 8)
        # images with transparency: kept where the output's pixel format holds it (the
        # writer says when it does not); a PNG's header tells at once, other formats' from
        # the first image
        self.alpha = photo.alpha is not None or any(png_has_alpha(p) for p in self.files)
        self.grey = photo.grey  # a --ref is lent to it grey
        pix_fmt = untagged.pix_fmt.replace("yuv", "yuva") if self.alpha else untagged.pix_fmt
        bt709 = 1  # FFmpeg's value of BT.709 primaries, transfer, matrix; 1 is limited range
        self.info = dataclasses.replace(
            untagged, pix_fmt=pix_fmt, frame_count=len(self.files),
            duration_s=float(len(self.files) / rate), color_range=1,
            color_primaries=bt709, color_trc=bt709, colorspace=bt709)

    def __iter__(self) -> Iterator[Frame]:
        for frame in sequence_frames(self.files, alpha=self.alpha):
            yield Frame(frame.index, frame.index, 1 / self.rate, frame.image, duration=1,
                        alpha=frame.alpha)

    def __enter__(self) -> SequenceSource:
        return self

    def __exit__(self, *exc_info) -> None:
        return None


def say_if_one_image(folder: Path, files: list[Path]) -> None:
    """Point a folder of one image, which has no neighbours to borrow from, to the photo
    command."""
    if len(files) == 1:
        log.warning("%s holds one image: with no neighbours it is restored only as a photo "
                    "(refdeblur-video %s OUT%s --ref SHARP.jpg)", folder, files[0],
                    files[0].suffix)


def deblur_sequence(input: str | os.PathLike, output: str | os.PathLike,
                    restorer: Restorer | None = None, **options) -> RunSummary:
    """Deblur the image sequence in the folder ``input`` into the folder ``output``, each
    frame under its own name (see :class:`DeblurOptions` for ``options``)."""
    try:
        return _deblur_sequence(input, output, restorer, **options)
    except OSError as exc:  # a full disk, a frame removed meanwhile: nothing is in place yet
        where = exc.filename or output
        raise UserError(f"cannot make the sequence in {output}: {where}: "
                        f"{exc.strerror or exc}; no frame of it was written") from exc


def _deblur_sequence(input: str | os.PathLike, output: str | os.PathLike,
                     restorer: Restorer | None, **options) -> RunSummary:
    from .run import RunSummary, make_restorer

    begun = time.perf_counter()
    opts = DeblurOptions.resolve(options)
    if makes_video(output):  # deblur_sequence(folder, "out.mp4") from Python
        raise UserError(f"{output} names a video: an image sequence is made into one by "
                        "deblur() or deblur_video(); this writes its images into a folder")
    folder, outdir = Path(input), Path(output)
    targets = check_sequence(folder, outdir, opts)
    files = list(targets)
    say_subfolder_videos(folder)
    say_what_images_ignore(opts, "an image sequence")
    say_if_one_image(folder, files)
    ref_image = read_image(opts.ref) if opts.ref is not None else None
    first_photo = read_photo(files[0])  # a grey sequence is lent a grey --ref
    first = first_photo.image
    forced = None if ref_image is None else ForcedReference.for_frames(
        ref_image, first.shape[:2], first.dtype, opts.transfer, of_what="the sequence",
        grey=first_photo.grey)
    restorer = restorer or make_restorer(opts)
    summary = RunSummary(output=str(outdir))
    said_once: set[str] = set()

    def save(item: WorkItem, staging: Path) -> str:
        source = files[item.frame.index]
        made = staging / source.name
        if item.output is None or item.unchanged:  # bit-exact, metadata and all
            shutil.copyfile(source, made)
        else:
            _write_like(source, item.output, made, opts.quality, said_once)
        times = source.stat()  # a burst sorted by date stays in order
        os.utime(made, ns=(times.st_atime_ns, times.st_mtime_ns))
        return source.name

    restore_into_folder(sequence_frames(files), outdir, restorer, opts, summary, save,
                        desc=folder.name or str(folder), total=len(files), forced=forced,
                        frame_bytes=(first.shape[1], first.shape[0], 8 * first.itemsize),
                        begun=begun)
    return summary


def _write_like(source: Path, restored: np.ndarray, target: Path, quality: int | None,
                said_once: set[str]) -> None:
    """``restored`` written as ``source`` is: its format, grey or colour, transparency and
    metadata (what the format cannot keep is said once per kind)."""
    from .run import say_what_the_format_drops

    photo = read_photo(source)
    if photo.grey:
        restored = cv2.cvtColor(restored, cv2.COLOR_RGB2GRAY)
    if source.suffix.lower() not in said_once:
        said_once.add(source.suffix.lower())
        say_what_the_format_drops(photo, source.suffix, quality)
    stored = photo.as_stored(restored)  # as its copied neighbours lie (EXIF orientation)
    if any(name.startswith("EXIF") for name in photo.metadata.too_large_for(
            source.suffix.lower())):  # no EXIF to say it lies turned: upright, as shown
        stored = dataclasses.replace(photo, image=restored)
    write_image(target, stored.image, quality=quality, alpha=stored.alpha,
                metadata=stored.metadata, extras=stored.extras)

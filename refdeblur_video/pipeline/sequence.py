"""Image sequences: a folder of frames (an editor's export, a camera's burst or time-lapse)
restored as a video's frames are, into a folder of the same file names.

A frame the network does not touch is copied byte for byte; a restored one is written in
its own file's format with its metadata, transparency and bit depth. The frames are written
into a hidden folder inside the output folder and moved into place only once every frame is
done, so an interrupted or failed run leaves the output folder as it was.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import FrameSizeError, UserError
from ..frames.references import ReferencePlanner
from ..frames.sharpness import sharpened
from ..frames.shots import CutDetector
from ..image_files import read_image, read_photo, write_image
from ..interrupts import finishing
from ..refine.step import restore_step
from ..safe_output import STORAGE_ERRNOS
from ..video.frame import Frame
from ..video.sources import iter_frames
from .forced_reference import ForcedReference
from .options import DeblurOptions
from .preflight import check_sequence
from .stream import WorkItem, queue_size_for, run_stream

if TYPE_CHECKING:
    from ..model.restorer import Restorer
    from .run import RunSummary

__all__ = ["deblur_sequence", "sequence_frames"]

log = logging.getLogger("refdeblur_video")

def sequence_frames(folder: Path) -> Iterator[Frame]:
    """The frames of ``folder`` in natural order of their names, all of one size and sample
    type (a frame and its reference must line up), as one clear error where they are not."""
    first = None
    try:
        for frame in iter_frames(folder):
            first = first if first is not None else frame.image.dtype
            if frame.image.dtype != first:
                raise UserError(f"the frames of {folder} differ in bit depth (frame "
                                f"{frame.index} is {8 * frame.image.itemsize}-bit, the first "
                                f"{8 * np.dtype(first).itemsize}-bit): an image sequence is "
                                "restored as one video")
            yield frame
    except FrameSizeError as exc:
        raise UserError(f"{exc}: a folder of images is restored as one image sequence; "
                        "restore photos of their own one at a time (refdeblur-video PHOTO "
                        "OUT.png --ref SHARP.jpg)") from None


def deblur_sequence(input: str | os.PathLike, output: str | os.PathLike,
                    restorer: Restorer | None = None, **options) -> RunSummary:
    """Deblur the image sequence in the folder ``input`` into the folder ``output``, each
    frame under its own name (see :class:`DeblurOptions` for ``options``)."""
    try:
        return _deblur_sequence(input, output, restorer, **options)
    except OSError as exc:  # a full, read-only or failing disk: one line
        if exc.errno not in STORAGE_ERRNOS:
            raise
        raise UserError(f"cannot write {output} ({exc.strerror or exc}): no frame of the "
                        "sequence was written") from exc


def _deblur_sequence(input: str | os.PathLike, output: str | os.PathLike,
                     restorer: Restorer | None, **options) -> RunSummary:
    from .run import (
        RunSummary,
        close_summary,
        count_frame,
        frame_record,
        make_refiner,
        make_restorer,
    )

    begun = time.perf_counter()
    opts = DeblurOptions.resolve(options)
    folder, outdir = Path(input), Path(output)
    targets = check_sequence(folder, outdir, opts)
    ignored = opts.encoder_only_given()
    if ignored:
        log.warning("for an image sequence %s %s nothing (the frames are written as "
                    "images)", ", ".join(ignored), "does" if len(ignored) == 1 else "do")
    files = list(targets)
    ref_image = read_image(opts.ref) if opts.ref is not None else None
    first = read_image(files[0])
    forced = None if ref_image is None else ForcedReference.for_frames(
        ref_image, first.shape[:2], first.dtype, opts.transfer, of_what="the sequence")
    planner = ReferencePlanner(window=opts.window, max_offset=opts.max_offset,
                               threshold=opts.threshold, all_frames=opts.all_frames)
    summary = RunSummary(output=str(outdir))
    said_once: set[str] = set()
    with finishing() as finish_now, _staging_folder(outdir) as staging:
        bar = tqdm(total=len(files), unit="frame", desc=folder.name or str(folder),
                   disable=opts.quiet, dynamic_ncols=True, leave=True)
        try:
            restorer = restorer or make_restorer(opts)
            refiner = make_refiner(opts, restorer)
            start = time.perf_counter()

            def write(item: WorkItem) -> None:
                source = files[item.frame.index]
                item.unchanged = item.output is not None and not sharpened(
                    item.output, item.decision.score)
                if item.output is None or item.unchanged:  # bit-exact, metadata and all
                    shutil.copyfile(source, staging / source.name)
                else:
                    _write_like(source, item.output, staging / source.name, opts.quality,
                                said_once)
                request = item.transfer_request
                count_frame(summary, frame_record(item, refiner.takes_second(
                    request.frame, request.reference, request.other)))
                bar.update(1)
                bar.set_postfix(restored=summary.restored, refresh=False)

            run_stream(sequence_frames(folder), planner,
                       restore_step(restorer, not opts.cpu_transfer), refiner, write,
                       batch=opts.batch, **(forced.stream_options() if forced else {}),
                       queue_size=opts.queue_size or queue_size_for(
                           first.shape[1], first.shape[0], 8 * first.itemsize, opts.batch),
                       cuts=CutDetector() if opts.cuts else None)
        finally:
            bar.close()
        finish_now()  # every frame is made: a signal no longer stops the run
        _move_into_place(staging, targets, opts.overwrite)
    close_summary(summary, begun, start, forced, opts.log, outdir)
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
    write_image(target, restored, quality=quality, alpha=photo.alpha,
                metadata=photo.metadata, extras=photo.extras)


def _move_into_place(staging: Path, targets: dict[Path, Path], overwrite: bool) -> None:
    """Every made frame moved from ``staging`` to its output name; refused before any is
    moved where another run made one of them meanwhile."""
    if not overwrite:
        appeared = [t for t in targets.values() if t.exists()]
        if appeared:
            raise UserError(f"{appeared[0]} appeared while the sequence was being restored; "
                            "nothing was replaced")
    for source, target in targets.items():
        os.replace(staging / source.name, target)


@contextlib.contextmanager
def _staging_folder(outdir: Path) -> Iterator[Path]:
    """A hidden folder inside ``outdir`` for the frames as they are made, removed however
    the run ends, with ``outdir`` itself where the run made it and nothing came of it."""
    made = [parent for parent in (outdir, *outdir.parents) if not parent.exists()]
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".refdeblur-", suffix=".part", dir=outdir))
    except OSError as exc:
        raise UserError(f"cannot write in the output folder {outdir} "
                        f"({exc.strerror or exc})") from exc
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in made:  # innermost first; only while empty
            with contextlib.suppress(OSError):
                folder.rmdir()

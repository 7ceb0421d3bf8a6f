"""The run loop of outputs that are folders of images (an image sequence restored under its
own names, a video written as numbered frames): every frame is made in a hidden folder
inside the output folder and moved into place only once all are made, so an interrupted or
failed run leaves the output folder as it was."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from ..frames.references import ReferencePlanner
from ..frames.sharpness import sharpened
from ..frames.shots import CutDetector
from ..interrupts import finishing
from ..refine.step import restore_step
from ..video.frame import Frame
from .forced_reference import ForcedReference
from .options import DeblurOptions
from .staged_folder import StagedFolder
from .stream import WorkItem, queue_size_for, run_stream

if TYPE_CHECKING:
    from ..model.restorer import Restorer
    from .run import RunSummary

__all__ = ["restore_into_folder", "say_what_images_ignore"]

log = logging.getLogger("refdeblur_video")


def restore_into_folder(frames: Iterable[Frame], outdir: Path, restorer: Restorer,
                        opts: DeblurOptions, summary: RunSummary,
                        save: Callable[[WorkItem, Path], str], *, desc: str,
                        total: int | None, forced: ForcedReference | None,
                        frame_bytes: tuple[int, int, int], begun: float) -> None:
    """Restore ``frames`` (each ``frame_bytes``: width, height, bits per sample) with
    ``restorer`` into ``summary``, handing each to ``save(item, staging)``, which writes
    its file in the folder ``staging`` and returns the file's name; then move every file
    into ``outdir`` together. ``begun``: when the call began, for the run's times."""
    from .run import close_summary, count_frame, frame_record, make_refiner

    planner = ReferencePlanner(window=opts.window, max_offset=opts.max_offset,
                               threshold=opts.threshold, all_frames=opts.all_frames)
    names: list[str] = []
    with finishing() as finish_now, StagedFolder(outdir) as staged:
        bar = tqdm(total=total, unit="frame", desc=desc, disable=opts.quiet,
                   dynamic_ncols=True, leave=True)
        try:
            refiner = make_refiner(opts, restorer)
            start = time.perf_counter()

            def write(item: WorkItem) -> None:
                # a frame the network did not sharpen is better as it came
                item.unchanged = item.output is not None and not sharpened(
                    item.output, item.decision.score)
                name = save(item, staged.path)
                names.append(name)
                request = item.transfer_request
                record = frame_record(item, refiner.takes_second(
                    request.frame, request.reference, request.other))
                record.file = name
                count_frame(summary, record)
                if bar.total is not None and bar.n >= bar.total:
                    bar.total = None  # an estimate the frames outran: a count
                bar.update(1)
                bar.set_postfix(restored=summary.restored, refresh=False)

            width, height, bits = frame_bytes
            run_stream(frames, planner, restore_step(restorer, not opts.cpu_transfer),
                       refiner, write, batch=opts.batch,
                       **(forced.stream_options() if forced else {}),
                       queue_size=opts.queue_size or queue_size_for(
                           width, height, bits, opts.batch),
                       cuts=CutDetector() if opts.cuts else None)
            bar.total = bar.n
        finally:
            bar.close()
        finish_now()  # every frame is made: a signal no longer stops the run
        staged.commit({name: outdir / name for name in names}, opts.overwrite)
        close_summary(summary, begun, start, forced, opts.log, outdir)


def say_what_images_ignore(opts: DeblurOptions, what: str, kept: tuple[str, ...] = ()) -> None:
    """Warn of the encoder options and ``--resume`` given where ``what`` (an image
    sequence, numbered images) is written as images, where they do nothing (``kept``:
    flags that do something there all the same)."""
    ignored = [flag for flag in opts.encoder_only_given() if flag not in kept]
    if ignored:
        log.warning("for %s %s %s nothing (the frames are written as images)", what,
                    ", ".join(ignored), "does" if len(ignored) == 1 else "do")
    if opts.resume:
        log.warning("--resume does nothing for %s: a stopped run leaves nothing to go on "
                    "from, and it starts again from the first frame", what)


"""``--dry-run``: which frames a run would restore, and against which references, from the
decoding and sharpness pass alone (a small part of a run's time on a CPU: the network does
not run, PyTorch is not loaded). The reference checks, which need the network or a
``--ref``'s noise, are not made, so a run may still set a planned reference aside."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from tqdm import tqdm

from ..errors import UserError
from ..frames.references import FrameDecision, ReferencePlanner
from ..frames.shots import CutDetector
from ..image_files import is_image_path, list_images
from ..video.frame import Frame
from ..video.metadata import expected_frames
from ..video.reader import open_reader
from .framelog import FrameRecord, write_frame_log
from .numbered_images import frame_names, is_frame_pattern
from .options import DeblurOptions
from .output_writer import check_encoding
from .preflight import (
    check_device,
    check_input_file,
    check_log,
    check_model,
    check_per_file_names,
    check_reader,
    check_reference,
    expand_inputs,
    not_made_from,
    output_name,
    per_file_logs,
    preflight,
    route,
    say_if_fps_does_nothing,
    say_subfolder_videos,
)
from .sequence import SequenceSource, sequence_frames
from .stream import plan_frames

log = logging.getLogger("refdeblur_video")

#: frame ranges the closing line names before it only counts the rest
SHOWN_RANGES = 12


@dataclass
class PlanSummary:
    """What a run of one video would do, as its closing line says it."""

    input: str
    frames: int = 0
    shots: int = 1
    to_restore: list[int] = field(default_factory=list)  # frame indices, in order
    on_their_own: int = 0  # of them, frames with no sharper neighbour (their own reference)
    seconds: float = 0.0
    files: list[str] | None = None  # an image sequence's file names, by frame
    rate: Fraction | None = None  # an image sequence made into a video: its frame rate
    error: str | None = None  # many files: why this one was not planned
    skipped: str | None = None  # many files: the finished output a run would leave alone
    records: list[FrameRecord] = field(default_factory=list, repr=False)

    def closing_line(self) -> str:
        """The line the command ends with for this input."""
        if self.error:
            return f"{self.input}: not planned (see the error above)"
        if self.skipped:
            return f"{self.input}: not planned: {self.skipped}"
        shots = f" in {self.shots} shots" if self.shots > 1 else ""
        count = len(self.to_restore)
        named = "" if self.files is None else "files "
        which = (f" ({named or 'frames '}{frame_ranges(self.to_restore, names=self.files)})"
                 if count else "")
        alone = (f", {self.on_their_own} with no sharper frame near (restored against "
                 "themselves)" if self.on_their_own else "")
        written = ("nothing written" if self.files is not None and self.rate is None
                   else "no video written")
        if self.rate is not None:
            written += f" (it would be {float(self.rate):.5g} fps)"
        return (f"{self.input}: {self.frames} frames{shots}, {count} would be restored"
                f"{which}{alone}; planned in {self.seconds:.1f} s, {written}")


def frame_ranges(indices: list[int], shown: int = SHOWN_RANGES,
                 names: list[str] | None = None) -> str:
    """``3-5, 17, 90-93``: sorted indices as runs, the first ``shown`` runs named and the
    rest counted; with ``names`` (by index), ``f4.png to f6.png, f18.png, ...``."""
    runs: list[list[int]] = []
    for index in sorted(indices):
        if runs and index == runs[-1][1] + 1:
            runs[-1][1] = index
        else:
            runs.append([index, index])
    def name(index: int) -> str:
        return str(index) if names is None else names[index]

    joined = "-" if names is None else " to "
    named = [name(a) if a == b else f"{name(a)}{joined}{name(b)}" for a, b in runs[:shown]]
    rest = len(runs) - shown
    return ", ".join(named) + (f" and {rest} more run{'s' * (rest > 1)}" if rest > 0 else "")


def plan_video(input: str | os.PathLike, opts: DeblurOptions,
               log_path: str | os.PathLike | None = None,
               output: str | os.PathLike | None = None) -> PlanSummary:
    """Decode ``input`` once and plan it as a run with ``opts`` would; the plan goes to
    ``log_path`` (a frame log, :func:`_planned_record`) where given. With an ``output``,
    its encoder and tracks are checked first (:func:`.output_writer.check_encoding`); an
    ``output`` of numbered images (:func:`.frames_out.is_frame_pattern`) names the frames'
    files."""
    begun = time.perf_counter()
    check_input_file(input)
    planner = _planner(opts)
    summary = PlanSummary(str(input))
    images_out = output is not None and is_frame_pattern(output)
    with open_reader(input, backend=opts.reader) as reader:
        if output is not None and not images_out:
            check_encoding(output, reader.info, input, opts)
        _plan_frames(reader, expected_frames(reader.info), planner, opts, summary)
    if images_out:  # the closing line and the log name the images
        summary.files = frame_names(output, summary.frames)
        for record in summary.records:
            record.file = summary.files[record.index]
    _write_plan(log_path, summary)
    summary.seconds = time.perf_counter() - begun
    return summary


def plan_sequence(folder: Path, opts: DeblurOptions,
                  log_path: str | os.PathLike | None = None,
                  into_video: bool = False) -> PlanSummary:
    """:func:`plan_video` for the image sequence in ``folder``; ``into_video``: made into a
    video, whose frames are timed at ``--fps``."""
    begun = time.perf_counter()
    files = list_images(folder)
    say_subfolder_videos(folder)
    summary = PlanSummary(str(folder), files=[path.name for path in files],
                          rate=opts.rate if into_video else None)
    frames = SequenceSource(folder, opts.rate) if into_video else sequence_frames(files)
    _plan_frames(frames, len(files), _planner(opts), opts, summary)
    for record in summary.records:
        record.file = files[record.index].name
    _write_plan(log_path, summary)
    summary.seconds = time.perf_counter() - begun
    return summary


def _planner(opts: DeblurOptions) -> ReferencePlanner:
    return ReferencePlanner(window=opts.window, max_offset=opts.max_offset,
                            threshold=opts.threshold, all_frames=opts.all_frames)


def _write_plan(log_path: str | os.PathLike | None, summary: PlanSummary) -> None:
    if log_path is not None:
        try:
            write_frame_log(log_path, summary.records)
        except OSError as exc:
            raise UserError(f"cannot write the plan {log_path} ({exc.strerror or exc})") from exc


def _plan_frames(frames: Iterable[Frame], total: int | None, planner: ReferencePlanner,
                 opts: DeblurOptions, summary: PlanSummary) -> None:
    """The sharpness pass of ``frames`` into ``summary``, with a progress bar."""
    with tqdm(
            total=total, unit="frame",
            desc=Path(summary.input).name, disable=opts.quiet, dynamic_ncols=True,
            leave=False, delay=1.0) as bar:
        for item in plan_frames(frames, planner, None,
                                CutDetector() if opts.cuts else None):
            record = _planned_record(item.frame, item.decision, opts.ref is not None)
            summary.records.append(record)
            summary.frames += 1
            summary.shots = record.shot + 1
            if item.decision.blurry:
                summary.to_restore.append(record.index)
                summary.on_their_own += record.reference == -1
            bar.update(1)


def _planned_record(frame, decision: FrameDecision, forced: bool) -> FrameRecord:
    """The frame log's row of a planned frame: its verdict, whether it would be sent to
    the network (``restored``, as a run's log has it) and its planned references
    (``reference`` -2: the ``--ref`` image); the checks are not made (``reference_used``
    empty) and no time is spent."""
    reference = -1
    if decision.blurry:
        reference = -2 if forced else decision.reference
    return FrameRecord(
        index=frame.index, pts=frame.pts, time_s=frame.time_s, shot=decision.shot,
        sharpness=round(decision.score, 4), blurry=int(not decision.sharp),
        restored=int(decision.blurry),
        reference=reference, reference_used=None,
        second_reference=decision.second if decision.blurry and not forced else -1,
        seconds=0.0)


def plan(input: str, output: str | None = None,
         report: Callable[[PlanSummary], None] | None = None, **options) -> list[PlanSummary]:
    """Plan one video, or every video of a folder or glob, each with its own ``--log``
    (``<stem>.<suffix>`` in the folder ``log`` names, else in the ``output`` folder where
    one is given, else here); ``report`` is given each summary as soon as it is made.
    What a run would refuse at once is refused: with an ``output``, its path and the
    encoder it would get too, and among many files one whose output is finished is left
    out as a run leaves it. A file that cannot be read is an error summary, and the others
    go on. Nothing but the plans is written."""
    opts = DeblurOptions.resolve(options)
    if is_image_path(input):
        raise UserError("--dry-run plans a video's frames; a photo is restored as a whole")
    mode = route(input, output)
    say_if_fps_does_nothing(mode, opts)
    if mode in ("sequence", "sequence_video"):
        if output is not None:
            preflight(input, output, opts)
        else:
            check_device(opts.device)
            check_model(opts.model)
            check_reference(opts.ref)
            check_log(opts.log, opts.overwrite)
        if mode == "sequence_video":  # its writer, as a run opens it
            check_encoding(output, SequenceSource(input, opts.rate).info, input, opts)
        summary = plan_sequence(Path(input), opts, opts.log,
                                into_video=mode == "sequence_video")
        if report is not None:
            report(summary)
        return [summary]
    if output is not None:
        preflight(input, output, opts)
    else:
        check_device(opts.device)
        check_model(opts.model)
        check_reader(opts.reader)
        check_reference(opts.ref)
    many = mode == "many"
    files = expand_inputs(input, say=True, outdir=output) if many else [Path(input)]
    logs = {source: opts.log for source in files}
    if many and opts.log:
        check_per_file_names(files, opts)
        logs = per_file_logs(files, opts.log, Path(output) if output else Path("."))
    for log_path in logs.values():  # every one before any file is planned
        check_log(log_path, opts.overwrite)
    results = []
    for source in files:
        target = None if output is None else (Path(output) / output_name(source) if many
                                              else Path(output))
        result = _plan_one(source, target, opts, logs[source], many)
        results.append(result)
        if report is not None:
            report(result)
    return results


def _plan_one(source: Path, target: Path | None, opts: DeblurOptions, log_path: str | None,
              many: bool) -> PlanSummary:
    """One file of :func:`plan`; among ``many``, trouble is its summary's, not raised."""
    if many and target is not None and target.exists() and not opts.overwrite:
        why_not = not_made_from(source, target)
        if why_not is None:
            return PlanSummary(str(source), skipped=f"{target} is already done (a run "
                               "leaves it; --overwrite makes it again)")
        log.error("%s", why_not)
        return PlanSummary(str(source), error=why_not)
    try:
        return plan_video(source, opts, log_path, target)
    except UserError as exc:
        if not many:
            raise
        log.error("%s", exc)
        return PlanSummary(str(source), error=str(exc))

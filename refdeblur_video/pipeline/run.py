"""Entry points of the main job: one video, one image, or many files."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import UserError
from ..frames.references import ReferencePlanner
from ..frames.sharpness import sharpened, sharpness
from ..frames.shots import CutDetector
from ..image_files import (
    ALPHA_SUFFIXES,
    EIGHT_BIT_SUFFIXES,
    QUALITY_SUFFIXES,
    Photo,
    is_grey,
    is_in_format_of,
    read_image,
    read_photo,
    write_image,
)
from ..interrupts import finishing
from ..photo_metadata import METADATA_SUFFIXES
from ..refine.exposure import matched_exposure
from ..refine.step import restore_step
from ..safe_output import STORAGE_ERRNOS, atomic_output, check_writable_file
from ..video.metadata import expected_frames
from ..video.reader import open_reader
from ..video.writer import VideoWriter
from .forced_reference import ForcedReference, exposure_words, fit_reference
from .framelog import FrameRecord, write_frame_log
from .frames_out import deblur_video_to_frames
from .options import DeblurOptions
from .output_writer import open_writer
from .preflight import (
    WRITABLE_SUFFIXES,
    check_outdir,
    check_per_file_names,
    check_single,
    expand_inputs,
    is_sequence,
    not_made_from,
    output_name,
    per_file_logs,
    route,
    say_if_fps_does_nothing,
    say_subfolder_videos,
)
from .ranks import RankBarrier, shard
from .resume import (
    BusyOutput,
    RunState,
    SegmentedOutput,
    UnfinishedRun,
    model_identity,
    open_state,
    run_manifest,
    segment_frames,
    unfinished_line,
)
from .sequence import SequenceSource, deblur_sequence, say_if_one_image
from .stream import WorkItem, queue_size_for, run_stream

if TYPE_CHECKING:
    from ..adapt import AdaptOutcome
    from ..model.restorer import Restorer
    from ..refine import Refiner
    from .dry_run import PlanSummary

log = logging.getLogger("refdeblur_video")


@dataclass
class RunSummary:
    """What a run did: frames seen, frames restored, wall time, where the result went."""

    output: str
    frames: int = 0
    restored: int = 0
    # the whole file: --adapt included, and loading the model where this call does (many
    # files load it once, before the first)
    seconds: float = 0.0
    restoring_seconds: float = 0.0  # from the first frame restored to the output's close
    skipped: bool = False
    skipped_why: str = ""  # many files: why this one was skipped
    references_dropped: int = 0  # restored frames whose reference failed the reference check
    unchanged: int = 0  # frames restored no sharper than they came: written as they came
    shots: int = 1  # shots found (cuts + 1)
    resumed: int = 0  # frames taken from an interrupted run's state (--resume)
    adaptation: str | None = None  # what --adapt did (for the closing line)
    error: str | None = None  # many files: why this one was not made (the others go on)
    records: list[FrameRecord] = field(default_factory=list, repr=False)

    @property
    def sent_to_network(self) -> int:
        """The frames the network ran on: those restored and those kept as they came."""
        return self.restored + self.unchanged

    def closing_line(self) -> str:
        """The line the command ends with for this output."""
        if self.skipped:
            return f"{self.output}: {self.skipped_why}, skipped"
        if self.error:
            return f"{self.output}: not made (see the error above)"
        dropped = (f" ({self.references_dropped} without their reference)"
                   if self.references_dropped else "")
        unchanged = (f", {self.unchanged} kept as they came (the network did not sharpen "
                     "them)" if self.unchanged else "")
        shots = f" in {self.shots} shots" if self.shots > 1 else ""
        resumed = f", resumed at frame {self.resumed}" if self.resumed else ""
        adapted = f"; {self.adaptation}" if self.adaptation else ""
        frames = f"{self.frames} frame{'' if self.frames == 1 else 's'}"
        # a video blurred evenly throughout has no frame blurrier than its neighbours
        hint = (" (none was much blurrier than its neighbours; --all-frames restores every "
                "frame)" if self.frames > 1 and not self.restored and not self.unchanged else "")
        return (f"{self.output}: {frames}{shots}, {self.restored} restored{hint}"
                f"{dropped}{unchanged}, {self.seconds:.1f} s{resumed}{adapted}")


def make_restorer(options: DeblurOptions) -> Restorer:
    """The network named by ``options.model`` on ``options.device``."""
    from ..model.restorer import load_model  # PyTorch: only once the arguments are checked

    return load_model(options.model, options.device, amp=not options.fp32, tile=options.tile,
                      reference_check=options.reference_check)


def make_refiner(options: DeblurOptions, restorer: Restorer,
                 foreign: np.ndarray | None = None) -> Refiner:
    """The step after the network: the reference transfer unless ``--no-transfer``, or an
    untrained network (which returns its input unchanged, and should keep doing so); from
    the sharp frames on both sides of a blurry one unless ``--one-reference``; references
    warped by the dense flow with ``--flow-alignment``; ``foreign``: the ``--ref`` image,
    not transferred from where it is much noisier than the frame."""
    from ..refine import Refiner, transfer_for

    trained = getattr(restorer, "trained", True)
    settings = transfer_for(restorer, flow_alignment=options.flow_alignment,
                            motion_prior=options.motion_prior)
    return Refiner(settings if options.transfer and trained else None,
                   both_sides=options.both_sides, foreign=foreign)


def _checked_options(input: str | os.PathLike, output: str | os.PathLike,
                     options: dict) -> DeblurOptions:
    """Options from keywords (or a ready ``options=``), after the input/output checks."""
    opts = DeblurOptions.resolve(options)
    check_single(input, output, opts)
    return opts


def deblur_video(input: str | os.PathLike, output: str | os.PathLike,
                 restorer: Restorer | None = None, **options) -> RunSummary:
    """Deblur one video file into ``output`` (see :class:`DeblurOptions` for ``options``)."""
    with _storage_errors_reported(output):
        return _deblur_video(input, output, restorer, **options)


@contextlib.contextmanager
def _storage_errors_reported(output: str | os.PathLike) -> Iterator[None]:
    """A disk that is full, read-only or failing becomes one line (a :class:`UserError`)
    that says that ``output`` was not written and what is kept for --resume."""
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.ENOENT and exc.filename:  # removed under the run's feet
            raise UserError(f"cannot write {output}: {exc.filename} was removed while the "
                            "run was writing it") from exc
        if exc.errno not in STORAGE_ERRNOS:
            raise
        head = f"cannot write {output} ({exc.strerror or exc})"
        raise UserError(unfinished_line(str(output), head)) from exc


def _deblur_video(input: str | os.PathLike, output: str | os.PathLike,
                  restorer: Restorer | None, **options) -> RunSummary:
    begun = time.perf_counter()
    opts = _checked_options(input, output, options)
    ref_image = read_image(opts.ref) if opts.ref is not None else None
    sequence = is_sequence(input)
    if sequence:
        say_subfolder_videos(Path(input))
    reader = (SequenceSource(input, opts.rate) if sequence
              else open_reader(input, backend=opts.reader))
    files = reader.files if sequence else None  # an image sequence's: the log names them
    if files is not None:
        say_if_one_image(Path(input), files)
    info = reader.info
    # fitted once to the stream's size and sample type, as the frames are shown (a grey
    # sequence is lent it grey)
    forced = None if ref_image is None else ForcedReference.for_video(
        ref_image, info, opts.transfer, grey=sequence and reader.grey)
    planner = ReferencePlanner(window=opts.window, max_offset=opts.max_offset,
                               threshold=opts.threshold, all_frames=opts.all_frames)
    summary = RunSummary(output=str(output))
    size = segment_frames(opts.segment_seconds, float(info.fps) if info.fps else None)
    with (finishing() as finish_now, reader,
          open_state(output, opts, info.frame_count) as state,
          atomic_output(output, opts.overwrite) as tmp):
        state.check_run(run_manifest(input, info, opts, size))
        # the writer checks the encoder and pixel format: before the model's slow start
        writer = open_writer(tmp, info, input, opts)
        bar = tqdm(total=expected_frames(info), unit="frame", desc=Path(input).name,
                   disable=opts.quiet, dynamic_ncols=True, leave=True)
        segments: SegmentedOutput | None = None
        try:
            restorer = restorer or make_restorer(opts)
            if opts.adapt:  # a copy, fine-tuned on this video (the original is left as it is)
                adapted = _adapt(restorer, input, opts, state)
                restorer, summary.adaptation = adapted.restorer, adapted.message
                bar.reset()  # the frames' rate and ETA start now
            state.check_model(model_identity(restorer))
            start = time.perf_counter()
            summary.resumed = _replay(state, writer, summary)
            bar.update(summary.resumed)
            segments = SegmentedOutput(state, writer, size, summary.resumed)
            refiner = make_refiner(opts, restorer)

            def write(item: WorkItem) -> None:
                frame = item.frame
                # a frame the network did not sharpen (a sharp one the planner sent it, or
                # any under --all-frames) is better as it came
                item.unchanged = item.output is not None and not sharpened(
                    item.output, item.decision.score)
                # an untouched frame keeps its decoded planes: written from them, bit-exact
                writer.write(frame if item.output is None or item.unchanged
                             else frame.with_image(item.output))
                request = item.transfer_request
                record = frame_record(item, refiner.takes_second(
                    request.frame, request.reference, request.other))
                if files is not None:
                    record.file = files[frame.index].name
                count_frame(summary, record)
                segments.frame(record)
                if bar.total is not None and bar.n >= bar.total:
                    bar.total = None  # an estimate the frames outran: a count, not "60/1"
                bar.update(1)
                bar.set_postfix(restored=summary.restored, refresh=False)

            run_stream(reader, planner, restore_step(restorer, not opts.cpu_transfer), refiner,
                       write,
                       batch=opts.batch, **(forced.stream_options() if forced else {}),
                       queue_size=opts.queue_size or queue_size_for(
                           info.width, info.height, info.bit_depth, opts.batch),
                       cuts=CutDetector() if opts.cuts else None, start=summary.resumed,
                       segment=size, replayed=_replay_check(summary.records, state))
            segments.finish()
            writer.close()
            finish_now()  # the output is complete: a signal no longer stops the run
            bar.total = bar.n  # an estimated total ends where the frames did
        except BaseException:
            if segments is not None:
                segments.abort()
            writer.abort()
            raise
        finally:
            bar.close()  # ends the bar's line before any message is printed
    close_summary(summary, begun, start, forced, opts.log, output)
    if opts.adapt and opts.save_adapted:
        from ..adapt import save_adapted

        save_adapted(adapted, opts.save_adapted, output)
    return summary


def close_summary(summary: RunSummary, begun: float, start: float,
                  forced: ForcedReference | None, log_path: str | None,
                  output: str | os.PathLike) -> None:
    """Once ``output`` is written: the run's times (``begun``: the call, ``start``: the
    first frame), what became of the ``--ref`` image, and the frame log."""
    summary.restoring_seconds = time.perf_counter() - start
    summary.seconds = time.perf_counter() - begun
    if forced is not None:
        forced.say_what_was_set_aside(summary.records)
    if log_path:
        write_log(log_path, summary.records, output)


def write_log(path: str | os.PathLike, records: list[FrameRecord],
               output: str | os.PathLike) -> None:
    """The frame log, written once ``output`` is: a failure is one line that says so."""
    try:
        write_frame_log(path, records)
    except OSError as exc:
        raise UserError(f"cannot write the frame log {path} ({exc.strerror or exc}); "
                        f"{output} was written") from exc


def deblur_image(input: str | os.PathLike, output: str | os.PathLike,
                 restorer: Restorer | None = None, **options) -> RunSummary:
    """Deblur one photo with ``ref`` (another photo of the same scene) as reference."""
    begun = time.perf_counter()
    opts = _checked_options(input, output, options)
    if opts.adapt:
        raise UserError("--adapt learns from a video's own sharp frames: it needs a video")
    ignored = opts.video_only_given()
    if ignored:
        log.warning("for a photo %s %s nothing (video options)", ", ".join(ignored),
                    "does" if len(ignored) == 1 else "do")
    photo = read_photo(input)
    blurry, alpha = photo.image, photo.alpha
    given = None if opts.ref is None else read_image(opts.ref)
    # grey by its samples: a black-and-white photo is often stored as three equal colours
    grey = photo.grey or is_grey(blurry)
    if given is not None and is_grey(given) and not grey:
        log.warning("the reference is black and white, the photo in colour: its grey would "
                    "be blended into the photo's colours, so the photo is restored with "
                    "itself as reference")
        given = None
    if given is None:
        if opts.ref is None:
            log.warning("no --ref given: the photo is restored with itself as reference, "
                        "which the network sharpens little; a sharp photo of the same scene "
                        "(--ref) lends it the detail")
        reference = blurry
    else:
        reference = fit_reference(given, blurry.shape, blurry.dtype, "the photo", grey=grey)
        reference, gains = matched_exposure(blurry, reference)
        if gains is not None:  # its levels would be blended in with its detail
            log.warning("the reference is exposed otherwise than the photo (%s): matched "
                        "to the photo before its detail is borrowed", exposure_words(gains))
    # as it came means the file itself where the output is of its format: encoded again, a
    # JPEG would lose a little more, and its metadata is the original's, still true of it
    # (an encoding asked for with --quality is made)
    may_copy = opts.quality is None and is_in_format_of(input, Path(output).suffix)
    if not may_copy:  # before the network's minutes, as the options' own warnings are
        say_what_the_format_drops(photo, Path(output).suffix, opts.quality)
    restorer = restorer or make_restorer(opts)
    start = time.perf_counter()
    restored, used = _restore_photo(restorer, blurry, reference, opts, Path(input).name)
    if given is not None and not used:
        log.warning("the reference does not show the photo's scene (reference check): "
                    "the photo was restored with itself as reference")
    used = used and (given is not None or opts.ref is None)  # a set-aside --ref: not used
    score = sharpness(blurry)
    # a photo the network did not sharpen (a sharp one, or one it cannot help) is better as
    # it came, as a video's frames are
    unchanged = not sharpened(restored, score)
    copied = unchanged and may_copy
    if unchanged:
        restored = blurry
    if photo.grey:  # written back as grey, as it came
        restored = cv2.cvtColor(restored, cv2.COLOR_RGB2GRAY)
    if may_copy and not copied:  # encoded after all
        say_what_the_format_drops(photo, Path(output).suffix, opts.quality)
    with _storage_errors_reported(output), atomic_output(output, opts.overwrite) as tmp:
        if copied:
            shutil.copyfile(input, tmp)
        else:
            write_image(tmp, restored, quality=opts.quality, alpha=alpha,
                        metadata=photo.metadata, extras=photo.extras)
    seconds = time.perf_counter() - start
    record = FrameRecord(index=0, pts=None, time_s=None, shot=0,
                         sharpness=round(score, 4), blurry=1, restored=1,
                         reference=-2 if opts.ref else -1, reference_used=_used(used),
                         second_reference=-1, seconds=round(seconds, 4),
                         unchanged=int(unchanged))
    if opts.log:
        write_log(opts.log, [record], output)
    return RunSummary(str(output), frames=1, restored=int(not unchanged),
                      unchanged=int(unchanged), references_dropped=int(not used),
                      seconds=time.perf_counter() - begun, restoring_seconds=seconds,
                      records=[record])


def say_what_the_format_drops(photo: Photo, suffix: str, quality: int | None) -> None:
    """One warning for each part of ``photo``, or ``--quality``, that an output of
    ``suffix`` does not keep."""
    kind = suffix.lower()
    if quality is not None and kind not in QUALITY_SUFFIXES:
        log.warning("--quality does nothing for %s, which is written losslessly", suffix)
    if photo.metadata and kind not in METADATA_SUFFIXES:
        log.warning("the photo's EXIF and colour profile are not kept: the tool writes them "
                    "into JPEG, PNG and WebP, not %s", suffix)
    for chunk in photo.metadata.too_large_for(kind):
        log.warning("the photo's %s is too large for a JPEG and is left out (PNG and WebP "
                    "keep it)", chunk)
    if photo.alpha is not None and kind not in ALPHA_SUFFIXES:
        log.warning("the photo's transparency is not kept: %s holds none (PNG, TIFF and WebP "
                    "do)", suffix)
    if photo.image.dtype == np.uint16 and kind in EIGHT_BIT_SUFFIXES:
        log.warning("the photo's 16-bit samples are written as 8-bit: %s holds no more (PNG "
                    "and TIFF keep 16)", suffix)
    if photo.metadata.left_out:  # the orientation and edits it may hold are the original's
        log.warning("the photo's %s is left out: it may describe the original samples (an "
                    "orientation, edits), not the restored ones", " and ".join(
                        photo.metadata.left_out))
    for lost in photo.extras.left_out_by(kind):
        log.warning("the photo's %s is not kept: the tool does not write it into %s", lost,
                    suffix)
    if photo.tiff_metadata:
        log.warning("the TIFF's %s is not kept: the tool reads a photo's metadata from JPEG, "
                    "PNG and WebP", " and ".join(photo.tiff_metadata))


def _restore_photo(restorer: Restorer, blurry: np.ndarray, reference: np.ndarray,
                   opts: DeblurOptions, name: str) -> tuple[np.ndarray, bool]:
    """The network and the step after it on one photo, with a progress bar (over the
    network's tiles, then the step after) where it takes more than a moment."""
    bar = tqdm(total=restorer.steps_for(*blurry.shape[:2]) + 1, unit="step", desc=name,
               disable=opts.quiet, dynamic_ncols=True, leave=False, delay=1.0)
    with bar:  # closed before any message is printed
        with restorer.reporting(bar.update):
            (restored,), (used,) = restore_step(restorer, not opts.cpu_transfer)([blurry],
                                                                                  [reference])
        restored = make_refiner(opts, restorer, reference)(restored, blurry,
                                                           reference if used else None)
        bar.update()
    return restored, used


def _adapt(restorer: Restorer, input: str | os.PathLike, opts: DeblurOptions,
           state: RunState) -> AdaptOutcome:
    """``--adapt``: the restorer to use and what adaptation did; the weights used are kept
    in the run's state, so that ``--resume`` goes on with the same ones."""
    from ..adapt import adapt_restorer

    return adapt_restorer(restorer, input, opts, keep_in=state.folder,
                          resuming=state.resuming, refiner=make_refiner(opts, restorer))


def _adapted_path(option: str | None, source: Path) -> str | None:
    if option is None:
        return None
    from ..adapt import adapted_path

    return adapted_path(option, source)


def _used(reference_used: bool | None) -> int | None:
    return None if reference_used is None else int(reference_used)


def frame_record(item: WorkItem, took_second: bool) -> FrameRecord:
    """The frame log's row of a frame the stream has finished (``took_second``: the refine
    step transferred from :attr:`WorkItem.other_reference`)."""
    frame, decision = item.frame, item.decision
    second = decision.second if took_second else -1
    return FrameRecord(
        index=frame.index, pts=frame.pts, time_s=frame.time_s, shot=decision.shot,
        sharpness=round(decision.score, 4), blurry=int(not decision.sharp),
        restored=int(decision.blurry), reference=item.reference_index,
        reference_used=_used(item.reference_used), second_reference=second,
        seconds=round(item.seconds, 4), unchanged=int(item.unchanged))


def count_frame(summary: RunSummary, record: FrameRecord) -> None:
    """Add one written frame to the summary."""
    summary.frames += 1
    summary.restored += record.network_written
    summary.unchanged += record.unchanged
    summary.references_dropped += record.network_written and record.reference_used == 0
    summary.shots = record.shot + 1
    summary.records.append(record)


def _replay(state: RunState, writer: VideoWriter, summary: RunSummary) -> int:
    """Mux the segments an interrupted run committed into ``writer`` and count their frames;
    return the index of the first frame still to be made."""
    if not state.resuming:
        return 0
    snapshot = None
    for segment, data in state.committed():
        if snapshot is None:
            writer.shift_as(segment.writer)
        offset = 0
        for pts, dts, duration, keyframe, size in segment.packets:
            writer.mux_stored(data[offset:offset + size], pts, dts, duration, bool(keyframe))
            offset += size
        for row in segment.records:
            count_frame(summary, FrameRecord(**row))
        snapshot = segment.writer
    if snapshot is not None:
        writer.restore(snapshot)
    return state.committed_frames


def _replay_check(records: list[FrameRecord], state: RunState) -> Callable[[WorkItem], None]:
    """Check that a frame the resumed run skips gets the decisions it had (the input and
    the planner are the same): anything else means the state is not this run's."""

    def check(item: WorkItem) -> None:
        row, decision = records[item.frame.index], item.decision
        same = (row.pts == item.frame.pts and row.shot == decision.shot
                and row.restored == int(decision.blurry)
                and row.sharpness == round(decision.score, 4)
                and row.reference in _loggable_references(item))
        if not same:
            raise UserError(f"frame {row.index} does not match the unfinished run in "
                            f"{state.folder}; use --overwrite to start again")

    return check


def _loggable_references(item: WorkItem) -> tuple[int, ...]:
    """The references the frame log may hold for a frame the stream has just planned:
    its first choice, its second (the first rejected), and with a forced image the
    planner's own first choice (the forced image rejected; -1 where there is none)."""
    decision = item.decision
    found = (item.reference_index, decision.second)
    return (*found, decision.reference) if item.forced else found


def deblur_many(inputs: str, outdir: str | os.PathLike,
                report: Callable[[RunSummary], None] | None = None,
                **options) -> list[RunSummary]:
    """Deblur every video of a folder or glob into ``outdir``, skipping finished outputs.

    Under ``torchrun`` each rank takes every WORLD_SIZE-th file (and, with ``device=auto``,
    its LOCAL_RANK GPU). With ``log`` set, each video gets ``<stem>.<log suffix>`` in the
    folder ``log`` names, else in ``outdir``.
    A file that cannot be made (unreadable, say) is reported as an error and the others go
    on; its summary carries the ``error``. ``report`` is given each file's summary as soon
    as that file is done, so a run stopped later has said what it finished.
    """
    opts = DeblurOptions.resolve(options)
    outdir = Path(outdir)
    all_files = expand_inputs(inputs, say=True, outdir=outdir)
    check_outdir(all_files, outdir)
    check_per_file_names(all_files, opts)
    logs = per_file_logs(all_files, opts.log, outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where a folder should be, a read-only or missing place
        raise UserError(f"cannot make the output folder {outdir}: "
                        f"{exc.strerror or exc}") from exc
    targets = {source: outdir / output_name(source) for source in all_files}
    missing = [target for target in targets.values() if not target.exists()]
    if missing:  # one line for a folder no output can go into, not one per input
        check_writable_file(missing[0], "output")
    if opts.device == "auto" and "LOCAL_RANK" in os.environ:
        import torch

        if torch.cuda.is_available():
            opts.device = f"cuda:{int(os.environ['LOCAL_RANK']) % torch.cuda.device_count()}"
    files = shard(all_files)
    barrier = RankBarrier()  # torchrun stops every process when one exits with an error
    restorer: Restorer | None = None
    results = []
    for source in files:
        target = targets[source]
        if target.name != source.name:
            log.info("%s is written as %s (the tool writes %s)", source.name, target.name,
                     ", ".join(s.lstrip(".").upper() for s in WRITABLE_SUFFIXES))
        if target.exists() and not opts.overwrite:
            result = _existing(source, target)
            frame_log = logs[source]
            if result.skipped and frame_log is not None and not Path(frame_log).exists():
                result.skipped_why += (f" (no frame log {Path(frame_log).name}: a finished file is "
                                       "not read again; restoring it alone with --log and "
                                       "--overwrite writes one)")
        else:
            restorer = restorer or make_restorer(opts)
            result = _deblur_one_of_many(source, target, restorer, opts, logs[source])
        results.append(result)
        if report is not None:
            report(result)
    barrier.wait()
    return results


def _deblur_one_of_many(source: Path, target: Path, restorer: Restorer, opts: DeblurOptions,
                        frame_log: str | None) -> RunSummary:
    """One file of :func:`deblur_many`, with its own frame log and adapted weights; a file
    that cannot be made is an error summary, not an exception."""
    per_file = dataclasses.replace(opts, log=frame_log,
                                   save_adapted=_adapted_path(opts.save_adapted, source))
    try:
        return deblur_video(source, target, restorer, options=per_file)
    except BusyOutput:  # two runs sharing one folder of inputs: the other one makes it
        return RunSummary(str(target), skipped=True, skipped_why="another run is making it")
    except UserError as exc:  # one bad file of many: say so, go on with the rest
        if target.exists() and not opts.overwrite:  # another run finished it meanwhile
            return _existing(source, target, "already done by another run")
        message = exc.describe("--resume") if isinstance(exc, UnfinishedRun) else str(exc)
        log.error("%s", message)
        return RunSummary(str(target), error=message)


def _existing(source: Path, target: Path, why: str = "already done") -> RunSummary:
    """The summary of an input whose output exists already: skipped where the output can
    be this input's (:func:`~.preflight.not_made_from`), else an error (not ours to replace)."""
    why_not = not_made_from(source, target)
    if why_not is not None:
        log.error("%s", why_not)
        return RunSummary(str(target), error=why_not)
    log.info("skipping %s: %s is already done", source, target)
    return RunSummary(str(target), skipped=True, skipped_why=why)


def deblur(input: str | os.PathLike, output: str | os.PathLike | None = None,
           report: Callable[[RunSummary], None] | None = None,
           **options) -> list[RunSummary] | list[PlanSummary]:
    """Deblur a video, a photo, or every video of a folder or glob (into the folder
    ``output``), as ``refdeblur-video`` does: one :class:`RunSummary` per file, and
    ``report`` is given each as soon as that file is done. ``options`` are
    :class:`DeblurOptions`' fields as keywords, over ``options=`` where one is given as
    well. With ``dry_run=True`` nothing is restored: the :class:`.dry_run.PlanSummary` of
    each video is returned (``output`` may then be None). Mistakes in the input, the output
    or an option's value raise :class:`~refdeblur_video.errors.UserError`, whose text is
    the command's one line; an unknown option, or a value of the wrong type, a
    :class:`TypeError`."""
    opts = DeblurOptions.resolve(options)
    if opts.dry_run:
        from .dry_run import plan

        return plan(str(input), None if output is None else str(output), report,
                    options=opts)
    if output is None:
        raise TypeError("deblur() needs an output, unless dry_run=True")
    mode = route(input, output)
    ignored = (opts.photo_only_given() if mode in ("video", "sequence_video", "many")
               else [])
    if ignored:
        log.warning("for a video %s does nothing (a photo's option; a video's is --crf)",
                    ", ".join(ignored))
    say_if_fps_does_nothing(mode, opts)
    if mode == "frames":
        results = [deblur_video_to_frames(input, output, options=opts)]
    elif mode == "sequence":
        results = [deblur_sequence(input, output, options=opts)]
    elif mode == "many":
        return deblur_many(str(input), output, report, options=opts)
    elif mode == "photo":
        results = [deblur_image(input, output, options=opts)]
    else:
        results = [deblur_video(input, output, options=opts)]
    if report is not None:
        report(results[0])
    return results

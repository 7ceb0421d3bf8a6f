"""Entry points of the main job: one video, one image, or many files."""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import UserError
from ..frames.references import ReferencePlanner
from ..frames.sharpness import sharpness
from ..frames.shots import CutDetector
from ..image_files import is_image_path, read_image, write_image
from ..model.restorer import Restorer, load_model
from ..safe_output import atomic_output, check_not_same_file, check_output_path
from ..video.reader import Frame, open_reader
from ..video.writer import VideoWriter
from .framelog import FrameRecord, write_frame_log
from .options import DeblurOptions
from .stream import WorkItem, run_stream

log = logging.getLogger("refdeblur_video")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v", ".mts", ".ts")


@dataclass
class RunSummary:
    """What a run did: frames seen, frames restored, wall time, where the result went."""

    output: str
    frames: int = 0
    restored: int = 0
    seconds: float = 0.0
    skipped: bool = False
    references_dropped: int = 0  # restored frames whose reference failed the reference check
    shots: int = 1  # shots found (cuts + 1)
    records: list[FrameRecord] = field(default_factory=list, repr=False)


def make_restorer(options: DeblurOptions) -> Restorer:
    """The network named by ``options.model`` on ``options.device``."""
    return load_model(options.model, options.device, amp=not options.fp32, tile=options.tile,
                      reference_check=options.reference_check, transfer=options.transfer)


def _fit_reference(reference: np.ndarray, shape: tuple[int, ...], dtype) -> np.ndarray:
    if reference.shape[:2] != shape[:2]:
        log.warning("the reference image is %dx%d, the frames %dx%d: resizing it",
                    reference.shape[1], reference.shape[0], shape[1], shape[0])
        reference = cv2.resize(reference, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    if reference.dtype != dtype:
        scale = 257 if dtype == np.uint16 else 1 / 257
        reference = np.clip(np.round(reference.astype(np.float64) * scale), 0,
                            np.iinfo(dtype).max).astype(dtype)
    return reference


def _checked_options(input: str | os.PathLike, output: str | os.PathLike,
                     options: dict) -> DeblurOptions:
    """Options from keywords (or a ready ``options=``), after the input/output checks."""
    opts = options.pop("options", None) or DeblurOptions.from_kwargs(**options)
    check_not_same_file(input, output)
    check_output_path(output, opts.overwrite)
    return opts


def deblur_video(input: str | os.PathLike, output: str | os.PathLike,
                 restorer: Restorer | None = None, **options) -> RunSummary:
    """Deblur one video file into ``output`` (see :class:`DeblurOptions` for ``options``)."""
    opts = _checked_options(input, output, options)
    reader = open_reader(input, backend=opts.reader)
    info = reader.info
    restorer = restorer or make_restorer(opts)
    forced = None
    if opts.ref is not None:  # fitted once to the stream's size and sample type
        frame_dtype = np.uint16 if info.bit_depth > 8 else np.uint8
        forced = _fit_reference(read_image(opts.ref), (info.height, info.width), frame_dtype)
    planner = ReferencePlanner(window=opts.window, max_offset=opts.max_offset,
                               threshold=opts.threshold, all_frames=opts.all_frames)
    summary = RunSummary(output=str(output))
    bar = tqdm(total=info.frame_count, unit="frame", desc=Path(input).name,
               disable=opts.quiet, dynamic_ncols=True, leave=True)
    start = time.perf_counter()
    with reader, atomic_output(output, opts.overwrite) as tmp:
        writer = VideoWriter(tmp, info, codec=opts.codec, crf=opts.crf, preset=opts.preset,
                             pix_fmt=opts.pix_fmt, copy_streams_from=input, audio=opts.audio,
                             subtitles=opts.audio)
        try:
            def write(item: WorkItem) -> None:
                frame = item.frame
                image = item.output if item.output is not None else frame.image
                writer.write(Frame(frame.index, frame.pts, frame.time_base, image,
                                   frame.duration))
                summary.frames += 1
                summary.restored += item.output is not None
                summary.references_dropped += item.reference_used is False
                summary.shots = item.decision.shot + 1
                summary.records.append(FrameRecord(
                    index=frame.index, pts=frame.pts, time_s=frame.time_s,
                    shot=item.decision.shot,
                    sharpness=round(item.decision.score, 4), blurry=int(item.decision.blurry),
                    reference=item.reference_index,
                    reference_used=_used(item.reference_used),
                    seconds=round(item.seconds, 4)))
                bar.update(1)
                bar.set_postfix(restored=summary.restored, refresh=False)

            run_stream(reader, planner, restorer.restore_images_checked, write,
                       batch=opts.batch, queue_size=opts.queue_size, forced_reference=forced,
                       cuts=CutDetector() if opts.cuts else None)
            writer.close()
        except BaseException:
            writer.abort()
            raise
        finally:
            bar.close()
    summary.seconds = time.perf_counter() - start
    if forced is not None and summary.references_dropped:
        log.warning("the --ref image does not show the video's scene (reference check): %d "
                    "of %d restored frames were restored with themselves as reference",
                    summary.references_dropped, summary.restored)
    if opts.log:
        write_frame_log(opts.log, summary.records)
    return summary


def deblur_image(input: str | os.PathLike, output: str | os.PathLike,
                 restorer: Restorer | None = None, **options) -> RunSummary:
    """Deblur one photo with ``ref`` (another photo of the same scene) as reference."""
    opts = _checked_options(input, output, options)
    if not is_image_path(output):
        raise UserError(f"output {output} must be an image file (.png, .jpg, .tif, ...)")
    blurry = read_image(input)
    if opts.ref is None:
        log.warning("no --ref given: the photo is restored with itself as reference")
        reference = blurry
    else:
        reference = _fit_reference(read_image(opts.ref), blurry.shape, blurry.dtype)
    restorer = restorer or make_restorer(opts)
    start = time.perf_counter()
    (restored,), (used,) = restorer.restore_images_checked([blurry], [reference])
    if opts.ref is not None and not used:
        log.warning("the reference does not show the photo's scene (reference check): "
                    "the photo was restored with itself as reference")
    with atomic_output(output, opts.overwrite) as tmp:
        write_image(tmp, restored)
    seconds = time.perf_counter() - start
    record = FrameRecord(index=0, pts=None, time_s=None, shot=0,
                         sharpness=round(sharpness(blurry), 4), blurry=1,
                         reference=-2 if opts.ref else -1, reference_used=_used(used),
                         seconds=round(seconds, 4))
    if opts.log:
        write_frame_log(opts.log, [record])
    return RunSummary(str(output), frames=1, restored=1, references_dropped=int(not used),
                      seconds=seconds, records=[record])


def _used(reference_used: bool | None) -> int | None:
    return None if reference_used is None else int(reference_used)


def expand_inputs(pattern: str) -> list[Path]:
    """Video files of a folder, or of a glob pattern, in sorted order."""
    path = Path(pattern)
    if path.is_dir():
        files = [p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES]
    else:
        files = [Path(p) for p in glob.glob(pattern)
                 if Path(p).suffix.lower() in VIDEO_SUFFIXES]
    files = sorted(p for p in files if p.is_file())
    if not files:
        raise UserError(f"no video files found in {pattern}")
    return files


def shard(files: list[Path]) -> list[Path]:
    """This process's share of ``files`` under torchrun (RANK / WORLD_SIZE), else all."""
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    return files[rank::world]


def deblur_many(inputs: str, outdir: str | os.PathLike, **options) -> list[RunSummary]:
    """Deblur every video of a folder or glob into ``outdir``, skipping finished outputs.

    Under ``torchrun`` each rank takes every WORLD_SIZE-th file (and, with ``device=auto``,
    its LOCAL_RANK GPU). With ``log`` set, each video gets ``<outdir>/<stem>.<log suffix>``.
    """
    opts = options.pop("options", None) or DeblurOptions.from_kwargs(**options)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    if opts.device == "auto" and "LOCAL_RANK" in os.environ:
        import torch

        if torch.cuda.is_available():
            opts.device = f"cuda:{int(os.environ['LOCAL_RANK']) % torch.cuda.device_count()}"
    files = shard(expand_inputs(inputs))
    log_suffix = Path(opts.log).suffix if opts.log else None
    restorer: Restorer | None = None
    results = []
    for source in files:
        target = outdir / source.name
        if target.exists() and not opts.overwrite:
            log.info("skipping %s: %s is already done", source, target)
            results.append(RunSummary(str(target), skipped=True))
            continue
        restorer = restorer or make_restorer(opts)
        per_file = dataclasses.replace(
            opts, log=str(outdir / f"{source.stem}{log_suffix}") if log_suffix else None)
        results.append(deblur_video(source, target, restorer, options=per_file))
    return results


def deblur(input: str, output: str, **options) -> list[RunSummary]:
    """Dispatch on the input: a folder or glob (many videos), an image, or one video."""
    is_many = (Path(input).is_dir() or any(c in input for c in "*?[")
               or str(output).endswith(os.sep) or Path(output).is_dir())
    if is_many:
        return deblur_many(input, output, **options)
    if is_image_path(input):
        return [deblur_image(input, output, **options)]
    return [deblur_video(input, output, **options)]

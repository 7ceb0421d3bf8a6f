"""A video restored into numbered images: ``refdeblur-video in.mp4 'frames/%06d.png'``
writes every frame, restored or not, as its own image (frame 0 as ``000000.png``), for an
editor or compositor that works on frames, or to keep the result free of a second lossy
encoding. PNG and TIFF keep 16 bits where the video has more than 8.

The images are shown upright (a phone's rotated video is turned, as players turn it) and
hold the video's coded RGB values; what images cannot hold (the sound, the frames' times,
an HDR transfer, non-square samples) is said once. Nothing appears until every frame is
made (:mod:`.into_folder`)."""

from __future__ import annotations

import logging
import os
import time
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UserError
from ..image_files import EIGHT_BIT_SUFFIXES, read_image, write_image
from ..video.frame import to_shown_orientation
from .forced_reference import ForcedReference
from .into_folder import restore_into_folder, say_what_images_ignore
from .numbered_images import check_frames_output, frame_name, frame_names
from .options import DeblurOptions
from .stream import WorkItem

if TYPE_CHECKING:
    from ..model.restorer import Restorer
    from ..video.metadata import VideoInfo
    from .run import RunSummary

__all__ = ["deblur_video_to_frames"]

log = logging.getLogger("refdeblur_video")


def deblur_video_to_frames(input: str | os.PathLike, output: str | os.PathLike,
                           restorer: Restorer | None = None, **options) -> RunSummary:
    """Deblur the video ``input`` into numbered images named by the pattern ``output``
    (``frames/%06d.png``; see :class:`DeblurOptions` for ``options``)."""
    try:
        return _deblur_to_frames(input, Path(output), restorer, **options)
    except OSError as exc:  # a full disk, a frame removed meanwhile: nothing is in place yet
        where = exc.filename or Path(output).parent
        raise UserError(f"cannot make the frames {output}: {where}: "
                        f"{exc.strerror or exc}; no frame was written") from exc


def _deblur_to_frames(input: str | os.PathLike, output: Path, restorer: Restorer | None,
                      **options) -> RunSummary:
    from ..video.metadata import expected_frames
    from ..video.reader import open_reader
    from .run import RunSummary, make_restorer

    begun = time.perf_counter()
    opts = DeblurOptions.resolve(options)
    earlier = check_frames_output(input, output, opts)  # replaced; those after the last stay
    # the reader decodes the video, and --no-audio does what it says
    say_what_images_ignore(opts, "numbered images", kept=("--reader", "--no-audio"))
    ref_image = read_image(opts.ref) if opts.ref is not None else None
    with open_reader(input, backend=opts.reader) as reader:
        info = reader.info
        _say_what_images_drop(info, output, opts)
        forced = None if ref_image is None else ForcedReference.for_video(
            ref_image, info, opts.transfer)
        restorer = restorer or make_restorer(opts)
        summary = RunSummary(output=str(output))
        if opts.adapt:  # a copy, fine-tuned on this video
            from ..adapt import adapt_restorer
            from .run import make_refiner

            adapted = adapt_restorer(restorer, input, opts,
                                     refiner=make_refiner(opts, restorer))
            restorer, summary.adaptation = adapted.restorer, adapted.message
        times: list[float | None] = []  # the images hold none: said if they were uneven

        def save(item: WorkItem, staging: Path) -> str:
            frame = item.frame
            times.append(frame.time_s)
            image = frame.image if item.output is None or item.unchanged else item.output
            name = frame_name(output, frame.index)
            write_image(staging / name, to_shown_orientation(image, info.rotation),
                        quality=opts.quality, alpha=None if frame.alpha is None
                        else to_shown_orientation(frame.alpha, info.rotation))
            return name

        restore_into_folder(reader, output.parent, restorer, opts, summary, save,
                            desc=Path(input).name, total=expected_frames(info),
                            forced=forced,
                            frame_bytes=(info.width, info.height, info.bit_depth),
                            begun=begun)
    names = frame_names(output, summary.frames)
    if names:
        summary.output = str(output.parent / names[0]) + (
            f" to {names[-1]}" if len(names) > 1 else "") + _rate_words(info.fps, times)
    made = set(names)
    left = [path.name for path in earlier if path.name not in made]
    if left:
        log.warning("%s still holds %d earlier image(s) named as %s after this video's "
                    "last frame (%s, ...): they are not this video's", output.parent,
                    len(left), output.name, left[0])
    if opts.adapt and opts.save_adapted:
        from ..adapt import save_adapted

        save_adapted(adapted, opts.save_adapted, output)
    return summary


def _rate_words(fps: Fraction | None, times: list[float | None]) -> str:
    """`` (25 fps)``: the rate to encode the images at again, where the frames were evenly
    timed; otherwise a warning that they were not, and nothing."""
    gaps = np.diff([t for t in times if t is not None])
    if len(gaps) and (None in times or gaps.max() - gaps.min() > 0.01 * gaps.mean()):
        log.warning("the video's frames are not evenly timed (a variable frame rate): the "
                    "images hold no times, the frame log's time_s column keeps them")
        return ""
    if fps is None:
        return ""
    exact = f" = {fps.numerator}/{fps.denominator}" if fps.denominator != 1 else ""
    return f" ({float(fps):.5g} fps{exact})"


def _say_what_images_drop(info: VideoInfo, output: Path, opts: DeblurOptions) -> None:
    """Say, once, what of the video the images cannot hold."""
    from ..image_files import ALPHA_SUFFIXES, QUALITY_SUFFIXES
    from ..video.pixel_formats import has_alpha
    from ..video.writer import HDR_TRANSFERS

    suffix = output.suffix.lower()
    if has_alpha(info.pix_fmt) and suffix not in ALPHA_SUFFIXES:
        log.warning("%s holds no transparency: the video's is dropped (PNG, TIFF and WebP "
                    "keep it)", suffix)
    if opts.quality is not None and suffix not in QUALITY_SUFFIXES:
        log.warning("--quality does nothing for %s, which is stored losslessly", suffix)
    if info.has_audio and opts.audio:  # --no-audio: asked not to, said so already
        log.warning("the sound is not written: numbered images hold none (keep the input's "
                    "sound for when the frames are encoded again)")
    if info.bit_depth > 8 and suffix in EIGHT_BIT_SUFFIXES:
        log.warning("%s holds 8 bits a sample: the video's %d-bit samples are rounded (PNG "
                    "and TIFF keep 16)", suffix, info.bit_depth)
    if info.color_trc in HDR_TRANSFERS:
        log.warning("the video is HDR (%s): the images hold its coded values, which image "
                    "viewers show as SDR (flat and pale)", HDR_TRANSFERS[info.color_trc])
    aspect = info.sample_aspect_ratio
    if aspect is not None and aspect != 1:
        log.warning("the video's samples are not square (%s:%s): the images keep its %dx%d "
                    "samples and look squeezed where shown square", aspect.numerator,
                    aspect.denominator, info.width, info.height)

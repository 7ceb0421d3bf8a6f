"""``--adapt``: fine-tune a copy of the restorer's network on one video before restoring it.

One extra decoding pass keeps a bounded sample of the video's sharp frames, and of its
blurry frames with their references (:mod:`.reservoir`); the video's own blur kernels are
estimated from the latter (:mod:`.kernels`), and the camera-shake strength and the random-
trajectory length are fitted so that synthetic blur is as strong as the video's own
(:mod:`.fit`); a copy of the network is fine-tuned on the sharp crops blurred anew at each
step, with their real neighbours as references, and on some of the video's blurry frames
with their reference aligned to them as the target (:mod:`.pseudo`) (:mod:`.tune`). Some
sharp frames are held back: the copy is used only if it restores them
better than the original, so adaptation cannot knowingly make a video worse. The restorer
passed in is never changed (many files each adapt their own copy of the original).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tqdm import tqdm

from ..errors import UserError
from ..model.weights import load_weights_into, read_checkpoint_metadata, save_checkpoint
from ..safe_output import check_save_path
from ..video.reader import open_reader
from .crosscheck import Baseline, score, score_original
from .fit import estimate_noise, fit_strengths
from .kernels import kernel_bank
from .pseudo import pseudo_targets
from .reservoir import VideoSample, scan_video
from .samples import fixed_batches
from .settings import AdaptSettings, settings_for
from .tune import TuneResult, tune

if TYPE_CHECKING:
    from ..model.restorer import Restorer
    from ..pipeline.options import DeblurOptions
    from ..refine import Refiner

log = logging.getLogger("refdeblur_video")

KEPT_NAME = "adapted.safetensors"  # in a run's state folder, so that --resume reuses it
MIN_TRAIN_REGIONS = 2
ADAPT_KEYS = ("adapted_from", "adapt_result", "adapt_settings")  # metadata of saved weights
CROSSCHECK_RESERVE = 1.5  # the copy's real-frame check may take this times the original's
PSEUDO_SHARE_OF_TIME = 0.25  # making pseudo targets stops once it used this share of the time


@dataclass
class AdaptOutcome:
    """The restorer to use, whether it is the adapted copy, and the closing line's words."""

    restorer: Restorer
    adopted: bool
    message: str
    metadata: dict[str, str] = field(default_factory=dict)


def adapted_path(option: str | None, source: Path) -> str | None:
    """With many inputs, ``--save-adapted`` is a folder: each video's weights go to
    ``<folder>/<stem>.safetensors``."""
    if option is None:
        return None
    folder = Path(option)
    if folder.suffix == ".safetensors":
        raise UserError("with many inputs, --save-adapted names a folder (one file per video)")
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / f"{source.stem}.safetensors")


def restorer_with(restorer: Restorer, model: torch.nn.Module) -> Restorer:
    """A copy of ``restorer`` that runs ``model`` (an adapted copy of its network)."""
    adapted = copy.copy(restorer)
    adapted.model = model.eval().to(memory_format=torch.channels_last)
    adapted.trained = True
    return adapted


def _reuse(restorer: Restorer, path: Path) -> AdaptOutcome:
    """The weights an interrupted run adapted (``--resume`` restores with the same model)."""
    metadata = read_checkpoint_metadata(path)
    if metadata.get("adapt_result") != "adapted":
        return AdaptOutcome(restorer, False, "restored with the original model, as before "
                            "the interruption", metadata)
    model = copy.deepcopy(restorer.model)
    load_weights_into(model, restorer.config, path)
    return AdaptOutcome(restorer_with(restorer, model), True,
                        "adapted weights of the interrupted run reused", metadata)


def _read(input: str | os.PathLike, opts: DeblurOptions, settings: AdaptSettings,
          deadline: float) -> VideoSample:
    """The reading pass, with its own progress bar."""
    with open_reader(input, backend=opts.reader) as reader:
        bar = tqdm(total=reader.info.frame_count, unit="frame", desc="adapt: reading",
                   disable=opts.quiet, dynamic_ncols=True, leave=False)
        try:
            return scan_video(
                reader, window=opts.window, max_offset=opts.max_offset,
                threshold=opts.threshold, cuts=opts.cuts, crop=settings.crop,
                capacity=settings.capacity, held_capacity=settings.held_capacity,
                held_every=settings.held_every, frame_count=reader.info.frame_count,
                deadline=deadline, seed=settings.seed, progress=bar.update)
        finally:
            bar.close()


def tuning_bar(seconds: float, quiet: bool) -> tuple[tqdm, Callable[[int, float, float], None]]:
    """The tuning's progress bar, in the budget's seconds, and the ``progress`` callback of
    :func:`tune` that sets it to the share of the tuning done (never past its end, which a
    rounded total once let it pass, with a warning on the terminal)."""
    bar = tqdm(total=seconds, unit="s", desc="adapt: tuning", disable=quiet,
               dynamic_ncols=True, leave=False,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}")

    def progress(steps: int, loss: float, done: float) -> None:
        bar.set_postfix(steps=steps, loss=f"{loss:.4f}", refresh=False)
        bar.n = seconds * min(1.0, max(0.0, done))
        bar.update(0)  # redraws at tqdm's usual pace

    return bar, progress


def _tune(restorer: Restorer, sample: VideoSample, settings: AdaptSettings, quiet: bool,
          deadline: float, flow_alignment: bool = False, motion_prior: bool = True
          ) -> tuple[TuneResult, dict, list[dict]]:
    """Fit the blur and make the pseudo targets, then fine-tune with a progress bar whose
    unit is the budget's seconds (moved by the share of the tuning done, which a step cap
    may end first). Returns the result, the fit and the pseudo targets' frames and trust."""
    fit = fit_strengths(sample.thumbnails, sample.blurry_ratios, settings.seed,
                        estimate_noise([r.target for r in sample.train]),
                        frame_hw=sample.train[0].frame_hw)
    # estimated whether or not the crops use them: their extents, in the saved weights'
    # metadata, say how strong this video's blur is (about a second's work)
    kernels = kernel_bank(sample.probes, sample.train[0].frame_hw, settings.seed)
    fit = dataclasses.replace(fit, kernels=tuple(k.weights for k in kernels))
    held = fixed_batches(sample.held, settings.held_samples, settings.batch, fit, settings,
                         settings.seed + 1)
    pseudo = []
    if settings.pseudo_share > 0:
        now = time.monotonic()
        pseudo = pseudo_targets(restorer, sample.pairs,
                                now + PSEUDO_SHARE_OF_TIME * max(0.0, deadline - now),
                                flow_alignment, motion_prior)
    bar, progress = tuning_bar(max(0.0, deadline - time.monotonic()), quiet)
    try:
        result = tune(restorer.model, sample.train, held, fit, settings, restorer.device,
                      restorer.amp_dtype, deadline, progress, pseudo)
    finally:
        bar.close()
    targets = [{"frame": t.index, "trust": round(t.trust, 3)} for t in pseudo]
    return result, fit.to_dict(), targets


def adapt_restorer(restorer: Restorer, input: str | os.PathLike, opts: DeblurOptions, *,
                   keep_in: Path | None = None, resuming: bool = False,
                   refiner: Refiner | None = None) -> AdaptOutcome:
    """Adapt a copy of ``restorer`` to the video ``input`` (see the module docstring).

    ``keep_in``: a run's state folder, where the weights used are kept so that a resumed
    run (``resuming``) restores with the same ones instead of adapting again. ``refiner``:
    the step the pipeline runs after the network; given, the copy must also finish a few
    of the video's real blurry frames better than the original (:mod:`.crosscheck`).
    """
    if getattr(restorer, "model", None) is None:
        raise UserError("--adapt needs a network to adapt")
    kept = keep_in / KEPT_NAME if keep_in is not None else None
    reusing = resuming and kept is not None and kept.is_file()
    # a resumed run wrote its --save-adapted file itself before it was stopped
    check_save_path(opts.save_adapted, opts.overwrite or reusing)
    if reusing:
        outcome = _reuse(restorer, kept)
        outcome.metadata = {k: v for k, v in outcome.metadata.items() if k in ADAPT_KEYS}
        return outcome
    settings = settings_for(restorer.device.type, opts.adapt_seconds, os.cpu_count() or 1)
    _warm_up()
    start = time.monotonic()
    deadline = start + settings.seconds
    sample = _read(input, opts, settings, start + settings.read_share * settings.seconds)
    if not sample.complete:
        log.warning("--adapt: the reading pass used its share of the budget after %d frames; "
                    "adapting to those (more --adapt-seconds reads the whole video)",
                    sample.frames)
    details: dict = {"settings": settings.to_dict(), "frames_read": sample.frames,
                     "sharp_frames": sample.sharp_frames, "blurry_frames": sample.blurry_frames,
                     "base_model": opts.model}
    skip = _skip_reason(sample)
    if skip is not None:
        outcome = AdaptOutcome(restorer, False, f"adaptation skipped ({skip}): restored with "
                               "the original model")
    else:
        baseline = None
        if refiner is not None and sample.crosschecks:
            baseline = score_original(restorer, refiner, sample.crosschecks)
        # keep time to score the copy on the real frames as the original was
        reserve = CROSSCHECK_RESERVE * baseline.seconds if baseline is not None else 0.0
        # the tuning first checks the original on held-back frames, about as long as
        # scoring it took: where that does not fit, it would only overrun
        fixed = baseline.seconds if baseline is not None else 0.0
        if time.monotonic() + fixed >= deadline - reserve:
            spent = "reading the video" + (" and scoring the original" if baseline else "")
            skip = (f"{spent} took {time.monotonic() - start:.0f} s of --adapt-seconds "
                    f"{settings.seconds:g}; the rest cannot hold the tuning's checks: give "
                    "it more time")
            outcome = AdaptOutcome(restorer, False, f"adaptation skipped ({skip}): restored "
                                   "with the original model")
    if skip is None:
        result, fit, targets = _tune(restorer, sample, settings, opts.quiet,
                                     deadline - reserve, opts.flow_alignment, opts.motion_prior)
        cross_gain = _cross_gain(restorer, result, refiner, sample, baseline)
        details.update(fit=fit, pseudo_targets=targets, steps=result.steps,
                       seconds=round(result.seconds, 1),
                       check_seconds=round(result.check_seconds, 2),
                       step_seconds=round(result.step_seconds, 3),
                       held_psnr_original=round(result.psnr_before, 3),
                       held_psnr_adapted=round(result.psnr_after, 3),
                       crosscheck_frames=[c.index for c in sample.crosschecks],
                       crosscheck_gain_db=None if cross_gain is None else round(cross_gain, 3))
        elapsed = time.monotonic() - start
        outcome = _decide(restorer, result, settings, elapsed, cross_gain)
    # "seconds" is the tuning's; this is the whole adaptation's, as the closing line says
    details["total_seconds"] = round(time.monotonic() - start if skip else elapsed, 1)
    outcome.metadata = {"adapted_from": Path(input).name,
                        "adapt_result": "adapted" if outcome.adopted else "original",
                        "adapt_settings": json.dumps(details, sort_keys=True)}
    if kept is not None:  # the run's state: its errors are the run's (what --resume keeps)
        _save(outcome, str(kept), outcome.metadata)
    return outcome


def save_adapted(outcome: AdaptOutcome, path: str | None, output: str | os.PathLike) -> None:
    """Write the weights ``output`` was restored with to ``path`` (``--save-adapted``),
    once ``output`` is written: an interrupted or failed run leaves an earlier file there
    as it was."""
    try:
        _save(outcome, path, outcome.metadata)
    except OSError as exc:  # a disk that filled up since the check before the run
        raise UserError(f"cannot write --save-adapted {path} ({exc.strerror or exc}); "
                        f"{output} was written") from exc


def _warm_up() -> None:
    """Pay PyTorch's one-time costs before the budget's clock starts: the first optimiser
    imports torch._dynamo (seconds on a slow CPU), whatever the video."""
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def _cross_gain(restorer: Restorer, result: TuneResult, refiner: Refiner | None,
                sample: VideoSample, baseline: Baseline | None) -> float | None:
    """The copy's gain over the original on the real blurry frames (None: not checked)."""
    if refiner is None or baseline is None or not result.steps or \
            not math.isfinite(result.gain_db):
        return None
    return score(restorer_with(restorer, result.model), refiner, sample.crosschecks) - \
        baseline.psnr


def _skip_reason(sample: VideoSample) -> str | None:
    if not sample.blurry_ratios:
        return "no frame is blurrier than its neighbours: no blur to fit"
    if len(sample.train) < MIN_TRAIN_REGIONS or not sample.held:
        return f"{sample.sharp_frames} sharp frames are too few to learn from"
    return None


def _decide(restorer: Restorer, result: TuneResult, settings: AdaptSettings,
            seconds: float, cross_gain: float | None = None) -> AdaptOutcome:
    """The safety checks: the copy only if it is better on the held-back frames and, where
    they were checked, on the video's real blurry frames."""
    gain = result.gain_db
    real_ok = cross_gain is None or (math.isfinite(cross_gain)
                                     and cross_gain >= settings.min_crosscheck_gain_db)
    real = "" if cross_gain is None else f", {cross_gain:+.2f} dB on real blurry frames"
    if result.steps and math.isfinite(gain) and gain >= settings.min_gain_db and real_ok:
        return AdaptOutcome(restorer_with(restorer, result.model), True,
                            f"adapted to this video ({result.steps} steps, {seconds:.0f} s, "
                            f"{gain:+.2f} dB on held-back frames{real})")
    if not real_ok:
        why = (f"the adapted copy was not better on the video's blurry frames "
               f"({cross_gain:+.2f} dB against their other sharp neighbour, "
               f"{gain:+.2f} dB on held-back frames, after {result.steps} steps)")
    elif not result.steps:
        why = (f"no training step fitted in --adapt-seconds {settings.seconds:g} (the adaptation's "
               f"other work took {seconds:.0f} s); give it more time")
    elif not math.isfinite(gain):
        why = f"the adapted copy broke down (non-finite output after {result.steps} steps)"
    else:
        why = (f"the adapted copy was not better on held-back frames ({gain:+.2f} dB after "
               f"{result.steps} steps)")
    return AdaptOutcome(restorer, False, f"adaptation not used: {why}; restored with the "
                        "original model")


def _save(outcome: AdaptOutcome, path: str | None, metadata: dict[str, str]) -> None:
    """The weights the video is restored with, with where and how they were adapted."""
    if path is None:
        return
    save_checkpoint(path, outcome.restorer.model, outcome.restorer.config, extra=metadata,
                    settings=outcome.restorer.settings)

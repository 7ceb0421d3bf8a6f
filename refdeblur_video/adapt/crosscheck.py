"""The end-to-end check of an adapted copy on the video's own blurry frames.

The held-back check scores synthetic blur, so it cannot see blur the adaptation got wrong,
nor what the step after the network (the reference transfer, which trusts the network's
output more or less) makes of the copy's output. This check restores a few real blurry
frames, as the pipeline will, with the original and with the copy, and compares each
finished frame with a *second* sharp neighbour of the frame (the best one on the other
side of it, which neither restoration saw). The frame's true sharp image is unknown; a
sharp view of the same scene a few frames away stands in for it where it aligns. Each
finished frame gets its own alignment and weights (the transfer's confidence that the
neighbour, aligned to it, shows the same thing): an output that went wrong aligns worse
and agrees less. Aligning to one model's output and weighing both by its confidence
instead favours that model, whichever is better (docs/RESULTS.md). Before the comparison
each finished frame is blurred by the kernel that best turns it into the aligned neighbour
(:func:`.kernels.reblur_to_match`): where the video has no truly sharp frame, the neighbour
is blurred too, and without this a copy that deblurs less would agree with it better
(the frame is then aligned and weighed again, at the neighbour's sharpness).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from ..image_files import to_float
from ..refine.transfer import DEFAULT_TRANSFER, transfer_confidence
from .kernels import reblur_to_match

if TYPE_CHECKING:
    from ..model.restorer import Restorer
    from ..refine import Refiner

MAX_PIXELS = 1920 * 1088  # larger frames are not kept for the check (memory)
# the judge aligns a finished frame and a sharp view by the dense flow itself: both are
# sharp, so the flow is accurate there, and it follows whatever moves on its own, which
# the transfer's homography (made for blurry outputs) leaves to the cues
JUDGE = replace(DEFAULT_TRANSFER, alignment="flow")


@dataclass
class Crosscheck:
    """A blurry frame, its planned reference and the best sharp frame on the other side."""

    index: int
    blurry: np.ndarray
    reference: np.ndarray
    other: np.ndarray


@dataclass
class Baseline:
    """The original model's score, and how long scoring one model took."""

    psnr: float
    seconds: float


def _finished(restorer: Restorer, refiner: Refiner, check: Crosscheck) -> np.ndarray:
    """The frame as the pipeline finishes it: network, then the refine step (float), from
    the first reference only: the pipeline also transfers from the second neighbour, which
    here is the judge, so both models' outputs are compared before that step."""
    restored, used = restorer.restore_floats([check.blurry], [check.reference])
    reference = check.reference if used[0] else None
    return to_float(refiner(restored[0], check.blurry, reference))


def agreement(finished: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """How a finished frame (float RGB) agrees with a sharp view of the scene a few frames
    away: (weighted squared error, total weight). The view is aligned to the frame; the
    frame is brought to the view's blur; then both are aligned and weighed again, so that
    the transfer's confidence, which distrusts a view blurrier than the frame, judges the
    pair at one sharpness."""
    aligned, _ = transfer_confidence(finished, other, JUDGE)
    matched = reblur_to_match(finished, aligned)
    aligned, weight = transfer_confidence(matched, other, JUDGE)
    error = float((weight[..., None] * (matched - aligned) ** 2).sum())
    return error, 3.0 * float(weight.sum())


def score(restorer: Restorer, refiner: Refiner, checks: list[Crosscheck]) -> float:
    """A model's weighted PSNR (dB) of its finished frames against their other sharp
    neighbours (:func:`agreement`); NaN where nothing aligns."""
    return weighted_psnr([agreement(_finished(restorer, refiner, check), to_float(check.other))
                          for check in checks])


def weighted_psnr(parts: list[tuple[float, float]]) -> float:
    """PSNR (dB, peak 1) of summed (weighted squared error, total weight) parts; NaN
    where the weights sum to nothing."""
    error = sum(e for e, _ in parts)
    total = sum(t for _, t in parts)
    if total <= 0:
        return math.nan
    return 10.0 * math.log10(1.0 / max(error / total, 1e-12))


def score_original(restorer: Restorer, refiner: Refiner,
                   checks: list[Crosscheck]) -> Baseline:
    """The original model's score, timed (the copy's check takes about as long)."""
    started = time.monotonic()
    psnr = score(restorer, refiner, checks)
    return Baseline(psnr, time.monotonic() - started)



__all__ = ["Baseline", "Crosscheck", "MAX_PIXELS", "agreement", "score", "score_original",
           "weighted_psnr"]

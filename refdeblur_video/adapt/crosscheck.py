"""The end-to-end check of an adapted copy on the video's own blurry frames.

The held-back check scores synthetic blur, so it cannot see blur the adaptation got wrong,
nor what the step after the network (the reference transfer, which trusts the network's
output more or less) makes of the copy's output. This check restores a few real blurry
frames, as the pipeline will, with the original and with the copy, and compares both
finished frames with a *second* sharp neighbour of the frame (the best one on the other
side of it, which neither restoration saw), aligned by flow to the original's output and
weighed by how far that alignment is trusted. The frame's true sharp image is unknown;
a sharp view of the same scene a few frames away, where it aligns, stands in for it, and
stands in equally for both models.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..image_files import to_float
from ..refine.transfer import transfer_confidence

if TYPE_CHECKING:
    from ..model.restorer import Restorer
    from ..refine import Refiner

MAX_PIXELS = 1920 * 1088  # larger frames are not kept for the check (memory)


@dataclass
class Crosscheck:
    """A blurry frame, its planned reference and the best sharp frame on the other side."""

    index: int
    blurry: np.ndarray
    reference: np.ndarray
    other: np.ndarray


@dataclass
class Baseline:
    """The original model's finished frames and what they are compared with."""

    aligned: list[np.ndarray]  # the other neighbour, aligned to the original's output
    weights: list[np.ndarray]  # how far each pixel's alignment is trusted (H, W)
    psnr: float
    seconds: float  # what scoring one model took


def _finished(restorer: Restorer, refiner: Refiner, check: Crosscheck) -> np.ndarray:
    """The frame as the pipeline finishes it: network, then the refine step (float)."""
    restored, used = restorer.restore_floats([check.blurry], [check.reference])
    reference = check.reference if used[0] else None
    return to_float(refiner(restored[0], check.blurry, reference))


def _psnr(outputs: list[np.ndarray], baseline_aligned: list[np.ndarray],
          weights: list[np.ndarray]) -> float:
    error = total = 0.0
    for out, aligned, weight in zip(outputs, baseline_aligned, weights, strict=True):
        error += float((weight[..., None] * (out - aligned) ** 2).sum())
        total += 3.0 * float(weight.sum())
    if total <= 0:
        return math.nan
    return 10.0 * math.log10(1.0 / max(error / total, 1e-12))


def score_original(restorer: Restorer, refiner: Refiner,
                   checks: list[Crosscheck]) -> Baseline:
    """The original model's score, and the aligned neighbours the copy is scored on."""
    started = time.monotonic()
    outputs, aligned, weights = [], [], []
    for check in checks:
        out = _finished(restorer, refiner, check)
        other, weight = transfer_confidence(out, to_float(check.other))
        outputs.append(out)
        aligned.append(other)
        weights.append(weight)
    return Baseline(aligned, weights, _psnr(outputs, aligned, weights),
                    time.monotonic() - started)


def score_copy(restorer: Restorer, refiner: Refiner, checks: list[Crosscheck],
               baseline: Baseline) -> float:
    """The copy's score on the same frames, against the same aligned neighbours."""
    outputs = [_finished(restorer, refiner, check) for check in checks]
    return _psnr(outputs, baseline.aligned, baseline.weights)


__all__ = ["Baseline", "Crosscheck", "MAX_PIXELS", "score_copy", "score_original"]

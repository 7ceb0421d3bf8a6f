"""Pseudo targets: the video's own blurry frames, with their sharp reference as the target.

A blurry frame the pipeline restores has a sharp neighbour (its reference) showing nearly
the same scene. Aligned onto the network's output by the reference transfer's flow, that
neighbour is what the frame should look like wherever the transfer trusts the alignment
(:func:`refdeblur_video.refine.transfer.transfer_confidence`: agreement, flow consistency,
sharpness), and the transfer's weight says where. A copy taught (blurry frame, reference)
-> aligned reference under that weight learns this video's real blur, which no synthetic
generator reproduces; no ground truth is used (test-time training on the video itself).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..data.dataset import augment_same, to_tensor
from ..image_files import to_float
from ..refine.step import reference_priors, transfer_for
from ..refine.transfer import transfer_confidence

if TYPE_CHECKING:
    from ..model.restorer import Restorer

PLACE_TRIES = 20  # crop places tried for one the transfer mostly trusts
MIN_CROP_TRUST = 0.5  # mean weight of a crop that ends the search


@dataclass
class BlurryPair:
    """A blurry frame and its planned sharp reference, full size (what the reading pass
    keeps)."""

    index: int
    blurry: np.ndarray
    reference: np.ndarray
    # the sharp frame on the reference's other side and where the blurry frame sits in time
    # between the two (0 at the reference): the camera's motion between them places the
    # target as it places the pipeline's transfer (refine/motion.py)
    second: np.ndarray | None = None
    fraction: float | None = None


@dataclass
class PseudoTarget:
    """A blurry frame, its reference, the reference aligned to the frame (float32 RGB in
    [0, 1]) and the per-pixel weight (H, W) in [0, 1] of that target."""

    index: int
    blurry: np.ndarray
    reference: np.ndarray
    target: np.ndarray
    weight: np.ndarray

    @property
    def trust(self) -> float:
        return float(self.weight.mean())


def pseudo_targets(restorer: Restorer, pairs: list[BlurryPair],
                   deadline: float | None = None, flow_alignment: bool = False,
                   motion_prior: bool = True) -> list[PseudoTarget]:
    """The targets of the pairs whose reference the network accepts (its check refuses a
    reference that does not show the frame's scene; such a frame teaches nothing here),
    as many as are made before ``deadline`` (``time.monotonic()``), aligned as the
    pipeline's transfer aligns (``flow_alignment``: by the dense flow; with the pair's
    second sharp frame and ``motion_prior``, placed by the camera's motion)."""
    settings = transfer_for(restorer, flow_alignment, motion_prior)
    targets = []
    for pair in pairs:
        if deadline is not None and time.monotonic() > deadline:
            break
        restored, used = restorer.restore_floats([pair.blurry], [pair.reference])
        if not used or not used[0]:
            continue
        prior = reference_priors(pair.reference, pair.second, pair.fraction, settings)[0]
        aligned, weight = transfer_confidence(restored[0], to_float(pair.reference), settings,
                                              prior)
        targets.append(PseudoTarget(pair.index, pair.blurry, pair.reference,
                                    aligned.astype(np.float32), weight.astype(np.float32)))
    return targets


def _place(weight: np.ndarray, crop: int, rng: np.random.Generator) -> tuple[int, int]:
    """A crop place the transfer mostly trusts, else the last of a few random ones."""
    h, w = weight.shape
    for _ in range(PLACE_TRIES):
        y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        if weight[y:y + crop, x:x + crop].mean() > MIN_CROP_TRUST:
            break
    return y, x


def pseudo_batch(targets: list[PseudoTarget], crop: int, count: int,
                 rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """``count`` random crops of ``crop`` pixels (less in smaller frames), flipped and turned
    alike: ``blur``, ``ref``, ``sharp`` (the target) and ``weight`` (1 x H x W) tensors."""
    crop = min(crop, *(min(t.weight.shape) for t in targets))
    samples = []
    for _ in range(count):
        t = targets[int(rng.integers(len(targets)))]
        y, x = _place(t.weight, crop, rng)
        window = (slice(y, y + crop), slice(x, x + crop))
        samples.append(augment_same((t.blurry[window], t.reference[window], t.target[window],
                                     t.weight[window][..., None]), rng))
    return {key: torch.stack([to_tensor(s[k]) for s in samples])
            for k, key in enumerate(("blur", "ref", "sharp", "weight"))}


def weighted_l1(output: torch.Tensor, target: torch.Tensor,
                weight: torch.Tensor) -> torch.Tensor:
    """Mean absolute error weighted per pixel (``weight`` is N x 1 x H x W)."""
    return ((output - target).abs() * weight).sum() / (weight.sum() * output.shape[1] + 1e-6)


__all__ = ["BlurryPair", "PseudoTarget", "pseudo_batch", "pseudo_targets", "weighted_l1"]

"""Training crops for adaptation: a kept region of a sharp frame, blurred anew on each draw.

Each crop's blur is the video's own (a kernel estimated from one of its blurry frames and
that frame's sharp reference, :mod:`.kernels`) or comes from one of the training generators
(:mod:`refdeblur_video.data`): the hand-held camera shake at a strength fitted to this video
(:mod:`.fit`), jagged random-trajectory kernels of a length fitted likewise, the mean of the
frame and its real neighbours in linear light, or a patch of another region moving across
it; a little defocus and noise as estimated on the video's sharp frames are mixed in. The
reference is a real sharp neighbour at the same place, or (``self_ref_prob``) the blurry crop
itself, as in the pipeline when a frame has no sharper neighbour.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..data.dataset import augment_same, to_tensor
from ..data.mixed_blur import average_frames, defocus, moving_object
from ..data.shake import degrade, render_path_blur, sample_camera_path
from ..data.trajectory import trajectory_blur
from .fit import StrengthFit
from .kernels import apply_kernel
from .reservoir import Region
from .settings import AdaptSettings

OBJECT_TRAVEL = (0.05, 0.3)
MAX_DEFOCUS = 2.5  # pixels
TRAJECTORY_BLEND_MAX = 1.5  # data.trajectory blends a second kernel up to this much longer


def _draw(weights: dict[str, float], rng: np.random.Generator) -> str:
    names = sorted(k for k, v in weights.items() if v > 0)
    p = np.array([weights[n] for n in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _shake(region: Region, fit: StrengthFit, rng: np.random.Generator) -> np.ndarray:
    """The region's crop under a random camera path of a fitted strength."""
    path = sample_camera_path(region.frame_hw, rng, fit.draw(rng))
    return _inner(region, render_path_blur(region.sharp, path, region.origin))


def _inner(region: Region, blurred: np.ndarray) -> np.ndarray:
    """The crop itself out of ``region.sharp`` blurred (the margin cut off)."""
    m, c = region.margin, region.crop
    return np.ascontiguousarray(blurred[m:m + c, m:m + c])


def _trajectory(region: Region, fit: StrengthFit, rng: np.random.Generator
                ) -> np.ndarray | None:
    """The region's crop under a random-trajectory kernel of a fitted length (None: no
    lengths were fitted). The length is capped so that even the longer of two blended
    kernels (up to 1.5 times it) reaches no further than the margin kept around the crop."""
    if not fit.lengths:
        return None
    length = min(fit.draw_length(rng), 2 * region.margin / TRAJECTORY_BLEND_MAX)
    return _inner(region, trajectory_blur(region.sharp, length, rng))


def _own(region: Region, fit: StrengthFit, rng: np.random.Generator) -> np.ndarray | None:
    """The region's crop under one of the video's own kernels (None: there are none)."""
    if not fit.kernels:
        return None
    kernel = fit.kernels[int(rng.integers(len(fit.kernels)))]
    m = region.margin
    if kernel.shape[0] // 2 > m:  # larger than the margin kept: crop it there
        inner = kernel[kernel.shape[0] // 2 - m:, kernel.shape[0] // 2 - m:][:2 * m + 1,
                                                                             :2 * m + 1]
        kernel = inner / inner.sum()
    return _inner(region, apply_kernel(region.sharp, kernel))


def _average(region: Region, rng: np.random.Generator) -> tuple[np.ndarray, int] | None:
    """The mean of 3 or 5 consecutive frames around the crop's, and how far it reaches."""
    reaches = [r for r in (1, 2) if all(d in region.neighbours for d in range(-r, r + 1)
                                        if d)]
    if not reaches:
        return None
    reach = int(rng.choice(reaches))
    stack = [region.neighbours[d] if d else region.target for d in range(-reach, reach + 1)]
    c = region.crop
    return average_frames(stack, (0, 0, c, c)), reach


def _reference(region: Region, blur: np.ndarray, beyond: int,
               rng: np.random.Generator) -> np.ndarray:
    """A real neighbour further than ``beyond`` frames, sharp ones first; else ``blur``."""
    offsets = [d for d in region.neighbours if abs(d) > beyond]
    sharp = [d for d in offsets if region.usable.get(d)]
    choice = sharp or offsets
    if not choice:
        return blur.copy()
    return region.neighbours[int(rng.choice(choice))]


def make_sample(region: Region, others: list[Region], fit: StrengthFit,
                settings: AdaptSettings, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One (blurry, sharp, reference) triple of ``region``'s crop size, same dtype."""
    generator = _draw(settings.generators, rng)
    sharp, beyond = region.target, 0
    blur = None
    if generator == "own":
        blur = _own(region, fit, rng)
    elif generator == "trajectory":
        blur = _trajectory(region, fit, rng)
    elif generator == "average":
        averaged = _average(region, rng)
        if averaged is not None:
            blur, beyond = averaged
    elif generator == "object" and others:
        source = others[int(rng.integers(len(others)))].target
        c = region.crop
        size = max(4, int(rng.uniform(0.25, 0.6) * c))
        y, x = (int(rng.integers(0, c - size + 1)) for _ in range(2))
        blur, sharp = moving_object(region.target, source[y:y + size, x:x + size], rng,
                                    OBJECT_TRAVEL)
    if blur is None:
        blur = _shake(region, fit, rng)
    if rng.random() < settings.defocus_prob:
        blur = defocus(blur, float(rng.uniform(0.5, MAX_DEFOCUS)))
    if blur.dtype == np.uint8 and fit.noise_sigma > 0:
        blur, _ = degrade(np.ascontiguousarray(blur), rng, noise_sigma=fit.noise_sigma)
    if rng.random() < settings.self_ref_prob:
        ref = blur.copy()
    else:
        ref = _reference(region, blur, beyond, rng)
    blur, sharp, ref = augment_same((blur, sharp, ref), rng)
    return blur, sharp, ref


def make_batch(regions: list[Region], count: int, fit: StrengthFit, settings: AdaptSettings,
               rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """``count`` samples of randomly chosen regions, stacked as float tensors in [0, 1]
    (crops of different sizes never meet: every region of a video has one crop size)."""
    triples = [make_sample(regions[int(rng.integers(len(regions)))], regions, fit, settings,
                           rng) for _ in range(count)]
    return {key: torch.stack([to_tensor(t[k]) for t in triples])
            for k, key in enumerate(("blur", "sharp", "ref"))}


def fixed_batches(regions: list[Region], count: int, batch: int, fit: StrengthFit,
                  settings: AdaptSettings, seed: int) -> list[dict[str, torch.Tensor]]:
    """The held-back samples: the same for both models (fixed seed), at least one per
    region, in batches of ``batch``."""
    rng = np.random.default_rng(seed)
    count = max(count, len(regions))
    per = math.ceil(count / len(regions))
    order = [r for r in regions for _ in range(per)][:count]
    triples = [make_sample(r, regions, fit, settings, rng) for r in order]
    return [{key: torch.stack([to_tensor(t[k]) for t in triples[i:i + batch]])
             for k, key in enumerate(("blur", "sharp", "ref"))}
            for i in range(0, len(triples), batch)]

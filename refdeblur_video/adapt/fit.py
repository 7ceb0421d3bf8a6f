"""How strong to make the synthetic blur, and how much noise to add, for one video.

The pipeline calls a frame blurry by its sharpness ratio: its variance of the Laplacian
over the best of its window (:mod:`refdeblur_video.frames.sharpness`, ``references``). A
sharp frame blurred by the training camera shake at strength ``s`` gets a ratio too:
sharpness(blurred) / sharpness(sharp), measured on the same small grey copy. That ratio
falls as ``s`` grows, so each blurry frame's ratio names the strength that makes blur like
its own. :func:`fit_strengths` measures the median ratio over a grid of strengths on the
video's own sharp thumbnails and inverts it at the quantiles of the blurry frames' ratios:
training then draws its strengths from these, and its synthetic frames are about as blurry
as the frames that will be restored, no more (which would teach the network to
over-sharpen) and no less. The jagged random-trajectory kernels
(:mod:`refdeblur_video.data.trajectory`) get their lengths fitted the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..data.shake import render_path_blur, sample_camera_path
from ..data.trajectory import trajectory_blur
from ..frames.sharpness import sharpness
from ..image_files import peak_value
from ..refine.noise import FLATTEST_PERCENT, block_noise
from .kernels import BlurKernel

STRENGTHS = np.array([0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0])
# random-trajectory lengths, pixels at the thumbnails' size (a quarter of 720p's): about as
# far as the training draws (96 px at 720p); the crops cap what their margin cannot hold
LENGTHS = np.array([0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 11.0, 15.0, 20.0, 26.0])
DRAWS = 2  # camera paths per thumbnail and strength
QUANTILES = np.linspace(0.05, 0.95, 10)
MAX_NOISE = 5.0  # 8-bit levels; a higher estimate is texture rather than noise


@dataclass(frozen=True)
class StrengthFit:
    """Strengths training draws from (one per quantile of the blurry frames' ratios), the
    curve they came from, and the noise sigma to add to a synthetic frame (8-bit levels)."""

    strengths: tuple[float, ...]
    curve: tuple[float, ...]  # median ratio at each of STRENGTHS
    target: tuple[float, ...]  # the blurry frames' ratios at QUANTILES
    noise_sigma: float = 0.0
    # the video's own blur kernels (:mod:`.kernels`), at frame size; empty where none was
    # estimated (no blurry frame with a sharp reference)
    kernels: tuple[np.ndarray, ...] = ()
    # random-trajectory lengths at frame size (pixels) fitted likewise; empty: not fitted
    lengths: tuple[float, ...] = ()

    def draw(self, rng: np.random.Generator) -> float:
        """One strength: a fitted one, jittered by up to 20 %."""
        return float(rng.choice(self.strengths)) * float(rng.uniform(0.8, 1.2))

    def draw_length(self, rng: np.random.Generator) -> float:
        """One random-trajectory length (frame pixels): a fitted one, jittered by up to 20 %."""
        return float(rng.choice(self.lengths)) * float(rng.uniform(0.8, 1.2))

    def to_dict(self) -> dict:
        extents = [BlurKernel(k, 1.0).extent_px for k in self.kernels]
        return {"strengths": [round(s, 3) for s in self.strengths],
                "trajectory_lengths_px": [round(n, 1) for n in self.lengths],
                "ratios": [round(r, 3) for r in self.target],
                "noise_sigma": round(self.noise_sigma, 2),
                "kernels": len(self.kernels),
                "kernel_extents_px": [round(float(q), 1) for q in
                                      np.quantile(extents, (0.1, 0.5, 0.9))] if extents else []}


Blur = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]


def _shake(thumb: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    return render_path_blur(thumb, sample_camera_path(thumb.shape[:2], rng, strength))


def ratio_curve(thumbnails: list[np.ndarray], seed: int = 0,
                grid: np.ndarray = STRENGTHS, blur: Blur = _shake) -> np.ndarray:
    """Median sharpness ratio of the thumbnails blurred by ``blur`` at each strength (or
    length) of ``grid`` (non-increasing)."""
    rng = np.random.default_rng(seed)
    medians = []
    base = [max(sharpness(t), 1e-12) for t in thumbnails]
    for s in grid:
        ratios = []
        for thumb, own in zip(thumbnails, base, strict=True):
            for _ in range(DRAWS):
                ratios.append(sharpness(blur(thumb, float(s), rng)) / own)
        medians.append(float(np.median(ratios)))
    return np.minimum.accumulate(np.array(medians))


def _invert(curve: np.ndarray, target: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The grid values whose ratio is each target's (np.interp wants increasing x: the curve
    falls along the grid, so both signs are flipped)."""
    return np.interp(-target, -curve, grid)


def fit_strengths(thumbnails: list[np.ndarray], blurry_ratios: list[float],
                  seed: int = 0, noise_sigma: float = 0.0,
                  frame_hw: tuple[int, int] | None = None) -> StrengthFit:
    """Strengths (and, given the frames' size, random-trajectory lengths) whose synthetic
    blur has the blurry frames' sharpness ratios."""
    curve = ratio_curve(thumbnails, seed)
    target = np.quantile(np.asarray(blurry_ratios, dtype=np.float64), QUANTILES)
    strengths = _invert(curve, target, STRENGTHS)
    lengths: tuple[float, ...] = ()
    if frame_hw is not None:
        scale = max(frame_hw) / max(thumbnails[0].shape[:2])
        lengths_curve = ratio_curve(thumbnails, seed, LENGTHS, trajectory_blur)
        lengths = tuple(float(n) * scale for n in _invert(lengths_curve, target, LENGTHS))
    return StrengthFit(tuple(float(s) for s in strengths), tuple(float(c) for c in curve),
                       tuple(float(t) for t in target), noise_sigma, lengths=lengths)


def estimate_noise(crops: list[np.ndarray]) -> float:
    """Noise sigma of sharp crops in 8-bit levels, per channel as :func:`degrade` adds it:
    Immerkaer's fast estimate on the green channel in small blocks
    (:func:`~refdeblur_video.refine.noise.block_noise`: those that reach black or white,
    where noise is clipped, left out since session 45), the flattest tenth over all the
    crops' blocks, capped at :data:`MAX_NOISE`."""
    values = [block_noise(np.ascontiguousarray(crop[..., 1]).astype(np.float32)
                          * (255.0 / peak_value(crop.dtype)), peak=255.0)
              for crop in crops]
    found = np.concatenate(values) if values else np.zeros(0)
    if not found.size:
        return 0.0
    return float(min(MAX_NOISE, np.percentile(found, FLATTEST_PERCENT)))

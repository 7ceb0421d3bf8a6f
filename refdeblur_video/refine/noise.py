"""How noisy an image is: a reference clearly noisier than its frame is not transferred from.

The transfer's sharpness cue takes noise for detail: a still photo of the right scene taken
at high ISO, given as ``--ref``, would have its noise copied into a clean frame. A sharp
neighbour of the same video carries the frame's own noise and is transferred from as
before. The network itself is still given the noisy reference: it gains from it, noise and
all. Denoising the reference first (OpenCV's non-local means) was tried: a denoiser also
removes fine texture, which the cues then copy in as detail (docs/EXPERIMENTS.md).

The noise is measured as Immerkaer (1996) does, by the response to a kernel that cancels
smooth image content (a difference of two Laplacians), on the flattest part of the image:
the low percentile of the response's block means, unsaturated blocks only, so that texture
and clipped skies do not pass for noise.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# the kernel's response to white noise of std s has std 6 s (the root of its squares' sum)
NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
BLOCK_PX = 16
FLATTEST_PERCENT = 10.0  # the blocks the level is read from: the flattest tenth
SATURATED = 3.0 / 255.0  # a block that reaches this near black or white is left out
MIN_BLOCKS = 16  # fewer usable blocks: no estimate (0)


def block_noise(plane: np.ndarray, peak: float = 1.0) -> np.ndarray:
    """Per BLOCK_PX block of ``plane`` (H x W float32, white at ``peak``) that reaches
    neither black nor white, the standard deviation of noise that Immerkaer's kernel reads
    there (texture reads as noise too: the flattest blocks tell); 1-D, in ``plane``'s
    units."""
    h, w = (size - size % BLOCK_PX for size in plane.shape[:2])
    if h == 0 or w == 0:
        return np.zeros(0, np.float32)
    response = np.abs(cv2.filter2D(plane, -1, NOISE_KERNEL, borderType=cv2.BORDER_REFLECT))

    def blocks(values: np.ndarray) -> np.ndarray:
        return values[:h, :w].reshape(h // BLOCK_PX, BLOCK_PX, w // BLOCK_PX, BLOCK_PX)

    inside = blocks(plane)
    usable = ((inside.min(axis=(1, 3)) > SATURATED * peak)
              & (inside.max(axis=(1, 3)) < (1 - SATURATED) * peak))
    # the mean absolute value of a zero-mean Gaussian is its std times sqrt(2 / pi)
    return blocks(response).mean(axis=(1, 3))[usable] * (math.sqrt(math.pi / 2) / 6.0)


def noise_level(image: np.ndarray) -> float:
    """The estimated standard deviation of the noise in ``image``'s luma (H x W x 3 or
    H x W float32 in [0, 1]), in the same units, read off the flattest
    ``FLATTEST_PERCENT`` of its blocks; 0 where the image is too small or too saturated
    to tell."""
    luma = image if image.ndim == 2 else cv2.transform(
        image, np.full((1, image.shape[2]), 1.0 / image.shape[2], np.float32))
    found = block_noise(luma)
    if found.size < MIN_BLOCKS:
        return 0.0
    return float(np.percentile(found, FLATTEST_PERCENT))


def noisier(reference_noise: float, frame_noise: float, allowance: float) -> bool:
    """Whether a reference's noise exceeds the frame's by more than ``allowance`` (all
    noise levels of :func:`noise_level`; ``allowance`` 0: never, the check is off)."""
    return allowance > 0 and reference_noise > frame_noise + allowance


__all__ = ["block_noise", "noise_level", "noisier"]

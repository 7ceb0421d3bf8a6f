"""How noisy an image is: a ``--ref`` clearly noisier than its frame is not transferred from.

The transfer's sharpness cue takes noise for detail: a still photo of the right scene taken
at high ISO, given as ``--ref``, would have its noise copied into a clean frame. The
network itself is still given the noisy reference: it gains from it, noise and all.
Denoising the reference first (OpenCV's non-local means) was tried: a denoiser also removes
fine texture, which the cues then copy in as detail (docs/EXPERIMENTS.md).

Noise is measured as Immerkaer (1996) does, by the response to a kernel that cancels smooth
image content (a difference of two Laplacians), per block, leaving out blocks that reach
black or white (clipped noise reads low). Fine texture answers the kernel too, so:

- on a blurry frame, whose texture the blur has taken, the flattest tenth of the blocks
  tells (:func:`noise_level`); what texture is left only makes the frame read noisier;
- on a sharp image, texture may fill every block (gravel, foliage, the tests' 2x2 random
  blocks). Averaging 2 x 2 pixels halves white noise's response and leaves texture's about
  as it was (a natural image's detail is alike from one scale to the next), so the part of
  the response that the halving takes away is noise (:func:`texture_free_noise_level`).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..image_files import to_float

# the kernel's response to white noise of std s has std 6 s (the root of its squares' sum),
# and a mean absolute value sqrt(2 / pi) times that
NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
PER_MEAN_RESPONSE = math.sqrt(math.pi / 2) / 6.0
BLOCK_PX = 16
FLATTEST_PERCENT = 10.0  # the blurry frame's level: its flattest tenth of blocks
SATURATED = 3.0 / 255.0  # a block that reaches this near black or white is left out
MIN_BLOCKS = 16  # fewer usable blocks: no estimate (0)


def _block_means(plane: np.ndarray, block: int) -> np.ndarray:
    """The kernel's mean absolute response per ``block`` x ``block`` block (2-D)."""
    h, w = (size - size % block for size in plane.shape[:2])
    response = np.abs(cv2.filter2D(plane, -1, NOISE_KERNEL, borderType=cv2.BORDER_REFLECT))
    return response[:h, :w].reshape(h // block, block, w // block, block).mean(axis=(1, 3))


def _unsaturated(plane: np.ndarray, peak: float) -> np.ndarray:
    """Per BLOCK_PX block (2-D), whether it reaches neither black nor white."""
    h, w = (size - size % BLOCK_PX for size in plane.shape[:2])
    blocks = plane[:h, :w].reshape(h // BLOCK_PX, BLOCK_PX, w // BLOCK_PX, BLOCK_PX)
    return ((blocks.min(axis=(1, 3)) > SATURATED * peak)
            & (blocks.max(axis=(1, 3)) < (1 - SATURATED) * peak))


def block_noise(plane: np.ndarray, peak: float = 1.0) -> np.ndarray:
    """Per BLOCK_PX block of ``plane`` (H x W float32, white at ``peak``) that reaches
    neither black nor white, the standard deviation of noise that Immerkaer's kernel reads
    there, texture included; 1-D, in ``plane``'s units."""
    if min(plane.shape[:2]) < BLOCK_PX:
        return np.zeros(0, np.float32)
    return _block_means(plane, BLOCK_PX)[_unsaturated(plane, peak)] * PER_MEAN_RESPONSE


def _luma(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    return cv2.transform(image, np.full((1, image.shape[2]), 1.0 / image.shape[2], np.float32))


def noise_level(image: np.ndarray) -> float:
    """The standard deviation of the noise in a blurry ``image``'s luma (H x W x 3 or
    H x W float32 in [0, 1]), in the same units, read off its flattest tenth of blocks;
    0 where the image is too small or too saturated to tell."""
    found = block_noise(_luma(image))
    if found.size < MIN_BLOCKS:
        return 0.0
    return float(np.percentile(found, FLATTEST_PERCENT))


def texture_free_noise_level(image: np.ndarray) -> float:
    """The standard deviation of the noise in a sharp ``image``'s luma (as
    :func:`noise_level`), fine texture left out: per block, the part of the kernel's
    response that averaging 2 x 2 pixels takes away (white noise's falls by half, so its
    square by 3/4 of the full one), the median over the blocks."""
    luma = _luma(image)
    h, w = (size - size % BLOCK_PX for size in luma.shape[:2])
    if h == 0 or w == 0:
        return 0.0
    luma = np.ascontiguousarray(luma[:h, :w])
    usable = _unsaturated(luma, 1.0)
    if int(usable.sum()) < MIN_BLOCKS:
        return 0.0
    full = _block_means(luma, BLOCK_PX)[usable] * PER_MEAN_RESPONSE
    half = cv2.resize(luma, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    coarse = _block_means(half, BLOCK_PX // 2)[usable] * PER_MEAN_RESPONSE
    taken = np.maximum(full**2 - coarse**2, 0.0) * (4.0 / 3.0)
    return float(np.sqrt(np.median(taken)))


class QuietEnough:
    """Whether a reference from outside the video (``--ref``) is no noisier than a frame
    by more than ``allowance`` (0: the check is off); counts the calls that said no, and
    keeps the noisiest such frame's level, for the messages."""

    def __init__(self, reference: np.ndarray, allowance: float) -> None:
        self.reference, self.allowance = reference, allowance
        self._level: float | None = None  # the reference's, once asked
        self.refused = 0
        self.frame_level = 0.0  # the highest noise of a frame it was refused for

    @property
    def level(self) -> float:
        """The reference's noise (:func:`texture_free_noise_level`), in [0, 1] units."""
        if self._level is None:
            self._level = texture_free_noise_level(_as_float(self.reference))
        return self._level

    def __call__(self, frame: np.ndarray) -> bool:
        # no frame is less noisy than none: a clean reference needs no look at the frame
        if self.allowance <= 0 or self.level <= self.allowance:
            return True
        own = noise_level(_as_float(frame))
        if self.level <= own + self.allowance:
            return True
        self.refused += 1
        self.frame_level = max(self.frame_level, own)
        return False


def _as_float(image: np.ndarray) -> np.ndarray:
    """An integer image scaled to [0, 1], a float one as float32 (taken as in [0, 1])."""
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float32, copy=False)
    return to_float(image)


__all__ = ["QuietEnough", "block_noise", "noise_level", "texture_free_noise_level"]

"""A Gaussian low-pass whose cost does not grow with its width.

OpenCV's ``GaussianBlur`` costs time in proportion to sigma, and the transfer's extents are
given at 720p and scaled with the frame: at 4K its widest low-passes (sigma up to 24 px)
were a large share of a transfer's time (docs/RESULTS.md). A wide low-pass keeps nothing
that a smaller image cannot hold, so above :data:`DIRECT_UP_TO_PX` the image is shrunk by
box averaging, blurred there and brought back by linear interpolation, with the sigma left
over after the variance those two resamplings add.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

DIRECT_UP_TO_PX = 8.0  # every low-pass of a 720p frame runs directly, as before
SMALLEST_LEFT_PX = 4.0  # the Gaussian still blurs by at least this much at the smaller size


def gaussian_low_pass(image: np.ndarray, sigma: float,
                      direct_up_to: float = DIRECT_UP_TO_PX) -> np.ndarray:
    """``cv2.GaussianBlur(image, (0, 0), sigma)`` (float32, H x W or H x W x C), computed
    at a smaller size where sigma is above ``direct_up_to`` and at least
    ``2 * SMALLEST_LEFT_PX``; equal to it within a small fraction of the image's local
    contrast."""
    if sigma <= direct_up_to or sigma < 2 * SMALLEST_LEFT_PX:
        return cv2.GaussianBlur(image, (0, 0), sigma)
    h, w = image.shape[:2]
    # at least 2, since sigma >= 2 * SMALLEST_LEFT_PX
    factor = int(sigma // SMALLEST_LEFT_PX)
    # mirror the border as GaussianBlur does (reflect-101) for three sigmas, to a size the
    # factor divides, so that the frame's edges are low-passed alike
    margin = math.ceil(3 * sigma / factor) * factor
    bottom = margin + (-(h + 2 * margin)) % factor
    right = margin + (-(w + 2 * margin)) % factor
    padded = cv2.copyMakeBorder(image, margin, bottom, margin, right, cv2.BORDER_REFLECT_101)
    ph, pw = padded.shape[:2]
    small = cv2.resize(padded, (pw // factor, ph // factor), interpolation=cv2.INTER_AREA)
    # a box of `factor` pixels adds a variance of factor^2 / 12, linear interpolation back
    # about factor^2 / 6 (in full-size pixels)
    left = math.sqrt(sigma**2 - factor**2 / 4.0) / factor  # factor <= sigma / 4
    small = cv2.GaussianBlur(small, (0, 0), left)
    out = cv2.resize(small, (pw, ph), interpolation=cv2.INTER_LINEAR)
    # a view with contiguous rows, which OpenCV and NumPy take as they are
    return out[margin:margin + h, margin:margin + w].reshape(image.shape)

"""A reference placed onto its blurry frame before the network, where that placement holds.

The network's own search matches 3x3 patches of 1/4-resolution features within +-8 cells;
through blur it picks whole 4 x 4 blocks a few pixels off, so the reference detail it copies
lands misplaced. Warped first by the camera's homography (:func:`.transfer.homography_align`)
the reference sits where it belongs, and each patch takes the one in its own place
(``prealign: homography`` in a model's settings). Where the homography does not hold (a
large subject moving against the camera, a flow misled by strong blur) the warped reference
is worse than none, so it is used only where it agrees with the frame, both low-passed to
the blur's scale, clearly better than the reference as it came: else the network searches
the reference as it came, as it always did.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..image_files import to_float
from .lowpass import gaussian_low_pass
from .transfer import DEFAULT_TRANSFER, _scale, homography_align

# how much closer (dB, low-passed) the warped reference must come to the frame than the
# reference as it came; chosen on the training generators' validation (docs/EXPERIMENTS.md)
MIN_AGREEMENT_GAIN_DB = 0.7
# the low-pass before comparing a blurry frame with a sharp reference (sigma, px at 720p)
AGREEMENT_SIGMA_PX = 4.0


def _low_grey(image: np.ndarray, sigma: float) -> np.ndarray:
    grey = cv2.cvtColor(to_float(image) if image.dtype != np.float32 else image,
                        cv2.COLOR_RGB2GRAY)
    return gaussian_low_pass(grey, sigma)


def agreement_gain_db(frame: np.ndarray, reference: np.ndarray, placed: np.ndarray) -> float:
    """How much closer ``placed`` comes to ``frame`` than ``reference`` does, in dB of the
    mean squared difference of their low-passed grey images (positive: closer)."""
    sigma = AGREEMENT_SIGMA_PX * _scale(frame, DEFAULT_TRANSFER)
    target = _low_grey(frame, sigma)
    before = float(np.mean((_low_grey(reference, sigma) - target) ** 2))
    after = float(np.mean((_low_grey(placed, sigma) - target) ** 2))
    return 10.0 * float(np.log10(max(before, 1e-12) / max(after, 1e-12)))


def placed_reference(frame: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, bool]:
    """``(reference to give the network, whether it is placed)``: warped onto ``frame`` by
    the camera's homography where that brings it at least :data:`MIN_AGREEMENT_GAIN_DB`
    closer, else ``reference`` as it came. Both H x W x 3 RGB of one sample type."""
    placed = homography_align(frame, reference)
    if placed is reference:
        return reference, False
    if agreement_gain_db(frame, reference, placed) < MIN_AGREEMENT_GAIN_DB:
        return reference, False
    return placed, True

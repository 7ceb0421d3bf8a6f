"""The camera's motion between the two sharp frames around a blurry one, interpolated to the
blurry frame's time: where its reference sits relative to it, known from two sharp images.

The reference transfer otherwise fits its homography to the flow on the network's output,
and a blurry output's flow errs by a pixel or more (more where blur hides the texture, and
toward the blur's centroid rather than the frame's middle of exposure). Two sharp neighbours
give the camera's motion far more exactly; for a camera moving smoothly over the three
frames, the blurry frame's pose is that motion's matching fraction (docs/EXPERIMENTS.md).
"""

from __future__ import annotations

import numpy as np

# the interpolation works on homographies in coordinates normalised to [-1, 1], where a
# camera's motion between neighbouring frames is close to the identity, so that the
# logarithm's and exponential's power series converge fast
_SERIES_TERMS = 24
_MAX_MOTION = 0.5  # beyond this (normalised), a move is no small motion to interpolate


def _normaliser(height: int, width: int) -> np.ndarray:
    return np.array([[2.0 / width, 0.0, -1.0], [0.0, 2.0 / height, -1.0], [0.0, 0.0, 1.0]])


def _log(matrix: np.ndarray) -> np.ndarray:
    """Matrix logarithm of a matrix close to the identity (its power series)."""
    step = matrix - np.eye(3)
    term, total = np.eye(3), np.zeros((3, 3))
    for k in range(1, _SERIES_TERMS + 1):
        term = term @ step
        total += (-1) ** (k + 1) * term / k
    return total


def _exp(matrix: np.ndarray) -> np.ndarray:
    """Matrix exponential (its power series; ``matrix`` small)."""
    term, total = np.eye(3), np.eye(3)
    for k in range(1, _SERIES_TERMS + 1):
        term = term @ matrix / k
        total += term
    return total


def homography_power(homography: np.ndarray, fraction: float, height: int,
                     width: int) -> np.ndarray | None:
    """``homography`` (pixel -> pixel in a ``height`` x ``width`` frame) raised to
    ``fraction``: the motion ``fraction`` of the way along it (0: none, 1: all of it, -1:
    its inverse), as a constant-velocity camera would move; None for a motion too large to
    interpolate."""
    scale = _normaliser(height, width)
    normal = scale @ homography @ np.linalg.inv(scale)
    if not np.isfinite(normal).all() or abs(normal[2, 2]) < 1e-9:
        return None
    normal = normal / normal[2, 2]
    if np.abs(normal - np.eye(3)).sum(axis=1).max() > _MAX_MOTION:
        return None
    power = np.linalg.inv(scale) @ _exp(fraction * _log(normal)) @ scale
    return power / power[2, 2]


def homography_distance(a: np.ndarray, b: np.ndarray, height: int, width: int) -> float:
    """The largest distance (pixels) between where ``a`` and ``b`` send the corners and the
    centre of a ``height`` x ``width`` frame."""
    points = np.array([[0, 0, 1], [width - 1, 0, 1], [0, height - 1, 1],
                       [width - 1, height - 1, 1], [(width - 1) / 2, (height - 1) / 2, 1]],
                      np.float64)
    ends = []
    for matrix in (a, b):
        moved = points @ np.asarray(matrix, np.float64).T
        ends.append(moved[:, :2] / moved[:, 2:3])
    return float(np.hypot(*(ends[0] - ends[1]).T).max())


def interpolated_priors(reference_to_second: np.ndarray, fraction: float, height: int,
                        width: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Where a frame ``fraction`` of the way from its reference to its second reference
    (in time) sees both, for a camera moving at constant velocity between them:
    (frame -> reference, frame -> second) homographies, from ``reference_to_second``
    (reference pixel -> second pixel); None where the motion is too large."""
    to_reference = homography_power(reference_to_second, -fraction, height, width)
    to_second = homography_power(reference_to_second, 1.0 - fraction, height, width)
    if to_reference is None or to_second is None:
        return None
    return to_reference, to_second

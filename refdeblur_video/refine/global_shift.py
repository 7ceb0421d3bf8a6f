"""Where a large camera motion puts the flow to start from.

OpenCV's DIS starts its coarse-to-fine search from no motion at its coarsest pyramid level,
and its patches converge only for a motion of a few pixels there: with the transfer's
96-pixel patch, a 720p frame and a reference 40-odd pixels apart (a fast pan, or a reference
a few frames away) no longer align, and nothing of the reference is copied, on exactly the
frames that are most blurred. Phase correlation of the two frames, shrunk to that coarsest
level, finds a shift of any size up to half the frame in a few milliseconds, and DIS
started from it aligns as it does for a small motion (docs/EXPERIMENTS.md).

Only a shift beyond what DIS reaches on its own is used, so that pairs it already aligns
are computed exactly as before, and only a clear correlation peak: an unrelated reference
has none.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# below this many pixels at DIS's coarsest level, DIS alone finds the motion (it fails from
# about 8 to 12 there), so its flow is left as it was
MIN_SHIFT_AT_COARSEST_PX = 6.0
# the phase correlation's peak response under which the two frames share no clear motion
# (unrelated frames: under 0.07; a frame and a blurred, moved copy: 0.3 and more)
MIN_RESPONSE = 0.1


def phase_shift(target: np.ndarray, source: np.ndarray) -> tuple[float, float] | None:
    """The dominant motion ``(dx, dy)`` with ``target(p) ~ source(p + (dx, dy))`` of two
    small 2-D images of one size (any numeric type), in their pixels; None where the
    correlation has no clear peak."""
    size = target.shape[1], target.shape[0]
    window = cv2.createHanningWindow(size, cv2.CV_32F)
    (dx, dy), response = cv2.phaseCorrelate(target.astype(np.float32),
                                            source.astype(np.float32), window)
    return (dx, dy) if response >= MIN_RESPONSE else None


def coarse_size(height: int, width: int, level: int) -> tuple[int, int]:
    """(height, width) of a frame shrunk by ``2**level`` (none below 0), at least 8 x 8."""
    level = max(level, 0)
    return max(8, height >> level), max(8, width >> level)


def shrunk(image: np.ndarray, level: int) -> np.ndarray:
    """A 2-D image shrunk by ``2**level`` (area averaging; at least 8 x 8)."""
    h, w = coarse_size(*image.shape[:2], level)
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


def far_shift(target_small: np.ndarray, source_small: np.ndarray, height: int, width: int,
              coarsest: int) -> tuple[float, float] | None:
    """The frames' global shift in pixels of the ``height`` x ``width`` frame, from their
    greys shrunk to level ``coarsest``, where a flow started from no motion at that level
    misses it; None where it does not, or where there is no clear peak."""
    shift = phase_shift(target_small, source_small)
    if shift is None:
        return None
    small_h, small_w = target_small.shape[:2]
    shift = shift[0] * width / small_w, shift[1] * height / small_h
    beyond = math.hypot(*shift) > MIN_SHIFT_AT_COARSEST_PX * 2**coarsest
    return shift if beyond else None


def initial_flow(target: np.ndarray, source: np.ndarray, coarsest: int) -> np.ndarray | None:
    """A constant (H, W, 2) float32 flow to start DIS from (its ``calc`` takes a flow of
    the frame's size as its start), where ``target`` and ``source`` (2-D) are further apart
    than DIS finds from its ``coarsest`` level (:func:`far_shift`); None otherwise (DIS
    starts from no motion)."""
    shift = far_shift(shrunk(target, coarsest), shrunk(source, coarsest), *target.shape[:2],
                      coarsest)
    if shift is None:
        return None
    flow = np.empty((*target.shape[:2], 2), np.float32)
    flow[..., 0], flow[..., 1] = shift
    return flow

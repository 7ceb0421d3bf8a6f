"""Side-by-side crops for the report: the same window cut from blurry, output, ground truth
and reference, placed where the difference between the versions is largest."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

CROP_SIZE = 192


@dataclass
class Example:
    """One illustrated frame: a title, a caption and labelled crops (RGB uint8)."""

    title: str
    caption: str
    panels: list[tuple[str, np.ndarray]] = field(default_factory=list)


def _error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=2)


def focus_map(
    output: np.ndarray, blurry: np.ndarray | None = None, truth: np.ndarray | None = None
) -> np.ndarray:
    """Per-pixel score of how much the output improved on the blurry frame.

    With ground truth and blurry: error of blurry minus error of output (positive = better);
    with ground truth only: minus the output's error; without ground truth: how much the
    output changed the blurry frame.
    """
    if truth is not None and blurry is not None:
        return _error(blurry, truth) - _error(output, truth)
    if truth is not None:
        return -_error(output, truth)
    if blurry is not None:
        return _error(output, blurry)
    return np.zeros(output.shape[:2], np.float32)


def best_window(score: np.ndarray, size: int, *, largest: bool = True) -> tuple[int, int, int]:
    """Top-left ``(y, x)`` and side of the square window with the largest (or smallest) sum."""
    h, w = score.shape
    side = max(1, min(size, h, w))
    integral = cv2.integral(score.astype(np.float64))
    sums = (
        integral[side:, side:]
        - integral[:-side, side:]
        - integral[side:, :-side]
        + integral[:-side, :-side]
    )
    flat = int(np.argmax(sums) if largest else np.argmin(sums))
    y, x = divmod(flat, sums.shape[1])
    return y, x, side


def make_example(
    title: str,
    caption: str,
    images: dict[str, np.ndarray | None],
    score: np.ndarray,
    *,
    largest: bool = True,
    size: int = CROP_SIZE,
) -> Example:
    """Crop every given image (label -> frame) at the window chosen on ``score``."""
    y, x, side = best_window(score, size, largest=largest)
    height, width = score.shape
    example = Example(title, f"{caption} -- crop {side}x{side} at x={x}, y={y}")
    for label, image in images.items():
        if image is None:
            continue
        if image.shape[:2] != (height, width):  # e.g. a reference of another size
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        example.panels.append((label, np.ascontiguousarray(image[y : y + side, x : x + side])))
    return example

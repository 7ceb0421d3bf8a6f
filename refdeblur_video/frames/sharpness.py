"""Cheap per-frame sharpness score: variance of the Laplacian on a small grey copy.

Why this measure: motion blur removes high spatial frequencies, and the Laplacian is a
high-pass filter, so the variance of its response drops sharply on a blurred frame. It costs
one resize and one 3x3 filter, far less than decoding the frame. The score also grows with the
amount of texture in the scene, so it is only meaningful *relative to nearby frames* of the
same shot; :mod:`refdeblur_video.frames.references` normalises it over a sliding window.

The grey copy is downscaled with area averaging so that its longest side is at most
``max_side`` pixels (default 320): this makes the score nearly independent of the video's
resolution, suppresses sensor noise and compression ringing that would otherwise pass for
detail, and keeps the filtering cheap (a few milliseconds per frame on one CPU core, mostly
the grey conversion). Values are computed on a
0..1 intensity scale, so uint8 and uint16 frames of the same picture score the same.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

__all__ = ["DEFAULT_MAX_SIDE", "SHARPENED_AT_LEAST", "sharpened", "sharpness", "sharpness_scores",
           "grey_thumbnail"]

DEFAULT_MAX_SIDE = 320
# a frame restored must score at least this many times its own score, or it is written as
# it came: the network is not the identity on a frame that is sharp already, which reaches
# it when the planner takes a sharp frame a little under its neighbours for blurry (content
# moving through the window) and under --all-frames, and a result no sharper than its input
# has only been softened. A little over 1, where the validation's training generators put
# it (docs/EXPERIMENTS.md): a frame the network merely repaints scores about the same
SHARPENED_AT_LEAST = 1.1


def grey_thumbnail(image: np.ndarray, max_side: int = DEFAULT_MAX_SIDE) -> np.ndarray:
    """Float32 grey copy in [0, 1] whose longest side is at most ``max_side`` pixels."""
    if image.dtype == np.float64:
        image = image.astype(np.float32)
    if image.ndim == 3 and image.shape[2] == 3:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    elif image.ndim == 2:
        grey = image
    else:
        raise ValueError(f"expected an HxWx3 RGB or HxW grey image, got shape {image.shape}")
    if grey.dtype == np.uint8:
        scale = 1.0 / 255.0
    elif grey.dtype == np.uint16:
        scale = 1.0 / 65535.0
    elif np.issubdtype(grey.dtype, np.floating):
        scale = 1.0
    else:
        raise ValueError(f"unsupported image dtype {grey.dtype}")
    height, width = grey.shape
    longest = max(height, width)
    if max_side > 0 and longest > max_side:
        factor = max_side / longest
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return grey.astype(np.float32) * np.float32(scale)


def sharpness(image: np.ndarray, max_side: int = DEFAULT_MAX_SIDE) -> float:
    """Variance of the Laplacian of the small grey copy (higher = sharper, 0 for flat)."""
    grey = grey_thumbnail(image, max_side)
    lap = cv2.Laplacian(grey, cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REFLECT)
    return float(lap.var(dtype=np.float64))


def sharpness_scores(images: Iterable[np.ndarray], max_side: int = DEFAULT_MAX_SIDE) -> list[float]:
    """:func:`sharpness` of each image, in order."""
    return [sharpness(img, max_side) for img in images]


def sharpened(restored: np.ndarray, score: float, max_side: int = DEFAULT_MAX_SIDE) -> bool:
    """Whether ``restored`` is sharper than the frame it came from, whose :func:`sharpness`
    was ``score``, by ``SHARPENED_AT_LEAST``. A flat frame (score 0: black, a fade) has no
    detail to bring back: whatever the network adds there is not sharpening."""
    return score > 0 and sharpness(restored, max_side) >= SHARPENED_AT_LEAST * score

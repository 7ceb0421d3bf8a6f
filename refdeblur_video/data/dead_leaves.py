"""Dead-leaves images: synthetic photos with dense texture at every scale.

The validation photographs the network alone fails on (distant rock, water and foliage) show
dense, fine natural texture that the real training material lacks (docs/TRAINING.md). The
dead-leaves model (opaque discs of random colour whose radii follow a power law, dropped on
top of each other) has the occlusion edges and the scale-invariant spectrum of natural
images (power falling as about 1/f^2); denoisers trained on it are known to carry over to
real photos. :func:`dead_leaves` renders one such image with the colours of a real photo;
filmed like a photo (``photo_clips``), it shows the training blur on texture the real
photos have too little of. (For this network it did not help on the left-out camera:
docs/TRAINING.md, session 21; the recipe keeps it off by default.)
"""

from __future__ import annotations

import cv2
import numpy as np

from refdeblur_video.errors import UserError

SUPERSAMPLE = 2  # leaves are drawn at twice the size and shrunk, for anti-aliased edges


def leaf_radii(count: int, r_min: float, r_max: float, rng: np.random.Generator) -> np.ndarray:
    """``count`` radii with density proportional to r^-3 on [r_min, r_max] (inverse CDF):
    the distribution that makes the image look the same at every scale."""
    if not 0 < r_min < r_max:
        raise UserError("leaf radii need 0 < r_min < r_max")
    u = rng.uniform(0.0, 1.0, count)
    a, b = r_min ** -2, r_max ** -2
    return (a - u * (a - b)) ** -0.5


def mean_leaf_area(r_min: float, r_max: float, mean_aspect: float = 0.75) -> float:
    """The expected area of one leaf (px^2) under :func:`leaf_radii`."""
    mean_r2 = 2 * np.log(r_max / r_min) / (r_min ** -2 - r_max ** -2)
    return float(np.pi * mean_aspect * mean_r2)


def dead_leaves(
    size: tuple[int, int],
    rng: np.random.Generator,
    colour_source: np.ndarray,
    *,
    r_min: float = 1.5,
    r_max: float | None = None,
    coverage: float = 6.0,
    two_tone: float = 0.25,
    jitter: float = 0.3,
) -> np.ndarray:
    """A (height, width, 3) uint8 dead-leaves image.

    Leaves are ellipses (aspect 0.5-1, any orientation) whose radii (px of the result)
    follow :func:`leaf_radii` from ``r_min`` to ``r_max`` (default a quarter of the shorter
    side). A leaf takes the colour of ``colour_source`` (a real photo, H x W x 3 uint8,
    stretched over the canvas) at its centre, its brightness scaled by up to ``jitter``
    either way, so the image keeps the photo's palette and layout; half of every leaf larger
    than 6 px is
    darkened or lightened by up to ``two_tone`` (a fold or a shadow across it). Leaves fall
    one on top of the other until each pixel has been hit ``coverage`` times on average,
    so next to no background is left.
    """
    height, width = size
    if height < 8 or width < 8:
        raise UserError("a dead-leaves image needs at least 8 x 8 pixels")
    r_max = r_max or min(height, width) / 4
    s = SUPERSAMPLE
    count = int(coverage * height * width / mean_leaf_area(r_min, r_max))
    source = cv2.resize(colour_source[..., :3], (width * s, height * s),
                        interpolation=cv2.INTER_AREA).astype(np.float64)
    canvas = cv2.GaussianBlur(source, (0, 0), 8 * s).clip(0, 255).astype(np.uint8)
    radii = leaf_radii(count, r_min * s, r_max * s, rng)
    centres = np.minimum(rng.uniform(0, 1, (count, 2)) * (width * s, height * s),
                         (width * s - 1, height * s - 1)).astype(int)
    colours = source[centres[:, 1], centres[:, 0]]
    colours = np.clip(colours * rng.uniform(1 - jitter, 1 + jitter, (count, 1)), 0, 255)
    aspects = rng.uniform(0.5, 1.0, count)
    angles = rng.uniform(0, 180, count)
    tones = 1 + rng.uniform(-two_tone, two_tone, count)
    for k in range(count):
        axes = (max(1, round(radii[k])), max(1, round(radii[k] * aspects[k])))
        centre = (int(centres[k, 0]), int(centres[k, 1]))
        cv2.ellipse(canvas, centre, axes, angles[k], 0, 360, colours[k].tolist(), -1)
        if axes[0] > 6 * s and two_tone > 0:
            half = np.clip(colours[k] * tones[k], 0, 255)
            cv2.ellipse(canvas, centre, axes, angles[k], 0, 180, half.tolist(), -1)
    return cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)

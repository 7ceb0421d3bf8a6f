"""A reference photo's exposure and white balance matched to the photo it lends detail to.

A second shot of a scene is rarely exposed alike, and the reference transfer blends the
reference's pixels in where it trusts them, levels and all: a reference 5 % brighter made
the restored photo about 4 levels brighter, a warmer one tinted it. Motion blur moves light
around but keeps each region's mean light, so the gain per channel that takes the
reference's regions onto the blurry photo's in linear light, once the reference is placed
on it by the camera's homography, is the difference of exposure and colour balance between
the two shots (coded values would not do: a blur averaged in light brightens a textured
region's coded mean).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from ..data.shake import from_linear, linear_to_srgb, srgb_to_linear, to_linear
from ..image_files import resize_max_side
from .transfer import _pixel_grid, block_means, fitted_homography, homography_maps

# the size (px across) the gains are measured at
MEASURED_SIDE = 1024
# regions compared (px at that size): large enough that a blur keeps their means
BLOCK_PX = 32
# the fewest regions a gain is trusted from
MIN_REGIONS = 12
# regions near black or white are left out: clipping there is no exposure
DARKEST, BRIGHTEST = 0.04, 0.92
# the share of the photo's regions that must be compared for a gain to be trusted
MIN_SHARE = 0.25
# a sample this close to black or white may be clipped
CLIPPED = 2.0 / 255.0
# a gain closer to 1 than this is left alone: noise, compression, and a blur not made in
# light (an editor's, averaged in coded values) move the regions' light by a percent or two
TOLERANCE = 0.03
# the regions' gains must agree this closely (median absolute deviation, relative)
MAX_SPREAD = 0.03
# a gain beyond these is no exposure difference of one scene
LOWEST_GAIN, HIGHEST_GAIN = 0.5, 2.0


@dataclass(frozen=True)
class _Measured:
    """An image as its gains are measured: in light, and coded, at most
    :data:`MEASURED_SIDE` px across (light shrinks without its means changing)."""

    light: np.ndarray  # whole size, linear light
    small_light: np.ndarray
    small_coded: np.ndarray  # float32 in [0, 1]

    @classmethod
    def of(cls, image: np.ndarray) -> _Measured:
        light = _light(image)
        small = resize_max_side(light, MEASURED_SIDE)
        return cls(light, small, linear_to_srgb(small).astype(np.float32))


def exposure_gains(target: np.ndarray, reference: np.ndarray) -> np.ndarray | None:
    """Per channel (3,), what ``reference``'s light is multiplied by to be exposed as
    ``target``'s (both H x W x 3 RGB of one size, uint8, uint16 or float in [0, 1]); None
    where the reference cannot be placed on the target or too few regions can be compared."""
    return _gains(_Measured.of(target), _Measured.of(reference))


def _gains(mine: _Measured, theirs: _Measured) -> np.ndarray | None:
    unit = mine.small_coded
    fitted = fitted_homography(unit, theirs.small_coded)
    h, w = unit.shape[:2]
    if fitted is None or h < BLOCK_PX or w < BLOCK_PX:
        return None
    maps = homography_maps(fitted, _pixel_grid(h, w))
    if maps is None:
        return None

    def placed(image: np.ndarray) -> np.ndarray:
        return cv2.remap(image, *maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=(0.0, 0.0, 0.0))

    def means(image: np.ndarray) -> np.ndarray:  # one row per region
        return block_means(image, BLOCK_PX).reshape((h // BLOCK_PX) * (w // BLOCK_PX), -1)

    coded_mine = means(unit)
    their_unit = placed(theirs.small_coded)
    coded_theirs = means(their_unit)
    # a region is compared where the placed reference covers every pixel (no border blended
    # in) and no sample of either is clipped (a brighter shot clips highlights the other
    # kept: no gain explains that)
    covered = placed(np.ones_like(unit))[..., 0] > 1.0 - 1e-4
    whole = (covered & ~_clipped(unit) & ~_clipped(their_unit)).astype(np.float32)
    usable = means(whole)[:, 0] > 1.0 - 1e-4
    usable &= (np.minimum(coded_mine, coded_theirs).min(axis=1) > DARKEST) & (
        np.maximum(coded_mine, coded_theirs).max(axis=1) < BRIGHTEST)
    if usable.sum() < MIN_REGIONS or usable.mean() < MIN_SHARE:
        return None
    ratios = means(mine.small_light)[usable] / means(placed(theirs.small_light))[usable]
    gains = np.median(ratios, axis=0)
    # one exposure moves every region alike; regions that disagree are another scene
    spread = np.median(np.abs(ratios - gains), axis=0) / gains
    if spread.max() > MAX_SPREAD or not np.all((gains > LOWEST_GAIN) & (gains < HIGHEST_GAIN)):
        return None
    return gains.astype(np.float32)


def matched_exposure(target: np.ndarray, reference: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """``reference`` exposed as ``target`` (its type kept), and the gains applied; the
    reference itself and None where they are exposed alike or no gain can be trusted."""
    return exposure_matcher(reference)(target)


def exposure_matcher(reference: np.ndarray
                     ) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]:
    """:func:`matched_exposure` for one ``reference`` and many targets (a video's frames):
    the reference is measured once."""
    theirs = _Measured.of(reference)

    def matched(target: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        gains = _gains(_Measured.of(target), theirs)
        if gains is None or np.abs(gains - 1.0).max() <= TOLERANCE:
            return reference, None
        light = np.clip(theirs.light * gains, 0.0, 1.0)
        if reference.dtype == np.float32:
            return linear_to_srgb(light).astype(np.float32), gains
        return from_linear(light, reference.dtype), gains

    return matched


def _light(image: np.ndarray) -> np.ndarray:
    """``image`` in linear light, float32 (a float one is taken as coded values in [0, 1])."""
    if image.dtype == np.float32:
        return srgb_to_linear(image).astype(np.float32)
    return to_linear(image)


def _clipped(image: np.ndarray) -> np.ndarray:
    """Where any channel of ``image`` (float in [0, 1]) sits at black or white."""
    return ((image <= CLIPPED) | (image >= 1.0 - CLIPPED)).any(axis=2)

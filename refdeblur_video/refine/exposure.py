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

import cv2
import numpy as np

from ..data.shake import linear_to_srgb, srgb_to_linear
from .transfer import fitted_homography, homography_maps

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


def exposure_gains(target: np.ndarray, reference: np.ndarray) -> np.ndarray | None:
    """Per channel (3,), what ``reference``'s light is multiplied by to be exposed as
    ``target``'s (both H x W x 3 RGB of one size, uint8, uint16 or float in [0, 1]); None
    where the reference cannot be placed on the target or too few regions can be compared.
    Measured at most :data:`MEASURED_SIDE` px across: the gains are the whole photo's, and
    light shrinks without its means changing."""
    # blur and exposure act on light, not on coded values: compared in linear light
    lit_target, lit_reference = (_shrunk(srgb_to_linear(_unit(image)))
                                 for image in (target, reference))
    unit, their_unit = linear_to_srgb(lit_target), linear_to_srgb(lit_reference)
    fitted = fitted_homography(unit, their_unit)
    if fitted is None:
        return None
    h, w = unit.shape[:2]
    rows, cols = h // BLOCK_PX, w // BLOCK_PX
    if not rows or not cols:
        return None
    grid = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    maps = homography_maps(fitted, (grid[0], grid[1]))
    if maps is None:
        return None

    def placed(image: np.ndarray, outside: float = 0.0) -> np.ndarray:
        return cv2.remap(image, *maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=(outside,) * 3)

    def means(image: np.ndarray) -> np.ndarray:
        cut = image[:rows * BLOCK_PX, :cols * BLOCK_PX]
        return cv2.resize(cut, (cols, rows), interpolation=cv2.INTER_AREA).reshape(-1, 3)

    theirs_unit = placed(their_unit)
    mine, theirs = means(unit), means(theirs_unit)
    lit_mine, lit_theirs = means(lit_target), means(placed(lit_reference))
    # a region is compared where the placed reference covers every pixel (no border blended
    # in) and no sample of either is clipped (a brighter shot clips highlights the other
    # kept: no gain explains that)
    covered = placed(np.ones_like(unit))[..., 0] > 1.0 - 1e-4
    whole = covered & ~_clipped(unit) & ~_clipped(theirs_unit)
    usable = (means(np.repeat(whole[..., None], 3, axis=2).astype(np.float32))[:, 0]
              > 1.0 - 1e-4)
    usable &= (np.minimum(mine, theirs).min(axis=1) > DARKEST) & (
        np.maximum(mine, theirs).max(axis=1) < BRIGHTEST)
    if usable.sum() < MIN_REGIONS or usable.mean() < MIN_SHARE:
        return None
    ratios = lit_mine[usable] / lit_theirs[usable]
    gains = np.median(ratios, axis=0)
    # one exposure moves every region alike; regions that disagree are another scene
    spread = np.median(np.abs(ratios - gains), axis=0) / gains
    if spread.max() > MAX_SPREAD or not np.all((gains > LOWEST_GAIN) & (gains < HIGHEST_GAIN)):
        return None
    return gains.astype(np.float32)


def _shrunk(light: np.ndarray) -> np.ndarray:
    """``light`` at most :data:`MEASURED_SIDE` px across (area-averaged: means kept)."""
    h, w = light.shape[:2]
    scale = MEASURED_SIDE / max(h, w)
    if scale >= 1:
        return light
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(light, size, interpolation=cv2.INTER_AREA)


def matched_exposure(target: np.ndarray, reference: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """``reference`` exposed as ``target`` (its type kept), and the gains applied; the
    reference itself and None where they are exposed alike or no gain can be trusted."""
    gains = exposure_gains(target, reference)
    if gains is None or np.abs(gains - 1.0).max() <= TOLERANCE:
        return reference, None
    exposed = linear_to_srgb(np.clip(srgb_to_linear(_unit(reference)) * gains, 0.0, 1.0))
    if reference.dtype == np.float32:
        return exposed.astype(np.float32), gains
    peak = np.iinfo(reference.dtype).max
    return np.clip(np.round(exposed * peak), 0, peak).astype(reference.dtype), gains


def _clipped(image: np.ndarray) -> np.ndarray:
    """Where any channel of ``image`` (float in [0, 1]) sits at black or white."""
    return ((image <= CLIPPED) | (image >= 1.0 - CLIPPED)).any(axis=2)


def _unit(image: np.ndarray) -> np.ndarray:
    """``image`` as float32 in [0, 1]."""
    if image.dtype == np.float32:
        return image
    return image.astype(np.float32) / float(np.iinfo(image.dtype).max)

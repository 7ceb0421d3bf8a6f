"""The wide Gaussian low-pass computed at a smaller size equals OpenCV's direct one."""

import cv2
import numpy as np
import pytest

from refdeblur_video.refine.lowpass import DIRECT_UP_TO_PX, gaussian_low_pass


def _scene(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Fine noise over hard-edged stripes: detail at every scale, edges up to the border."""
    rng = np.random.default_rng(seed)
    rows, cols = np.indices(shape[:2])
    stripes = ((rows + 2 * cols) % 150 < 60).astype(np.float32)
    if len(shape) == 3:
        stripes = np.repeat(stripes[..., None], shape[2], axis=2)
    return (stripes + 0.3 * rng.random(shape, dtype=np.float32)).astype(np.float32)


@pytest.mark.parametrize("shape", [(301, 457), (240, 400, 3), (97, 1203)])
@pytest.mark.parametrize("sigma", [9.0, 12.0, 24.0, 40.0])
def test_a_wide_low_pass_matches_opencvs_everywhere_including_the_borders(shape, sigma):
    image = _scene(shape)
    direct = cv2.GaussianBlur(image, (0, 0), sigma)
    fast = gaussian_low_pass(image, sigma)
    assert fast.shape == image.shape and fast.dtype == np.float32
    span = float(image.max() - image.min())
    assert np.abs(fast - direct).max() < 0.005 * span
    # and it is a low-pass of this image, not of a neighbour's: a narrower one differs more
    narrower = cv2.GaussianBlur(image, (0, 0), sigma * 0.8)
    assert np.abs(narrower - direct).max() > 2 * np.abs(fast - direct).max()


def test_a_narrow_low_pass_is_opencvs_exactly():
    image = _scene((120, 160, 3))
    for sigma in (1.5, 4.0, DIRECT_UP_TO_PX):
        assert np.array_equal(gaussian_low_pass(image, sigma),
                              cv2.GaussianBlur(image, (0, 0), sigma))

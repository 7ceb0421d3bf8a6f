"""Dead-leaves training photos (refdeblur_video/data/dead_leaves.py)."""

from __future__ import annotations

import numpy as np
import pytest

from refdeblur_video.data.dead_leaves import dead_leaves, leaf_radii, mean_leaf_area
from refdeblur_video.errors import UserError


def test_leaf_radii_follow_the_inverse_cube_law():
    rng = np.random.default_rng(0)
    r_min, r_max = 2.0, 200.0
    radii = leaf_radii(200_000, r_min, r_max, rng)
    assert radii.min() >= r_min and radii.max() <= r_max
    # the CDF of a density proportional to r^-3, integrated numerically on a fine grid
    grid = np.linspace(r_min, r_max, 400_001)
    density = grid ** -3.0
    cdf = np.cumsum(density) / density.sum()
    for r in (3.0, 5.0, 20.0, 80.0):
        expected = cdf[np.searchsorted(grid, r)]
        assert np.mean(radii <= r) == pytest.approx(expected, abs=0.005)


def test_mean_leaf_area_matches_sampled_leaves():
    rng = np.random.default_rng(1)
    radii = leaf_radii(400_000, 1.5, 300.0, rng)
    aspects = rng.uniform(0.5, 1.0, radii.size)
    sampled = np.mean(np.pi * radii ** 2 * aspects)
    assert mean_leaf_area(1.5, 300.0) == pytest.approx(sampled, rel=0.03)


def test_a_flat_source_without_jitter_gives_a_flat_image():
    source = np.full((40, 60, 3), (90, 140, 200), np.uint8)
    image = dead_leaves((64, 96), np.random.default_rng(2), source, jitter=0.0, two_tone=0.0)
    assert image.shape == (64, 96, 3) and image.dtype == np.uint8
    assert np.abs(image.astype(int) - (90, 140, 200)).max() <= 1


def test_leaves_keep_the_colours_where_the_source_has_them():
    source = np.zeros((50, 100, 3), np.uint8)
    source[:, :50] = (220, 30, 30)
    source[:, 50:] = (30, 30, 220)
    image = dead_leaves((120, 240), np.random.default_rng(3), source, r_max=10).astype(float)
    left, right = image[:, :90], image[:, 150:]
    assert left[..., 0].mean() > 2 * left[..., 2].mean()
    assert right[..., 2].mean() > 2 * right[..., 0].mean()


def test_same_seed_same_image_and_texture_at_every_scale():
    source = np.full((8, 8, 3), 128, np.uint8)
    one = dead_leaves((256, 256), np.random.default_rng(4), source, two_tone=0.0)
    two = dead_leaves((256, 256), np.random.default_rng(4), source, two_tone=0.0)
    np.testing.assert_array_equal(one, two)
    # leaves of every size: the radially averaged power spectrum falls as a power law of
    # frequency, with an exponent near the -2 of natural images (white noise: 0; one
    # smooth blob: far steeper)
    gray = one.astype(float).mean(axis=2)
    power = np.abs(np.fft.fftshift(np.fft.fft2(gray - gray.mean()))) ** 2
    yy, xx = np.indices(power.shape) - 128
    radius = np.hypot(yy, xx).astype(int)
    bands = np.arange(4, 64)
    profile = np.array([power[radius == b].mean() for b in bands])
    slope = np.polyfit(np.log(bands), np.log(profile), 1)[0]
    assert -3.0 < slope < -1.3


def test_bad_sizes_are_refused():
    source = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(UserError):
        dead_leaves((4, 100), np.random.default_rng(0), source)
    with pytest.raises(UserError):
        leaf_radii(10, 5.0, 2.0, np.random.default_rng(0))

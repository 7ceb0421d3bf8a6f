"""PSNR/SSIM against scikit-image (the independent reference), edge cases, torch path."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from skimage import data
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from refdeblur_video.errors import UserError
from refdeblur_video.evaluate.metrics import psnr, psnr_torch, rgb_to_y, ssim, ssim_torch

SKIMAGE_SSIM = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)


def reference_psnr(a, b):
    return peak_signal_noise_ratio(a, b, data_range=255)


def reference_ssim(a, b):
    return structural_similarity(a, b, channel_axis=-1, **SKIMAGE_SSIM)


def random_pair(shape, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    noise = rng.integers(-40, 41, shape)
    return a, np.clip(a.astype(int) + noise, 0, 255).astype(np.uint8)


def degraded_astronaut(seed=0, size=256):
    sharp = cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(seed)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 2.0).astype(np.float64)
    noisy = np.clip(np.rint(blurred + rng.normal(0, 4, sharp.shape)), 0, 255).astype(np.uint8)
    return sharp, noisy


def to_batch(*images):
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


@pytest.mark.parametrize("shape, seed", [((11, 11, 3), 0), ((32, 47, 3), 1), ((64, 40, 3), 2)])
def test_random_images_match_skimage(shape, seed):
    a, b = random_pair(shape, seed)
    assert psnr(a, b) == pytest.approx(reference_psnr(a, b), abs=1e-6)
    assert ssim(a, b) == pytest.approx(reference_ssim(a, b), abs=1e-4)


def test_photo_with_blur_and_noise_matches_skimage():
    sharp, degraded = degraded_astronaut()
    assert psnr(sharp, degraded) == pytest.approx(reference_psnr(sharp, degraded), abs=1e-6)
    assert ssim(sharp, degraded) == pytest.approx(reference_ssim(sharp, degraded), abs=1e-4)
    assert 15 < psnr(sharp, degraded) < 40 and 0.3 < ssim(sharp, degraded) < 1


def test_grey_images_match_skimage():
    a, b = random_pair((30, 30), 3)
    assert psnr(a, b) == pytest.approx(reference_psnr(a, b), abs=1e-6)
    expected = structural_similarity(a, b, **SKIMAGE_SSIM)
    assert ssim(a, b) == pytest.approx(expected, abs=1e-4)


def test_identical_images_give_inf_psnr_and_ssim_one():
    image, _ = degraded_astronaut(size=64)
    assert psnr(image, image.copy()) == math.inf
    assert ssim(image, image.copy()) == pytest.approx(1.0, abs=1e-12)
    assert psnr(image, image, y_channel=True) == math.inf


def test_y_channel_matches_skimage_rgb2ycbcr():
    sharp, degraded = degraded_astronaut(seed=1, size=128)
    y_sharp, y_degraded = rgb2ycbcr(sharp)[..., 0], rgb2ycbcr(degraded)[..., 0]
    np.testing.assert_allclose(rgb_to_y(sharp), y_sharp, atol=1e-9)
    assert rgb_to_y(np.full((1, 1, 3), 255, np.uint8))[0, 0] == pytest.approx(235.0)
    assert rgb_to_y(np.zeros((1, 1, 3), np.uint8))[0, 0] == pytest.approx(16.0)
    assert psnr(sharp, degraded, y_channel=True) == pytest.approx(
        peak_signal_noise_ratio(y_sharp, y_degraded, data_range=255), abs=1e-6
    )
    assert ssim(sharp, degraded, y_channel=True) == pytest.approx(
        structural_similarity(y_sharp, y_degraded, **SKIMAGE_SSIM), abs=1e-4
    )


@pytest.mark.parametrize("metric", [psnr, ssim])
def test_mismatched_inputs_raise_user_error(metric):
    a = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(UserError, match="sizes differ"):
        metric(a, np.zeros((20, 21, 3), np.uint8))
    with pytest.raises(UserError, match="types differ"):
        metric(a, a.astype(np.uint16))
    with pytest.raises(UserError, match="8-bit"):
        metric(a.astype(np.uint16), a.astype(np.uint16))


def test_ssim_needs_a_full_window():
    a = np.zeros((10, 40, 3), np.uint8)
    with pytest.raises(UserError, match="11x11"):
        ssim(a, a)


def test_torch_path_equals_numpy():
    sharp, degraded = degraded_astronaut(seed=2, size=96)
    a, b = random_pair((96, 96, 3), 4)
    x, y = to_batch(sharp, a, sharp), to_batch(degraded, b, sharp)
    for y_channel in (False, True):
        expected_psnr = [psnr(sharp, degraded, y_channel=y_channel),
                         psnr(a, b, y_channel=y_channel), math.inf]
        expected_ssim = [ssim(sharp, degraded, y_channel=y_channel),
                         ssim(a, b, y_channel=y_channel), 1.0]
        got_psnr = psnr_torch(x, y, y_channel=y_channel)
        got_ssim = ssim_torch(x, y, y_channel=y_channel)
        assert got_psnr.shape == (3,) and got_ssim.shape == (3,)
        assert got_psnr.tolist() == pytest.approx(expected_psnr, abs=1e-4)
        assert got_ssim.tolist() == pytest.approx(expected_ssim, abs=1e-4)


def test_torch_float_inputs_are_quantised_like_saved_frames():
    sharp, degraded = degraded_astronaut(seed=3, size=48)
    x, y = to_batch(sharp).float() / 255, to_batch(degraded).float() / 255
    assert psnr_torch(x, y).item() == pytest.approx(psnr(sharp, degraded), abs=1e-4)
    assert ssim_torch(x[0], y[0]).item() == pytest.approx(ssim(sharp, degraded), abs=1e-4)
    fast = ssim_torch(to_batch(sharp), to_batch(degraded), dtype=torch.float32)
    assert fast.item() == pytest.approx(ssim(sharp, degraded), abs=1e-4)


def test_torch_mismatch_raises_user_error():
    with pytest.raises(UserError, match="sizes differ"):
        psnr_torch(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 17))

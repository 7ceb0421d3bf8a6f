"""Losses against values computed by hand."""

import math

import torch

from refdeblur_video.model.discriminator import PatchDiscriminator
from refdeblur_video.model.losses import (
    LossWeights,
    content_loss,
    discriminator_loss,
    frequency_loss,
    generator_adversarial_loss,
    reconstruction_loss,
)


def test_content_loss_is_mean_absolute_error():
    a = torch.tensor([[[[0.0, 1.0], [0.5, 0.25]]]])
    b = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    assert math.isclose(content_loss(a, b).item(), (1 + 0 + 0.5 + 0.25) / 4)


def test_frequency_loss_by_hand_on_a_constant_difference():
    # a constant difference d on an N-pixel image has one DC coefficient N*d (real), rest 0;
    # mean over the N complex values split into 2N reals: |N d| / (2N) = d / 2
    a = torch.zeros(1, 1, 4, 4)
    b = torch.full((1, 1, 4, 4), 0.3)
    assert math.isclose(frequency_loss(a, b).item(), 0.15, rel_tol=1e-6)


def test_frequency_loss_of_single_impulse():
    # an impulse of height h has a flat spectrum: |F| = h at every frequency, real part
    # h*cos, imaginary -h*sin; check against numpy's FFT
    a = torch.zeros(1, 1, 3, 5)
    a[0, 0, 1, 2] = 2.0
    import numpy as np

    spectrum = np.fft.fft2(a[0, 0].numpy())
    expected = (np.abs(spectrum.real).sum() + np.abs(spectrum.imag).sum()) / (2 * spectrum.size)
    assert math.isclose(frequency_loss(a, torch.zeros_like(a)).item(), expected, rel_tol=1e-5)


def test_reconstruction_loss_weights():
    a, b = torch.rand(2, 1, 3, 8, 8).unbind(0)
    weights = LossWeights(1.0, 0.1, 5e-3)
    expected = content_loss(a, b) + 0.1 * frequency_loss(a, b)
    assert torch.allclose(reconstruction_loss(a, b, weights), expected)


def test_relativistic_losses_by_hand():
    real = torch.tensor([2.0, 0.0])  # critic outputs
    fake = torch.tensor([1.0, -1.0])
    # D(real, fake) = sigmoid(C(real) - mean C(fake)) = sigmoid([2, 0] - 0)
    # D(fake, real) = sigmoid(C(fake) - mean C(real)) = sigmoid([1, -1] - 1)
    def sig(x):
        return 1 / (1 + math.exp(-x))

    d_rf = [sig(2.0), sig(0.0)]
    d_fr = [sig(0.0), sig(-2.0)]
    expected_d = -sum(math.log(v) for v in d_rf) / 2 - sum(math.log(1 - v) for v in d_fr) / 2
    expected_g = -sum(math.log(1 - v) for v in d_rf) / 2 - sum(math.log(v) for v in d_fr) / 2
    assert math.isclose(discriminator_loss(real, fake).item(), expected_d, rel_tol=1e-6)
    assert math.isclose(generator_adversarial_loss(real, fake).item(), expected_g, rel_tol=1e-6)


def test_discriminator_outputs_patch_map():
    out = PatchDiscriminator(width=8, layers=3)(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 1, 8, 8)

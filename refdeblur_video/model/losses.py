"""Training losses (paper section 3.3): L1 content, FFT frequency, relativistic GAN."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def content_loss(output: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error (eq. 8)."""
    return F.l1_loss(output, target)


def frequency_loss(output: Tensor, target: Tensor) -> Tensor:
    """L1 between the 2-D FFT spectra, real and imaginary parts (eq. 9, as in MIMO-UNet)."""
    spec_out = torch.view_as_real(torch.fft.fft2(output.float()))
    spec_tgt = torch.view_as_real(torch.fft.fft2(target.float()))
    return F.l1_loss(spec_out, spec_tgt)


def _relativistic_loss(critic_real: Tensor, critic_fake: Tensor, real_wins: bool) -> Tensor:
    """BCE of D(real, fake) = sigmoid(C(real) - E[C(fake)]) and D(fake, real) against the
    labels of the side that should win (real for the discriminator, fake for the generator)."""
    real = critic_real - critic_fake.mean()
    fake = critic_fake - critic_real.mean()
    target_real = torch.full_like(real, 1.0 if real_wins else 0.0)
    target_fake = torch.full_like(fake, 0.0 if real_wins else 1.0)
    return F.binary_cross_entropy_with_logits(
        real, target_real
    ) + F.binary_cross_entropy_with_logits(fake, target_fake)


def discriminator_loss(critic_real: Tensor, critic_fake: Tensor) -> Tensor:
    """Eq. 10: -E[log D(real, fake)] - E[log(1 - D(fake, real))]."""
    return _relativistic_loss(critic_real, critic_fake, real_wins=True)


def generator_adversarial_loss(critic_real: Tensor, critic_fake: Tensor) -> Tensor:
    """Eq. 11: -E[log(1 - D(real, fake))] - E[log D(fake, real)]."""
    return _relativistic_loss(critic_real, critic_fake, real_wins=False)


class LossWeights:
    """Weights of eq. 7; the paper uses 1, 0.1 and 5e-3."""

    def __init__(self, content: float = 1.0, frequency: float = 0.1, adversarial: float = 5e-3):
        self.content = content
        self.frequency = frequency
        self.adversarial = adversarial


def reconstruction_loss(output: Tensor, target: Tensor, weights: LossWeights) -> Tensor:
    """The non-adversarial part of eq. 7."""
    return weights.content * content_loss(output, target) + weights.frequency * frequency_loss(
        output, target
    )

"""Spatial Feature Fusion Module (paper section 3.2, eq. 6)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .blocks import conv3x3


class SFFM(nn.Module):
    """Modulate encoder features with spatial information from the downsampled blurry input.

    Four 3x3 convs extract features from the downsampled image; they are concatenated with
    that image and a 1x1 conv gives ``gamma``; another conv on ``gamma`` gives ``beta``;
    the output is ``gamma * F + beta``.
    """

    def __init__(self, channels: int, hidden: int, image_channels: int = 3) -> None:
        super().__init__()
        self.extract = nn.Sequential(
            conv3x3(image_channels, hidden),
            nn.ReLU(inplace=True),
            conv3x3(hidden, hidden),
            nn.ReLU(inplace=True),
            conv3x3(hidden, hidden),
            nn.ReLU(inplace=True),
            conv3x3(hidden, channels),
            nn.ReLU(inplace=True),
        )
        self.to_gamma = nn.Conv2d(channels + image_channels, channels, 1)
        self.to_beta = conv3x3(channels, channels)

    def forward(self, features: Tensor, image: Tensor) -> Tensor:
        gamma = self.to_gamma(torch.cat([self.extract(image), image], dim=1))
        beta = self.to_beta(gamma)
        return gamma * features + beta

"""Reference Extraction and Aggregation Module (paper section 3.1, eqs. 4-5)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import conv3x3
from .matching import MatchResult, transfer


class REAM(nn.Module):
    """Copy the best-matching reference features and fuse them, weighted by confidence.

    ``F_fused = conv([F_blur, B_F]) * conv(C) + F_blur`` (eq. 5), where ``B_F`` are the
    reference features moved by the index map (eq. 4) and ``C`` the confidence map.
    """

    def __init__(self, channels: int, ref_channels: int, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.fuse = conv3x3(channels + ref_channels, channels)
        self.confidence_weight = conv3x3(1, channels)

    def forward(self, blur_features: Tensor, ref_features: Tensor, matched: MatchResult) -> Tensor:
        moved = transfer(ref_features, matched.index, self.scale)
        confidence = matched.confidence.to(blur_features.dtype)
        if self.scale > 1:
            confidence = F.interpolate(confidence, scale_factor=self.scale, mode="nearest")
        fused = self.fuse(torch.cat([blur_features, moved.to(blur_features.dtype)], dim=1))
        return fused * self.confidence_weight(confidence) + blur_features

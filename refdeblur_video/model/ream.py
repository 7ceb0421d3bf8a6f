"""Reference Extraction and Aggregation Module (paper section 3.1, eqs. 4-5)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import conv3x3
from .matching import MatchResult, transfer

# The fusion gate starts almost open (sigmoid(3) = 0.95), so a model warm-started from
# weights trained without it begins where those weights left off.
GATE_INIT_BIAS = 3.0


def _layout_like(single: Tensor, features: Tensor) -> Tensor:
    """``single`` (B, 1, H, W) laid out channels-last when ``features`` are, so that a
    concatenation of the two stays channels-last (a one-channel tensor's layout is ambiguous
    and would turn the concatenation, and the convolution after it, into slow NCHW)."""
    if features.is_contiguous() or not features.is_contiguous(memory_format=torch.channels_last):
        return single
    return torch.empty_like(single, memory_format=torch.channels_last).copy_(single)


class REAM(nn.Module):
    """Copy the best-matching reference features and fuse them, weighted by confidence.

    ``F_fused = conv([F_blur, B_F]) * conv(C) + F_blur`` (eq. 5), where ``B_F`` are the
    reference features moved by the index map (eq. 4) and ``C`` the confidence map.

    With ``gate=True`` (our addition, not in the paper) the fused term is also multiplied by
    a per-pixel ``sigmoid(conv([F_blur, B_F, C]))``: a learned switch that can shut the
    reference out where the moved features do not agree with the blurry ones (an unrelated
    or badly matched reference), which the confidence alone cannot do reliably.
    """

    def __init__(self, channels: int, ref_channels: int, scale: int, gate: bool = False) -> None:
        super().__init__()
        self.scale = scale
        self.fuse = conv3x3(channels + ref_channels, channels)
        self.confidence_weight = conv3x3(1, channels)
        self.gate = conv3x3(channels + ref_channels + 1, 1) if gate else None
        if self.gate is not None:
            nn.init.zeros_(self.gate.weight)
            nn.init.constant_(self.gate.bias, GATE_INIT_BIAS)

    def forward(self, blur_features: Tensor, ref_features: Tensor, matched: MatchResult) -> Tensor:
        moved = transfer(ref_features, matched.index, self.scale).to(blur_features.dtype)
        confidence = matched.confidence.to(blur_features.dtype)
        if self.scale > 1:
            confidence = F.interpolate(confidence, scale_factor=self.scale, mode="nearest")
        confidence = _layout_like(confidence, blur_features)
        both = torch.cat([blur_features, moved], dim=1)
        fused = self.fuse(both) * self.confidence_weight(confidence)
        if self.gate is not None:
            fused = fused * torch.sigmoid(self.gate(torch.cat([both, confidence], dim=1)))
        return fused + blur_features

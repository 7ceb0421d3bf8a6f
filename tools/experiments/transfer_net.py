"""A learned correction of the reference transfer's confidence: an experiment, not shipped.

The hand-made confidence of ``refdeblur_video/refine/transfer.py`` multiplies three cues
(agreement, flow consistency, sharpness). A small CNN sees those cues, the network's output
and the aligned reference, and adds a correction to the confidence's logit:
``alpha = sigmoid(logit(c) + cnn(...))``. Its last layer starts at zero, so an untrained
refiner gives exactly the hand-made confidence. The output stays a per-pixel blend of the
network's output and the aligned reference: the refiner can only decide how much to borrow,
never invent content. It runs at half resolution (the confidence is smooth) with dilated
convolutions (receptive field about 60 pixels of the full frame).

Trained by ``train_transfer.py`` (beside this file) on training-clip triplets, it was no
better than the hand-made confidence on held-out frames, so ``refdeblur-video`` uses the
hand-made one; the figures are in docs/EXPERIMENTS.md. :func:`refined_transfer` applies a
refiner the way the shipped transfer applies its confidence. Tests:
``python -m pytest tools/experiments``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from refdeblur_video.errors import UserError
from refdeblur_video.model.weights import read_safetensors, write_safetensors
from refdeblur_video.refine.transfer import (
    DEFAULT_TRANSFER,
    TransferCues,
    TransferSettings,
    blend_weight,
    transfer_cues,
)

REFINER_FORMAT = "refdeblur-video/confidence-refiner/1"
CUES = 4  # agreement, consistency, sharpness, inside (cue_stack)
EPS = 1e-4


class ConfidenceRefiner(nn.Module):
    """``forward(restored, aligned, cues, prior) -> alpha`` (B, 1, H, W) in (0, 1).

    ``restored`` and ``aligned`` are (B, 3, H, W) in [0, 1], ``cues`` (B, 4, H, W) and the
    hand-made confidence ``prior`` (B, 1, H, W).
    """

    def __init__(self, width: int = 16, dilations: tuple[int, ...] = (1, 2, 4, 8),
                 in_channels: int = 3 + 3 + 3 + CUES) -> None:
        super().__init__()
        self.width = width
        self.dilations = tuple(dilations)
        layers: list[nn.Module] = []
        channels = in_channels
        for d in self.dilations:
            layers += [nn.Conv2d(channels, width, 3, padding=d, dilation=d), nn.ReLU(inplace=True)]
            channels = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, 1, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def config(self) -> dict:
        return {"width": self.width, "dilations": list(self.dilations)}

    def forward(self, restored: Tensor, aligned: Tensor, cues: Tensor, prior: Tensor) -> Tensor:
        features = torch.cat([restored, aligned, aligned - restored, cues], dim=1)
        half = F.avg_pool2d(features, 2, ceil_mode=True)
        delta = self.head(self.body(half))
        delta = F.interpolate(delta, size=restored.shape[-2:], mode="bilinear",
                              align_corners=False)
        return torch.sigmoid(torch.logit(prior.clamp(EPS, 1 - EPS)) + delta)


def save_refiner(path: str | Path, refiner: ConfidenceRefiner, extra: dict | None = None) -> None:
    """Write the refiner's weights and config to a safetensors file (atomically)."""
    metadata = {"format": REFINER_FORMAT, "config": json.dumps(refiner.config())}
    metadata.update({k: str(v) for k, v in (extra or {}).items()})
    write_safetensors(path, refiner.state_dict(), metadata)


def load_refiner(path: str | Path) -> ConfidenceRefiner:
    """A refiner from a file written by :func:`save_refiner` (never unpickles)."""
    state, metadata = read_safetensors(path, what="confidence refiner")
    if metadata.get("format") != REFINER_FORMAT:
        raise UserError(f"{path} is not a confidence refiner (format {metadata.get('format')})")
    config = json.loads(metadata["config"])
    refiner = ConfidenceRefiner(config["width"], tuple(config["dilations"]))
    refiner.load_state_dict(state)
    return refiner.eval()


def cue_stack(cues: TransferCues) -> np.ndarray:
    """The cues as an H x W x 4 float32 array (the refiner's input order)."""
    return np.stack([cues.agreement, cues.consistency, cues.sharpness, cues.inside], axis=2)


def refined_confidence(refiner: ConfidenceRefiner, restored: np.ndarray,
                       cues: TransferCues) -> np.ndarray:
    """The confidence corrected by ``refiner`` (H, W)."""

    def tensor(x: np.ndarray) -> torch.Tensor:
        x = x if x.ndim == 3 else x[..., None]
        return torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].float()

    with torch.inference_mode():
        alpha = refiner(tensor(restored), tensor(cues.aligned), tensor(cue_stack(cues)),
                        tensor(cues.confidence))
    return alpha[0, 0].numpy() * cues.inside


def refined_transfer(restored: np.ndarray, reference: np.ndarray, refiner: ConfidenceRefiner,
                     settings: TransferSettings = DEFAULT_TRANSFER) -> np.ndarray:
    """``transfer_reference`` with the refined confidence, smoothed like the hand-made one
    (``blend_weight``)."""
    cues = transfer_cues(restored, reference, settings)
    confidence = blend_weight(refined_confidence(refiner, restored, cues), cues, settings)
    fused = restored + confidence[..., None] * (cues.aligned - restored)
    return np.clip(fused, 0.0, 1.0)


__all__ = ["ConfidenceRefiner", "cue_stack", "load_refiner", "refined_confidence",
           "refined_transfer", "save_refiner"]

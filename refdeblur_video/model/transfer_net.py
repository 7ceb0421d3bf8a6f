"""A learned correction of the reference transfer's confidence (see :mod:`.transfer`).

The hand-made confidence multiplies three cues (agreement, flow consistency, sharpness). A
small CNN sees those cues, the network's output and the aligned reference, and adds a
correction to the confidence's logit: ``alpha = sigmoid(logit(c) + cnn(...))``. Its last
layer starts at zero, so an untrained refiner gives exactly the hand-made confidence. The
output stays a per-pixel blend of the network's output and the aligned reference: the
refiner can only decide how much to borrow, never invent content. It runs at half
resolution (the confidence is smooth) with dilated convolutions (receptive field about 60
pixels of the full frame).

Status: an experiment, not used by default. Trained on training-clip triplets
(``tools/train_transfer.py``), it matched the hand-made confidence there (+1.93 dB over the
network alone) but did worse on the held-out frames (+1.22 against +1.31 dB, with the
one-flow transfer), so
``refdeblur-video`` uses the hand-made confidence. ``transfer_reference(..., refiner=)``
applies one.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import UserError
from .weights import read_safetensors, write_safetensors

REFINER_FORMAT = "refdeblur-video/confidence-refiner/1"
CUES = 4  # agreement, consistency, sharpness, inside (transfer.TransferCues.stack)
EPS = 1e-4


class ConfidenceRefiner(nn.Module):
    """``forward(restored, aligned, cues, prior) -> alpha`` (B, 1, H, W) in (0, 1).

    ``restored`` and ``aligned`` are (B, 3, H, W) in [0, 1], ``cues`` (B, 4, H, W) and the
    hand-made confidence ``prior`` (B, 1, H, W).
    """

    def __init__(self, width: int = 16, dilations: tuple[int, ...] = (1, 2, 4, 8)) -> None:
        super().__init__()
        self.width = width
        self.dilations = tuple(dilations)
        layers: list[nn.Module] = []
        channels = 3 + 3 + 3 + CUES
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


__all__ = ["ConfidenceRefiner", "load_refiner", "save_refiner"]

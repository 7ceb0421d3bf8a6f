"""The network's output as the reference transfer finishes it, for a loss taken after it.

At inference the transfer (:mod:`refdeblur_video.refine.transfer`) blends the aligned
reference into the network's output where it trusts it. A network trained on its own output
alone competes with that step: it learns to restore what the transfer would have copied, and
sharper outputs lower the transfer's trust. Taking part of the loss after the transfer trains
it for the pixels the transfer cannot fix.

The alignment (flows, homography), its consistency and the frame-wide structure check come
from OpenCV on the detached output, as on a CPU at inference; the two cues that depend on
the output's pixels (agreement with the aligned reference, and whether the reference holds
at least the output's fine detail) are recomputed in PyTorch on the output itself, so that
the gradient sees how the output moves the transfer's trust.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..refine.torch_ops import gaussian_blur
from ..refine.torch_transfer import extent_scale, fine_detail, output_cues
from ..refine.transfer import TransferSettings, transfer_cues


def _images(batch: Tensor) -> list[np.ndarray]:
    """``(N, 3, H, W)`` -> N float32 H x W x 3 arrays in [0, 1] (detached, on the CPU)."""
    array = batch.detach().float().clamp(0.0, 1.0).cpu().permute(0, 2, 3, 1).numpy()
    return [np.ascontiguousarray(frame) for frame in array]


def _stacked(arrays: list[np.ndarray], like: Tensor) -> Tensor:
    """N arrays (H x W x C, or H x W) -> ``(N, C, H, W)`` on ``like``'s device."""
    array = np.stack([a if a.ndim == 3 else a[..., None] for a in arrays])
    return torch.from_numpy(array).permute(0, 3, 1, 2).to(like.device, like.dtype)


def transferred_output(output: Tensor, reference: Tensor,
                       settings: TransferSettings) -> Tensor:
    """``output`` with the aligned ``reference`` blended in by the transfer's weight
    (``(N, 3, H, W)`` float in, the same out, not clamped), differentiable in ``output``
    through the blend and through the agreement and sharpness cues."""
    cues = [transfer_cues(out, ref, settings)
            for out, ref in zip(_images(output), _images(reference), strict=True)]
    aligned = _stacked([c.aligned for c in cues], output)
    within = _stacked([c.inside for c in cues], output)
    fixed = _stacked([c.consistency for c in cues], output) * within
    scale = extent_scale(*output.shape[-2:], settings)
    trust = output_cues(output, aligned, fine_detail(output, scale), scale, settings)
    weight = gaussian_blur(trust * fixed, settings.confidence_blur_px * scale) * within
    # the frame-wide trust in the reference's structure, from the detached output as the
    # alignment is
    structure = torch.tensor([c.structure for c in cues], device=output.device,
                             dtype=output.dtype).view(-1, 1, 1, 1)
    return output + weight * structure * (aligned - output)


__all__ = ["transferred_output"]

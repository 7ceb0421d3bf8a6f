"""The reference transfer of :mod:`.transfer` in PyTorch, on the device that ran the network.

The same cues (agreement, forward-backward consistency, sharpness, inside) and the same
blend, with the flow of :mod:`.torch_flow` in place of OpenCV's DIS, so that on a GPU the
network's output and its reference never leave the device until the finished frame does.
The CPU keeps OpenCV's version, which is faster there (docs/RESULTS.md).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .torch_flow import FlowSettings, dense_flow
from .torch_ops import channel_mean, gaussian_blur, grey, half_size, inside, remap, resize_flow
from .transfer import (
    DEFAULT_TRANSFER,
    TransferSettings,
    dis_coarsest_scale,
    forward_finest_scale,
    usable_patch_sizes,
)


def _scale(h: int, w: int, settings: TransferSettings) -> float:
    """Extents given at ``reference_height``, scaled to the frame (as :mod:`.transfer`)."""
    return max(min(h, w) / settings.reference_height, 0.25)


def _detail(image: Tensor, scale: float) -> Tensor:
    """Local amount of fine detail (as :func:`.transfer._detail`)."""
    luma = channel_mean(image)
    return gaussian_blur((luma - gaussian_blur(luma, 1.5 * scale)).abs(), 4.0 * scale)


def _flow_at(target: Tensor, source: Tensor, patch: int, finest: int, coarsest: int) -> Tensor:
    """The flow computed from pyramid level ``finest`` up to ``coarsest`` (DIS's scales),
    returned at full resolution."""
    t, s = target, source
    for _ in range(finest):
        t, s = half_size(t), half_size(s)
    flow = dense_flow(t, s, FlowSettings(patch_px=patch), levels=max(coarsest - finest, 0))
    return flow if finest == 0 else resize_flow(flow, (target.shape[-2], target.shape[-1]))


def _cues(restored: Tensor, reference: Tensor, patch: int, settings: TransferSettings,
          unfiltered: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(aligned reference, confidence, inside) for one patch size: aligned to ``restored``
    (the output, low-passed where the settings ask), sharpness against ``unfiltered``."""
    h, w = restored.shape[-2:]
    scale = _scale(h, w, settings)
    a, b = grey(restored), grey(reference)
    coarsest = dis_coarsest_scale(h, w, patch)
    finest = min(forward_finest_scale(min(h, w), settings.flow_max_lines), coarsest)
    forward = _flow_at(a, b, patch, finest, coarsest)
    backward = _flow_at(b, a, patch, min(1, coarsest), coarsest)  # serves the check only
    aligned = remap(reference, forward)

    difference = gaussian_blur(aligned - restored, settings.smoothing_px * scale)
    agreement = torch.exp(-(channel_mean(difference.abs()) / settings.tolerance) ** 2)
    round_trip = torch.linalg.vector_norm(forward + remap(backward, forward), dim=1,
                                          keepdim=True)
    round_trip = gaussian_blur(round_trip, 2.0 * scale)
    consistency = torch.exp(-(round_trip / (settings.consistency_px * scale)) ** 2)
    mine, theirs = _detail(unfiltered, scale), _detail(aligned, scale)
    sharpness = ((theirs - mine) / (settings.sharpness_margin * mine + 1e-5) + 1.0).clamp(0, 1)
    within = inside(forward)
    return aligned, agreement * consistency * sharpness * within, within


@torch.no_grad()
def transfer_reference_torch(restored: Tensor, reference: Tensor,
                             settings: TransferSettings = DEFAULT_TRANSFER) -> Tensor:
    """``restored`` with the flow-aligned ``reference`` blended in where it is trustworthy:
    ``(N, 3, H, W)`` float tensors in [0, 1] on any device, in and out (as
    :func:`.transfer.transfer_reference`)."""
    restored, reference = restored.float(), reference.float()
    h, w = restored.shape[-2:]
    sizes = usable_patch_sizes(settings.patch_sizes, h, w)
    if not sizes:  # too small to align: nothing is trusted
        return restored.clamp(0.0, 1.0)
    # aligned on (and agreeing with) the low-passed output; sharpness and blend: the output
    target = gaussian_blur(restored, settings.align_smoothing_px * _scale(h, w, settings))
    aligned, confidence, within = _cues(target, reference, sizes[0], settings, restored)
    for size in sizes[1:]:  # per pixel, the most trusted alignment
        other, other_confidence, other_within = _cues(target, reference, size, settings,
                                                      restored)
        better = other_confidence > confidence
        aligned = torch.where(better, other, aligned)
        within = torch.where(better, other_within, within)
        confidence = torch.maximum(confidence, other_confidence)
    if settings.confidence_blur_px > 0:
        confidence = gaussian_blur(confidence, settings.confidence_blur_px * _scale(h, w, settings))
    weight = confidence * within
    return (restored + weight * (aligned - restored)).clamp(0.0, 1.0)

"""The reference transfer of :mod:`.transfer` in PyTorch, on the device that ran the network.

The same alignment (by default the homography fitted to the dense flow, fitted on the CPU
from a grid of its vectors), the same cues (agreement, the alignment's consistency with the
flows, sharpness, inside) and the same blend, with the flow of
:mod:`.torch_flow` in place of OpenCV's DIS, so that on a GPU the
network's output and its reference never leave the device until the finished frame does.
The CPU keeps OpenCV's version, which is faster there (docs/RESULTS.md).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .global_shift import coarse_size, far_shift
from .torch_flow import FlowSettings, dense_flow
from .torch_ops import channel_mean, gaussian_blur, grey, half_size, inside, remap, resize_flow
from .transfer import (
    ANCHOR_BLOCK_PX,
    DEFAULT_TRANSFER,
    MIN_ANCHOR_SHARE,
    TransferSettings,
    camera_homography,
    dis_coarsest_scale,
    forward_finest_scale,
    guided_homography,
    homography_spacing,
    project,
    usable_patch_sizes,
)


def extent_scale(h: int, w: int, settings: TransferSettings) -> float:
    """Extents given at ``reference_height``, scaled to the frame (as :mod:`.transfer`)."""
    return max(min(h, w) / settings.reference_height, 0.25)


def fine_detail(image: Tensor, scale: float) -> Tensor:
    """Local amount of fine detail (as :func:`.transfer._detail`)."""
    luma = channel_mean(image)
    return gaussian_blur((luma - gaussian_blur(luma, 1.5 * scale)).abs(), 4.0 * scale)


def _global_shifts(target: Tensor, source: Tensor, coarsest: int) -> Tensor | None:
    """Per frame of the batch, its global shift (x, y, pixels of ``target``) where a flow
    started from no motion at level ``coarsest`` would miss it, else (0, 0)
    (:mod:`.global_shift`); None where no frame needs one. Measured on the CPU on the
    greys shrunk to that level: a few kilobytes per frame leave the device."""
    h, w = target.shape[-2:]
    small = [torch.nn.functional.interpolate(x.float(), size=coarse_size(h, w, coarsest),
                                             mode="area")[:, 0].cpu().numpy()
             for x in (target, source)]
    shifts = np.zeros((target.shape[0], 2), np.float32)
    for i, pair in enumerate(zip(*small, strict=True)):
        shifts[i] = far_shift(*pair, h, w, coarsest) or (0.0, 0.0)
    return torch.from_numpy(shifts).to(target.device) if shifts.any() else None


def _flow_at(target: Tensor, source: Tensor, patch: int, finest: int, coarsest: int) -> Tensor:
    """The flow computed from pyramid level ``finest`` up to ``coarsest`` (DIS's scales),
    returned at full resolution; started from each frame's global shift where that is
    beyond the pyramid's reach, as DIS is on the CPU."""
    start = _global_shifts(target, source, coarsest)
    t, s = target, source
    for _ in range(finest):
        t, s = half_size(t), half_size(s)
    if start is not None:
        start = start * start.new_tensor([t.shape[-1] / target.shape[-1],
                                          t.shape[-2] / target.shape[-2]])
    flow = dense_flow(t, s, FlowSettings(patch_px=patch), levels=max(coarsest - finest, 0),
                      start=start)
    return flow if finest == 0 else resize_flow(flow, (target.shape[-2], target.shape[-1]))


def _backward(target: Tensor, reference: Tensor, patch: int) -> Tensor:
    """The backward flow of one patch size, at half resolution: it serves the consistency
    check only."""
    coarsest = dis_coarsest_scale(*target.shape[-2:], patch)
    return _flow_at(grey(reference), grey(target), patch, min(1, coarsest), coarsest)


def _fitted_homography(forward: Tensor, settings: TransferSettings, scale: float
                       ) -> np.ndarray | None:
    """The homography fitted to ``forward`` ``(2, H, W)`` (as the OpenCV transfer's:
    RANSAC over a grid of its vectors, on the CPU; only that grid leaves the device);
    None where none fits."""
    step = homography_spacing(settings, scale)
    vectors = forward[:, step // 2 :: step, step // 2 :: step].permute(1, 2, 0)
    return camera_homography(vectors.float().cpu().numpy(), settings, scale, on_grid=True)


def _flow_of_homography(homography: np.ndarray | None, like: Tensor) -> Tensor | None:
    """The flow ``(2, H, W)`` of ``homography`` over a frame of ``like``'s size, on its
    device and in its dtype; None for no homography or one that folds the frame."""
    if homography is None:
        return None
    h, w = like.shape[-2:]
    ys = torch.arange(h, device=like.device, dtype=torch.float64).view(h, 1)
    xs = torch.arange(w, device=like.device, dtype=torch.float64).view(1, w)
    found = project(homography, xs, ys)
    if found is None:
        return None
    return torch.stack((found[0] - xs, found[1] - ys)).to(like.dtype)


def _alignment(flow: Tensor, prior: np.ndarray | None, settings: TransferSettings,
               scale: float) -> tuple[Tensor, Tensor, float]:
    """How one frame's reference is aligned by its dense ``flow`` ``(2, H, W)``: (the
    alignment's flow, the flow that warps the reference, its consistency extent), as
    :func:`.transfer._alignment` (``flow`` itself, the same tensor, where nothing is
    fitted)."""
    fitted = (_fitted_homography(flow, settings, scale)
              if settings.alignment == "homography" else None)
    fitted_flow = _flow_of_homography(fitted, flow)
    if fitted_flow is None:
        return flow, flow, settings.consistency_px
    guided = guided_homography(fitted, prior, settings, scale, tuple(flow.shape[-2:]))
    warp = None if guided is fitted else _flow_of_homography(guided, flow)
    return (fitted_flow, fitted_flow if warp is None else warp,
            settings.homography_consistency_px)


def _cues(target: Tensor, reference: Tensor, patch: int, settings: TransferSettings,
          mine: Tensor, backward: Callable[[], Tensor], priors: Sequence[np.ndarray | None]
          ) -> tuple[Tensor, Tensor, Tensor]:
    """(aligned reference, confidence, inside) for one patch size: aligned to ``target``
    (the output, or the output low-passed), sharpness against the output's detail
    ``mine``. Each frame of the batch is warped by the homography fitted to its flow (its
    consistency extent ``homography_consistency_px``) or by its prior near that fit, or
    (``alignment="flow"``, or no fit) by the flow itself. ``backward`` gives the batch's
    backward flow, asked for only where an alignment is checked by the round trip."""
    h, w = target.shape[-2:]
    scale = extent_scale(h, w, settings)
    coarsest = dis_coarsest_scale(h, w, patch)
    finest = min(forward_finest_scale(min(h, w), settings.flow_max_lines), coarsest)
    dense = list(_flow_at(grey(target), grey(reference), patch, finest, coarsest))
    forwards, warps, extents = zip(*(_alignment(flow, prior, settings, scale)
                                     for flow, prior in zip(dense, priors, strict=True)),
                                   strict=True)
    forward, warp = torch.stack(forwards), torch.stack(warps)
    if any(w is not f for f, w in zip(forwards, warps, strict=True)):
        warp = _prior_checked(target, reference, mine, forward, warp, settings, scale)
    extent = torch.tensor(extents, device=forward.device,
                          dtype=forward.dtype).view(-1, 1, 1, 1)
    aligned = remap(reference, warp)
    by_round_trip = [settings.checks_by_round_trip(fitted=found is not flow)
                     for found, flow in zip(forwards, dense, strict=True)]
    # the homography's distance from the dense flow it was fitted to, or the round trip
    error = torch.stack(dense) - forward
    if any(by_round_trip):
        round_trip = forward + remap(backward(), forward)
        chosen = torch.tensor(by_round_trip, device=forward.device).view(-1, 1, 1, 1)
        error = torch.where(chosen, round_trip, error)
    distance = gaussian_blur(torch.linalg.vector_norm(error, dim=1, keepdim=True), 2.0 * scale)
    consistency = torch.exp(-(distance / (extent * scale)) ** 2)

    within = inside(warp)
    trust = output_cues(target, aligned, mine, scale, settings)
    return aligned, trust * consistency * within, within


def output_cues(target: Tensor, aligned: Tensor, mine: Tensor, scale: float,
                settings: TransferSettings) -> Tensor:
    """The product of the two cues that depend on the output's pixels: agreement of the
    aligned reference with ``target`` (low-passed difference), and sharpness (the aligned
    reference holds at least the output's fine detail ``mine``)."""
    difference = gaussian_blur(aligned - target, settings.smoothing_px * scale)
    agreement = torch.exp(-(channel_mean(difference.abs()) / settings.tolerance) ** 2)
    theirs = fine_detail(aligned, scale)
    sharpness = ((theirs - mine) / (settings.sharpness_margin * mine + 1e-5) + 1.0).clamp(0, 1)
    return agreement * sharpness


@torch.no_grad()
def transfer_reference_torch(restored: Tensor, reference: Tensor,
                             settings: TransferSettings = DEFAULT_TRANSFER,
                             priors: Sequence[np.ndarray | None] | None = None) -> Tensor:
    """``restored`` with the flow-aligned ``reference`` blended in where it is trustworthy:
    ``(N, 3, H, W)`` float tensors in [0, 1] on any device, in and out (as
    :func:`.transfer.transfer_reference`: aligned on the output and, with
    ``align_smoothing_px``, on the output low-passed too, per pixel the more trusted);
    ``priors``: per frame a homography (output -> reference) or None, as ``prior`` there."""
    restored, reference = restored.float(), reference.float()
    priors = list(priors) if priors is not None else [None] * len(restored)
    h, w = restored.shape[-2:]
    sizes = usable_patch_sizes(settings.patch_sizes, h, w)
    if not sizes:  # too small to align: nothing is trusted
        return restored.clamp(0.0, 1.0)
    scale = extent_scale(h, w, settings)
    targets = [restored]
    if settings.align_smoothing_px > 0:
        targets.append(gaussian_blur(restored, settings.align_smoothing_px * scale))
    mine = fine_detail(restored, scale)  # the output's fine detail
    found: list[tuple[Tensor, Tensor, Tensor]] = []
    for size in sizes:
        # one backward flow serves both alignments, on the low-passed output where there is
        # one (as in :func:`.transfer.transfer_cues`), computed only where one is checked
        # by the round trip
        backward = functools.cache(functools.partial(_backward, targets[-1], reference, size))
        found += [_cues(target, reference, size, settings, mine, backward, priors)
                  for target in targets]
    aligned, confidence, within = found[0]
    for other, other_confidence, other_within in found[1:]:  # per pixel, the most trusted
        better = other_confidence > confidence
        aligned = torch.where(better, other, aligned)
        within = torch.where(better, other_within, within)
        confidence = torch.maximum(confidence, other_confidence)
    if settings.confidence_blur_px > 0:
        confidence = gaussian_blur(confidence, settings.confidence_blur_px * scale)
    weight = confidence * within
    trust = torch.ones_like(restored[:, :1, :1, :1])
    if settings.shared_structure[1] > 0:
        trust = _structure_trust(aligned, restored, within, scale, settings)
    shift = _level_shift(restored, aligned, within, trust, settings)
    fused = restored + weight * trust * (aligned - restored) + (1.0 - weight * trust) * shift
    return fused.clamp(0.0, 1.0)


def _level_shift(restored: Tensor, aligned: Tensor, within: Tensor, trust: Tensor,
                 settings: TransferSettings) -> Tensor:
    """Per frame and channel (N, 3, 1, 1), :func:`.transfer.level_shift`."""
    limit, block = settings.level_anchor, ANCHOR_BLOCK_PX
    none = torch.zeros_like(restored[:, :, :1, :1])
    if limit <= 0 or min(restored.shape[-2:]) < block:
        return none
    difference = F.avg_pool2d(aligned, block) - F.avg_pool2d(restored, block)  # (N, 3, h, w)
    whole = -F.max_pool2d(-within, block) > 0.5
    agree = whole & (grey(difference).abs() < settings.tolerance)
    count = agree.to(restored.dtype).sum((2, 3), keepdim=True)
    # where, not a product: a NaN block left out must not make the sum NaN
    kept = torch.where(agree, difference, torch.zeros_like(difference))
    mean = kept.sum((2, 3), keepdim=True) / count.clamp_min(1.0)
    enough = count >= MIN_ANCHOR_SHARE * agree.shape[-2] * agree.shape[-1]
    shift = mean.clamp(-limit, limit) * trust
    return torch.where(enough, shift, none)


def _band_correlation(theirs: Tensor, mine: Tensor, within: Tensor, scale: float,
                      settings: TransferSettings) -> Tensor:
    """Per frame (N,), the normalised correlation of two lumas ``(N, 1, H, W)`` between
    ``structure_fine_px`` and ``smoothing_px``, where ``within``; 1 where either is empty."""
    fine, coarse = settings.structure_fine_px * scale, settings.smoothing_px * scale
    theirs, mine = ((gaussian_blur(luma, fine) - gaussian_blur(luma, coarse)) * within
                    for luma in (theirs, mine))
    energy = torch.sqrt((theirs * theirs).sum((1, 2, 3)) * (mine * mine).sum((1, 2, 3)))
    return torch.where(energy > 0, (theirs * mine).sum((1, 2, 3)) / energy.clamp_min(1e-30),
                       torch.ones_like(energy))


def _structure_trust(aligned: Tensor, restored: Tensor, within: Tensor, scale: float,
                     settings: TransferSettings) -> Tensor:
    """Per frame (N, 1, 1, 1), :func:`.transfer.structure_trust` of the correlation of
    :func:`.transfer.shared_structure`."""
    correlation = _band_correlation(channel_mean(aligned), channel_mean(restored), within,
                                    scale, settings)  # as transfer.shared_structure
    low, high = settings.shared_structure
    trust = ((correlation - low) / max(high - low, 1e-6)).clamp(0.0, 1.0)
    return trust.view(-1, 1, 1, 1)


def _prior_checked(target: Tensor, reference: Tensor, mine: Tensor, fitted: Tensor,
                   warp: Tensor, settings: TransferSettings, scale: float) -> Tensor:
    """``warp`` (N, 2, H, W), with the fit's flow in place of a prior's where the prior
    places the reference clearly worse on a sharp output (:func:`.transfer._placed_worse`)."""
    theirs = fine_detail(reference, scale).mean((1, 2, 3))
    sharp = mine.mean((1, 2, 3)) / theirs.clamp_min(1e-6) >= settings.prior_sharp_output
    found = [_band_correlation(grey(remap(reference, flow)), grey(target), inside(flow),
                               scale, settings) for flow in (warp, fitted)]
    worse = sharp & (found[0] < found[1] - settings.prior_structure_margin)
    return torch.where(worse.view(-1, 1, 1, 1), fitted, warp)

"""Dense optical flow in PyTorch, for the reference transfer on a GPU.

OpenCV's DIS (what :mod:`.transfer` uses on the CPU) has no GPU implementation in the
OpenCV wheels, so the GPU path aligns with a coarse-to-fine Lucas-Kanade of the same
spirit, written with whole-image tensor operations (running sums and one bilinear warp per
iteration), which a GPU runs in milliseconds at 720p: on an image pyramid, each pixel's
motion is fitted over a large window (DIS's 96-pixel patch, smoothed) with the window's
mean brightness and gradient taken out, as DIS normalises its patches, so that a soft
frame still matches a sharp one, and with robust weights, so that at a motion boundary the
pixels of the other motion count less. A finer pass over small windows lost half of the
transfer's gain (small windows match the soft frame's detail to the wrong places), and
more iterations per level lost a little (docs/RESULTS.md).

The flow follows ``target(p) ~ source(p + flow(p))``, as :func:`.transfer._flow` does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .torch_ops import box_filter, half_size, remap, resize_flow


@dataclass(frozen=True)
class FlowSettings:
    """Windows are in pixels of the level they work on."""

    levels: int = 3  # pyramid levels below the finest (the motion a level sees halves)
    patch_px: int = 96  # the coarse window: a square of this side, as DIS's patch
    iterations: int = 6  # per level
    # Tikhonov damping of each update, as a share of the mean gradient energy of the level:
    # textureless windows keep the motion they were given
    damping: float = 0.01
    max_step_px: float = 4.0  # one update moves a pixel's flow at most this far
    # robust weights: a pixel counts 1 / max(robust, |residual|) (mean removed), so pixels
    # that do not fit the window's motion count less, as DIS weighs its patches when it
    # merges them; differences under about one 8-bit level count fully
    robust: float = 1.0 / 255.0


def _gradients(image: Tensor) -> tuple[Tensor, Tensor]:
    """Central differences (replicated borders)."""
    padded = torch.nn.functional.pad(image, (1, 1, 1, 1), mode="replicate")
    gx = 0.5 * (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2])
    gy = 0.5 * (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1])
    return gx, gy


def _lk_step(target: Tensor, source: Tensor, flow: Tensor, window: Callable[[Tensor], Tensor],
             damping: float, max_step: float, robust: float) -> Tensor:
    """One reweighted Gauss-Newton update of ``flow``; ``window`` averages over each
    pixel's window."""
    warped = remap(source, flow)
    gx, gy = _gradients(0.5 * (target + warped))
    gt = warped - target
    terms = [gx * gx, gx * gy, gy * gy, gx * gt, gy * gt]
    weight = 1.0 / torch.clamp((gt - window(gt)).abs(), min=robust)
    total = window(weight)
    sums = window(torch.cat([t * weight for t in terms], 1)) / total
    # the window's own mean brightness change and gradient taken out, as DIS normalises
    # its patches: a blurrier or brighter frame still matches
    mx, my, mt = (window(torch.cat((gx, gy, gt), 1) * weight) / total).unbind(1)
    sums = sums - torch.stack((mx * mx, mx * my, my * my, mx * mt, my * mt), 1)
    axx, axy, ayy, bx, by = sums.unbind(1)
    energy = (axx + ayy).mean(dim=(-2, -1), keepdim=True)
    reg = damping * energy + 1e-9
    axx, ayy = axx + reg, ayy + reg
    det = axx * ayy - axy * axy
    du = -(ayy * bx - axy * by) / det
    dv = -(axx * by - axy * bx) / det
    step = torch.stack((du, dv), 1).clamp(-max_step, max_step)
    return flow + step


@torch.no_grad()
def dense_flow(target: Tensor, source: Tensor, settings: FlowSettings = FlowSettings(),
               levels: int | None = None,
               start: Tensor | None = None) -> Tensor:
    """Flow ``(N, 2, H, W)`` (x, y, pixels) with ``target(p) ~ source(p + flow(p))``;
    ``target`` and ``source``: ``(N, 1, H, W)`` grey images in [0, 1]. ``start``: per
    frame, a motion ``(N, 2)`` (x, y, pixels of ``target``) to start from at the coarsest
    level instead of none (a large global shift, :mod:`.global_shift`)."""
    levels = settings.levels if levels is None else levels
    pyramid = [(target.float(), source.float())]
    for _ in range(levels):
        t, s = pyramid[-1]
        if min(t.shape[-2:]) < 16:
            break
        pyramid.append((half_size(t), half_size(s)))
    n = target.shape[0]
    flow = None

    def window(x: Tensor) -> Tensor:  # a box twice: smooth weights, at a box's cost
        return box_filter(box_filter(x, settings.patch_px // 2), settings.patch_px // 2)

    for t, s in reversed(pyramid):
        size = t.shape[-2:]
        if flow is None:
            flow = torch.zeros(n, 2, *size, device=t.device, dtype=t.dtype)
            if start is not None:
                scale = start.new_tensor([size[1] / target.shape[-1], size[0] / target.shape[-2]])
                flow += (start.to(flow.dtype) * scale.to(flow.dtype))[:, :, None, None]
        else:
            flow = resize_flow(flow, (size[0], size[1]))
        for _ in range(settings.iterations):
            flow = _lk_step(t, s, flow, window, settings.damping, settings.max_step_px,
                            settings.robust)
    return flow


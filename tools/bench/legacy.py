"""The inference settings and code path of 2026-11 (before issue 19), for the "before" rows of
bench_model.py and bench_pipeline.py: the reference transfer's settings of then, and the
network's local matching and feature transfer of then (one product and sum per offset; nine
row selections per scale), since replaced by faster code with the same results.
``legacy_path()`` switches the network to that code while it is on.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from refdeblur_video.model.matching import EPS, MatchResult, box3x3_sum, patch_norms
from refdeblur_video.refine.transfer import TransferSettings

# three forward flows at full resolution with a stride of a quarter of the patch, each with
# its own backward flow
TRANSFER_2026_11 = TransferSettings(
    patch_sizes=(32, 64, 96), forward_stride=0.25, refinement_iterations=5,
    backward_stride=0.5, backward_refinement_iterations=5, backward_patch=0,
    smoothing_px=8.0, tolerance=16.0 / 255.0, consistency_px=1.4, sharpness_margin=0.25,
    reference_height=720, confidence_blur_px=4.0, flow_max_lines=1080, alignment="flow",
)


@contextlib.contextmanager
def legacy_path() -> Iterator[None]:
    """While on, the network matches and moves features with the 2026-11 code, and its
    REAMs concatenate the confidence map as they did then (a one-channel map of ambiguous
    layout, which turned the concatenation and the gate's convolution to NCHW)."""
    from refdeblur_video.model import matching, ream

    current = ream.transfer, matching.match_local, ream._layout_like
    ream.transfer, matching.match_local = transfer_2026_11, match_local_2026_11
    ream._layout_like = lambda single, features: single
    try:
        yield
    finally:
        ream.transfer, matching.match_local, ream._layout_like = current


class TransferInNetworkStage:
    """A restorer whose network stage also runs the reference transfer, as the 2026-11
    ``Restorer`` did (before the transfer became a pipeline stage of its own); run it with
    ``transfer=False`` so that the pipeline does not transfer twice."""

    def __init__(self, restorer, settings: TransferSettings) -> None:
        self._restorer, self._settings = restorer, settings

    def __getattr__(self, name):  # the model, its device, ...: the wrapped restorer's
        return getattr(self._restorer, name)

    def restore_floats(self, blurry, references):
        import numpy as np

        from refdeblur_video.image_files import to_float
        from refdeblur_video.refine.transfer import transfer_reference

        outputs, used = self._restorer.restore_floats(blurry, references)
        for i, (frame, reference) in enumerate(zip(blurry, references, strict=True)):
            if used[i] and not np.array_equal(frame, reference):
                outputs[i] = transfer_reference(outputs[i], to_float(reference), self._settings)
        return outputs, used


def transfer_2026_11(reference: Tensor, index: Tensor, scale: int) -> Tensor:
    """Move reference patches by ``index`` and fold them back (eq. 4) at ``scale``.

    ``reference`` is (B, C, s*Hc, s*Wc) for an index map of (B, Hc, Wc). The patch of
    coarse position k covers fine pixels [s*k - s, s*k + 2s) (a 3x3 coarse patch); each
    fine pixel averages the values that its (at most nine) covering patches carry, which
    equals unfold (kernel 3s, stride s, padding s) + gather + fold, divided by the overlap.

    Implementation: one row selection per covering position on a channels-last, zero-padded
    copy of ``reference``; patches hanging over the border read the zero padding, and the
    covering patches that do not exist at the map's border are cut off by zeroing strips.
    """
    b, c, h, w = reference.shape
    hc, wc = index.shape[-2:]
    s = scale
    if (h, w) != (hc * s, wc * s):
        raise ValueError(f"reference {h}x{w} does not match index {hc}x{wc} at scale {s}")
    device = reference.device
    pad = 2 * s
    wp = w + 2 * pad
    hp = h + 2 * pad
    rows = F.pad(reference, (pad, pad, pad, pad)).permute(0, 2, 3, 1).reshape(b * hp * wp, c)
    ky = torch.arange(hc, device=device).view(hc, 1)
    kx = torch.arange(wc, device=device).view(1, wc)
    jy = torch.div(index, wc, rounding_mode="floor")
    offset = s * ((jy - ky) * wp + (index - jy * wc - kx))  # (B, Hc, Wc), in padded rows
    offset = offset.repeat_interleave(s, 1).repeat_interleave(s, 2)
    offset = F.pad(offset, (s, s, s, s))  # the shifted views below read inside this
    base = ((torch.arange(h, device=device) + pad) * wp).view(1, h, 1) + (
        torch.arange(w, device=device) + pad
    ).view(1, 1, w) + (torch.arange(b, device=device) * hp * wp).view(b, 1, 1)
    out = torch.zeros(b, h * w, c, device=device, dtype=reference.dtype)
    for a in (-1, 0, 1):
        for bb in (-1, 0, 1):
            shifted = offset[:, s + a * s : s + a * s + h, s + bb * s : s + bb * s + w]
            source = (base + shifted).reshape(-1)
            picked = rows.index_select(0, source).view(b, h, w, c)
            if a == -1:
                picked[:, :s] = 0
            elif a == 1:
                picked[:, h - s :] = 0
            if bb == -1:
                picked[:, :, :s] = 0
            elif bb == 1:
                picked[:, :, w - s :] = 0
            out += picked.view(b, h * w, c)
    count_y = torch.full((h,), 3.0, device=device, dtype=reference.dtype)
    count_x = torch.full((w,), 3.0, device=device, dtype=reference.dtype)
    if hc > 1:
        count_y[:s] = count_y[h - s :] = 2.0
    else:
        count_y[:] = 1.0
    if wc > 1:
        count_x[:s] = count_x[w - s :] = 2.0
    else:
        count_x[:] = 1.0
    out = out.view(b, h, w, c) / (count_y.view(1, h, 1, 1) * count_x.view(1, 1, w, 1))
    return out.permute(0, 3, 1, 2)


def match_local_2026_11(query: Tensor, key: Tensor, radius: int,
                        prior: float = 0.0) -> MatchResult:
    """Best 3x3 reference patch within ``radius`` positions of each query position
    (``prior``: the current signature's displacement prior, which the 2026-11 search did
    not have; only 0 is accepted).

    The window is visited row by row; the dot products of one row of offsets are taken
    on channels-last copies (a reduction over contiguous memory), then boxed and
    normalised together. Ties keep the smaller vertical, then horizontal, displacement.
    Extra memory is O(HW (2r+1)) for one row of offsets.
    """
    if prior:
        raise ValueError("the 2026-11 local search has no displacement prior")
    b, _, h, w = query.shape
    q = query.float()
    k = key.float()
    q_norm = patch_norms(q)
    kn_pad = F.pad(patch_norms(k), (radius, radius, radius, radius))
    q_last = q.permute(0, 2, 3, 1).contiguous()
    k_last = F.pad(k, (radius, radius, radius, radius)).permute(0, 2, 3, 1).contiguous()
    ys = torch.arange(h, device=q.device).view(1, 1, h, 1)
    xs = torch.arange(w, device=q.device).view(1, 1, 1, w)
    best = torch.full((b, 1, h, w), -math.inf, device=q.device)
    index = (ys * w + xs).expand(b, 1, h, w).clone()
    order = sorted(range(-radius, radius + 1), key=lambda d: (abs(d), d))
    dx_t = torch.tensor(order, device=q.device).view(1, -1, 1, 1)
    # preallocated buffers: fresh allocations per offset dominate the cost on CPU
    product = torch.empty_like(q_last)
    dots = q.new_empty(b, len(order), h, w)
    norms = q.new_empty(b, len(order), h, w)
    for dy in order:
        rows = slice(radius + dy, radius + dy + h)
        for i, dx in enumerate(order):
            cols = slice(radius + dx, radius + dx + w)
            torch.mul(q_last, k_last[:, rows, cols], out=product)
            torch.sum(product, -1, out=dots[:, i])
            norms[:, i] = kn_pad[:, 0, rows, cols]
        boxed = box3x3_sum(dots.view(b * len(order), 1, h, w)).view(b, len(order), h, w)
        sim = boxed / (q_norm * norms).clamp_min(EPS)
        valid = (ys + dy >= 0) & (ys + dy < h) & (xs + dx_t >= 0) & (xs + dx_t < w)
        value, arg = sim.masked_fill(~valid, -math.inf).max(dim=1, keepdim=True)
        better = value > best
        best = torch.where(better, value, best)
        index = torch.where(better, (ys + dy) * w + xs + dx_t.view(-1)[arg], index)
    return MatchResult(index=index[:, 0], confidence=best.clamp(-1.0, 1.0))

"""Patch matching between blurry and reference features (paper section 3.1, eqs. 1-4).

Both modes score 3x3 feature patches by cosine similarity (eq. 1) and return, for every
position of the blurry map, the index of the best reference patch (eq. 2) and its
similarity as confidence (eq. 3). Neither ever holds the full (HW x HW) similarity matrix:

* ``global``: exact argmax over all reference patches, computed over row strips of queries
  and keys with a running max so that peak memory stays under ``memory_mb``.
* ``local``: the reference is a nearby frame, so only positions within ``radius`` of each
  query are searched: cost O(HW (2r+1)^2 C), memory O(HW).

``transfer`` then moves reference feature patches by the index map at any scale and folds
them back, averaging overlaps (eq. 4), with at most nine gathers per scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

EPS = 1e-6


@dataclass
class MatchResult:
    """``index``: (B, H, W) flat index ``y * W + x`` into the reference map;
    ``confidence``: (B, 1, H, W) best cosine similarity, in [-1, 1]."""

    index: Tensor
    confidence: Tensor


def _box3x3_sum(x: Tensor) -> Tensor:
    """Sum over each zero-padded 3x3 neighbourhood (separable: three rows, three columns)."""
    h, w = x.shape[-2:]
    p = F.pad(x, (1, 1, 1, 1))
    rows = p[..., 0:h, :] + p[..., 1 : h + 1, :] + p[..., 2 : h + 2, :]
    return rows[..., 0:w] + rows[..., 1 : w + 1] + rows[..., 2 : w + 2]


def patch_norms(features: Tensor) -> Tensor:
    """L2 norm of every zero-padded 3x3 patch of ``features``: (B, 1, H, W)."""
    return _box3x3_sum(features.pow(2).sum(1, keepdim=True)).clamp_min(0).sqrt()


def match_local(query: Tensor, key: Tensor, radius: int) -> MatchResult:
    """Best 3x3 reference patch within ``radius`` positions of each query position.

    The window is visited row by row; the dot products of one row of offsets are taken
    on channels-last copies (a reduction over contiguous memory), then boxed and
    normalised together. Ties keep the smaller vertical, then horizontal, displacement.
    Extra memory is O(HW (2r+1)) for one row of offsets.
    """
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
        boxed = _box3x3_sum(dots.view(b * len(order), 1, h, w)).view(b, len(order), h, w)
        sim = boxed / (q_norm * norms).clamp_min(EPS)
        valid = (ys + dy >= 0) & (ys + dy < h) & (xs + dx_t >= 0) & (xs + dx_t < w)
        value, arg = sim.masked_fill(~valid, -math.inf).max(dim=1, keepdim=True)
        better = value > best
        best = torch.where(better, value, best)
        index = torch.where(better, (ys + dy) * w + xs + dx_t.view(-1)[arg], index)
    return MatchResult(index=index[:, 0], confidence=best.clamp(-1.0, 1.0))


def _row_patches(padded: Tensor, row0: int, row1: int) -> Tensor:
    """Normalised 3x3 patches of rows [row0, row1) of a map padded by one: (N, 9C)."""
    patches = F.unfold(padded[:, :, row0 : row1 + 2, :], 3)[0].t()
    return patches / patches.norm(dim=1, keepdim=True).clamp_min(EPS)


def global_strip_rows(channels: int, width: int, memory_mb: float) -> int:
    """Rows per strip so that two strips of patches plus their similarity block fit."""
    budget = memory_mb * 2**20 / 2  # leave half for temporaries and the inputs
    per_row_patches = 9 * channels * (width + 2) * 4
    rows = 1
    while True:
        nxt = rows + 1
        need = 2 * nxt * per_row_patches * 2 + (nxt * width) ** 2 * 4 * 3
        if need > budget:
            return rows
        rows = nxt


def match_global(query: Tensor, key: Tensor, memory_mb: float = 1024) -> MatchResult:
    """Exact argmax over every reference patch, in strips, within ``memory_mb``."""
    b, c, h, w = query.shape
    hk, wk = key.shape[-2:]
    rows = min(max(h, hk), global_strip_rows(c, max(w, wk), memory_mb))
    q_pad = F.pad(query.float(), (1, 1, 1, 1))
    k_pad = F.pad(key.float(), (1, 1, 1, 1))
    index = torch.zeros(b, h * w, dtype=torch.long, device=query.device)
    best = torch.full((b, h * w), -math.inf, device=query.device)
    for n in range(b):
        for q0 in range(0, h, rows):
            q1 = min(h, q0 + rows)
            q_patches = _row_patches(q_pad[n : n + 1], q0, q1)
            s0, s1 = q0 * w, q1 * w
            for k0 in range(0, hk, rows):
                k1 = min(hk, k0 + rows)
                sim = q_patches @ _row_patches(k_pad[n : n + 1], k0, k1).t()
                value, arg = sim.max(dim=1)
                better = value > best[n, s0:s1]
                best[n, s0:s1] = torch.where(better, value, best[n, s0:s1])
                index[n, s0:s1] = torch.where(better, arg + k0 * wk, index[n, s0:s1])
    return MatchResult(
        index=index.view(b, h, w), confidence=best.view(b, 1, h, w).clamp(-1.0, 1.0)
    )


def match(
    query: Tensor, key: Tensor, mode: str = "local", radius: int = 8, memory_mb: float = 1024
) -> MatchResult:
    """Match blurry features ``query`` against reference features ``key`` (same size)."""
    if mode == "local":
        return match_local(query, key, radius)
    if mode == "global":
        return match_global(query, key, memory_mb)
    raise ValueError(f"unknown matching mode {mode!r}")


def transfer(reference: Tensor, index: Tensor, scale: int) -> Tensor:
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

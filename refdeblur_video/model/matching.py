"""Patch matching between blurry and reference features (paper section 3.1, eqs. 1-4).

Both modes score 3x3 feature patches by cosine similarity (eq. 1) and return, for every
position of the blurry map, the index of the best reference patch (eq. 2) and its
similarity as confidence (eq. 3). Neither ever holds the full (HW x HW) similarity matrix:

* ``global``: exact argmax over all reference patches, computed over row strips of queries
  and keys with a running max so that peak memory stays under ``memory_mb``.
* ``local``: the reference is a nearby frame, so only positions within ``radius`` of each
  query are searched: cost O(HW (2r+1)^2 C), memory O(HW).
* ``identity`` (not in the paper): no search; the reference was aligned onto the frame
  before the network (``prealign``), so each patch takes the one in its own place.

``transfer`` then moves reference feature patches by the index map at any scale and folds
them back, averaging overlaps (eq. 4), with one weighted gather (``embedding_bag``) per
scale.
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


def box3x3_sum(x: Tensor) -> Tensor:
    """Sum over each zero-padded 3x3 neighbourhood (separable: three rows, three columns)."""
    h, w = x.shape[-2:]
    p = F.pad(x, (1, 1, 1, 1))
    rows = p[..., 0:h, :] + p[..., 1 : h + 1, :] + p[..., 2 : h + 2, :]
    return rows[..., 0:w] + rows[..., 1 : w + 1] + rows[..., 2 : w + 2]


def patch_norms(features: Tensor) -> Tensor:
    """L2 norm of every zero-padded 3x3 patch of ``features``: (B, 1, H, W)."""
    return box3x3_sum(features.pow(2).sum(1, keepdim=True)).clamp_min(0).sqrt()


def match_identity(query: Tensor, key: Tensor) -> MatchResult:
    """Every query patch matched to the key patch in its own place, with that patch's
    cosine similarity as confidence: for a reference already aligned onto the frame, where a
    search would only wander off (by whole 4 x 4 blocks at full resolution) through blur."""
    b, _, h, w = query.shape
    dots = box3x3_sum((query * key).sum(1, keepdim=True))
    similarity = dots / (patch_norms(query) * patch_norms(key)).clamp_min(EPS)
    index = torch.arange(h * w, device=query.device).view(1, h, w).expand(b, h, w)
    return MatchResult(index=index, confidence=similarity.clamp(-1.0, 1.0))


def match_local(query: Tensor, key: Tensor, radius: int, block: int = 16, *,
                prior: float = 0.0) -> MatchResult:
    """Best 3x3 reference patch within ``radius`` positions of each query position.

    ``prior`` > 0 chooses by similarity less ``prior * |offset| / radius`` (small
    displacements first: for a reference already aligned to the query); the confidence
    stays the chosen patch's own cosine similarity.

    The window is visited row by row of offsets. The dot products of a query position with
    the keys of one row of offsets come from small matrix products: a block of ``block``
    query positions against the ``block + 2 radius`` keys its offsets reach, read in place
    from a channels-last copy of the key map whose zero-padded rows follow each other. They
    are then boxed and normalised together. Ties keep the smaller vertical, then horizontal,
    displacement. Extra memory is O(HW (2r+1)) for one row of offsets.
    """
    b, c, h, w = query.shape
    q = query.float()
    k = key.float()
    r = radius
    # rows padded with at least r zeros to whole blocks: a window running past a row's end
    # reads zeros, as do those of the next row's first block
    wide = -(-(w + r) // block) * block
    span, n_off = block + 2 * r, 2 * r + 1
    q_norm = patch_norms(q)
    kn_pad = F.pad(patch_norms(k), (r, r, r, r))
    q_blocks = F.pad(q, (0, wide - w)).permute(0, 2, 3, 1).reshape(b, h * wide // block, block, c)
    # keys: r zero rows above and below, rows of ``wide`` positions, r zeros at both ends
    k_flat = F.pad(F.pad(k, (0, wide - w, r, r)).permute(0, 2, 3, 1).reshape(b, -1, c),
                   (0, 0, r, r)).contiguous()
    ys = torch.arange(h, device=q.device).view(1, 1, h, 1)
    xs = torch.arange(w, device=q.device).view(1, 1, 1, w)
    best = torch.full((b, 1, h, w), -math.inf, device=q.device)
    best_score = best.clone()
    index = (ys * w + xs).expand(b, 1, h, w).clone()
    order = sorted(range(-r, r + 1), key=lambda d: (abs(d), d))
    dx_t = torch.tensor(order, device=q.device).view(1, -1, 1, 1)
    band_order = torch.tensor([d + r for d in order], device=q.device)
    # -inf where the offset leaves the map sideways
    outside = torch.zeros(1, n_off, 1, w, device=q.device)
    outside.masked_fill_((xs + dx_t < 0) | (xs + dx_t >= w), -math.inf)
    norms = q.new_empty(b, n_off, h, w)
    products = q.new_empty(b, h * wide // block, block, span)
    for dy in order:
        rows = slice(r + dy, r + dy + h)
        for n in range(b):
            start = (r + dy) * wide  # the window of block 0 of row 0, offset -r
            keys = k_flat[n].as_strided((h * wide // block, span, c), (block * c, c, 1),
                                        k_flat[n].storage_offset() + start * c)
            torch.bmm(q_blocks[n], keys.transpose(1, 2), out=products[n])
        # query i of a block at offset j is entry (i, i + j) of its product
        nb = wide // block
        band = products.as_strided((b, h, nb, block, n_off),
                                   (products[0].numel(), nb * block * span, block * span,
                                    span + 1, 1))
        dots = band.index_select(4, band_order).permute(0, 4, 1, 2, 3).reshape(
            b, n_off, h, wide)[..., :w].contiguous()
        for i, dx in enumerate(order):
            norms[:, i] = kn_pad[:, 0, rows, r + dx : r + dx + w]
        boxed = box3x3_sum(dots.view(b * n_off, 1, h, w)).view(b, n_off, h, w)
        sim = boxed.div_((q_norm * norms).clamp_min_(EPS))
        score = sim
        if prior:
            distance = (dx_t.view(-1).float() ** 2 + dy**2).sqrt().view(1, -1, 1, 1)
            score = sim - prior / r * distance
        score = score.add_(outside)
        if dy < 0:
            score[:, :, : -dy] = -math.inf
        elif dy > 0:
            score[:, :, h - dy :] = -math.inf
        value, arg = score.max(dim=1, keepdim=True)
        better = value > best_score
        best_score = torch.where(better, value, best_score)
        if prior:
            value = sim.gather(1, arg)
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
    query: Tensor, key: Tensor, mode: str = "local", radius: int = 8, memory_mb: float = 1024,
    *, prior: float = 0.0,
) -> MatchResult:
    """Match blurry features ``query`` against reference features ``key`` (same size);
    ``prior``: local mode only (:func:`match_local`)."""
    if mode == "local":
        return match_local(query, key, radius, prior=prior)
    if mode == "global":
        return match_global(query, key, memory_mb)
    if mode == "identity":
        return match_identity(query, key)
    raise ValueError(f"unknown matching mode {mode!r}")


def transfer(reference: Tensor, index: Tensor, scale: int) -> Tensor:
    """Move reference patches by ``index`` and fold them back (eq. 4) at ``scale``.

    ``reference`` is (B, C, s*Hc, s*Wc) for an index map of (B, Hc, Wc). The patch of
    coarse position k covers fine pixels [s*k - s, s*k + 2s) (a 3x3 coarse patch); each
    fine pixel averages the values that its (at most nine) covering patches carry, which
    equals unfold (kernel 3s, stride s, padding s) + gather + fold, divided by the overlap.

    Implementation: every move is by whole s x s blocks. The covering patch at k + d moves
    block k from block ``index[k + d] - d``, so each row of s pixels of an output block is
    a weighted sum of nine rows of s pixels of the reference (channels-last: s*C contiguous
    values), one ``embedding_bag``: no copy per covering position. The weight is 1 over
    the pixel's overlap count, and 0 for a covering patch that does not exist at the map's
    border or a block that would come from outside the reference (its zero padding).
    Returns a channels-last tensor.
    """
    b, c, h, w = reference.shape
    hc, wc = index.shape[-2:]
    s = scale
    if (h, w) != (hc * s, wc * s):
        raise ValueError(f"reference {h}x{w} does not match index {hc}x{wc} at scale {s}")
    device = reference.device
    jy = torch.div(index, wc, rounding_mode="floor")
    jx = index - jy * wc
    ys = torch.arange(hc, device=device).view(hc, 1)
    xs = torch.arange(wc, device=device).view(1, wc)
    rows, weights = [], []
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            cy, cx = ys + dy, xs + dx  # the covering patch's position
            exists = (cy >= 0) & (cy < hc) & (cx >= 0) & (cx < wc)
            cy, cx = cy.clamp(0, hc - 1), cx.clamp(0, wc - 1)
            by, bx = jy[:, cy, cx] - dy, jx[:, cy, cx] - dx  # the block it moves here
            inside = (by >= 0) & (by < hc) & (bx >= 0) & (bx < wc)
            rows.append(by.clamp(0, hc - 1) * (s * wc) + bx.clamp(0, wc - 1))
            weights.append(exists & inside)
    # how many covering patches exist per block: 3 x 3 inside, fewer at the border
    count = ((3 - (ys == 0).int() - (ys == hc - 1).int())
             * (3 - (xs == 0).int() - (xs == wc - 1).int())).unsqueeze(-1)
    weight = torch.stack(weights, -1).to(reference.dtype) / count.to(reference.dtype)
    # one bag per row of s pixels: sample n, block row ky, pixel row i, block column kx
    first = (torch.arange(b, device=device) * (h * wc)).view(b, 1, 1, 1, 1)
    first = first + (torch.arange(s, device=device) * wc).view(1, 1, s, 1, 1)
    bags = first + torch.stack(rows, -1).unsqueeze(2)
    table = reference.permute(0, 2, 3, 1).reshape(b * h * wc, s * c)
    out = F.embedding_bag(bags.view(-1, 9), table, mode="sum",
                          per_sample_weights=weight.unsqueeze(2).expand_as(bags).reshape(-1, 9))
    return out.view(b, h, w, c).permute(0, 3, 1, 2)

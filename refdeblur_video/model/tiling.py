"""Run a two-input image model over overlapping tiles and blend them back."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length`` with at least ``overlap``."""
    if length <= tile:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def tile_regions(height: int, width: int, tile: int,
                 overlap: int = 32) -> list[tuple[slice, slice]]:
    """(rows, columns) of the overlapping tiles that :func:`run_tiled` visits."""
    tile_h, tile_w = min(tile, height), min(tile, width)
    overlap = min(overlap, tile // 2)
    return [(slice(y, y + tile_h), slice(x, x + tile_w))
            for y in tile_starts(height, tile_h, overlap)
            for x in tile_starts(width, tile_w, overlap)]


def _ramp(length: int, overlap: int, at_start: bool, at_end: bool, device) -> Tensor:
    weight = torch.ones(length, device=device)
    ramp = torch.linspace(0, 1, overlap + 2, device=device)[1:-1] if overlap > 0 else None
    if ramp is not None and not at_start:
        weight[:overlap] = ramp
    if ramp is not None and not at_end:
        weight[-overlap:] = torch.minimum(weight[-overlap:], ramp.flip(0))
    return weight


def run_tiled(
    fn: Callable[[Tensor, Tensor], Tensor], blurry: Tensor, reference: Tensor, tile: int,
    overlap: int = 32,
) -> Tensor:
    """Apply ``fn(blurry_tile, reference_tile)`` over tiles; blend overlaps with linear ramps."""
    _, _, h, w = blurry.shape
    overlap = min(overlap, tile // 2)
    out = torch.zeros_like(blurry)
    norm = torch.zeros(1, 1, h, w, device=blurry.device, dtype=blurry.dtype)
    for rows, cols in tile_regions(h, w, tile, overlap):
        wy = _ramp(rows.stop - rows.start, overlap, rows.start == 0, rows.stop >= h,
                   blurry.device)
        wx = _ramp(cols.stop - cols.start, overlap, cols.start == 0, cols.stop >= w,
                   blurry.device)
        weight = (wy.view(-1, 1) * wx.view(1, -1)).to(blurry.dtype)
        region = (..., rows, cols)
        out[region] += fn(blurry[region], reference[region]).to(out.dtype) * weight
        norm[region] += weight
    return out / norm.clamp_min(1e-8)

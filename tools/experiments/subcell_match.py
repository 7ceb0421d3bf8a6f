#!/usr/bin/env python
"""The network's reference copies at sub-cell precision, without retraining: a one-off
test of whether the 4 x 4 quantisation of the match (1/4 resolution) is what pulls an
output toward the reference's geometry (docs/TRAINING.md, session 29).

After the match, a parabola through the cosine similarity at the chosen index and its four
neighbours gives each query cell a fractional offset in [-0.5, 0.5] cells per axis; the
REAMs at 1/2 and full resolution then copy each covering patch from its matched position
plus that offset rounded to their pixels (the coarsest REAM is unchanged). The rest is
``flow_source.py``, whose arguments this takes; use a cache folder of its own, since the
outputs differ from the plain network's:

    python tools/experiments/subcell_match.py runs/validation --model default \\
        --cache runs/flow_cache_subcell --variants own smooth2.5
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from refdeblur_video.model import net, ream
from refdeblur_video.model.matching import EPS, MatchResult


@dataclass
class SubcellMatch(MatchResult):
    """A match with its fractional offsets (:func:`subcell_offsets`)."""

    offsets: Tensor | None = None


def subcell_offsets(query: Tensor, key: Tensor, index: Tensor) -> Tensor:
    """(B, 2, h, w) fractional (y, x) offsets, in cells, of the vertex of a parabola through
    the similarity at the match and its two neighbours along each axis, clamped to
    [-0.5, 0.5] (a neighbour that scores higher, as under ``match_prior``, gives +-0.5);
    0 where the parabola does not open downwards or a neighbour is off the map."""
    b, _, h, w = query.shape
    jy, jx = torch.div(index, w, rounding_mode="floor"), index % w
    # the normalised 3x3 patches once; each similarity is a gather of the keys (the cosine
    # of net.matched_confidence, for five indices)
    q = F.unfold(query, 3, padding=1)
    k = F.unfold(key, 3, padding=1)
    q = q / q.norm(dim=1, keepdim=True).clamp_min(EPS)
    k = k / k.norm(dim=1, keepdim=True).clamp_min(EPS)

    def similarity(flat: Tensor) -> Tensor:
        picked = torch.gather(k, 2, flat.view(b, 1, h * w).expand(-1, k.shape[1], -1))
        return (q * picked).sum(1).view(b, h, w).clamp(-1.0, 1.0)

    centre = similarity(index)
    offsets = []
    for dy, dx in ((1, 0), (0, 1)):
        values, valid = [], []
        for sign in (-1, 1):
            y, x = jy + sign * dy, jx + sign * dx
            valid.append((y >= 0) & (y < h) & (x >= 0) & (x < w))
            flat = y.clamp(0, h - 1) * w + x.clamp(0, w - 1)
            values.append(similarity(flat))
        curvature = values[0] - 2 * centre + values[1]
        peak = (curvature < -1e-6) & valid[0] & valid[1]
        offset = 0.5 * (values[0] - values[1]) / curvature.clamp(max=-1e-6)
        offsets.append(torch.where(peak, offset.clamp(-0.5, 0.5), torch.zeros_like(offset)))
    return torch.stack(offsets, 1)


def fine_transfer(reference: Tensor, index: Tensor, scale: int, offsets: Tensor) -> Tensor:
    """:func:`~refdeblur_video.model.matching.transfer` with each covering patch moved by
    its match plus ``offsets`` (cells) rounded to pixels of this scale: one bag of nine
    reference pixels per output pixel. Returns a channels-last tensor, as ``transfer``."""
    b, c, h, w = reference.shape
    hc, wc = index.shape[-2:]
    s, device = scale, reference.device
    if (h, w) != (hc * s, wc * s):
        raise ValueError(f"reference {h}x{w} does not match index {hc}x{wc} at scale {s}")
    ys = torch.arange(hc, device=device).view(1, hc, 1)
    xs = torch.arange(wc, device=device).view(1, 1, wc)
    jy = torch.div(index, wc, rounding_mode="floor")
    move_y = s * (jy - ys) + torch.round(s * offsets[:, 0]).long()
    move_x = s * (index - jy * wc - xs) + torch.round(s * offsets[:, 1]).long()

    def fine(t: Tensor) -> Tensor:
        return t.repeat_interleave(s, 1).repeat_interleave(s, 2)

    py = torch.arange(h, device=device).view(1, h, 1)
    px = torch.arange(w, device=device).view(1, 1, w)
    first = torch.arange(b, device=device).view(b, 1, 1) * h * w
    bags, weights = [], []
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            cy, cx = (ys + dy).view(-1), (xs + dx).view(-1)
            exists = (((cy >= 0) & (cy < hc)).view(1, hc, 1)
                      & ((cx >= 0) & (cx < wc)).view(1, 1, wc))
            cy, cx = cy.clamp(0, hc - 1), cx.clamp(0, wc - 1)
            sy = py + fine(move_y[:, cy][:, :, cx])
            sx = px + fine(move_x[:, cy][:, :, cx])
            weights.append((sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
                           & fine(exists.expand(b, -1, -1)))
            bags.append(first + sy.clamp(0, h - 1) * w + sx.clamp(0, w - 1))
    count = fine(((3 - (ys == 0).int() - (ys == hc - 1).int())
                  * (3 - (xs == 0).int() - (xs == wc - 1).int())).expand(b, -1, -1))
    weight = torch.stack(weights, -1).to(reference.dtype) / count.unsqueeze(-1)
    table = reference.permute(0, 2, 3, 1).reshape(b * h * w, c)
    out = F.embedding_bag(torch.stack(bags, -1).view(-1, 9), table, mode="sum",
                          per_sample_weights=weight.view(-1, 9))
    return out.view(b, h, w, c).permute(0, 3, 1, 2)


_plain_match = net.RefDeblurNet._match_features
_plain_ream = ream.REAM.forward
_plain_transfer = ream.transfer
_current: list[Tensor | None] = [None]  # the offsets of the match a REAM is fusing


def _match_features(self, query: Tensor, key: Tensor, mode: str | None = None,
                    radius: int | None = None) -> MatchResult:
    found = _plain_match(self, query, key, mode, radius)
    if mode is not None:  # the frame against itself (the reference check): no copies
        return found
    with torch.no_grad(), torch.autocast(query.device.type, enabled=False):
        offsets = subcell_offsets(query.float(), key.float(), found.index)
    return SubcellMatch(found.index, found.confidence, offsets)


def _ream_forward(self, blur_features: Tensor, ref_features: Tensor,
                  matched: MatchResult) -> Tensor:
    _current[0] = getattr(matched, "offsets", None)
    try:
        return _plain_ream(self, blur_features, ref_features, matched)
    finally:
        _current[0] = None


def _transfer(reference: Tensor, index: Tensor, scale: int) -> Tensor:
    offsets = _current[0]
    if scale == 1 or offsets is None:  # the coarsest REAM, or a match made elsewhere
        return _plain_transfer(reference, index, scale)
    return fine_transfer(reference, index, scale, offsets)


def apply() -> None:
    """Make every network built from here on copy at sub-cell precision (a training run
    takes it through ``sitecustomize``: see docs/TRAINING.md, session 29)."""
    net.RefDeblurNet._match_features = _match_features
    ream.REAM.forward = _ream_forward
    ream.transfer = _transfer


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    import flow_source

    apply()
    sys.exit(flow_source.main())

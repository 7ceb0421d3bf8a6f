"""A contrastive loss that teaches the matching encoder phi where a patch is (not in the paper).

The network's patch matching picks, for each 1/4-resolution cell of the blurry frame, the
reference cell whose phi features are most similar (paper eqs. 1-2). The arg-max has no
gradient, so the reconstruction loss reaches phi only through the confidence of whatever
cell won, never through which cell should have won. This loss supplies that: the blurry
crop against its own sharp frame, softened as the network softens a reference and moved by
a known whole number of cells (plus up to a pixel, as real references are never moved by
whole cells), scored over the search window exactly as the matching scores it; the right
answer is the known move. Cross-entropy over the window's cells (an InfoNCE loss).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..model.matching import EPS, box3x3_sum, patch_norms
from ..model.net import RefDeblurNet

CELL = RefDeblurNet.stride  # pixels per matching cell


def window_similarities(query: Tensor, key: Tensor, radius: int) -> Tensor:
    """(B, (2r+1)^2, H, W): cosine similarity of each 3x3 query patch with the key patch at
    each offset within ``radius`` cells (offsets in row-major order, -r..r), differentiably.
    Offsets that stay inside the map score as in
    :func:`~refdeblur_video.model.matching.match_local`; those that leave it score 0 here
    (-inf there)."""
    h, w = query.shape[-2:]
    pad = (radius, radius, radius, radius)
    keys = F.pad(key, pad)
    key_norms = F.pad(patch_norms(key), pad)
    query_norms = patch_norms(query)
    scores = []
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            rows, cols = slice(radius + dy, radius + dy + h), slice(radius + dx, radius + dx + w)
            dots = box3x3_sum((query * keys[..., rows, cols]).sum(1, keepdim=True))
            scores.append(dots / (query_norms * key_norms[..., rows, cols]).clamp_min(EPS))
    return torch.cat(scores, dim=1)


def shifted(image: Tensor, dy: int, dx: int) -> Tensor:
    """``image`` moved by (dy, dx) pixels (content at y comes from y - dy), the border
    replicated."""
    pad = max(abs(dy), abs(dx))
    if pad == 0:
        return image
    h, w = image.shape[-2:]
    padded = F.pad(image, (pad, pad, pad, pad), mode="replicate")
    return padded[..., pad - dy : pad - dy + h, pad - dx : pad - dx + w]


def matching_loss(net: RefDeblurNet, blurry: Tensor, sharp: Tensor, radius: int = 4,
                  temperature: float = 0.05, generator: torch.Generator | None = None
                  ) -> tuple[Tensor, Tensor]:
    """The loss of one batch of blurry crops and their sharp frames (B, 3, H, W), and the
    share of cells whose best match is the right one (detached). One move per batch, drawn
    within ``radius - 1`` cells. Only cells at least ``radius + 1`` cells from the border
    count: their right answer lies inside the moved key (some wrong candidates may still
    come from its replicated border)."""
    cells = torch.randint(-(radius - 1), radius, (2,), generator=generator)
    jitter = torch.randint(-1, 2, (2,), generator=generator)
    dy, dx = (CELL * cells + jitter).tolist()
    # cosine scores in float32, as the search computes them
    with torch.autocast(blurry.device.type, enabled=False):
        query = net.phi(blurry.float())
        key = net.phi(shifted(net.soften(sharp.float()), dy, dx))
        scores = window_similarities(query, key, radius)
    margin = radius + 1
    scores = scores[..., margin:-margin, margin:-margin]
    if scores.shape[-1] <= 0 or scores.shape[-2] <= 0:
        raise ValueError(f"crops of {tuple(blurry.shape[-2:])} are too small for a matching "
                         f"window of {radius} cells")
    side = 2 * radius + 1
    target = (radius + int(cells[0])) * side + radius + int(cells[1])
    labels = torch.full((scores.shape[0], *scores.shape[-2:]), target, dtype=torch.long,
                        device=scores.device)
    loss = F.cross_entropy(scores / temperature, labels)
    accuracy = (scores.detach().argmax(1) == target).float().mean()
    return loss, accuracy

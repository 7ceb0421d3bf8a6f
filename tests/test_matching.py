"""Patch matching and feature transfer against straightforward unfold/fold references."""

import pytest
import torch
import torch.nn.functional as F

from refdeblur_video.model.matching import (
    match,
    match_global,
    match_identity,
    match_local,
    transfer,
)


def full_matrix_match(query, key):
    """The paper's formulation: every normalised 3x3 patch against every other."""
    q = F.unfold(query, 3, padding=1)
    k = F.unfold(key, 3, padding=1)
    q = q / q.norm(dim=1, keepdim=True).clamp_min(1e-6)
    k = k / k.norm(dim=1, keepdim=True).clamp_min(1e-6)
    sim = torch.einsum("bcn,bcm->bnm", q, k)
    conf, index = sim.max(dim=2)
    b, _, h, w = query.shape
    return index.view(b, h, w), conf.view(b, 1, h, w)


def fold_transfer(reference, index, scale):
    """TTSR-style: unfold 3s x 3s patches at stride s, pick by index, fold, divide by overlap."""
    b, c, h, w = reference.shape
    kernel, pad = 3 * scale, scale
    patches = F.unfold(reference, kernel, padding=pad, stride=scale)
    picked = torch.gather(patches, 2, index.view(b, 1, -1).expand(-1, patches.shape[1], -1))
    folded = F.fold(picked, (h, w), kernel, padding=pad, stride=scale)
    ones = F.fold(F.unfold(torch.ones(1, 1, h, w), kernel, padding=pad, stride=scale),
                  (h, w), kernel, padding=pad, stride=scale)
    return folded / ones


@pytest.mark.parametrize("memory_mb", [0.05, 1024])
def test_global_chunked_equals_unchunked(memory_mb):
    torch.manual_seed(0)
    query, key = torch.randn(2, 2, 6, 11, 9).unbind(0)
    expected_index, expected_conf = full_matrix_match(query, key)
    found = match_global(query, key, memory_mb=memory_mb)
    assert torch.equal(found.index, expected_index)
    assert torch.allclose(found.confidence, expected_conf, atol=1e-5)


def test_local_with_covering_window_equals_global():
    torch.manual_seed(1)
    query, key = torch.randn(2, 1, 5, 9, 12).unbind(0)
    local = match_local(query, key, radius=12)
    glob = match_global(query, key)
    assert torch.equal(local.index, glob.index)
    assert torch.allclose(local.confidence, glob.confidence, atol=1e-5)


def test_local_finds_a_known_shift_with_full_confidence():
    torch.manual_seed(2)
    key = torch.randn(1, 4, 20, 24)
    query = torch.roll(key, shifts=(2, -3), dims=(2, 3))  # query(y, x) = key(y - 2, x + 3)
    found = match(query, key, "local", radius=4)
    ys, xs = torch.meshgrid(torch.arange(20), torch.arange(24), indexing="ij")
    inner = (slice(4, -4), slice(4, -4))
    expected = (ys - 2) * 24 + (xs + 3)
    assert torch.equal(found.index[0][inner], expected[inner])
    assert torch.allclose(found.confidence[0, 0][inner], torch.ones(12, 16), atol=1e-5)


def test_index_and_confidence_shapes_and_ranges():
    query, key = torch.randn(2, 3, 8, 7, 10).unbind(0)
    for mode in ("local", "global"):
        found = match(query, key, mode, radius=2)
        assert found.index.shape == (3, 7, 10) and found.index.dtype == torch.long
        assert found.confidence.shape == (3, 1, 7, 10)
        assert found.index.min() >= 0 and found.index.max() < 70
        assert found.confidence.min() >= -1 and found.confidence.max() <= 1


def test_local_search_stays_within_the_window():
    query, key = torch.randn(2, 1, 4, 16, 16).unbind(0)
    found = match_local(query, key, radius=2)
    ys, xs = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    assert (found.index[0] // 16 - ys).abs().max() <= 2
    assert (found.index[0] % 16 - xs).abs().max() <= 2


@pytest.mark.parametrize("scale", [1, 2, 4])
@pytest.mark.parametrize("hc,wc", [(5, 7), (1, 3), (2, 1)])
def test_transfer_equals_unfold_gather_fold(scale, hc, wc):
    torch.manual_seed(scale)
    reference = torch.randn(2, 3, hc * scale, wc * scale)
    index = torch.randint(0, hc * wc, (2, hc, wc))
    assert torch.allclose(transfer(reference, index, scale), fold_transfer(reference, index, scale),
                          atol=1e-5)


def test_transfer_with_identity_index_returns_reference():
    reference = torch.randn(1, 2, 12, 16)
    index = torch.arange(3 * 4).view(1, 3, 4)
    assert torch.allclose(transfer(reference, index, 4), reference, atol=1e-6)


def windowed_match(query, key, radius):
    """The window search spelled out: every offset in the tie order (smaller vertical, then
    horizontal displacement first), each against the full cosine matrix."""
    b, _, h, w = query.shape
    q = F.unfold(query, 3, padding=1)
    k = F.unfold(key, 3, padding=1)
    q = q / q.norm(dim=1, keepdim=True).clamp_min(1e-6)
    k = k / k.norm(dim=1, keepdim=True).clamp_min(1e-6)
    sim = torch.einsum("bcn,bcm->bnm", q, k)
    best = torch.full((b, h * w), -float("inf"))
    index = torch.arange(h * w).repeat(b, 1)
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    order = sorted(range(-radius, radius + 1), key=lambda d: (abs(d), d))
    for dy in order:
        for dx in order:
            ty, tx = (ys + dy).flatten(), (xs + dx).flatten()
            inside = (ty >= 0) & (ty < h) & (tx >= 0) & (tx < w)
            target = (ty.clamp(0, h - 1) * w + tx.clamp(0, w - 1)).expand(b, -1)
            value = torch.gather(sim, 2, target[..., None])[..., 0]
            better = inside & (value > best + 1e-6)
            best = torch.where(better, value, best)
            index = torch.where(better, target, index)
    return index.view(b, h, w), best.view(b, 1, h, w)


@pytest.mark.parametrize("width", [5, 16, 23, 40])
@pytest.mark.parametrize("radius", [1, 3, 8])
def test_local_equals_the_window_search_spelled_out(width, radius):
    torch.manual_seed(width + radius)
    query, key = torch.randn(2, 2, 3, 9, width).unbind(0)
    key[:, :, 2:5] = 1.0  # flat rows: ties, which keep the smallest displacement
    query[:, :, 2:5] = 1.0
    index, confidence = windowed_match(query, key, radius)
    found = match_local(query, key, radius)
    assert torch.equal(found.index, index)
    assert torch.allclose(found.confidence, confidence, atol=1e-5)


def test_a_displacement_prior_prefers_small_offsets_and_keeps_the_true_confidence():
    torch.manual_seed(5)
    key = torch.randn(1, 4, 20, 24)
    query = torch.roll(key, shifts=(0, 2), dims=(2, 3)) + 0.8 * torch.randn(1, 4, 20, 24)
    plain = match_local(query, key, radius=4)
    held = match_local(query, key, radius=4, prior=50.0)
    ys, xs = torch.meshgrid(torch.arange(20), torch.arange(24), indexing="ij")
    identity = ys * 24 + xs
    inner = (slice(4, -4), slice(4, -4))
    assert not torch.equal(plain.index[0][inner], identity[inner])  # the shift is found
    assert torch.equal(held.index[0], identity)  # a prior this strong keeps every cell
    # the confidence is the similarity of the patch taken, not the penalised score
    q = F.unfold(query, 3, padding=1)
    k = F.unfold(key, 3, padding=1)
    cos = (q * k).sum(1) / (q.norm(dim=1) * k.norm(dim=1)).clamp_min(1e-6)
    assert torch.allclose(held.confidence.view(-1), cos.view(-1), atol=1e-5)
    # a weak prior still follows the shift where the match is clear
    small = match_local(query, key, radius=4, prior=0.01)
    shifted = (ys * 24 + xs - 2)[inner]
    assert (small.index[0][inner] == shifted).float().mean() > 0.9
    assert (plain.index[0][inner] == shifted).float().mean() > 0.9


def test_identity_match_takes_each_patch_in_place_with_its_own_similarity():
    """Checked against the differentiable patch similarity the training uses (unfold)."""
    from refdeblur_video.model.net import matched_confidence

    torch.manual_seed(3)
    query, key = torch.randn(2, 6, 9, 11), torch.randn(2, 6, 9, 11)
    found = match(query, key, "identity")
    assert torch.equal(found.index, torch.arange(99).view(1, 9, 11).expand(2, 9, 11))
    assert torch.allclose(found.confidence, matched_confidence(query, key, found.index),
                          atol=1e-5)
    # the key itself: full confidence wherever a patch has any signal
    assert torch.allclose(match_identity(query, query).confidence, torch.ones(2, 1, 9, 11),
                          atol=1e-5)

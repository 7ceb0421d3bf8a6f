"""The loss taken after the reference transfer (refdeblur_video/training/transfer_loss.py)."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from test_transfer import _scene  # the textured scene of the OpenCV transfer's tests

from refdeblur_video.refine.transfer import DEFAULT_TRANSFER, transfer_reference
from refdeblur_video.training.transfer_loss import transferred_output

H, W = 144, 192


def _pair(shift: tuple[int, int] = (3, -4)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sharp frame, a half-deblurred output of it, the scene moved by ``shift``)."""
    big = _scene(0)
    dy, dx = shift
    sharp = big[8:8 + H, 8:8 + W]
    reference = big[8 - dy:8 - dy + H, 8 - dx:8 - dx + W]
    return sharp, cv2.GaussianBlur(sharp, (0, 0), 1.5), reference


def _tensor(*images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def test_matches_the_transfer_that_runs_at_inference():
    # an independent implementation: OpenCV's blend, on the same output and reference
    sharp, soft, reference = _pair()
    _, unrelated_soft, _ = _pair((0, 0))
    other = _scene(1)[8:8 + H, 8:8 + W]
    finished = transferred_output(_tensor(soft, unrelated_soft), _tensor(reference, other),
                                  DEFAULT_TRANSFER)
    for k, (out, ref) in enumerate(((soft, reference), (unrelated_soft, other))):
        expected = transfer_reference(out, ref, DEFAULT_TRANSFER)
        got = finished[k].permute(1, 2, 0).numpy().clip(0, 1)
        assert np.abs(got - expected).max() < 2e-3
    # and the blend did something where the reference holds the scene
    gained = np.abs(finished[0].permute(1, 2, 0).numpy() - sharp).mean()
    assert gained < 0.5 * np.abs(soft - sharp).mean()


def test_gradient_reaches_the_output_where_the_transfer_does_not_decide_it():
    sharp, soft, reference = _pair()
    output = _tensor(soft).requires_grad_(True)
    finished = transferred_output(output, _tensor(reference), DEFAULT_TRANSFER)
    (finished - _tensor(sharp)).abs().mean().backward()
    grad = output.grad.abs().mean(1)[0]
    plain = 1.0 / output.numel()  # each pixel's share of an L1 on the output alone
    # trusted pixels take the reference, so the output's own value matters little there;
    # in the last rows the reference, moved by the shift, does not reach, and nothing is
    # blended in: the output alone decides them
    assert torch.isfinite(output.grad).all()
    assert grad[20:-20, 20:-20].mean() < 0.3 * plain
    assert grad[-2:].mean() > 0.7 * plain

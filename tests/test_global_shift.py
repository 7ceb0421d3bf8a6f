"""A large camera motion between a frame and its reference (refine/global_shift.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from refdeblur_video.evaluate.metrics import psnr
from refdeblur_video.refine import global_shift, transfer
from refdeblur_video.refine.transfer import _gray8, fitted_homography, transfer_reference

H, W = 360, 640
MARGIN = 96


def _scene(seed: int) -> np.ndarray:
    """A textured RGB image in [0, 1], MARGIN larger than the frame on every side."""
    rng = np.random.default_rng(seed)
    size = (H + 2 * MARGIN, W + 2 * MARGIN)
    image = cv2.GaussianBlur(rng.random((*size, 3), dtype=np.float32), (0, 0), 1.5) * 0.5
    image += cv2.resize(rng.random((size[0] // 24, size[1] // 24, 3), dtype=np.float32),
                        size[::-1], interpolation=cv2.INTER_CUBIC) * 0.5
    for _ in range(60):
        y, x = rng.integers(0, size[0] - 30), rng.integers(0, size[1] - 30)
        image[y:y + rng.integers(8, 30), x:x + rng.integers(8, 30)] = rng.random(3)
    return np.clip(image, 0, 1)


def _pair(dx: int, dy: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(frame, reference): the reference shows the frame's pixel p at p + (dx, dy)."""
    scene = _scene(seed)
    frame = scene[MARGIN:MARGIN + H, MARGIN:MARGIN + W]
    reference = scene[MARGIN - dy:MARGIN - dy + H, MARGIN - dx:MARGIN - dx + W]
    return frame, reference


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return psnr(np.round(a * 255).astype(np.uint8), np.round(b * 255).astype(np.uint8))


def test_the_global_shift_of_a_fast_pan_is_found_and_an_unrelated_frame_has_none():
    frame, reference = _pair(70, -40)
    blurry = cv2.blur(frame, (15, 1))  # blurred along the pan, as such frames are
    found = global_shift.far_shift(global_shift.shrunk(_gray8(blurry), 1),
                                   global_shift.shrunk(_gray8(reference), 1), H, W, 1)
    assert found is not None
    assert abs(found[0] - 70) < 1.5 and abs(found[1] + 40) < 1.5
    other = _scene(5)[MARGIN:MARGIN + H, MARGIN:MARGIN + W]
    assert global_shift.phase_shift(global_shift.shrunk(_gray8(frame), 1),
                                    global_shift.shrunk(_gray8(other), 1)) is None


def test_a_motion_within_the_flows_reach_starts_from_no_motion_as_before():
    frame, reference = _pair(6, -4)
    coarsest = transfer.dis_coarsest_scale(H, W, 96)
    assert global_shift.initial_flow(_gray8(frame), _gray8(reference), coarsest) is None


@pytest.mark.parametrize("started", [True, False])
def test_a_reference_far_off_along_a_fast_pan_is_aligned_and_copied(started, monkeypatch):
    frame, reference = _pair(80, -30)
    soft = cv2.GaussianBlur(frame, (0, 0), 2.5)  # what the network leaves of a blurry frame
    if not started:  # what the transfer did before: DIS from no motion
        monkeypatch.setattr(transfer, "initial_flow", lambda *args: None)
    fused = transfer_reference(soft, reference)
    inner = (slice(30, H), slice(0, W - 80))  # where the reference shows the frame
    gain = _psnr(fused[inner], frame[inner]) - _psnr(soft[inner], frame[inner])
    if started:
        assert gain > 4
    else:  # the flow does not reach the reference, and nothing is copied
        assert gain < 1


def test_the_camera_motion_between_frames_far_apart_is_found():
    frame, reference = _pair(90, 35)
    fitted = fitted_homography(frame, reference)
    assert fitted is not None
    corners = np.array([[0, 0], [W - 1, 0], [0, H - 1], [W - 1, H - 1]], np.float32)
    moved = cv2.perspectiveTransform(corners[:, None], fitted)[:, 0]
    assert np.abs(moved - corners - [90, 35]).max() < 1.0


@pytest.mark.parametrize("started", [True, False])
def test_the_torch_transfer_also_starts_from_the_global_shift(started, monkeypatch):
    import torch

    from refdeblur_video.refine import torch_transfer

    frame, reference = _pair(80, -30)
    soft = cv2.GaussianBlur(frame, (0, 0), 2.5)
    if not started:
        monkeypatch.setattr(torch_transfer, "_global_shifts", lambda *args: None)
    as_batch = [torch.from_numpy(x).permute(2, 0, 1)[None] for x in (soft, soft, reference,
                                                                    soft)]
    # a batch of two frames: one far from its reference, one that is its own reference
    fused = torch_transfer.transfer_reference_torch(torch.cat(as_batch[:2]),
                                                    torch.cat(as_batch[2:]))
    fused = fused.permute(0, 2, 3, 1).numpy()
    inner = (slice(30, H), slice(0, W - 80))
    gain = _psnr(fused[0][inner], frame[inner]) - _psnr(soft[inner], frame[inner])
    assert (gain > 4) if started else (gain < 1)
    assert _psnr(fused[1], soft) > 45  # a frame that is its own reference is left as it was

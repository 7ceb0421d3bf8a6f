"""Flicker metrics of consecutive frames, with motion taken from the ground truth.

- **Warping error** (after Lai et al., ECCV 2018): frame ``t-1`` is warped onto frame ``t``
  with the optical flow of the *ground-truth* frames ``t -> t-1`` (OpenCV DIS, preset
  MEDIUM), and the mean absolute difference to frame ``t`` is taken over the pixels where
  that flow is trusted, in 8-bit levels (Lai et al. square it; an absolute difference reads
  in grey levels). The same number for the ground truth itself is the floor a perfect result
  would reach (flow error, lighting, noise): a flickering frame stands out above it.
  Trusted pixels: the flow lands inside the frame, forward and backward flows agree
  (``|F_fw(p + F_bw(p)) + F_bw(p)|^2 <= 0.01 (|F_fw(..)|^2 + |F_bw|^2) + 0.5``) and ``p`` is
  not on a motion boundary (``|grad F_bw|^2 <= 0.01 |F_bw|^2 + 0.002``), Ruder et al.'s
  occlusion rule as Lai et al. use it.
- **tOF** (TecoGAN): the mean per-pixel Euclidean distance, in pixels, between the flow of
  two consecutive result frames and the flow of the same two ground-truth frames (Farneback
  on grey frames with TecoGAN's settings ``0.5, 3, 15, 3, 5, 1.2, 0``), over the whole frame.

Frames are ``H x W x 3`` RGB ``uint8``; a flow ``F`` from ``a`` to ``b`` is ``H x W x 2``
(x, y) with ``a(p) ~ b(p + F(p))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FARNEBACK = (0.5, 3, 15, 3, 5, 1.2, 0)  # pyr_scale, levels, winsize, iterations, poly_n/sigma


def grey(image: np.ndarray) -> np.ndarray:
    """8-bit grey copy of an RGB uint8 frame."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def dis_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """DIS (preset MEDIUM) flow from grey ``a`` to grey ``b``."""
    dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(a, b, None)


def farneback_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Farneback flow from grey ``a`` to grey ``b`` with TecoGAN's settings."""
    return cv2.calcOpticalFlowFarneback(a, b, None, *FARNEBACK)


def sample(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` read at ``p + flow(p)`` (bilinear, borders replicated)."""
    height, width = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(image, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def trusted(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Pixels of frame ``t`` where the flow ``backward`` (t -> t-1) can be used: inside,
    consistent with ``forward`` (t-1 -> t) and off motion boundaries."""
    height, width = backward.shape[:2]
    xs, ys = np.meshgrid(np.arange(width), np.arange(height))
    tx, ty = xs + backward[..., 0], ys + backward[..., 1]
    inside = (tx >= 0) & (tx <= width - 1) & (ty >= 0) & (ty <= height - 1)
    there = sample(forward, backward)
    mismatch = ((there + backward) ** 2).sum(-1)
    consistent = mismatch <= 0.01 * ((there ** 2).sum(-1) + (backward ** 2).sum(-1)) + 0.5
    gradient = sum(np.gradient(backward[..., c], axis=a) ** 2 for c in (0, 1) for a in (0, 1))
    smooth = gradient <= 0.01 * (backward ** 2).sum(-1) + 0.002
    return inside & consistent & smooth


@dataclass(frozen=True)
class GroundTruthPair:
    """What the ground truth says about frames ``t-1, t``: the flow used to warp ``t-1`` onto
    ``t``, where it is trusted, and the Farneback flow ``t-1 -> t`` for tOF."""

    backward: np.ndarray
    valid: np.ndarray
    motion: np.ndarray

    @property
    def valid_share(self) -> float:
        return float(self.valid.mean())


def ground_truth_pair(previous: np.ndarray, current: np.ndarray) -> GroundTruthPair:
    """Flows of two consecutive ground-truth frames (RGB uint8)."""
    a, b = grey(previous), grey(current)
    backward = dis_flow(b, a)
    valid = trusted(backward, dis_flow(a, b))
    return GroundTruthPair(backward, valid, farneback_flow(a, b))


def warping_error(previous: np.ndarray, current: np.ndarray, pair: GroundTruthPair) -> float:
    """Mean absolute difference (8-bit levels) between ``current`` and ``previous`` warped
    onto it with the ground truth's flow, over the trusted pixels (NaN when there are none)."""
    if not pair.valid.any():
        return float("nan")
    warped = sample(previous.astype(np.float32), pair.backward)
    difference = np.abs(current.astype(np.float32) - warped)
    return float(difference[pair.valid].mean())


def tof(previous: np.ndarray, current: np.ndarray, pair: GroundTruthPair) -> float:
    """Mean distance (pixels) between the flow of ``previous -> current`` and the ground
    truth's."""
    motion = farneback_flow(grey(previous), grey(current))
    return float(np.linalg.norm(motion - pair.motion, axis=-1).mean())

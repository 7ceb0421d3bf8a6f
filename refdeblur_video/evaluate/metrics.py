"""Full-reference image metrics: PSNR and SSIM (NumPy/OpenCV, plus a batched torch path).

Conventions (docs/ARCHITECTURE.md, "Conventions"):

- Inputs are ``H x W x 3`` RGB ``uint8`` frames (``H x W`` grey is accepted too).
- PSNR: peak 255, no border crop, one value per frame over all channels; identical frames
  give ``inf``.
- SSIM: 11x11 Gaussian window (sigma 1.5), population covariance, ``data_range=255``,
  computed per channel and averaged -- the numbers of
  ``skimage.metrics.structural_similarity(a, b, channel_axis=-1, gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, data_range=255)``.
- ``y_channel=True`` evaluates the ITU-R BT.601 luma instead (MATLAB ``rgb2ycbcr``:
  ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255``, range 16..235, not rounded), still
  with peak / data range 255. Reports label this convention (see :func:`convention_label`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import cv2
import numpy as np

from refdeblur_video.errors import UserError

if TYPE_CHECKING:
    import torch

PEAK = 255.0
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # int(3.5 * sigma + 0.5), the truncation scikit-image uses -> 11 taps
SSIM_WINDOW = 2 * SSIM_RADIUS + 1
SSIM_C1 = (0.01 * PEAK) ** 2
SSIM_C2 = (0.03 * PEAK) ** 2
# BT.601 luma weights for RGB in 0..255, MATLAB rgb2ycbcr / skimage.color.rgb2ycbcr.
Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0
Y_OFFSET = 16.0


def convention_label(y_channel: bool = False) -> str:
    """One line naming the metric convention, for reports."""
    if y_channel:
        return (
            "Y channel (ITU-R BT.601 luma, MATLAB rgb2ycbcr, 16..235): PSNR peak 255, no crop; "
            "SSIM 11x11 Gaussian window, sigma 1.5"
        )
    return (
        "RGB uint8: PSNR peak 255, no crop, averaged per frame; SSIM 11x11 Gaussian window, "
        "sigma 1.5, per channel then averaged (scikit-image, use_sample_covariance=False); "
        "a video's frames made RGB by its own matrix and range, chroma upsampled bilinearly "
        "(not swscale's default, which reads a few tenths of a dB apart)"
    )


def check_pair(a: np.ndarray, b: np.ndarray) -> None:
    """Raise :class:`UserError` unless ``a`` and ``b`` are uint8 images of one shape."""
    if not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray):
        raise UserError("metrics need NumPy image arrays")
    if a.shape != b.shape:
        raise UserError(f"image sizes differ: {_describe(a)} vs {_describe(b)}")
    if a.dtype != b.dtype:
        raise UserError(f"image types differ: {a.dtype} vs {b.dtype}")
    if a.dtype != np.uint8:
        raise UserError(f"metrics expect 8-bit images (uint8), got {a.dtype}")
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3)):
        raise UserError(f"expected an H x W x 3 RGB image, got shape {a.shape}")


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """BT.601 luma (16..235, float64, not rounded) of an ``H x W x 3`` uint8 RGB image."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise UserError(f"the Y channel needs an H x W x 3 RGB image, got shape {image.shape}")
    return image.astype(np.float64) @ Y_WEIGHTS + Y_OFFSET


def psnr(a: np.ndarray, b: np.ndarray, *, y_channel: bool = False) -> float:
    """PSNR in dB between two uint8 images (peak 255, no crop); ``inf`` if identical."""
    x, y = _prepare(a, b, y_channel)
    mse = float(np.mean((x - y) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(PEAK**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray, *, y_channel: bool = False) -> float:
    """Mean SSIM (11x11 Gaussian, sigma 1.5), per channel then averaged; 1.0 if identical."""
    x, y = _prepare(a, b, y_channel)
    if min(x.shape[:2]) < SSIM_WINDOW:
        raise UserError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels")
    if x.ndim == 2:
        return _ssim_plane(x, y)
    return float(np.mean([_ssim_plane(x[..., c], y[..., c]) for c in range(x.shape[2])]))


def _prepare(a: np.ndarray, b: np.ndarray, y_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    check_pair(a, b)
    if y_channel:
        return rgb_to_y(a), rgb_to_y(b)
    return a.astype(np.float64), b.astype(np.float64)


def _gaussian_valid(plane: np.ndarray) -> np.ndarray:
    """Gaussian-filter a float64 plane and keep only pixels whose window lies inside it.

    scikit-image filters the whole image and then drops a 5-pixel border, so the border
    mode never reaches the averaged values; filtering and cropping gives the same numbers.
    """
    kernel = cv2.getGaussianKernel(SSIM_WINDOW, SSIM_SIGMA, ktype=cv2.CV_64F)
    full = cv2.sepFilter2D(plane, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REFLECT)
    r = SSIM_RADIUS
    return full[r:-r, r:-r]


def _ssim_plane(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(_ssim_map(x, y, _gaussian_valid)))


def _ssim_map(x, y, blur):
    """The SSIM of every window position, given ``blur`` (a 'valid' Gaussian filter).

    Only arithmetic operators, so NumPy arrays and torch tensors both work.
    """
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov = blur(x * y) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + SSIM_C1) * (2 * cov + SSIM_C2)
    denominator = (mu_x**2 + mu_y**2 + SSIM_C1) * (var_x + var_y + SSIM_C2)
    return numerator / denominator


def _describe(image: np.ndarray) -> str:
    return "x".join(str(n) for n in image.shape)


# --- torch path -------------------------------------------------------------------------


def psnr_torch(
    a: torch.Tensor, b: torch.Tensor, *, y_channel: bool = False, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """PSNR per image of two batches (``N x 3 x H x W`` or ``3 x H x W``); shape ``(N,)``.

    ``uint8`` tensors are used as they are; floating tensors are read as [0, 1] and
    quantised like a written frame (clamp, x255, round), so the numbers equal
    :func:`psnr` of the saved uint8 frames. Works on any device; ``dtype`` (default
    float64) is the compute precision.
    """
    import torch

    x, y = _prepare_torch(a, b, y_channel, dtype)
    mse = ((x - y) ** 2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(PEAK**2 / mse)  # mse == 0 -> inf


def ssim_torch(
    a: torch.Tensor, b: torch.Tensor, *, y_channel: bool = False, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Mean SSIM per image of two batches, same conventions as :func:`ssim`; shape ``(N,)``."""
    import torch
    import torch.nn.functional as F

    x, y = _prepare_torch(a, b, y_channel, dtype)
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise UserError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels")
    channels = x.shape[1]
    taps = torch.arange(SSIM_WINDOW, dtype=x.dtype, device=x.device) - SSIM_RADIUS
    g = torch.exp(-(taps**2) / (2 * SSIM_SIGMA**2))
    g = g / g.sum()
    rows = g.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    cols = g.view(1, 1, 1, -1).expand(channels, 1, 1, -1)

    def blur(t: torch.Tensor) -> torch.Tensor:  # 'valid' convolution = filter, then crop
        return F.conv2d(F.conv2d(t, rows, groups=channels), cols, groups=channels)

    # per channel means, then the channel average (equal sizes -> plain mean over all)
    return _ssim_map(x, y, blur).flatten(2).mean(dim=2).mean(dim=1)


def _prepare_torch(
    a: torch.Tensor, b: torch.Tensor, y_channel: bool, dtype: torch.dtype | None
) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    if a.shape != b.shape:
        raise UserError(f"tensor sizes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.dtype != b.dtype:
        raise UserError(f"tensor types differ: {a.dtype} vs {b.dtype}")
    if a.ndim == 3:
        a, b = a.unsqueeze(0), b.unsqueeze(0)
    if a.ndim != 4 or a.shape[1] not in (1, 3):
        raise UserError(f"expected N x 3 x H x W tensors, got shape {tuple(a.shape)}")
    dtype = dtype or torch.float64
    x, y = _to_255(a, dtype), _to_255(b, dtype)
    if y_channel:
        if x.shape[1] != 3:
            raise UserError("the Y channel needs RGB (3-channel) tensors")
        w = torch.as_tensor(Y_WEIGHTS, dtype=dtype, device=x.device).view(1, 3, 1, 1)
        x = (x * w).sum(dim=1, keepdim=True) + Y_OFFSET
        y = (y * w).sum(dim=1, keepdim=True) + Y_OFFSET
    return x, y


def _to_255(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if t.dtype.is_floating_point:
        return (t.clamp(0, 1) * 255).round().to(dtype)
    if t.dtype.is_signed or t.dtype.itemsize != 1:
        raise UserError(f"expected uint8 or floating [0, 1] tensors, got {t.dtype}")
    return t.to(dtype)

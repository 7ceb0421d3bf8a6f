"""Image operations of the reference transfer in PyTorch, on whatever device holds the frames.

They mirror the OpenCV calls of :mod:`.transfer` (Gaussian blur with reflected borders,
bilinear remap with replicated borders, RGB to grey) so that the step after the network can
run where the network ran, without a round trip to the CPU. Images are ``(N, C, H, W)``
float tensors.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

GREY_WEIGHTS = (0.299, 0.587, 0.114)  # OpenCV's RGB -> grey


def gaussian_kernel(sigma: float, device: torch.device, dtype: torch.dtype) -> Tensor:
    """The 1-D kernel OpenCV's ``GaussianBlur(src, (0, 0), sigma)`` uses on float images
    (radius 4 sigma), normalised."""
    radius = max(1, round(sigma * 4))
    x = torch.arange(-radius, radius + 1, device=device, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return (kernel / kernel.sum()).to(dtype)


def gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of every channel, borders reflected (OpenCV's default)."""
    if sigma <= 0:
        return image
    n, c, h, w = image.shape
    kernel = gaussian_kernel(sigma, image.device, image.dtype)
    radius = kernel.numel() // 2
    mode = "reflect" if radius < min(h, w) else "replicate"
    flat = image.reshape(n * c, 1, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode=mode), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode=mode), kernel.view(1, 1, -1, 1))
    return flat.reshape(n, c, h, w)


def box_filter(image: Tensor, radius: int) -> Tensor:
    """Mean over the (2 radius + 1)^2 square around each pixel, borders replicated; its
    cost does not grow with the radius (running sums)."""
    if radius <= 0:
        return image
    n, c, h, w = image.shape
    side = 2 * radius + 1
    padded = F.pad(image.reshape(n * c, 1, h, w), (radius + 1, radius, radius + 1, radius),
                   mode="replicate").double()
    padded[..., 0, :] = 0  # the running sums start from zero
    padded[..., :, 0] = 0
    # both running sums along the innermost axis: a GPU scans it in parallel, while a scan
    # down the rows of a double tensor took most of the transfer's device time
    sums = padded.cumsum(-1).transpose(-1, -2).contiguous().cumsum(-1).transpose(-1, -2)
    total = (sums[..., side:, side:] - sums[..., :-side, side:]
             - sums[..., side:, :-side] + sums[..., :-side, :-side])
    return (total / (side * side)).to(image.dtype).reshape(n, c, h, w)


def grey(image: Tensor) -> Tensor:
    """``(N, 3, H, W)`` RGB -> ``(N, 1, H, W)`` grey."""
    weights = torch.tensor(GREY_WEIGHTS, device=image.device, dtype=image.dtype)
    return (image * weights.view(1, 3, 1, 1)).sum(1, keepdim=True)


def channel_mean(image: Tensor) -> Tensor:
    """``(N, C, H, W)`` -> ``(N, 1, H, W)``."""
    return image.mean(1, keepdim=True)


def remap(source: Tensor, flow: Tensor) -> Tensor:
    """``source`` sampled at ``p + flow(p)`` (bilinear, borders replicated);
    ``flow``: ``(N, 2, H, W)`` in pixels (x, y)."""
    n, _, h, w = flow.shape
    ys = torch.arange(h, device=flow.device, dtype=flow.dtype).view(1, h, 1)
    xs = torch.arange(w, device=flow.device, dtype=flow.dtype).view(1, 1, w)
    gx = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), dim=-1)
    return F.grid_sample(source, grid, mode="bilinear", padding_mode="border",
                         align_corners=True)


def inside(flow: Tensor) -> Tensor:
    """1 where ``p + flow(p)`` falls inside the image, else 0; ``(N, 1, H, W)``."""
    _, _, h, w = flow.shape
    ys = torch.arange(h, device=flow.device, dtype=flow.dtype).view(1, h, 1)
    xs = torch.arange(w, device=flow.device, dtype=flow.dtype).view(1, 1, w)
    x, y = xs + flow[:, 0], ys + flow[:, 1]
    return ((x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)).to(flow.dtype).unsqueeze(1)


def half_size(image: Tensor) -> Tensor:
    """The next pyramid level: blurred a little, then every 2 x 2 block averaged."""
    h, w = image.shape[-2:]
    blurred = gaussian_blur(image, 0.5)
    return F.interpolate(blurred, size=(math.ceil(h / 2), math.ceil(w / 2)), mode="area")


def resize_flow(flow: Tensor, size: tuple[int, int]) -> Tensor:
    """A flow field resized to ``size`` (H, W), its vectors scaled with it."""
    h, w = flow.shape[-2:]
    resized = F.interpolate(flow, size=size, mode="bilinear", align_corners=True)
    scale = torch.tensor([(size[1] - 1) / max(w - 1, 1), (size[0] - 1) / max(h - 1, 1)],
                         device=flow.device, dtype=flow.dtype)
    return resized * scale.view(1, 2, 1, 1)

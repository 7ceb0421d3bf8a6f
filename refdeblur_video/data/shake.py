"""Blur synthesis: linear-light frame averaging and hand-held camera-shake blur.

Camera blur model (what :class:`CameraShake` controls). A sharp frame is seen through a camera
that moves during the exposure. The motion is a smooth random path of homographies
``H(t), t in [0, 1]``, about the frame centre, made of

- a translation along a curved cubic Bezier path of length ``L`` pixels plus a small
  high-frequency tremor,
- an in-plane rotation sweep, a slight zoom (forward/backward motion) and a slight perspective
  tilt (yaw/pitch of the camera),

re-centred so that ``H(0.5) = I``: the sharp frame is the middle of the exposure, as in GoPro
(or, with ``centre="centroid"``, so that the mean of ``H(t)`` is ``I``: the sharp frame sits
at the blur's centre of mass).
The blurry frame is the mean, in linear light, of the sharp frame warped by ``H(t)`` at
``S`` sub-steps (``S`` grows with the path length, ``min_steps..max_steps``). Every extent is
drawn per sample: an exposure ``e`` (fraction of the longest path) in
``[min_exposure, 1]`` scales all motions together, so a batch mixes slight and strong blur.
Pixel extents are given for a 720-pixel-high frame and scale with the frame's short side.
``strength`` multiplies all extents (0 = no blur: the input is returned unchanged).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from refdeblur_video.image_files import peak_value

if TYPE_CHECKING:
    import torch


# ---------------------------------------------------------------- sRGB <-> linear light


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] -> linear light (IEC 61966-2-1), float32."""
    x = np.asarray(x, dtype=np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Linear light in [0, 1] -> sRGB-encoded values, float32 (input clipped to [0, 1])."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    low = x * 12.92
    high = 1.055 * np.power(np.maximum(x, 0.0031308), 1.0 / 2.4) - 0.055
    return np.where(x <= 0.0031308, low, high).astype(np.float32)


_LUT8 = srgb_to_linear(np.arange(256, dtype=np.float32) / 255.0)



# the camera response the blur generators assume: None for sRGB's curve, else a power law
# of this gamma (1.0: blur averaged on the coded values, as when decoded frames are averaged)
_RESPONSE_GAMMA: ContextVar[float | None] = ContextVar("response_gamma", default=None)


@contextmanager
def camera_response(gamma: float | None) -> Iterator[None]:
    """Within the block, :func:`to_linear` / :func:`from_linear` (and so every blur that
    integrates light through them) take a power-law response of ``gamma`` instead of sRGB's
    (None keeps sRGB): a real camera's curve is not sRGB's, and blur made by averaging
    decoded frames integrates no light at all."""
    token = _RESPONSE_GAMMA.set(gamma)
    try:
        yield
    finally:
        _RESPONSE_GAMMA.reset(token)


def to_linear(image: np.ndarray) -> np.ndarray:
    """``uint8``/``uint16`` sRGB image -> float32 linear light in [0, 1] (under
    :func:`camera_response`, that response's)."""
    gamma = _RESPONSE_GAMMA.get()
    if gamma is not None:
        return np.power(image.astype(np.float32) / peak_value(image.dtype), np.float32(gamma))
    if image.dtype == np.uint8:
        return _LUT8[image]
    return srgb_to_linear(image.astype(np.float32) / peak_value(image.dtype))


def from_linear(linear: np.ndarray, dtype: np.dtype = np.uint8) -> np.ndarray:
    """Float linear light -> sRGB image of ``dtype`` (rounded, clipped; under
    :func:`camera_response`, that response's)."""
    peak = peak_value(np.dtype(dtype))
    gamma = _RESPONSE_GAMMA.get()
    if gamma is not None:
        coded = np.power(np.clip(np.asarray(linear, np.float32), 0.0, 1.0), np.float32(1 / gamma))
        return np.rint(coded * peak).astype(dtype)
    return np.rint(linear_to_srgb(linear) * peak).astype(dtype)


def average_linear(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Mean of frames in linear light (sRGB -> linear, mean, -> sRGB), as in GoPro blur."""
    if not frames:
        raise ValueError("average_linear needs at least one frame")
    total = np.zeros(frames[0].shape, dtype=np.float64)
    for frame in frames:
        total += to_linear(frame)
    return from_linear(total / len(frames), frames[0].dtype)


# ---------------------------------------------------------------- camera shake paths


@dataclass(frozen=True)
class CameraShake:
    """Extents of the synthetic hand-held blur at ``strength=1`` (see the module docstring).

    Defaults mimic hand-held 24-30 fps footage (GoPro-like blur): the longest path is 40 px
    at 720p (blur kernels of tens of pixels), rotation sweeps up to 2 degrees (about 25 px at
    the corners of a 720p frame), zoom up to 2 %, perspective tilt moving corners up to 1 %.
    """

    max_translation_px: float = 40.0  # longest path length at 720p (pixels)
    min_exposure: float = 0.15  # per-sample exposure fraction drawn in [min_exposure, 1]
    max_rotation_deg: float = 2.0  # in-plane rotation sweep over the exposure
    max_zoom: float = 0.02  # relative scale change over the exposure
    max_perspective: float = 0.01  # relative corner shift from yaw/pitch tilt
    curvature: float = 0.35  # Bezier control-point deviation, fraction of the path length
    tremor_px: float = 1.0  # high-frequency hand tremor amplitude at 720p (pixels)
    min_steps: int = 16  # sub-steps averaged (at least)
    max_steps: int = 32  # sub-steps averaged (at most)
    step_px: float = 1.5  # wanted motion between sub-steps; sets S in [min_steps, max_steps]
    reference_height: int = 720  # frame short side the pixel extents refer to
    # where the sharp target sits on the path: "middle" (its pose half-way through the
    # exposure, as GoPro's averaged frames and the rs6dof camera have it) or "centroid" (the
    # mean pose, where the blur's centre of mass is: all that a blurry image shows of where
    # the frame was, and where the trajectory kernels put their target)
    centre: str = "middle"

    def __post_init__(self) -> None:
        if self.centre not in ("middle", "centroid"):
            raise ValueError(f"centre must be 'middle' or 'centroid', got {self.centre!r}")


DEFAULT_SHAKE = CameraShake()


@dataclass
class CameraPath:
    """Sampled camera motion: ``matrices[s]`` maps sharp-frame to sub-frame ``s`` coordinates,
    in pixels relative to the frame centre ``center`` (x, y)."""

    matrices: np.ndarray  # (S, 3, 3) float64
    center: tuple[float, float]
    meta: dict[str, Any]

    @property
    def steps(self) -> int:
        return len(self.matrices)

    def in_region(self, origin: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
        """Matrices in the pixel coordinates of a region whose top-left corner is at ``origin``
        = (y, x) in the frame."""
        shift = np.eye(3)
        shift[0, 2] = origin[1] - self.center[0]
        shift[1, 2] = origin[0] - self.center[1]
        return np.linalg.inv(shift) @ self.matrices @ shift

    def max_shift(self, box: tuple[int, int, int, int]) -> float:
        """Largest distance (pixels) between a point of ``box`` = (y, x, h, w) and where its
        value is sampled from over the path (measured at the box corners)."""
        y, x, h, w = box
        pts = np.array([[x, y, 1], [x + w - 1, y, 1], [x, y + h - 1, 1], [x + w - 1, y + h - 1, 1]])
        pts = pts.astype(np.float64) - [self.center[0], self.center[1], 0.0]
        src = np.einsum("sij,pj->spi", np.linalg.inv(self.matrices), pts)
        src = src[..., :2] / src[..., 2:3]
        return float(np.max(np.hypot(*(src - pts[None, :, :2]).transpose(2, 0, 1))))


def _bezier(p1: np.ndarray, p2: np.ndarray, p3: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Cubic Bezier from the origin through controls ``p1, p2`` to ``p3``; t: (S,) -> (S, D)."""
    t = t[:, None]
    return 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3


def sample_camera_path(
    frame_hw: tuple[int, int],
    rng: np.random.Generator,
    strength: float = 1.0,
    shake: CameraShake = DEFAULT_SHAKE,
    steps: int | None = None,
) -> CameraPath:
    """Draw one random hand-held camera path for a frame of size ``frame_hw`` = (h, w)."""
    h, w = frame_hw
    scale = min(h, w) / shake.reference_height
    exposure = float(rng.uniform(shake.min_exposure, 1.0))
    amount = strength * exposure

    # translation: curved path of length `length` in a random direction
    length = amount * shake.max_translation_px * scale * float(rng.uniform(0.5, 1.0))
    angle = float(rng.uniform(0.0, 2 * math.pi))
    end = length * np.array([math.cos(angle), math.sin(angle)])
    bend = shake.curvature * length
    p1 = end / 3 + rng.normal(0.0, bend, 2)
    p2 = 2 * end / 3 + rng.normal(0.0, bend, 2)
    rot = math.radians(amount * shake.max_rotation_deg * float(rng.uniform(-1.0, 1.0)))
    zoom = amount * shake.max_zoom * float(rng.uniform(-1.0, 1.0))
    tilt = amount * shake.max_perspective * rng.uniform(-1.0, 1.0, 2)
    corner = math.hypot(w, h) / 2
    if steps is None:
        extent = np.hypot(*p1) + np.hypot(*(p2 - p1)) + np.hypot(*(end - p2))
        extent += abs(rot) * corner + abs(zoom) * corner + np.abs(tilt).sum() * corner
        steps = int(np.clip(math.ceil(extent / shake.step_px), shake.min_steps, shake.max_steps))

    t = (np.arange(steps) + 0.5) / steps
    half = np.array([0.5])
    shift = _bezier(p1, p2, end, t) - _bezier(p1, p2, end, half)
    tremor_amp = amount * shake.tremor_px * scale
    freq = rng.uniform(2.0, 6.0, 2)
    phase = rng.uniform(0.0, 2 * math.pi, 2)
    tremor = tremor_amp * (np.sin(2 * math.pi * freq * t[:, None] + phase)
                           - np.sin(2 * math.pi * freq * 0.5 + phase))
    shift = shift + tremor
    # rotation follows a bent ramp (not uniform speed); zoom and tilt are linear in time
    u = t - 0.5
    theta = rot * (u + float(rng.uniform(-0.6, 0.6)) * u**2)
    z = np.exp(zoom * u)
    mats = np.zeros((steps, 3, 3))
    mats[:, 0, 0] = z * np.cos(theta)
    mats[:, 0, 1] = -z * np.sin(theta)
    mats[:, 1, 0] = z * np.sin(theta)
    mats[:, 1, 1] = z * np.cos(theta)
    mats[:, 0, 2] = shift[:, 0]
    mats[:, 1, 2] = shift[:, 1]
    mats[:, 2, 0] = tilt[0] * u / (w / 2)
    mats[:, 2, 1] = tilt[1] * u / (h / 2)
    mats[:, 2, 2] = 1.0
    if shake.centre == "centroid":  # the mean pose becomes the identity
        mean = mats.mean(axis=0)
        mats = mats @ np.linalg.inv(mean / mean[2, 2])
    meta = {
        "strength": float(strength),
        "exposure": round(exposure, 4),
        "steps": int(steps),
        "path_px": round(float(length), 2),
        "rotation_deg": round(math.degrees(rot), 3),
        "zoom": round(zoom, 5),
        "tilt": [round(float(v), 5) for v in tilt],
    }
    return CameraPath(mats, ((w - 1) / 2, (h - 1) / 2), meta)


def render_path_blur(
    image: np.ndarray, path: CameraPath, origin: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """Average, in linear light, ``image`` (a region of the frame with top-left ``origin`` =
    (y, x)) warped along ``path``; same dtype as ``image``. Borders are reflected."""
    linear = to_linear(image)
    h, w = image.shape[:2]
    total = np.zeros_like(linear)
    for matrix in path.in_region(origin):
        total += cv2.warpPerspective(
            linear, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101
        )
    return from_linear(total / path.steps, image.dtype)


# ---------------------------------------------------------------- sensor/codec degradations


def shot_noise(image: np.ndarray, peak: float, rng: np.random.Generator) -> np.ndarray:
    """Float ``image`` in [0, 1] with Poisson noise of ``peak`` photons at white (float32)."""
    return rng.poisson(np.clip(image, 0, 1) * peak).astype(np.float32) / peak


def degrade(
    image: np.ndarray,
    rng: np.random.Generator,
    noise_sigma: float = 0.0,
    poisson_peak: float = 0.0,
    jpeg_quality: tuple[int, int] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Optional noise and JPEG compression of a ``uint8`` image.

    ``noise_sigma``: Gaussian noise, sigma drawn in [0, noise_sigma] (8-bit levels);
    ``poisson_peak``: shot noise, photons at white drawn in [poisson_peak, 10 * poisson_peak]
    (lower = noisier; 0 = off); ``jpeg_quality``: (low, high) quality range (None = off).
    """
    meta: dict[str, Any] = {}
    if noise_sigma > 0 or poisson_peak > 0:
        x = image.astype(np.float32) / 255.0
        if poisson_peak > 0:
            peak = float(rng.uniform(poisson_peak, 10 * poisson_peak))
            x = shot_noise(x, peak, rng)
            meta["poisson_peak"] = round(peak, 2)
        if noise_sigma > 0:
            sigma = float(rng.uniform(0.0, noise_sigma))
            x = x + rng.normal(0.0, sigma / 255.0, x.shape).astype(np.float32)
            meta["noise_sigma"] = round(sigma, 3)
        image = np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)
    if jpeg_quality is not None:
        quality = int(rng.integers(jpeg_quality[0], jpeg_quality[1] + 1))
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            image = cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            meta["jpeg_quality"] = quality
    return image, meta


def synthesize_camera_blur(
    image: np.ndarray,
    rng: np.random.Generator,
    strength: float = 1.0,
    *,
    shake: CameraShake = DEFAULT_SHAKE,
    frame_hw: tuple[int, int] | None = None,
    origin: tuple[float, float] = (0.0, 0.0),
    noise_sigma: float = 0.0,
    poisson_peak: float = 0.0,
    jpeg_quality: tuple[int, int] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Blur an RGB ``uint8`` (or ``uint16``) image by a random hand-held camera path.

    ``frame_hw`` is the size of the full frame when ``image`` is a region of it at ``origin``
    = (y, x) (extents scale with the full frame; rotation is about its centre). Returns the
    blurred image (same dtype) and a JSON-friendly ``meta`` dict describing the sample.
    Noise and JPEG (see :func:`degrade`) apply to ``uint8`` images only. ``strength=0``
    returns a copy of the input.
    """
    if strength <= 0:
        return image.copy(), {"strength": 0.0}
    path = sample_camera_path(frame_hw or image.shape[:2], rng, strength, shake)
    blurred = render_path_blur(image, path, origin)
    meta = dict(path.meta)
    if blurred.dtype == np.uint8:
        blurred, extra = degrade(blurred, rng, noise_sigma, poisson_peak, jpeg_quality)
        meta.update(extra)
    return blurred, meta


def shake_from_dict(values: dict[str, Any] | None) -> CameraShake:
    """:class:`CameraShake` with the given fields overridden (unknown names raise)."""
    values = dict(values or {})
    unknown = set(values) - set(asdict(DEFAULT_SHAKE))
    if unknown:
        raise ValueError(f"unknown camera-shake settings: {', '.join(sorted(unknown))}")
    return CameraShake(**values)


# ---------------------------------------------------------------- batched torch version


def srgb_to_linear_torch(x: torch.Tensor) -> torch.Tensor:
    import torch

    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb_torch(x: torch.Tensor) -> torch.Tensor:
    import torch

    x = x.clamp(0.0, 1.0)
    high = 1.055 * x.clamp_min(0.0031308) ** (1 / 2.4) - 0.055
    return torch.where(x <= 0.0031308, x * 12.92, high)


def synthesize_camera_blur_torch(
    batch: torch.Tensor,
    generator: torch.Generator | None = None,
    strength: float | Sequence[float] = 1.0,
    *,
    shake: CameraShake = DEFAULT_SHAKE,
    frame_hw: tuple[int, int] | Sequence[tuple[int, int]] | None = None,
    margin: int = 0,
    noise_sigma: float = 0.0,
) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """Batched camera-shake blur on any device (``grid_sample``, linear-light averaging).

    ``batch``: ``N x 3 x H x W`` sRGB float in [0, 1]. Each sample gets its own path (drawn
    from seeds taken from ``generator``); ``strength`` is one value or one per sample.
    ``frame_hw`` is the full-frame size the pixel extents refer to, one for all or one per
    sample (default: ``H x W``); rotation is about each region's centre. ``margin`` pixels
    are cropped from every side of the result (synthesise on a padded region to avoid border
    effects). ``noise_sigma`` adds Gaussian noise (sigma drawn in [0, noise_sigma] 8-bit
    levels). Returns the blurred batch and one meta dict per sample; samples with strength 0
    are returned unchanged.
    """
    import torch
    import torch.nn.functional as F

    n, _, h, w = batch.shape
    strengths = [float(strength)] * n if np.isscalar(strength) else [float(s) for s in strength]
    if len(strengths) != n:
        raise ValueError("strength needs one value per sample")
    seeds = torch.randint(
        0, 2**31 - 1, (n,), generator=generator, device=_generator_device(generator)
    ).tolist()
    if frame_hw is None:
        sizes = [(h, w)] * n
    elif np.isscalar(frame_hw[0]):
        sizes = [tuple(frame_hw)] * n
    else:
        sizes = [tuple(hw) for hw in frame_hw]
    paths, metas = [], []
    for seed, s, (fh, fw) in zip(seeds, strengths, sizes, strict=True):
        rng = np.random.default_rng(seed)
        if s > 0:
            path = sample_camera_path((fh, fw), rng, s, shake)
            paths.append(np.linalg.inv(path.in_region(((fh - h) / 2, (fw - w) / 2))))
            metas.append(dict(path.meta, seed=int(seed)))
        else:
            paths.append(np.eye(3)[None])
            metas.append({"strength": 0.0})
    steps = max(len(p) for p in paths)
    inv = np.tile(np.eye(3), (n, steps, 1, 1))
    weight = np.zeros((n, steps))
    for i, p in enumerate(paths):
        inv[i, : len(p)] = p
        weight[i, : len(p)] = 1.0 / len(p)
    dev, dtype = batch.device, torch.float32
    inv_t = torch.as_tensor(inv, dtype=dtype, device=dev)
    weight_t = torch.as_tensor(weight, dtype=dtype, device=dev)
    ys, xs = torch.meshgrid(torch.arange(h, device=dev, dtype=dtype),
                            torch.arange(w, device=dev, dtype=dtype), indexing="ij")
    base = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).reshape(1, -1, 3)
    linear = srgb_to_linear_torch(batch.to(dtype))
    total = torch.zeros_like(linear)
    for s in range(steps):
        src = base @ inv_t[:, s].transpose(1, 2)  # (n, h*w, 3)
        src = src[..., :2] / src[..., 2:3]
        grid = torch.stack([(2 * src[..., 0] + 1) / w - 1, (2 * src[..., 1] + 1) / h - 1], -1)
        warped = F.grid_sample(linear, grid.reshape(n, h, w, 2), mode="bilinear",
                               padding_mode="reflection", align_corners=False)
        total += warped * weight_t[:, s].view(n, 1, 1, 1)
    out = linear_to_srgb_torch(total)
    if noise_sigma > 0:
        sig = torch.rand((n, 1, 1, 1), generator=generator, device=_generator_device(generator))
        noise = torch.randn(out.shape, generator=generator, device=_generator_device(generator))
        out = (out + (sig * noise_sigma / 255.0 * noise).to(dev)).clamp(0.0, 1.0)
    keep = torch.tensor([s <= 0 for s in strengths], device=dev).view(n, 1, 1, 1)
    out = torch.where(keep, batch.to(dtype), out)
    if margin:
        out = out[..., margin : h - margin, margin : w - margin]
    return out.to(batch.dtype), metas


def _generator_device(generator: torch.Generator | None) -> str | torch.device:
    return generator.device if generator is not None else "cpu"

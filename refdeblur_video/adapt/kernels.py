"""A video's own blur kernels, estimated from its blurry frames and their sharp neighbours.

A blurry frame and its reference show the same scene a few frames apart. On a small tile
the camera's motion between them is close to a shift, and the blurry tile is close to the
shifted sharp tile convolved with the tile's blur kernel ``k``: ``B = k * S``. With ``S``
known this is linear least squares in ``k``, solved in the Fourier domain on the image
gradients (where the kernel is the same and the content is sparse) with a Tikhonov term:

    K = sum_d conj(F(d S)) F(d B) / (sum_d |F(d S)|^2 + lambda)

The raw solution is then cleaned as kernel estimators do (negative and weak weights
dropped, only the connected part around the peak kept, weights summing to 1) and centred
on its centre of mass: the shift between the frames is not blur. A kernel that explains
too little of the blurry tile (parallax, occlusion, a moving object, a change of light) is
dropped. What is left is blur of exactly this camera, lens, exposure and shake, which
:mod:`.samples` applies to the video's sharp crops ("own" blur).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..image_files import from_float, to_float

WORK_LINES = 360  # frames are compared at this short side (at most): strong blur is
# shorter there, and noise and compression weigh less, so more tiles give a kernel
TILE = 128  # tile edge at the working size
KERNEL_AT_360 = 41  # kernel support (odd, pixels) at the working size: paths up to ~70 px
# at 720p
MIN_KERNEL = 9
SHIFT_AT_360 = 24  # how far (pixels) the reference may have moved at the tile
MAX_KERNELS = 256  # kernels kept for one video (a sample of the tiles' kernels)
REGULARISATION = 0.05  # lambda, as a share of the mean gradient power of the sharp tile
THRESHOLD = 0.05  # weights under this share of the peak are dropped
MIN_EXPLAINED = 0.6  # share of the blurry tile's gradient energy a kept kernel explains


@dataclass(frozen=True)
class BlurKernel:
    """One estimated kernel: weights summing to 1 on an odd square, centred on their
    centre of mass, and the share of the blurry tile's gradient energy it explains."""

    weights: np.ndarray  # (n, n) float32
    explained: float

    @property
    def extent_px(self) -> float:
        """The kernel's length along its main direction: sqrt(12 x the largest variance of
        its weights), which is the length of a uniform straight path."""
        n = self.weights.shape[0]
        ys, xs = np.mgrid[0:n, 0:n].astype(np.float64)
        w = self.weights.astype(np.float64)
        my, mx = (w * ys).sum(), (w * xs).sum()
        cov = np.array([[(w * (ys - my) ** 2).sum(), (w * (ys - my) * (xs - mx)).sum()],
                        [(w * (ys - my) * (xs - mx)).sum(), (w * (xs - mx) ** 2).sum()]])
        return float(np.sqrt(12.0 * max(np.linalg.eigvalsh(cov)[-1], 0.0)))


def working_scale(frame_hw: tuple[int, int]) -> float:
    """The factor frames are resized by before kernels are estimated (at most 1)."""
    return min(1.0, WORK_LINES / min(frame_hw))


def kernel_size(work_hw: tuple[int, int]) -> int:
    """The kernel support (odd) for (working-size) frames of this size."""
    size = round(KERNEL_AT_360 * min(min(work_hw), WORK_LINES) / WORK_LINES)
    return max(MIN_KERNEL, size | 1)


def shift_margin(work_hw: tuple[int, int]) -> int:
    """How many pixels around a tile the reference crop keeps."""
    return max(8, round(SHIFT_AT_360 * min(min(work_hw), WORK_LINES) / WORK_LINES))


def to_working_grey(image: np.ndarray) -> np.ndarray:
    """A frame as grey float32 in [0, 1] at the working size (what a probe keeps)."""
    grey = _grey(image)
    f = working_scale(grey.shape[:2])
    if f < 1.0:
        size = (max(1, round(grey.shape[1] * f)), max(1, round(grey.shape[0] * f)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return grey


def _grey(image: np.ndarray) -> np.ndarray:
    grey = image.astype(np.float32) if image.dtype.kind == "f" else to_float(image)
    return cv2.cvtColor(grey, cv2.COLOR_RGB2GRAY) if grey.ndim == 3 else grey


def align_reference(blurry: np.ndarray, reference: np.ndarray) -> np.ndarray | None:
    """The window of ``reference`` (larger than ``blurry`` by a margin on every side) that
    best matches ``blurry``, as grey float32 of ``blurry``'s size; None where the match is
    poor. Matching is done on slightly smoothed copies, so the blur does not mislead it."""
    b, r = _grey(blurry), _grey(reference)
    h, w = b.shape
    if r.shape[0] <= h or r.shape[1] <= w:
        return None
    smooth_b, smooth_r = (cv2.GaussianBlur(x, (0, 0), 2.0) for x in (b, r))
    scores = cv2.matchTemplate(smooth_r, smooth_b, cv2.TM_CCOEFF_NORMED)
    _, best, _, (x, y) = cv2.minMaxLoc(scores)
    if not np.isfinite(best) or best < 0.5:
        return None
    return r[y:y + h, x:x + w]


def _taper(h: int, w: int, share: float = 0.15) -> np.ndarray:
    """A Tukey window: 1 in the middle, a cosine fall to 0 over ``share`` of each side."""
    def side(n: int) -> np.ndarray:
        edge = max(1, int(n * share))
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(edge) + 0.5) / edge)
        window = np.ones(n)
        window[:edge], window[n - edge:] = ramp, ramp[::-1]
        return window
    return np.outer(side(h), side(w)).astype(np.float32)


def _gradients(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dx = np.zeros_like(image)
    dy = np.zeros_like(image)
    dx[:, :-1] = image[:, 1:] - image[:, :-1]
    dy[:-1] = image[1:] - image[:-1]
    return dx, dy


def _solve(blurry: np.ndarray, sharp: np.ndarray) -> np.ndarray:
    """The least-squares kernel in the gradient domain, full tile size, origin centred."""
    h, w = blurry.shape
    taper = _taper(h, w)
    numerator = np.zeros((h, w), np.complex128)
    power = np.zeros((h, w), np.float64)
    for gb, gs in zip(_gradients(blurry), _gradients(sharp), strict=True):
        fb, fs = np.fft.fft2(gb * taper), np.fft.fft2(gs * taper)
        numerator += np.conj(fs) * fb
        power += np.abs(fs) ** 2
    kernel = np.real(np.fft.ifft2(numerator / (power + REGULARISATION * power.mean())))
    return np.fft.fftshift(kernel)


def _clean(raw: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Weak and negative weights dropped, the part connected to the peak kept, summing to
    1: as it maps the aligned reference to the blurry tile (twice ``size``, the shift
    included), and centred on its centre of mass (``size``). None if nothing is left."""
    cy, cx = raw.shape[0] // 2, raw.shape[1] // 2
    reach = size  # search the peak's part in a twice larger window, then centre it
    window = raw[max(0, cy - reach):cy + reach + 1, max(0, cx - reach):cx + reach + 1]
    window = np.where(window > THRESHOLD * window.max(), window, 0.0)
    if window.max() <= 0:
        return None
    _, labels = cv2.connectedComponents((window > 0).astype(np.uint8), connectivity=8)
    peak = np.unravel_index(int(np.argmax(window)), window.shape)
    part = np.where(labels == labels[peak], window, 0.0)
    ys, xs = np.nonzero(part)
    weights = part[ys, xs]
    my = round(float((weights * ys).sum() / weights.sum()))
    mx = round(float((weights * xs).sum() / weights.sum()))
    half = size // 2
    padded = np.pad(part, half)
    kernel = padded[my:my + size, mx:mx + size]
    total = kernel.sum()
    if total <= 0 or total < 0.9 * part.sum():  # the blur is longer than the support
        return None
    return (part / part.sum()).astype(np.float32), (kernel / total).astype(np.float32)


def _explained(blurry: np.ndarray, sharp: np.ndarray, kernel: np.ndarray) -> float:
    """1 - (residual / blurry) gradient energy inside the tile, away from its edges."""
    c = kernel.shape[0] // 2
    ys, xs = np.nonzero(kernel)
    m = int(max(np.abs(ys - c).max(), np.abs(xs - c).max())) + 1
    kernel = kernel[c - m + 1:c + m, c - m + 1:c + m]  # the support, still centred
    reblurred = _convolve(sharp, kernel)
    inner = (slice(m, -m), slice(m, -m))
    if blurry[inner].size == 0:
        return 0.0
    energy = residual = 0.0
    for gb, gr in zip(_gradients(blurry), _gradients(reblurred), strict=True):
        energy += float((gb[inner] ** 2).sum())
        residual += float(((gb - gr)[inner] ** 2).sum())
    return 1.0 - residual / energy if energy > 0 else 0.0


def _convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    # filter2D correlates: the flipped kernel convolves
    return cv2.filter2D(image, -1, kernel[::-1, ::-1].copy(), borderType=cv2.BORDER_REFLECT101)


def estimate_kernel(blurry: np.ndarray, reference: np.ndarray,
                    size: int) -> BlurKernel | None:
    """The blur kernel (odd ``size``) that turns the sharp ``reference`` into ``blurry``.

    ``blurry`` is a tile of a blurry frame; ``reference`` the same place in its sharp
    neighbour with a margin on every side (the scene may have moved by up to the margin).
    RGB or grey, any sample type. None where no kernel explains the tile well enough.
    """
    b = _grey(blurry)
    s = align_reference(blurry, reference)
    if s is None or b.std() < 1e-3:
        return None
    cleaned = _clean(_solve(b, s), size)
    if cleaned is None:
        return None
    shifted, kernel = cleaned
    explained = _explained(b, s, shifted)
    if explained < MIN_EXPLAINED:
        return None
    return BlurKernel(kernel, explained)


def frame_kernels(blurry: np.ndarray, reference: np.ndarray) -> list[BlurKernel]:
    """The kernels of a grid of half-overlapping tiles of one blurry frame and its sharp
    reference (both from :func:`to_working_grey`)."""
    h, w = blurry.shape[:2]
    tile = min(TILE, min(h, w) // 2)
    margin, size = shift_margin((h, w)), kernel_size((h, w))
    if tile < 2 * size or reference.shape != blurry.shape:
        return []
    kernels = []
    for y in range(margin, h - tile - margin + 1, tile // 2):
        for x in range(margin, w - tile - margin + 1, tile // 2):
            kernel = estimate_kernel(blurry[y:y + tile, x:x + tile],
                                     reference[y - margin:y + tile + margin,
                                               x - margin:x + tile + margin], size)
            if kernel is not None:
                kernels.append(kernel)
    return kernels


def at_frame_size(kernel: np.ndarray, scale: float) -> np.ndarray:
    """A working-size kernel resized to the frame's size (``scale`` = working / frame),
    odd and summing to 1."""
    if scale >= 1.0:
        return kernel
    n = round(kernel.shape[0] / scale) | 1
    resized = np.maximum(cv2.resize(kernel, (n, n), interpolation=cv2.INTER_LINEAR), 0)
    return (resized / resized.sum()).astype(np.float32)


def kernel_bank(probes: list, frame_hw: tuple[int, int], seed: int = 0
                ) -> list[BlurKernel]:
    """The kernels of every probe (:class:`.reservoir.Probe`), at most :data:`MAX_KERNELS`
    of them (a random sample), resized to frames of ``frame_hw``."""
    kernels = [k for probe in probes for k in frame_kernels(probe.blurry, probe.reference)]
    if len(kernels) > MAX_KERNELS:
        rng = np.random.default_rng(seed)
        kernels = [kernels[i] for i in sorted(rng.choice(len(kernels), MAX_KERNELS, False))]
    scale = working_scale(frame_hw)
    return [BlurKernel(at_frame_size(k.weights, scale), k.explained) for k in kernels]


def reblur_to_match(image: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``image`` (float RGB) blurred, tile by tile, by the kernel that best turns it into
    ``target`` (the same view, aligned, float RGB): where ``target`` is blurrier, the blur
    it has and ``image`` lacks. A sharper ``image`` can be matched this way; a blurrier one
    cannot (a kernel never sharpens), so comparing the result with ``target`` does not reward
    an image for sharing ``target``'s blur. Tiles without a usable kernel stay as they are.
    Kernels are found at full size (a kernel found at the working size and enlarged would
    blur a sharp image)."""
    grey_image, grey_target = _grey(image), _grey(target)
    h, w = grey_image.shape
    enlarge = 1.0 / working_scale((h, w))
    tile = min(round(TILE * enlarge), h, w)
    size = round(KERNEL_AT_360 * enlarge) | 1
    out = image.copy()
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            y0, x0 = min(y, h - tile), min(x, w - tile)
            a = grey_image[y0:y0 + tile, x0:x0 + tile]
            if tile < 2 * size or a.std() < 1e-3:
                continue
            cleaned = _clean(_solve(grey_target[y0:y0 + tile, x0:x0 + tile], a), size)
            if cleaned is None:
                continue
            kernel = cleaned[0]
            r = kernel.shape[0] // 2
            py, px = max(0, y - r), max(0, x - r)
            inner = (slice(y - py, y - py + tile), slice(x - px, x - px + tile))
            region = image[py:min(h, y + tile + r), px:min(w, x + tile + r)]
            blurred = _convolve(np.ascontiguousarray(region), kernel)[inner]
            # a kernel only where it brings the tile closer (a near-point kernel is noise)
            target_tile = target[y:y + tile, x:x + tile]
            if np.mean((blurred - target_tile) ** 2) < \
                    np.mean((image[y:y + tile, x:x + tile] - target_tile) ** 2):
                out[y:y + tile, x:x + tile] = blurred
    return out


def apply_kernel(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``image`` convolved with ``kernel`` (edges reflected), in ``image``'s sample type."""
    if image.dtype == np.float32:
        return _convolve(image, kernel)
    return from_float(_convolve(to_float(image), kernel), image.dtype)


__all__ = ["BlurKernel", "align_reference", "apply_kernel", "at_frame_size", "estimate_kernel",
           "frame_kernels", "kernel_bank", "kernel_size", "reblur_to_match", "shift_margin",
           "to_working_grey", "working_scale"]

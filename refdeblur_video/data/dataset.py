"""PyTorch datasets of (blurry, sharp, reference) crops.

- :class:`TripletDataset` reads a triplet manifest (PNG files on disk).
- :class:`OnlineVideoTriplets` keeps decoded video frames in memory and synthesises the
  camera blur on the fly, so training sees new blur on every draw.

Both return dicts of float32 ``3 x H x W`` tensors in [0, 1]: ``blur``, ``sharp``, ``ref``.
Blurry and sharp crops share one random position; the reference (another frame) is cropped
at the same position, optionally jittered by up to ``ref_jitter`` pixels, or around it with
a larger ``ref_crop``. One random flip/rot90 is applied to all three.

Randomness: with ``seed=None`` every draw is new (seeded from torch's RNG, which the
DataLoader seeds per worker); with a ``seed`` the sample of index ``i`` is fixed for a given
epoch (``set_epoch``), which makes validation and tests repeatable.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from refdeblur_video.data.manifest import read_manifest
from refdeblur_video.data.mixed_blur import (
    BlurMix,
    average_frames,
    average_window,
    defocus,
    detail_score,
    jitter_placement,
    moving_object,
)
from refdeblur_video.data.photo_clips import load_video_frames
from refdeblur_video.data.shake import (
    DEFAULT_SHAKE,
    CameraShake,
    camera_response,
    degrade,
    render_path_blur,
    sample_camera_path,
    synthesize_camera_blur_torch,
)
from refdeblur_video.data.trajectory import trajectory_blur
from refdeblur_video.data.triplets import choose_offset
from refdeblur_video.errors import UserError
from refdeblur_video.frames.shots import split_shots
from refdeblur_video.image_files import png_size, read_image, to_uint8
from refdeblur_video.refine import transfer
from refdeblur_video.refine.prealign import placed_reference

Box = tuple[int, int, int, int]  # y, x, height, width

__all__ = [
    "OnlineVideoTriplets",
    "TripletDataset",
    "augment_same",
    "finish_gpu_batch",
    "load_video_frames",
    "to_tensor",
]


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """``H x W x 3`` uint8/uint16 (or float in [0, 1]) -> float32 ``3 x H x W`` in [0, 1]."""
    if image.dtype == np.uint8:
        scale = 255.0
    elif image.dtype == np.uint16:
        scale = 65535.0
    else:
        scale = 1.0
    array = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / scale
    return torch.from_numpy(array)


def augment_same(arrays: Sequence[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Apply one random horizontal flip, vertical flip and rot90 to every array alike
    (rot90 only when all are square)."""
    hflip, vflip = rng.random() < 0.5, rng.random() < 0.5
    square = all(a.shape[0] == a.shape[1] for a in arrays)
    k = int(rng.integers(4)) if square else 0
    out = []
    for a in arrays:
        if hflip:
            a = a[:, ::-1]
        if vflip:
            a = a[::-1]
        out.append(np.ascontiguousarray(np.rot90(a, k)))
    return out


def _pad_to(image: np.ndarray, h: int, w: int) -> np.ndarray:
    dh, dw = max(0, h - image.shape[0]), max(0, w - image.shape[1])
    if not dh and not dw:
        return image
    return cv2.copyMakeBorder(image, 0, dh, 0, dw, cv2.BORDER_REFLECT101)


def _window(image: np.ndarray, y: int, x: int, h: int, w: int) -> np.ndarray:
    """``h`` x ``w`` window whose top-left is near (y, x), moved inside the image."""
    image = _pad_to(image, h, w)
    y = int(np.clip(y, 0, image.shape[0] - h))
    x = int(np.clip(x, 0, image.shape[1] - w))
    return image[y : y + h, x : x + w]


def _ref_window(ref: np.ndarray, y: int, x: int, crop: tuple[int, int],
                ref_crop: tuple[int, int], jitter: int,
                rng: np.random.Generator) -> np.ndarray:
    """The ``ref_crop`` (h, w) window of ``ref`` centred on the ``crop`` (h, w) at (y, x),
    moved by up to ``jitter`` pixels."""
    dy, dx = (rng.integers(-jitter, jitter + 1, 2) if jitter else (0, 0))
    grow_y, grow_x = (ref_crop[0] - crop[0]) // 2, (ref_crop[1] - crop[1]) // 2
    return _window(ref, y - grow_y + int(dy), x - grow_x + int(dx), *ref_crop)


class _Seeded:
    """Per-sample random generator: fresh (torch-seeded) or fixed by seed/epoch/index."""

    seed: int | None = None
    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        """Change the draws of a seeded dataset (call once per epoch)."""
        self.epoch = int(epoch)

    def _rng(self, index: int) -> np.random.Generator:
        if self.seed is None:
            return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        return np.random.default_rng([self.seed, self.epoch, index])


class TripletDataset(_Seeded, Dataset):
    """Triplets of a manifest (see :mod:`refdeblur_video.data.triplets`) as training crops.

    ``crop=None`` returns whole images (validation). ``split=None`` keeps every split.
    ``unrelated_ref_prob``: probability of swapping in the reference of a triplet from another
    sequence (teaches the network to ignore references that do not match).
    """

    def __init__(
        self,
        manifest: str | Path,
        crop: int | None = 120,
        split: str | None = "train",
        augment: bool = True,
        *,
        ref_jitter: int = 0,
        ref_crop: int | None = None,
        unrelated_ref_prob: float = 0.0,
        seed: int | None = None,
    ) -> None:
        self.items = read_manifest(manifest, split)
        if not self.items:
            raise UserError(f"manifest {manifest} has no triplets of split {split!r}")
        _check_pairs(manifest, self.items)
        self.crop, self.augment, self.seed = crop, augment, seed
        self.ref_jitter, self.ref_crop = ref_jitter, ref_crop or crop
        if crop is not None and self.ref_crop < crop:
            raise UserError("ref_crop must be at least crop")
        self.unrelated_ref_prob = unrelated_ref_prob

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = self._rng(index)
        item = self.items[index]
        ref_path = item.ref
        if self.unrelated_ref_prob and rng.random() < self.unrelated_ref_prob:
            for _ in range(16):  # a triplet of another sequence, if one turns up
                other = self.items[int(rng.integers(len(self.items)))]
                if other.sequence != item.sequence:
                    ref_path = other.ref
                    break
        blur, sharp, ref = (read_image(p) for p in (item.blur, item.sharp, ref_path))
        if blur.shape != sharp.shape:
            raise UserError(f"blurry and sharp sizes differ: {item.blur}, {item.sharp}")
        if self.crop is not None:
            c = self.crop
            blur, sharp = _pad_to(blur, c, c), _pad_to(sharp, c, c)
            y = int(rng.integers(0, blur.shape[0] - c + 1))
            x = int(rng.integers(0, blur.shape[1] - c + 1))
            blur, sharp = blur[y : y + c, x : x + c], sharp[y : y + c, x : x + c]
            ref = _ref_window(ref, y, x, (c, c), (self.ref_crop,) * 2, self.ref_jitter, rng)
        if self.augment:
            blur, sharp, ref = augment_same((blur, sharp, ref), rng)
        return {"blur": to_tensor(blur), "sharp": to_tensor(sharp), "ref": to_tensor(ref)}


def _check_pairs(manifest: str | Path, items: list) -> None:
    """Refuse a manifest whose images are missing, or whose blurry and sharp PNGs differ in
    size (from their headers: other formats are found when read), before training starts
    rather than hours into it (a manifest merged or written by hand)."""
    for item in items:
        for path in (item.blur, item.sharp, item.ref):
            if not Path(path).is_file():
                raise UserError(f"manifest {manifest}: image not found: {path}")
        blur, sharp = png_size(item.blur), png_size(item.sharp)
        if blur is not None and sharp is not None and blur != sharp:
            raise UserError(f"manifest {manifest}: blurry and sharp sizes differ: {item.blur} "
                            f"is {blur[0]}x{blur[1]}, {item.sharp} {sharp[0]}x{sharp[1]}")


def _padded_crop(frame: np.ndarray, y: int, x: int, size: int, margin: int) -> np.ndarray:
    """``frame[y - margin : y + size + margin, x - margin : ...]``, reflected past the edges."""
    h, w = frame.shape[:2]
    y0, x0, y1, x1 = y - margin, x - margin, y + size + margin, x + size + margin
    region = frame[max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)]
    pads = (max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w))
    return cv2.copyMakeBorder(region, *pads, cv2.BORDER_REFLECT101) if any(pads) else region


def _shake_margin(shake: CameraShake, strength: float, frame_hw: tuple[int, int]) -> int:
    """Typical largest sampling shift of a blur path (pixels), for GPU-mode padding."""
    scale = min(frame_hw) / shake.reference_height
    half_diag = math.hypot(*frame_hw) / 2
    shift = scale * (shake.max_translation_px * (0.5 + shake.curvature) + 2 * shake.tremor_px)
    shift += half_diag * (math.radians(shake.max_rotation_deg) / 2 + shake.max_zoom / 2)
    return int(math.ceil(strength * (shift + half_diag * shake.max_perspective))) + 2


def _box_of(image: np.ndarray, box: Box) -> np.ndarray:
    y, x, h, w = box
    return image[y : y + h, x : x + w]


def _blur_crop(frame: np.ndarray, box: Box, margin: int,
               blur: Callable[[np.ndarray, tuple[int, int]], np.ndarray]) -> np.ndarray:
    """The ``box`` (y, x, h, w) region of ``frame``, blurred by ``blur(region, origin)``
    on the region ``margin`` pixels wider on each side (as far as the frame reaches), so
    the blur draws on real picture beyond the box."""
    fh, fw = frame.shape[:2]
    y, x, h, w = box
    y0, x0 = max(0, y - margin), max(0, x - margin)
    region = frame[y0 : min(fh, y + h + margin), x0 : min(fw, x + w + margin)]
    blurred = blur(region, (y0, x0))
    return np.ascontiguousarray(blurred[y - y0 : y - y0 + h, x - x0 : x - x0 + w])


class OnlineVideoTriplets(_Seeded, Dataset):
    """Endless synthetic-blur triplets from videos kept in memory.

    ``videos``: paths (video files or frame folders, decoded with :func:`load_video_frames`)
    or already decoded frame lists / ``T x H x W x 3`` uint8 arrays, each cut into its shots
    (:func:`refdeblur_video.frames.shots.split_shots`; a shot counts as a video below). Each
    draw picks a frame ``i``, a real neighbour ``i + d`` (``dmin <= |d| <= dmax``, in kept
    frames) as reference, and blurs the crop region of frame ``i`` by a random camera path
    (:mod:`refdeblur_video.data.shake`), rendered on the crop plus the margin the path needs,
    then cropped (no border artefacts). ``strength`` is a value or a ``(low, high)`` range
    drawn per sample. With probability ``unrelated_ref_prob`` the reference comes from another
    input (with a single input, from another of its shots, else a frame far away), so the
    network learns to ignore references that do not match. ``length`` is the number of draws
    per epoch.

    ``mix``: draw each sample's blur from several generators (:class:`BlurMix`: camera
    shake, averaged real frames, a moving object; defocus, random noise and JPEG mixed in;
    some samples with no reference). ``None``: camera shake only.

    ``blur_on="gpu"``: the blur is left to the training loop; items are ``sharp_padded``
    (crop plus :attr:`margin` pixels on each side), ``ref`` and ``frame_hw``; call
    :func:`finish_gpu_batch` on the collated batch on the GPU.
    """

    def __init__(
        self,
        videos: Sequence[str | Path | Sequence[np.ndarray] | np.ndarray],
        crop: int = 120,
        *,
        length: int = 10000,
        dmin: int = 1,
        dmax: int = 6,
        strength: float | tuple[float, float] = 1.0,
        shake: CameraShake = DEFAULT_SHAKE,
        unrelated_ref_prob: float = 0.1,
        ref_jitter: int = 0,
        ref_crop: int | None = None,
        augment: bool = True,
        noise_sigma: float = 0.0,
        poisson_peak: float = 0.0,
        jpeg_quality: tuple[int, int] | None = None,
        blur_on: str = "cpu",
        seed: int | None = None,
        max_frames: int | None = None,
        stride: int = 1,
        max_side: int | None = None,
        reader: str = "auto",
        mix: BlurMix | None = None,
    ) -> None:
        if blur_on not in ("cpu", "gpu"):
            raise UserError(f"blur_on must be 'cpu' or 'gpu', got {blur_on!r}")
        self.videos: list[list[np.ndarray]] = []  # one list per shot
        self.sources: list[int] = []  # the input each shot comes from
        for source, v in enumerate(videos):
            if isinstance(v, (str, Path)):
                frames = load_video_frames(v, max_frames, reader, stride=stride, max_side=max_side)
            else:
                frames = [to_uint8(np.asarray(f)) for f in v]
            shots = split_shots(frames)
            self.videos.extend(shots)
            self.sources.extend([source] * len(shots))
        usable = [len(f) for f in self.videos]
        if not any(n >= 2 for n in usable):
            raise UserError("online triplets need at least one video with 2 or more frames")
        ref_crop = ref_crop or crop
        smallest = min(min(f.shape[:2]) for frames in self.videos for f in frames[:1])
        if smallest < max(crop, ref_crop):
            raise UserError(f"frames ({smallest} px) are smaller than the crop ({crop} px)")
        weights = np.array([n if n >= 2 else 0 for n in usable], dtype=np.float64)
        self.video_weights = weights / weights.sum()
        self.crop, self.ref_crop, self.length = crop, ref_crop, length
        self.dmin, self.dmax, self.strength = dmin, dmax, strength
        self.unrelated_ref_prob = unrelated_ref_prob
        self.ref_jitter, self.augment = ref_jitter, augment
        self.degrade = (noise_sigma, poisson_peak, jpeg_quality)
        self.blur_on, self.seed = blur_on, seed
        if mix is not None and blur_on == "gpu":
            raise UserError("mixed blur generators are rendered on the CPU (blur_on: cpu)")
        self.mix = mix
        if mix is not None and mix.shake_centre != shake.centre:
            shake = dataclasses.replace(shake, centre=mix.shake_centre)
        self.shake = shake
        top = max(strength) if isinstance(strength, tuple) else strength
        largest = max((f[0].shape[:2] for f in self.videos), key=min)
        self.margin = _shake_margin(shake, top, largest) if blur_on == "gpu" else 0

    def __len__(self) -> int:
        return self.length

    def _draw_strength(self, rng: np.random.Generator) -> float:
        if isinstance(self.strength, tuple):
            return float(rng.uniform(*self.strength))
        return float(self.strength)

    def _reference(self, v: int, i: int, rng: np.random.Generator,
                   exclude: tuple[int, int] | None = None) -> tuple[np.ndarray, bool]:
        """Reference frame for frame ``i`` of video ``v`` (a neighbour outside ``exclude``);
        True when it is unrelated."""
        frames = self.videos[v]
        if self.unrelated_ref_prob and rng.random() < self.unrelated_ref_prob:
            shots = range(len(self.videos))
            # other inputs first (an edited video may cut back to the same view)
            others = ([k for k in shots if self.sources[k] != self.sources[v]]
                      or [k for k in shots if k != v])
            if others:
                other = int(rng.choice(others))
                return self.videos[other][int(rng.integers(len(self.videos[other])))], True
            far = [j for j in range(len(frames)) if abs(j - i) > 10 * self.dmax]
            if far:
                return frames[int(rng.choice(far))], True
        dmin, dmax = self.dmin, self.dmax
        if exclude is not None:  # beyond the averaged frames
            reach = max(i - exclude[0], exclude[1] - i)
            dmin, dmax = dmin + reach, dmax + reach
        d = choose_offset(i, len(frames), dmin, dmax, rng, exclude=exclude)
        return frames[i + (d or 0)], False

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = self._rng(index)
        v = int(rng.choice(len(self.videos), p=self.video_weights))
        frames = self.videos[v]
        i = int(rng.integers(len(frames)))
        h, w = frames[i].shape[:2]
        c = self.crop
        y, x = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
        if self.mix is not None:
            if self.mix.textured_crop_prob and rng.random() < self.mix.textured_crop_prob:
                y, x = self._textured_position(frames[i], (y, x), rng)
            return self._mixed_item(v, i, y, x, rng)
        frame = frames[i]
        ref = self._ref_crop(v, i, (y, x, c, c), rng)
        if self.blur_on == "gpu":
            sharp_padded = _padded_crop(frame, y, x, c, self.margin)
            if self.augment:
                sharp_padded, ref = augment_same((sharp_padded, ref), rng)
            return {"sharp_padded": to_tensor(sharp_padded), "ref": to_tensor(ref),
                    "frame_hw": torch.tensor([h, w])}
        blur, sharp = self._shake_blur(frame, (y, x, c, c), rng)
        if blur is not sharp:  # zero strength leaves the frame as it is, noise included
            blur, _ = degrade(blur, rng, *self.degrade)
        return self._finish(blur, sharp, ref, rng)

    def _textured_position(self, frame: np.ndarray, first: tuple[int, int],
                           rng: np.random.Generator) -> tuple[int, int]:
        """The most detailed of ``first`` and ``mix.textured_candidates - 1`` more random
        crop positions in ``frame``."""
        h, w, c = frame.shape[0], frame.shape[1], self.crop
        positions = [first] + [(int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1)))
                               for _ in range(self.mix.textured_candidates - 1)]
        scores = [detail_score(frame[y:y + c, x:x + c]) for y, x in positions]
        return positions[int(np.argmax(scores))]

    def _ref_crop(self, v: int, i: int, box: Box, rng: np.random.Generator,
                  exclude: tuple[int, int] | None = None) -> np.ndarray:
        """The reference for ``box`` (y, x, h, w) of frame ``i`` of shot ``v``, ``ref_crop -
        crop`` pixels larger: a real neighbour's same place (outside ``exclude``, moved by up
        to ``ref_jitter``), or an unrelated frame's region anywhere."""
        y, x, h, w = box
        extra = self.ref_crop - self.crop
        size = (h + extra, w + extra)
        ref_frame, unrelated = self._reference(v, i, rng, exclude)
        if unrelated:
            rh, rw = ref_frame.shape[:2]
            return _ref_window(ref_frame, int(rng.integers(0, max(1, rh - h + 1))),
                               int(rng.integers(0, max(1, rw - w + 1))), (h, w), size, 0, rng)
        return _ref_window(ref_frame, y, x, (h, w), size, self.ref_jitter, rng)

    def _context_box(self, frame_hw: tuple[int, int], y: int, x: int) -> Box:
        """The crop at (y, x) grown by ``mix.align_context`` on each side, inside the frame."""
        assert self.mix is not None
        grow, c = self.mix.align_context, self.crop
        h, w = frame_hw
        top, left = max(0, y - grow), max(0, x - grow)
        return top, left, min(h, y + c + grow) - top, min(w, x + c + grow) - left

    def _shake_blur(self, frame: np.ndarray, box: Box,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(blurry, sharp) regions of ``frame`` over ``box`` under a random camera path; the
        same array twice when the drawn strength is zero."""
        h, w = frame.shape[:2]
        path = sample_camera_path((h, w), rng, self._draw_strength(rng), self.shake)
        sharp = _box_of(frame, box)
        if path.meta["strength"] <= 0:
            return sharp, sharp
        m = int(math.ceil(path.max_shift(box))) + 2
        return _blur_crop(frame, box, m,
                          lambda region, origin: render_path_blur(region, path, origin)), sharp

    def _trajectory_blur(self, frame: np.ndarray, box: Box,
                         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(blurry, sharp) regions of ``frame`` over ``box`` under random-trajectory
        kernels."""
        assert self.mix is not None
        low, high = self.mix.trajectory_length
        length = float(np.exp(rng.uniform(np.log(low), np.log(high)))) * min(frame.shape[:2]) / 720
        m = int(math.ceil(1.5 * length)) + 2  # the widest kernel's reach (two blended)
        blurred = _blur_crop(frame, box, m,
                             lambda region, _origin: trajectory_blur(region, length, rng))
        return blurred, _box_of(frame, box)

    def _mixed_item(self, v: int, i: int, y: int, x: int,
                    rng: np.random.Generator) -> dict[str, Any]:
        """A sample whose blur comes from a generator drawn from :attr:`mix`, through a
        camera response drawn from it; with a pre-aligned reference
        (``mix.aligned_ref_prob``) everything is rendered on a wider region first, aligned
        there, and cropped at the end."""
        assert self.mix is not None
        with camera_response(self.mix.draw_response(rng)):
            return self._mixed_sample(v, i, y, x, rng)

    def _mixed_sample(self, v: int, i: int, y: int, x: int,
                      rng: np.random.Generator) -> dict[str, Any]:
        mix, frames, c = self.mix, self.videos[v], self.crop
        assert mix is not None
        generator = mix.draw(rng)
        align = (mix.aligned_ref_prob > 0 and self.ref_crop == c
                 and rng.random() < mix.aligned_ref_prob)
        box = self._context_box(frames[i].shape[:2], y, x) if align else (y, x, c, c)
        exclude, in_place = None, False
        if generator == "average" and len(frames) >= 3:
            low, high = mix.average_frames
            k = int(rng.integers(low // 2, high // 2 + 1)) * 2 + 1
            k = min(k, len(frames) - (1 - len(frames) % 2))
            first, last = average_window(i, len(frames), k)
            i, exclude = (first + last) // 2, (first, last)
            blur = average_frames(frames[first : last + 1], box)
            sharp = _box_of(frames[i], box)
        elif generator == "object":
            other = self.videos[int(rng.integers(len(self.videos)))]
            source = other[int(rng.integers(len(other)))]
            size = int(rng.uniform(0.25, 0.6) * c)
            sy = int(rng.integers(0, source.shape[0] - size + 1))
            sx = int(rng.integers(0, source.shape[1] - size + 1))
            patch = source[sy : sy + size, sx : sx + size]
            # the object moves within the crop; the rest of the region stays still
            blur, sharp = _box_of(frames[i], box).copy(), _box_of(frames[i], box).copy()
            inner = (slice(y - box[0], y - box[0] + c), slice(x - box[1], x - box[1] + c))
            blur[inner], sharp[inner] = moving_object(frames[i][y : y + c, x : x + c], patch,
                                                      rng, mix.object_travel)
        elif generator == "trajectory":
            blur, sharp = self._trajectory_blur(frames[i], box, rng)
        else:
            blur, sharp = self._shake_blur(frames[i], box, rng)
        # an out-of-focus scene: defocus and motion blur are both convolutions in linear
        # light, so blurring the blurry crop again is the same as filming a defocused scene
        scene = (float(rng.uniform(0.5, mix.scene_defocus_radius))
                 if rng.random() < mix.scene_defocus_prob else 0.0)
        blur, sharp = defocus(blur, scene), defocus(sharp, scene)
        if rng.random() < mix.defocus_prob:
            blur = defocus(blur, float(rng.uniform(0.5, mix.defocus_radius)))
        noise_sigma, poisson_peak, jpeg = self.degrade
        blur, _ = degrade(np.ascontiguousarray(blur), rng, noise_sigma, poisson_peak,
                          jpeg if rng.random() < 0.5 else None)
        if rng.random() < mix.self_ref_prob and self.ref_crop == c:
            ref = blur.copy()
        else:
            ref = defocus(self._ref_crop(v, i, box, rng, exclude), scene)
            # drawn only when on, so that mixes without it keep their samples
            if mix.ref_degrade_prob > 0 and rng.random() < mix.ref_degrade_prob:
                ref, _ = degrade(np.ascontiguousarray(ref), rng, noise_sigma, poisson_peak,
                                 jpeg if rng.random() < 0.5 else None)
            if align:
                ref, in_place = self._aligned(blur, np.ascontiguousarray(ref))
                if in_place and mix.aligned_ref_jitter > 0:
                    ref = jitter_placement(ref, float(rng.uniform(0, mix.aligned_ref_jitter)),
                                           rng)
        if align:
            inner = (y - box[0], x - box[1], c, c)
            blur, sharp, ref = (_box_of(a, inner) for a in (blur, sharp, ref))
        sample = self._finish(blur, sharp, ref, rng)
        if mix.marks_in_place:  # every sample carries the flag, so that batches collate
            sample["in_place"] = torch.tensor(in_place)
        return sample

    def _aligned(self, blur: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, bool]:
        """``(reference, whether it is placed)``: placed as the mix says, through the
        pipeline's gate when ``aligned_ref_gate`` is on."""
        assert self.mix is not None
        if self.mix.aligned_ref_gate:
            return placed_reference(blur, ref)
        placed = transfer.PREALIGNERS[self.mix.aligned_ref_by](blur, ref)
        return placed, placed is not ref  # a placement that found no fit returns ref itself

    def _finish(self, blur: np.ndarray, sharp: np.ndarray, ref: np.ndarray,
                rng: np.random.Generator) -> dict[str, Any]:
        if self.augment:
            blur, sharp, ref = augment_same((blur, sharp, ref), rng)
        return {"blur": to_tensor(blur), "sharp": to_tensor(sharp), "ref": to_tensor(ref)}


def finish_gpu_batch(
    batch: dict[str, torch.Tensor],
    margin: int,
    generator: torch.Generator | None = None,
    strength: float | Sequence[float] = 1.0,
    *,
    shake: CameraShake = DEFAULT_SHAKE,
    noise_sigma: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Blur a ``blur_on="gpu"`` batch where it lives (e.g. on CUDA) and crop off ``margin``
    (the dataset's :attr:`OnlineVideoTriplets.margin`): returns ``blur``, ``sharp``, ``ref``."""
    padded = batch["sharp_padded"]
    frame_hw = [tuple(int(v) for v in hw) for hw in batch["frame_hw"].tolist()]
    blur, _ = synthesize_camera_blur_torch(padded, generator, strength, shake=shake,
                                           frame_hw=frame_hw, margin=margin,
                                           noise_sigma=noise_sigma)
    h, w = padded.shape[-2:]
    sharp = padded[..., margin : h - margin, margin : w - margin]
    return {"blur": blur, "sharp": sharp, "ref": batch["ref"]}

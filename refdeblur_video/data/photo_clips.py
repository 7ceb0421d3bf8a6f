"""Short pseudo-videos from still photos, so real photos can serve as training material.

A photo has no neighbouring frames, so :func:`pan_clip` films it with a virtual hand-held
camera: a window of the output size drifts across the (downsized) photo along a smooth path
with a little rotation and zoom. Neighbouring frames of the clip then differ by real,
known-smooth camera motion, like the references of a real video (without scene motion).
:func:`load_video_frames` reads any training source into memory this way: a video or an
image folder as it is, a photo as its clip.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import cv2
import numpy as np

from refdeblur_video.errors import UserError
from refdeblur_video.image_files import is_image_path, read_image, resize_max_side, to_uint8
from refdeblur_video.video.sources import iter_frames

# how much larger than the window the photo is made: the room the camera can drift in
PHOTO_TO_WINDOW = 1.4
PHOTO_CLIP_FRAMES = 24  # frames of a photo's clip in :func:`load_video_frames`


def is_photo(path: str | Path) -> bool:
    """True for an image file (a photo to film), False for videos and folders."""
    return Path(path).is_file() and is_image_path(path)


def seed_for(path: str | Path) -> int:
    """A stable seed from a file name, so a photo always gives the same clip."""
    return zlib.crc32(Path(path).name.encode())


def _frame_shape(shape: tuple[int, ...], size: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of the frames filmed from a photo of ``shape``: ``size``, turned
    upright for a portrait photo."""
    return (size[1], size[0]) if shape[0] > shape[1] else size


def photo_scale(shape: tuple[int, ...], size: tuple[int, int] = (720, 1280)) -> float:
    """The factor :func:`pan_clip` first resizes a photo of ``shape`` by, for frames of
    ``size`` (height, width; a portrait photo gets portrait frames)."""
    out_h, out_w = _frame_shape(shape, size)
    return PHOTO_TO_WINDOW * max(out_h / shape[0], out_w / shape[1])


def pan_clip(
    photo: np.ndarray,
    n_frames: int = 24,
    size: tuple[int, int] = (720, 1280),
    rng: np.random.Generator | None = None,
    *,
    max_rotation_deg: float = 1.5,
    max_zoom: float = 0.04,
) -> list[np.ndarray]:
    """Film ``photo`` (H x W x 3) with a slowly drifting virtual camera.

    ``size`` is the (height, width) of the frames; portrait photos get portrait frames. The
    photo is first resized (INTER_AREA) so the window covers ``1/PHOTO_TO_WINDOW`` of it; the
    path moves the window centre in a straight line across up to the whole free room, plus a
    gentle sinusoidal wobble, while the rotation and zoom drift by at most the given amounts
    over the clip. Frames are rendered with bicubic interpolation and reflected borders.
    """
    if n_frames < 2:
        raise UserError("a photo clip needs at least 2 frames")
    rng = rng or np.random.default_rng(0)
    out_h, out_w = _frame_shape(photo.shape, size)
    scale = photo_scale(photo.shape, size)
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    base = cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)),
                      interpolation=interpolation)
    room_y, room_x = (base.shape[0] - out_h) / 2, (base.shape[1] - out_w) / 2
    start = rng.uniform(-1, 1, 2) * (room_y, room_x) * 0.5
    end = rng.uniform(-1, 1, 2) * (room_y, room_x) * 0.5
    wobble = rng.uniform(0.5, 3.0, 2)
    phase = rng.uniform(0, 2 * math.pi, 2)
    turn = rng.uniform(-1, 1, 2) * max_rotation_deg
    zoom = 1 + rng.uniform(-1, 1, 2) * max_zoom
    centre = np.array([base.shape[0] / 2, base.shape[1] / 2])
    frames = []
    for k in range(n_frames):
        t = k / (n_frames - 1)
        cy, cx = centre + start + t * (end - start) + wobble * np.sin(2 * math.pi * t + phase)
        angle = turn[0] + t * (turn[1] - turn[0])
        magnify = zoom[0] + t * (zoom[1] - zoom[0])
        # maps output pixels to photo pixels: rotate/zoom about the output centre, then move
        matrix = cv2.getRotationMatrix2D((out_w / 2, out_h / 2), angle, 1 / magnify)
        matrix[:, 2] += (cx - out_w / 2, cy - out_h / 2)
        frames.append(cv2.warpAffine(base, matrix, (out_w, out_h), flags=cv2.INTER_CUBIC
                                     | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT101))
    return frames


def load_video_frames(
    path: str | Path,
    max_frames: int | None = None,
    reader: str = "auto",
    *,
    stride: int = 1,
    max_side: int | None = None,
) -> list[np.ndarray]:
    """Decode a video (or image folder) into memory as a list of RGB ``uint8`` frames.

    A single photo becomes a short clip filmed by a virtual hand-held camera
    (:func:`pan_clip`, ``PHOTO_CLIP_FRAMES`` frames).

    ``reader``: see :mod:`refdeblur_video.video.sources`. ``stride`` keeps every n-th frame,
    ``max_frames`` caps how many are kept and ``max_side`` downsizes (INTER_AREA) frames whose
    longer side exceeds it.
    """
    if stride < 1:
        raise UserError("stride must be at least 1")
    if is_photo(path):  # a still photo: filmed by a drifting virtual camera
        rng = np.random.default_rng(seed_for(path))
        clip = pan_clip(to_uint8(read_image(path)), max_frames or PHOTO_CLIP_FRAMES, rng=rng)
        return [resize_max_side(frame, max_side) for frame in clip[::stride]]
    frames: list[np.ndarray] = []
    for frame in iter_frames(path, reader=reader, uint8=True):
        if frame.index % stride:
            continue
        frames.append(resize_max_side(frame.image, max_side))
        if max_frames is not None and len(frames) >= max_frames:
            break
    if not frames:
        raise UserError(f"no frames could be read from {path}")
    return frames

#!/usr/bin/env python
"""How coarse may the flow behind ``fitted_homography`` run on frames above 1080p?

``fitted_homography`` (the network's pre-alignment, and the camera's motion between the
sharp neighbours that places the transfer's reference) fits one homography to a DIS flow at
half resolution: 1080 lines on a 4K frame, most of a second. This script films training
photographs (``.data/photos``, never validation) at a given size, moves the camera by a
known homography (shifts, a small rotation, zoom and perspective), blurs the moved frame
along a straight path (or not) and adds noise, then fits the homography with the flow at
each pyramid level asked for. Prints the corner error of each fit against the truth
(``motion.homography_distance``, pixels of the frame) and its time.

    python tools/experiments/homography_levels.py --size 3840x2160 --levels 1 2 3 --blur 0 24 64
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from refdeblur_video.refine import transfer
from refdeblur_video.refine.motion import homography_distance


def random_homography(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A hand-held camera's motion between nearby frames at this size: up to 1.5 % of the
    width in shift, 0.6 degrees of roll, 1.5 % zoom and a little perspective."""
    cx, cy = w / 2, h / 2
    angle = np.deg2rad(rng.uniform(-0.6, 0.6))
    zoom = 1 + rng.uniform(-0.015, 0.015)
    shift = rng.uniform(-0.015, 0.015, 2) * w
    c, s = np.cos(angle) * zoom, np.sin(angle) * zoom
    centre = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
    similar = np.array([[c, -s, shift[0]], [s, c, shift[1]], [0, 0, 1]])
    persp = np.eye(3)
    persp[2, :2] = rng.uniform(-2e-6, 2e-6, 2) * 3840 / w
    return np.linalg.inv(centre) @ persp @ similar @ centre


MARGIN = 0.06  # the scene beyond the reference's frame, as a share of its size


def film(photo: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """The photograph scaled to cover a frame ``MARGIN`` larger than h x w on each side,
    and the h x w reference cropped at its centre: (scene, reference). The moved frame is
    sampled from the scene, so that no border is invented."""
    ph, pw = photo.shape[:2]
    big_h, big_w = round(h * (1 + 2 * MARGIN)), round(w * (1 + 2 * MARGIN))
    scale = max(big_h / ph, big_w / pw)
    scaled = cv2.resize(photo, (round(pw * scale), round(ph * scale)),
                        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    y, x = (scaled.shape[0] - big_h) // 2, (scaled.shape[1] - big_w) // 2
    scene = scaled[y:y + big_h, x:x + big_w]
    oy, ox = round(h * MARGIN), round(w * MARGIN)
    return scene, scene[oy:oy + h, ox:ox + w]


def moved_frame(scene: np.ndarray, truth: np.ndarray, h: int, w: int) -> np.ndarray:
    """The frame whose pixel p shows the reference's pixel ``truth(p)``."""
    offset = np.array([[1, 0, round(w * MARGIN)], [0, 1, round(h * MARGIN)], [0, 0, 1]], float)
    return cv2.warpPerspective(scene, offset @ truth, (w, h),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT101)


def line_blur(image: np.ndarray, length: int, angle: float) -> np.ndarray:
    if length < 2:
        return image
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    return cv2.filter2D(image, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT101)


def fit_at(target: np.ndarray, reference: np.ndarray, level: int) -> np.ndarray | None:
    """``fitted_homography`` with its flow's finest scale forced to ``level``."""
    settings = transfer.DEFAULT_TRANSFER
    h, w = target.shape[:2]
    patch = transfer.usable_patch_sizes(settings.patch_sizes, h, w)[0]
    flow = transfer._flow(transfer._gray8(target), transfer._gray8(reference), patch,
                          transfer._stride(patch, settings.forward_stride), 2, level)
    return transfer.camera_homography(flow, settings, transfer._scale(target, settings))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=Path(".data/photos"))
    parser.add_argument("--size", default="3840x2160")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--blur", type=int, nargs="+", default=[0, 32])
    parser.add_argument("--trials", type=int, default=2, help="camera moves per photo")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(args.seed)
    errors = {(b, lv): [] for b in args.blur for lv in args.levels}
    times = {lv: [] for lv in args.levels}
    for path in sorted(args.photos.glob("*.jpg")):
        photo = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        scene, reference = film(photo, h, w)
        for _ in range(args.trials):
            truth = random_homography(rng, h, w)  # target pixel -> reference pixel
            moved = moved_frame(scene, truth, h, w)
            angle = rng.uniform(0, 180)
            for blur in args.blur:
                target = line_blur(moved, round(blur * h / 2160), angle)
                noisy = target.astype(np.float32) + rng.normal(0, 2.0, target.shape)
                target = np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
                for level in args.levels:
                    start = time.perf_counter()
                    fitted = fit_at(target, reference, level)
                    times[level].append(time.perf_counter() - start)
                    error = (np.inf if fitted is None
                             else homography_distance(fitted, truth, h, w))
                    errors[(blur, level)].append(error)
        print(path.stem, flush=True)
    print(f"\n{args.size}, {len(errors[(args.blur[0], args.levels[0])])} moves; corner "
          "error of the fit (px at this size): median / 90th percentile / max; seconds")
    for level in args.levels:
        cells = []
        for blur in args.blur:
            e = np.array(errors[(blur, level)])
            cells.append(f"blur {blur}: {np.median(e):.2f} / {np.percentile(e, 90):.2f} / "
                         f"{e.max():.2f}")
        print(f"level {level} ({h >> level} lines): " + "; ".join(cells)
              + f"; {np.median(times[level]):.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python
"""The main job on fast pans: references tens of pixels away from their blurry frames.

Films training photographs (``.data/photos``, never validation) with a camera panning
``SPEED`` pixels per frame at 720p (plus a little roll), every third frame blurred along
its own motion over an exposure of half a frame interval (linear-light mean of 24
sub-frame positions), encodes the clip (H.264, CRF 16), runs ``refdeblur-video`` on it
(FFV1 output) and scores the blurry frames against the truth, with DIS started from the
frames' global shift (the default, ``refine/global_shift.py``) and without (as before
2026-12-06).

    python tools/experiments/fast_pan.py runs/fast_pan --speeds 10 25 40 60 --photos-used 4
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import cv2
import numpy as np
from make_adapt_clips import encode_clip

FRAMES = 10
BLURRY = (1, 4, 7)
FPS = 30
SUBFRAMES = 24


def _render(base: np.ndarray, cx: float, cy: float, angle: float, h: int, w: int) -> np.ndarray:
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    matrix[:, 2] += (cx - w / 2, cy - h / 2)
    return cv2.warpAffine(base, matrix, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT101)


def pan(photo: np.ndarray, speed: float, rng: np.random.Generator, h: int = 720,
        w: int = 1280) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(input frames, true frames) of one fast pan across ``photo``."""
    from refdeblur_video.data.shake import average_linear

    need_w = w + speed * (FRAMES + 1) + 64
    scale = max(need_w / photo.shape[1], (h + 64) / photo.shape[0])
    base = cv2.resize(photo, (math.ceil(photo.shape[1] * scale), math.ceil(photo.shape[0] * scale)),
                      interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    direction = rng.uniform(-0.3, 0.3)  # radians off horizontal
    vx, vy = speed * math.cos(direction), speed * math.sin(direction)
    x0 = w / 2 + 32 + (0 if vx > 0 else speed * (FRAMES + 1))
    y0 = base.shape[0] / 2
    roll = rng.uniform(-0.05, 0.05)  # degrees per frame

    def at(t: float) -> np.ndarray:
        return _render(base, x0 + vx * t, y0 + vy * t, roll * t, h, w)

    truth = [at(k) for k in range(FRAMES)]
    inputs = list(truth)
    for k in BLURRY:
        ts = k + (np.arange(SUBFRAMES) / (SUBFRAMES - 1) - 0.5) * 0.5
        inputs[k] = average_linear([at(t) for t in ts])
    return inputs, truth


def _decode(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def run(clip: Path, out: Path, started: bool) -> list[np.ndarray]:
    from refdeblur_video import cli
    from refdeblur_video.refine import global_shift, transfer

    original = global_shift.initial_flow
    transfer.initial_flow = original if started else (lambda *args: None)
    try:
        out.unlink(missing_ok=True)
        code = cli.main([str(clip), str(out), "--codec", "ffv1", "--quiet"])
        if code:
            raise SystemExit(f"refdeblur-video exited {code} on {clip}")
    finally:
        transfer.initial_flow = original
    return _decode(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--photos", type=Path, default=Path(".data/photos"))
    parser.add_argument("--photos-used", type=int, default=4)
    parser.add_argument("--speeds", type=float, nargs="+", default=[10, 25, 40, 60])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from refdeblur_video.evaluate.metrics import psnr
    from refdeblur_video.image_files import read_image, to_uint8

    args.work.mkdir(parents=True, exist_ok=True)
    photos = sorted(args.photos.glob("*.jpg"))[:args.photos_used]
    rows = []
    for speed in args.speeds:
        scores: dict[str, list[float]] = {"input": [], "before": [], "started": []}
        for n, path in enumerate(photos):
            rng = np.random.default_rng([n, int(speed)])
            inputs, truth = pan(to_uint8(read_image(path)), speed, rng)
            clip = args.work / f"{path.stem}_{int(speed)}.mp4"
            encode_clip(clip, inputs, fps=FPS, crf=16)
            decoded = _decode(clip)
            for key, started in (("before", False), ("started", True)):
                output = run(clip, args.work / f"{path.stem}_{int(speed)}_{key}.mkv", started)
                scores[key] += [psnr(output[k], truth[k]) for k in BLURRY]
            scores["input"] += [psnr(decoded[k], truth[k]) for k in BLURRY]
        row = {"speed_px_per_frame": speed, **{k: round(float(np.mean(v)), 3)
                                                for k, v in scores.items()}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| pan px/frame at 720p | blurry input | before | DIS from the global shift |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['speed_px_per_frame']:g} | {row['input']:.2f} | {row['before']:.2f} | "
              f"{row['started']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

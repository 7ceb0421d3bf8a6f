#!/usr/bin/env python
"""Clips with ground truth made by the *training* generators, to choose ``--adapt``'s
settings on (the rs6dof clips of ``make_validation.sh`` are the left-out test and must not
be tuned on).

Each clip is a folder as ``measure_adapt.py`` reads it: ``input.mp4`` (H.264, CRF 18, 15
fps), ``gt/<frame>.png`` for every frame and ``meta.json``. Frames 1, 4, 7, ... are blurred;
the rest are the source frames as they are. Sources are the held-out ones of the shake and
average validation sets (``refdeblur_video/data/validation.py``), never trained on:

- ``shake``: juggle frames 0-35, and the photos Storm and Aqua filmed as drifting clips;
  each blurry frame under the training camera shake at a strength drawn in 0.4-1.6;
- ``average``: bedroom frames 0-99 (every third frame), and Dragonfly as a drifting clip;
  each blurry frame the linear-light mean of the 5-9 source frames around it;
- ``nosharp``: juggle frames 12-23 and the photo Aqua, with *every* frame under the training
  camera shake: frames 1, 4, 7, ... at a strength in 0.6-1.6, the others lightly (0.15-0.4),
  so the frames the pipeline takes for sharp are blurred too (the case where the video's
  own frames cannot tell ``--adapt`` the truth).

    python tools/experiments/make_adapt_clips.py runs/adapt_clips
    python tools/experiments/measure_adapt.py runs/adapt_clips/* --budgets 60 300
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

FRAMES = 12
BLURRY = range(1, FRAMES, 3)
FPS = 15


def encode_clip(path: Path, frames: list[np.ndarray], fps: int = FPS, crf: int = 18) -> None:
    """RGB ``frames`` as an H.264 clip (yuv420p) at ``fps`` and ``crf``."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _write(folder: Path, inputs: list[np.ndarray], truth: list[np.ndarray], meta: dict) -> None:
    from refdeblur_video.image_files import write_png

    folder.mkdir(parents=True, exist_ok=True)
    encode_clip(folder / "input.mp4", inputs)
    for k, image in enumerate(truth):
        write_png(folder / "gt" / f"{k:06d}.png", image)
    (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


def shake_clip(source: list[np.ndarray], rng: np.random.Generator,
               light: tuple[float, float] | None = None) -> tuple[list, dict]:
    """``source``'s first frames, frames 1, 4, 7, ... under the training camera shake (at
    a strength in 0.4-1.6); with ``light``, every other frame too, lightly (a strength in
    ``light``) and the blurry ones at 0.6-1.6: a clip with no truly sharp frame."""
    from refdeblur_video.data.shake import render_path_blur, sample_camera_path

    truth = source[:FRAMES]
    inputs, strengths = list(truth), {}
    for k, frame in enumerate(truth):
        if k in BLURRY:
            strength = float(rng.uniform(0.4, 1.6) if light is None else rng.uniform(0.6, 1.6))
        elif light is not None:
            strength = float(rng.uniform(*light))
        else:
            continue
        inputs[k] = render_path_blur(frame, sample_camera_path(frame.shape[:2], rng, strength))
        strengths[k] = round(strength, 3)
    meta = {"generator": "shake", "strengths": strengths}
    return inputs, meta if light is None else {**meta, "no_sharp_frame": True}


def nosharp_clip(source: list[np.ndarray], rng: np.random.Generator) -> tuple[list, dict]:
    """:func:`shake_clip` with every frame shaken, the frames between lightly."""
    return shake_clip(source, rng, light=(0.15, 0.4))


def average_clip(source: list[np.ndarray], rng: np.random.Generator) -> tuple[list, dict]:
    """Every third frame of ``source`` from frame 4 on (where the means have room), blurry
    frames the linear-light mean of the 5-9 source frames around them."""
    from refdeblur_video.data.shake import average_linear

    picks = [4 + 3 * k for k in range(FRAMES)]
    truth = [source[i] for i in picks]
    inputs, halves = list(truth), {}
    for k in BLURRY:
        half = int(rng.choice((2, 3, 4)))
        i = picks[k]
        inputs[k] = average_linear(source[i - half:i + half + 1])
        halves[k] = 2 * half + 1
    return inputs, {"generator": "average", "frames_averaged": halves}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--videos", type=Path, default=Path("../shared/data/videos"))
    parser.add_argument("--photos", type=Path, default=Path(".data/val_photos"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="make only these clips (folder names)")
    args = parser.parse_args(argv)

    from refdeblur_video.data.photo_clips import pan_clip
    from refdeblur_video.data.validation import AVERAGE_PHOTO, SHAKE_PHOTOS, VIDEOS, find_photo
    from refdeblur_video.image_files import read_image, to_uint8
    from refdeblur_video.video.sources import fetch_frames

    def rng(name: str) -> np.random.Generator:
        return np.random.default_rng([args.seed, sum(name.encode())])

    def photo(stem: str, frames: int) -> list[np.ndarray]:
        return pan_clip(to_uint8(read_image(find_photo(args.photos, stem))), frames,
                        rng=rng(stem))

    juggle = fetch_frames(args.videos / VIDEOS["juggle"], set(range(FRAMES)), uint8=True)
    clips = {"shake_juggle": (shake_clip, [juggle[i] for i in range(FRAMES)])}
    for name, stem in SHAKE_PHOTOS.items():
        clips[f"shake_{name}"] = (shake_clip, photo(stem, FRAMES))
    bedroom = fetch_frames(args.videos / VIDEOS["bedroom"], set(range(4 + 3 * FRAMES + 4)),
                           uint8=True)
    clips["average_bedroom"] = (average_clip, [bedroom[i] for i in range(4 + 3 * FRAMES + 4)])
    name, stem = AVERAGE_PHOTO
    clips[f"average_{name}"] = (average_clip, photo(stem, 4 + 3 * FRAMES + 4))
    late = fetch_frames(args.videos / VIDEOS["juggle"], set(range(12, 12 + FRAMES)), uint8=True)
    clips["nosharp_juggle"] = (nosharp_clip, [late[i] for i in range(12, 12 + FRAMES)])
    clips["nosharp_Aqua"] = (nosharp_clip, photo(SHAKE_PHOTOS["Aqua"], FRAMES))
    if args.only:
        clips = {k: v for k, v in clips.items() if k in args.only}
    for name, (make, source) in clips.items():
        inputs, meta = make(source, rng(name))
        truth = source[:FRAMES] if make is not average_clip else \
            [source[4 + 3 * k] for k in range(FRAMES)]
        _write(args.out / name, inputs, truth, meta)
        print(f"{args.out / name}: {meta}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

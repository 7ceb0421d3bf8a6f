#!/usr/bin/env python
"""Fourier burst accumulation (Delbracio & Sapiro, 2015) against the default pipeline on
clips with ground truth: each blurry frame fused, frequency by frequency, with its
neighbours aligned onto it, each frequency weighted toward the frame that keeps most of it
(hand-held shake blurs each frame in another direction). No training; an experiment.

    python tools/experiments/burst_fusion.py runs/validation/rs6dof/clips/* runs/adapt_clips/*
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from measure_adapt import work_folder, write_rows  # noqa: E402


def _window(tile: int) -> np.ndarray:
    ramp = np.hanning(tile + 2)[1:-1].astype(np.float32)
    return np.outer(ramp, ramp)


def _starts(length: int, tile: int, stride: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def _blur_periodic(image: np.ndarray, sigma: float) -> np.ndarray:
    pad = int(3 * sigma) + 1
    wrapped = np.pad(image, pad, mode="wrap")
    return cv2.GaussianBlur(wrapped, (0, 0), sigma)[pad:-pad, pad:-pad]


def fuse(frames: list[np.ndarray], power: float = 11.0, tile: int = 128,
         smooth: float = 2.0, keep: list[np.ndarray] | None = None) -> np.ndarray:
    """Fourier burst accumulation of float H x W x 3 frames aligned onto ``frames[0]``,
    in overlapping windowed tiles. ``keep``: per frame, an H x W weight in [0, 1] of where
    it may contribute (1 everywhere for the first); a tile takes a frame only where its mean
    weight is over a half."""
    h0, w0 = frames[0].shape[:2]
    # reflected margins: every pixel is then inside tiles whose windows are well above 0
    pad = tile // 2
    frames = [np.pad(f, ((pad, pad), (pad, pad), (0, 0)), mode="reflect") for f in frames]
    if keep is not None:
        keep = [np.pad(k, pad, mode="reflect") for k in keep]
    h, w = frames[0].shape[:2]
    window = _window(tile)[..., None]
    out = np.zeros_like(frames[0])
    norm = np.zeros((h, w, 1), np.float32)
    stack = np.stack(frames)
    for y in _starts(h, tile, tile // 2):
        for x in _starts(w, tile, tile // 2):
            region = (slice(None), slice(y, y + tile), slice(x, x + tile))
            patches = stack[region]
            usable = [0] + [i for i in range(1, len(frames))
                            if keep is None or keep[i][y:y + tile, x:x + tile].mean() > 0.5]
            patches = patches[usable]
            mean = patches.mean(axis=(1, 2), keepdims=True)
            spectra = np.fft.fft2((patches - mean) * window, axes=(1, 2))
            magnitude = np.abs(spectra).mean(axis=3)
            if smooth > 0:
                magnitude = np.stack([_blur_periodic(m.astype(np.float32), smooth)
                                      for m in magnitude])
            logw = power * np.log(magnitude + 1e-8)
            logw -= logw.max(axis=0, keepdims=True)
            weight = np.exp(logw)
            weight /= weight.sum(axis=0, keepdims=True)
            fused = np.real(np.fft.ifft2((weight[..., None] * spectra).sum(0), axes=(0, 1)))
            out[y:y + tile, x:x + tile] += fused + mean[0] * window
            norm[y:y + tile, x:x + tile] += window
    out = out / np.maximum(norm, 1e-6)
    return np.clip(out[pad:pad + h0, pad:pad + w0], 0.0, 1.0)


def agreement(target: np.ndarray, aligned: np.ndarray, sigma: float = 3.0,
              tolerance: float = 0.04) -> np.ndarray:
    """1 where the aligned neighbour agrees with the target after a low-pass, else 0."""
    a = cv2.GaussianBlur(target.mean(2), (0, 0), sigma)
    b = cv2.GaussianBlur(aligned.mean(2), (0, 0), sigma)
    return (np.abs(a - b) < tolerance).astype(np.float32)


def measure(clip: Path, restorer, work: Path, radius: int, power: float) -> dict:
    from refdeblur_video.evaluate.metrics import psnr
    from refdeblur_video.image_files import from_float, read_image, to_float
    from refdeblur_video.pipeline import deblur_video
    from refdeblur_video.refine.transfer import flow_align
    from refdeblur_video.video.reader import open_reader

    out, log = work / f"{clip.name}.mkv", work / f"{clip.name}.json"
    deblur_video(clip / "input.mp4", out, restorer, codec="ffv1", log=str(log), quiet=True,
                 overwrite=True)
    blurry = {r["index"] for r in json.loads(log.read_text())["frames"] if r["blurry"]}
    with open_reader(clip / "input.mp4") as reader:
        inputs = [to_float(f.image) for f in reader]
    with open_reader(out) as reader:
        defaults = [to_float(f.image) for f in reader]
    gt = [read_image(p) for p in sorted((clip / "gt").glob("*.png"))]
    rows = []
    for t in sorted(blurry):
        others = [i for i in range(t - radius, t + radius + 1)
                  if i != t and 0 <= i < len(inputs)]
        def score(image: np.ndarray, truth: np.ndarray = gt[t]) -> float:
            return psnr(from_float(image, np.uint8), truth)

        scores = {"input": score(inputs[t]), "default": score(defaults[t])}
        for name, base in (("fba_input", inputs[t]), ("fba_default", defaults[t])):
            aligned = [flow_align(base, inputs[i]) for i in others]
            keep = [np.ones(base.shape[:2], np.float32)] + [agreement(base, a) for a in aligned]
            scores[name] = score(fuse([base, *aligned], power))
            scores[name + "_checked"] = score(fuse([base, *aligned], power, keep=keep))
        rows.append(scores)
    return {"clip": clip.name, "frames": len(rows),
            **{k: float(np.mean([r[k] for r in rows])) for k in (rows[0] if rows else {})}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="+", type=Path)
    parser.add_argument("--radius", type=int, default=2, help="neighbours on each side")
    parser.add_argument("--power", type=float, default=11.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from refdeblur_video.model.restorer import load_model

    restorer = load_model("default", "cpu")
    rows = []
    with work_folder(None) as work:
        for clip in args.clips:
            rows.append(measure(clip, restorer, work, args.radius, args.power))
            print(json.dumps({k: round(v, 2) if isinstance(v, float) else v
                              for k, v in rows[-1].items()}), flush=True)
    write_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

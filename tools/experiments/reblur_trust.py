#!/usr/bin/env python
"""Does the blurry frame itself tell where the aligned reference can be trusted?

The transfer's cues compare the aligned reference with the network's output, which has
already borrowed from that reference; the blurry frame has not. Here one blur kernel per
frame is fitted (least squares in the Fourier domain, support cropped) that takes the
aligned reference to the blurry frame; where the reference, blurred so, explains the blurry
frame worse than the network's output blurred the same way, the transfer's weight is
lowered: ``weight * exp(-max(0, e_ref - e_out - margin) / tau)`` with ``e`` the low-passed
absolute residual of the grey images.

    python tools/experiments/reblur_trust.py runs/validation \\
        --model refdeblur_video/weights/lite.safetensors --cache runs/judge_cache/validation \\
        --taus 0.004 0.008 0.016

Network outputs come from (and go to) the same cache as ``flow_source.py``. Prints the
default transfer and each variant per generator (PSNR dB of the triplets), and with
``--oracle`` a per-block oracle of the same two choices for scale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from refdeblur_video.evaluate.generators import read_index
from refdeblur_video.evaluate.metrics import psnr
from refdeblur_video.evaluate.triplets import _read_sorted, load_triplet
from refdeblur_video.image_files import from_float, to_float
from refdeblur_video.refine.transfer import DEFAULT_TRANSFER, _scale, blend_weight, transfer_cues

sys.path.insert(0, str(Path(__file__).parent))
from flow_source import _cache_key, _outputs  # noqa: E402


def _grey(image: np.ndarray) -> np.ndarray:
    return image.mean(axis=2).astype(np.float32)


def fitted_kernel(sharp: np.ndarray, blurry: np.ndarray, support: int,
                  regulariser: float = 1e-3) -> np.ndarray:
    """The blur kernel (``support`` x ``support``, sums to 1) that best takes ``sharp`` to
    ``blurry`` (grey, same size): Tikhonov-regularised division in the Fourier domain, then
    cropped to its support around the origin and clipped to be non-negative."""
    window = np.outer(np.hanning(sharp.shape[0]), np.hanning(sharp.shape[1])).astype(np.float32)
    s = np.fft.rfft2((sharp - sharp.mean()) * window)
    b = np.fft.rfft2((blurry - blurry.mean()) * window)
    power = np.abs(s) ** 2
    k = np.fft.irfft2(np.conj(s) * b / (power + regulariser * power.mean()), s=sharp.shape)
    half = support // 2
    kernel = np.roll(np.roll(k, half, axis=0), half, axis=1)[:support, :support]
    kernel = np.clip(kernel, 0, None)
    total = kernel.sum()
    if total <= 0:
        kernel = np.zeros((support, support), np.float32)
        kernel[half, half] = 1
        return kernel
    return (kernel / total).astype(np.float32)


def residual(candidate: np.ndarray, blurry: np.ndarray, kernel: np.ndarray,
             sigma: float) -> np.ndarray:
    """The low-passed absolute difference between ``candidate`` blurred by ``kernel`` and
    ``blurry`` (grey images)."""
    reblurred = cv2.filter2D(candidate, -1, kernel, borderType=cv2.BORDER_REFLECT)
    return cv2.GaussianBlur(np.abs(reblurred - blurry), (0, 0), sigma)


def local_shift(candidate: np.ndarray, blurry: np.ndarray, kernel: np.ndarray,
                block: int = 64) -> np.ndarray:
    """Per pixel, how far (px) ``candidate`` blurred by ``kernel`` sits from ``blurry``
    locally: phase correlation of ``block``-pixel windows every half block, interpolated."""
    reblurred = cv2.filter2D(candidate, -1, kernel, borderType=cv2.BORDER_REFLECT)
    height, width = blurry.shape
    step = block // 2
    ys = list(range(0, height - block + 1, step))
    xs = list(range(0, width - block + 1, step))
    grid = np.zeros((len(ys), len(xs)), np.float32)
    hann = cv2.createHanningWindow((block, block), cv2.CV_32F)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            (dx, dy), response = cv2.phaseCorrelate(
                np.ascontiguousarray(reblurred[y:y + block, x:x + block]),
                np.ascontiguousarray(blurry[y:y + block, x:x + block]), hann)
            grid[i, j] = np.hypot(dx, dy) if response > 0.05 else 0.0
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_LINEAR)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("valdir", type=Path)
    parser.add_argument("--model", default="refdeblur_video/weights/lite.safetensors")
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--taus", type=float, nargs="+", default=[0.004, 0.008, 0.016])
    parser.add_argument("--margin", type=float, default=0.0)
    parser.add_argument("--support", type=int, default=49)
    parser.add_argument("--sigma", type=float, default=8.0, help="residual low-pass, px at 720p")
    parser.add_argument("--generators", nargs="*", default=None)
    parser.add_argument("--oracle", action="store_true")
    parser.add_argument("--shifts", type=float, nargs="*", default=[],
                        help="also: weight * exp(-(local shift / S)^2), S in px")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from refdeblur_video.model.restorer import load_model

    restorer = load_model(args.model, "cpu", reference_check=0.0)
    args.cache.mkdir(parents=True, exist_ok=True)
    for entry in read_index(args.valdir):
        generator = entry["name"]
        if args.generators and generator not in args.generators:
            continue
        rows: dict[str, list[float]] = {}
        for k, triplet in enumerate(_read_sorted(args.valdir / generator / "manifest.jsonl",
                                                 "val")):
            raw = load_triplet(triplet)
            images = {key: to_float(value) for key, value in raw.items()}
            path = args.cache / f"{generator}_{k:03d}_new_{_cache_key(args.model)}.npz"
            out = _outputs(restorer, raw, path)
            cues = transfer_cues(out, images["reference"], DEFAULT_TRANSFER)
            weight = blend_weight(cues.confidence, cues, DEFAULT_TRANSFER)
            sharp = raw["sharp"]

            def score(w: np.ndarray, out=out, aligned=cues.aligned, sharp=sharp) -> float:
                fused = np.clip(out + w[..., None] * (aligned - out), 0, 1)
                return psnr(from_float(fused, np.uint8), sharp)

            rows.setdefault("network", []).append(psnr(from_float(out, np.uint8), sharp))
            rows.setdefault("default", []).append(score(weight))
            blurry = _grey(images["blurry"])
            inside = cues.inside[..., None] > 0.5
            ref_grey = _grey(np.where(inside, cues.aligned, out))
            kernel = fitted_kernel(ref_grey, blurry, args.support)
            sigma = args.sigma * _scale(out, DEFAULT_TRANSFER)
            e_ref = residual(ref_grey, blurry, kernel, sigma)
            e_out = residual(_grey(out), blurry, kernel, sigma)
            excess = np.maximum(0.0, e_ref - e_out - args.margin)
            for tau in args.taus:
                rows.setdefault(f"tau{tau:g}", []).append(score(weight * np.exp(-excess / tau)))
            if args.shifts:
                shift = local_shift(ref_grey, blurry, kernel)
                for extent in args.shifts:
                    rows.setdefault(f"shift{extent:g}", []).append(
                        score(weight * np.exp(-(shift / extent) ** 2)))
            if args.oracle:
                truth = to_float(sharp)
                err_ref = cv2.blur(np.abs(cues.aligned - truth).mean(axis=2), (16, 16))
                err_out = cv2.blur(np.abs(out - truth).mean(axis=2), (16, 16))
                rows.setdefault("oracle", []).append(
                    score(np.where(err_ref < err_out, 1.0, 0.0).astype(np.float32)))
        means = {name: round(float(np.mean(values)), 3) for name, values in rows.items()}
        print(generator, "  ".join(f"{name} {value:.2f}" for name, value in means.items()),
              flush=True)
        if args.json:
            with args.json.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"generator": generator, "valdir": str(args.valdir),
                                         **means}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

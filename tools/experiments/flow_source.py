#!/usr/bin/env python
"""On which image should the reference transfer compute its flow? The default pipeline
(network, then the single-reference transfer) on the validation triplets, with the
transfer's alignment and weight computed on another image than the network's output; the
blend always goes onto ``--model``'s unfiltered output.

A network whose matches are good copies reference detail in whole 4 x 4 blocks, and the
transfer's flow then locks onto those copies instead of the scene (docs/TRAINING.md,
session 25). Each variant is a candidate for an image free of them.

    python tools/experiments/flow_source.py runs/validation --model runs/match1500.safetensors \\
        --cache runs/flow_cache --variants own baseline split2 half

The network outputs are cached in ``--cache`` (one .npz per triplet and model), so further
variants cost only the transfer. Prints one row per generator and sequence, and a JSON
line per generator with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from refdeblur_video.evaluate.generators import read_index
from refdeblur_video.evaluate.metrics import psnr
from refdeblur_video.evaluate.triplets import _read_sorted, load_triplet
from refdeblur_video.image_files import from_float, to_float
from refdeblur_video.refine.transfer import (
    DEFAULT_TRANSFER,
    TransferSettings,
    _cues_for_patch,
    _gray8,
    _keep_better,
    _Pair,
    _pairs,
    _scale,
    blend_weight,
    transfer_cues,
    transfer_reference,
    usable_patch_sizes,
)

sys.path.insert(0, str(Path(__file__).parent))
from tune_transfer import transfer_settings  # noqa: E402


def _low(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigma)


def _split(sigma: float) -> Callable[[dict], np.ndarray]:
    """The output's low band with the blurry frame's high band (sigma in the frame's own
    pixels): the scene's layout from the network, no copied fine detail."""
    def make(images: dict) -> np.ndarray:
        out, blurry = images["new"], images["blurry"]
        return np.clip(_low(out, sigma) + blurry - _low(blurry, sigma), 0, 1)
    return make


def _half(images: dict) -> np.ndarray:
    """The output halved and enlarged: 4 x 4 blocks become 2 x 2 and are smoothed away."""
    out = images["new"]
    h, w = out.shape[:2]
    small = cv2.resize(out, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


ALIGNERS: dict[str, Callable[[dict], np.ndarray]] = {
    "own": lambda im: im["new"],
    "baseline": lambda im: im["base"],
    "blurry": lambda im: im["blurry"],
    "split1": _split(1.0),
    "split2": _split(2.0),
    "half": _half,
    "blind": lambda im: im["blind"],
    "blindhalf": lambda im: im["blindhalf"],
}


def _aligner(variant: str, images: dict) -> np.ndarray:
    """The image a variant aligns on; ``softS``/``flowsoftS``: sigma S px at 720p, scaled to
    the frame's short side as the transfer scales ``align_smoothing_px``."""
    if variant.startswith("flowblind"):  # the flow only, cues against the output
        return ALIGNERS[variant[len("flow"):]](images)
    for prefix in ("flowsoft", "soft"):
        if variant.startswith(prefix):
            out = images["new"]
            return _low(out, float(variant[len(prefix):]) * _scale(out, DEFAULT_TRANSFER))
    return ALIGNERS[variant](images)


def _variant_output(variant: str, images: dict) -> np.ndarray:
    """The new network's output finished as ``variant`` says (float RGB); after a colon,
    transfer settings (``either2.5:name=value``; ``own:flow_max_lines=360``)."""
    out, reference = images["new"], images["reference"]
    variant, _, overrides = variant.partition(":")
    base = transfer_settings(overrides)
    if variant.startswith("smooth"):  # the product's transfer with transfer_smoothing
        return transfer_reference(out, reference, replace(
            base, align_smoothing_px=float(variant[len("smooth"):])))
    for prefix, lines, both in (("halflow", 360, False), ("low", base.flow_max_lines, False),
                                ("eitherhalf", 360, True),
                                ("either", base.flow_max_lines, True)):
        if variant.startswith(prefix):
            return _finish_low(out, reference, float(variant[len(prefix):]), lines, base, both)
    return _finish(out, _aligner(variant, images), reference, base,
                   variant.startswith(("flowsoft", "flowblind")))


def _cached(path: Path, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """``compute()``'s image from the cache at ``path``, computed and cached first if
    missing (as float16 either way, so that a rerun reads what the first run used)."""
    if not path.is_file():
        np.savez(path, out=compute().astype(np.float16))
    return np.load(path)["out"].astype(np.float32)


def _outputs(restorer, images: dict, path: Path) -> np.ndarray:
    """The network's output, from the cache or computed and cached."""
    return _cached(path, lambda: restorer.restore_floats([images["blurry"]],
                                                         [images["reference"]])[0][0])


def _blind_outputs(restorer, raw: dict, path: Path, half: bool) -> np.ndarray:
    """The network's output with the blurry frame as its own reference (no reference
    detail copied), at full resolution or on the frame halved and enlarged back; cached."""
    def compute() -> np.ndarray:
        blurry = raw["blurry"]
        h, w = blurry.shape[:2]
        if half:
            blurry = cv2.resize(blurry, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        out = restorer.restore_floats([blurry], [blurry])[0][0]
        return cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR) if half else out
    return _cached(path, compute)


def _cache_key(spec: str) -> str:
    """A model's name in the cache: its file's stem, size and time (a rewritten checkpoint
    gets new outputs), or the shipped name."""
    path = Path(spec)
    if not path.is_file():
        return spec
    stat = path.stat()
    return f"{path.stem}-{stat.st_size}-{int(stat.st_mtime)}"


def _finish_low(out: np.ndarray, reference: np.ndarray, sigma: float, max_lines: int,
                base: TransferSettings, both: bool) -> np.ndarray:
    """Aligned on the output low-passed by ``sigma`` px at 720p (its forward flow at the
    first level at or below ``max_lines``; session 26's ``transfer_smoothing``) and, with
    ``both``, on the output too, each alignment with its own backward flow, per pixel the
    more trusted. The sharpness cue and the blend: the output as it is. The first patch size
    only (the default has one)."""
    pair, low = _pairs(out, reference, replace(base, align_smoothing_px=sigma))
    low.settings = replace(base, flow_max_lines=max_lines)
    pair.backward_grey, low.backward = pair.grey, {}  # each its own backward flow
    size = usable_patch_sizes(base.patch_sizes, *out.shape[:2])[0]
    cues = _cues_for_patch(low, size)
    confidence = cues.confidence
    if both:
        plain = _cues_for_patch(pair, size)
        confidence = _keep_better(plain, plain.confidence, cues)
        cues = plain
    weight = blend_weight(confidence, cues, base)
    return np.clip(out + weight[..., None] * (cues.aligned - out), 0, 1)


def _finish(out: np.ndarray, aligner: np.ndarray, reference: np.ndarray,
            settings: TransferSettings = DEFAULT_TRANSFER, flow_only: bool = False) -> np.ndarray:
    """``out`` with the reference blended in, aligned on ``aligner``; its cues measured
    against ``aligner`` too, or against ``out`` (``flow_only``)."""
    if flow_only:
        pair = _Pair(out, reference, settings)
        pair.grey = pair.backward_grey = (_gray8(aligner), pair.grey[1])
        cues = _cues_for_patch(pair, usable_patch_sizes(settings.patch_sizes,
                                                        *out.shape[:2])[0])
    else:
        cues = transfer_cues(aligner, reference, settings)
    weight = blend_weight(cues.confidence, cues, settings)
    return np.clip(out + weight[..., None] * (cues.aligned - out), 0, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("valdir", type=Path)
    parser.add_argument("--model", required=True, help="the network whose output is finished")
    parser.add_argument("--baseline", default="default",
                        help="the network whose output the 'baseline' variant aligns on")
    parser.add_argument("--cache", type=Path, required=True)
    plain = sorted(set(ALIGNERS) - {"blind", "blindhalf"})
    parser.add_argument("--variants", nargs="+", default=["own", "baseline"],
                        help=f"{', '.join(plain)}, softS (the output low-passed "
                        "with sigma S px), flowsoftS (the same for the flow only), eitherS "
                        "(per pixel the more trusted of the output and lowS, each with its "
                        "own backward flow), lowS (softS with the sharpness cue against the "
                        "output: session 26's transfer_smoothing), smoothS (the product's "
                        "transfer of a model with transfer_smoothing S), halflowS / "
                        "eitherhalfS (the low-passed forward flow at half resolution); after "
                        "a colon, transfer settings (either2.5:refinement_iterations=5); blind / "
                        "blindhalf (the network's output with the frame as its own reference, "
                        "at full or half resolution), flowblind / flowblindhalf (the same for "
                        "the flow only)")
    parser.add_argument("--generators", nargs="*", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from refdeblur_video.model.restorer import load_model

    # the baseline network only runs where a variant aligns on its output
    names = {variant.partition(":")[0] for variant in args.variants}
    specs = [("new", args.model)] + [("base", args.baseline)] * ("baseline" in names)
    models = {name: (spec, load_model(spec, "cpu", reference_check=0.0))
              for name, spec in specs}
    args.cache.mkdir(parents=True, exist_ok=True)
    for entry in read_index(args.valdir):
        generator = entry["name"]
        if args.generators and generator not in args.generators:
            continue
        triplets = _read_sorted(args.valdir / generator / "manifest.jsonl", "val")
        scores: dict[str, dict[str, list[float]]] = {}
        for k, triplet in enumerate(triplets):
            raw = load_triplet(triplet)
            images = {key: to_float(value) for key, value in raw.items()}
            for name, (spec, restorer) in models.items():
                path = args.cache / f"{generator}_{k:03d}_{name}_{_cache_key(spec)}.npz"
                images[name] = _outputs(restorer, raw, path)
            for kind in {"blind", "blindhalf"} & {n.removeprefix("flow") for n in names}:
                spec, restorer = models["new"]
                path = args.cache / f"{generator}_{k:03d}_{kind}_{_cache_key(spec)}.npz"
                images[kind] = _blind_outputs(restorer, raw, path, kind == "blindhalf")
            sharp = raw["sharp"]
            row = scores.setdefault(triplet.sequence, {})
            row.setdefault("input", []).append(psnr(raw["blurry"], sharp))
            row.setdefault("network", []).append(psnr(from_float(images["new"], np.uint8), sharp))
            for variant in args.variants:
                done = _variant_output(variant, images)
                row.setdefault(variant, []).append(psnr(from_float(done, np.uint8), sharp))
        columns = ["input", "network", *args.variants]
        means = {c: float(np.mean([v for s in scores.values() for v in s[c]])) for c in columns}
        print(generator, "  ".join(f"{c} {means[c]:.2f}" for c in columns), flush=True)
        for sequence, row in scores.items():
            print("   ", sequence, "  ".join(f"{c} {np.mean(row[c]):.2f}" for c in columns))
        if args.json:
            with args.json.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"generator": generator, "model": args.model,
                                         **{c: round(means[c], 3) for c in columns}}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

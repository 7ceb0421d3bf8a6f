#!/usr/bin/env python
"""Where a pre-aligned reference helps the default pipeline: per validation triplet, PSNR
of the default pipeline (network, then the reference transfer with the real reference) for
the shipped model and for a ``prealign`` model with its pre-alignment on, off, and in two
passes (the reference aligned onto the model's own output without pre-alignment, then a
second network pass), with per-frame cues that do not need the ground truth.

    python tools/experiments/prealign_choice.py runs/validation \\
        --model runs/prealigned_final.safetensors --json runs/prealign_choice.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from blind_refs import transferred  # noqa: E402


def low_pass_psnr(a: np.ndarray, b: np.ndarray, sigma: float = 4.0) -> float:
    """PSNR of two uint8 images after a Gaussian low-pass (how far apart the scenes are,
    regardless of blur)."""
    import cv2

    la, lb = (cv2.GaussianBlur(x.astype(np.float32), (0, 0), sigma) for x in (a, b))
    return float(10 * np.log10(255.0**2 / max(float(np.mean((la - lb) ** 2)), 1e-10)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("valdir", type=Path, help="tools/recipes/make_validation.sh's folder")
    parser.add_argument("--model", required=True, help="a checkpoint with prealign: true")
    parser.add_argument("--generators", nargs="+", default=["rs6dof", "shake", "average"])
    parser.add_argument("--json", type=Path, required=True, help="one JSON line per triplet")
    args = parser.parse_args(argv)
    from refdeblur_video.data.manifest import read_manifest
    from refdeblur_video.evaluate.metrics import psnr
    from refdeblur_video.evaluate.triplets import load_triplet
    from refdeblur_video.frames.sharpness import sharpness
    from refdeblur_video.model import load_model
    from refdeblur_video.refine.transfer import flow_align

    shipped, model = load_model("default", "cpu"), load_model(args.model, "cpu")
    model.prealign = False  # every reference below is given as the network should see it

    def restored(restorer, blurry: np.ndarray, reference: np.ndarray) -> np.ndarray:
        return restorer.restore_images([blurry], [reference])[0]

    with args.json.open("w") as out:
        for generator in args.generators:
            for triplet in read_manifest(args.valdir / generator / "manifest.jsonl"):
                images = load_triplet(triplet, None)
                b, r, s = images["blurry"], images["reference"], images["sharp"]
                aligned = flow_align(b, r)  # what the model's own pre-alignment makes
                first = restored(model, b, r)
                second = restored(model, b, flow_align(first, r))
                row = {"generator": generator, "sequence": triplet.sequence,
                       "sharpness_ratio": sharpness(b) / max(sharpness(r), 1e-9),
                       "low_pass_raw": low_pass_psnr(r, b),
                       "low_pass_aligned": low_pass_psnr(aligned, b),
                       "input": psnr(b, s), "reference": psnr(r, s),
                       "aligned_reference": psnr(aligned, s),
                       "shipped": psnr(transferred(restored(shipped, b, r), r), s),
                       "on": psnr(transferred(restored(model, b, aligned), r), s),
                       "off": psnr(transferred(first, r), s),
                       "two_pass": psnr(transferred(second, r), s)}
                out.write(json.dumps(row) + "\n")
                out.flush()
    rows = [json.loads(line) for line in args.json.read_text().splitlines()]
    for generator in args.generators:
        mine = [x for x in rows if x["generator"] == generator]
        print(f"{generator:10}" + "".join(
            f"  {k} {np.mean([x[k] for x in mine]):.2f}"
            for k in ("input", "shipped", "on", "off", "two_pass")))
    return 0


if __name__ == "__main__":
    sys.exit(main())

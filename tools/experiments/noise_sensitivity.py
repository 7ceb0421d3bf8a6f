#!/usr/bin/env python
"""How the network alone copes with a noisy camera: shot noise (photons at white) added to
the blurry frame only, or to the blurry frame and its reference alike (a real camera's
reference is as noisy), on one generator's validation triplets. PSNR gain over the noisy
input, the reference check off and no transfer:

    python tools/experiments/noise_sensitivity.py runs/validation --generator shake \\
        --peaks 0 6000 3000 1500
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def noisy(image: np.ndarray, peak: float, rng: np.random.Generator) -> np.ndarray:
    """``image`` (RGB uint8) with Poisson noise of ``peak`` photons at white (0: none)."""
    if peak <= 0:
        return image
    from refdeblur_video.data.shake import shot_noise
    from refdeblur_video.image_files import from_float, to_float

    return from_float(shot_noise(to_float(image), peak, rng), np.uint8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("valdir", type=Path, help="tools/recipes/make_validation.sh's folder")
    parser.add_argument("--generator", default="shake")
    parser.add_argument("--model", default="default")
    parser.add_argument("--peaks", nargs="+", type=float, default=[0, 6000, 3000, 1500])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from refdeblur_video.data.manifest import read_manifest
    from refdeblur_video.evaluate.metrics import psnr
    from refdeblur_video.evaluate.triplets import load_triplet
    from refdeblur_video.model import load_model

    restorer = load_model(args.model, "cpu", reference_check=0)
    triplets = [load_triplet(t) for t in
                read_manifest(args.valdir / args.generator / "manifest.jsonl")]
    table = []
    print(f"{args.generator}: photons at white, input PSNR, network gain with a clean "
          "reference, with an equally noisy one (dB)")
    for peak in args.peaks:
        rng = np.random.default_rng(0)
        scores: dict[str, list[float]] = {"input": [], "clean_ref": [], "noisy_ref": []}
        for images in triplets:
            sharp, reference = images["sharp"], images["reference"]
            blurry = noisy(images["blurry"], peak, rng)
            base = psnr(blurry, sharp)
            scores["input"].append(base)
            gain = psnr(restorer.restore_images([blurry], [reference])[0], sharp) - base
            scores["clean_ref"].append(gain)
            if peak > 0:  # with no noise the noisy reference is the clean one
                out = restorer.restore_images([blurry], [noisy(reference, peak, rng)])[0]
                gain = psnr(out, sharp) - base
            scores["noisy_ref"].append(gain)
        row = {"peak": peak, **{k: float(np.mean(v)) for k, v in scores.items()}}
        table.append(row)
        print(f"{peak:8.0f}  {row['input']:6.2f}  {row['clean_ref']:+6.2f}  "
              f"{row['noisy_ref']:+6.2f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "generator": args.generator,
                                         "rows": table}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""What the network does with no usable reference: PSNR of its output on each generator's
validation triplets with the real reference, with the frame itself, and with other
stand-ins, the reference check off and no transfer (the network alone).

    python tools/experiments/blind_refs.py runs/validation --model PATH \\
        --stand-ins ref self grey
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def stand_ins(blurry: np.ndarray, reference: np.ndarray, other: np.ndarray
              ) -> dict[str, np.ndarray | None]:
    """The references to try (None: the blurry input itself, unrestored)."""
    return {"input": None, "ref": reference, "self": blurry,
            "grey": np.full_like(blurry, 128), "zeros": np.zeros_like(blurry),
            "unrelated": other, "flipped_self": np.ascontiguousarray(blurry[::-1, ::-1])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("valdir", type=Path, help="tools/recipes/make_validation.sh's folder")
    parser.add_argument("--model", default="default")
    parser.add_argument("--generators", nargs="+", default=["rs6dof", "shake", "average"])
    parser.add_argument("--stand-ins", nargs="+", default=["input", "ref", "self"])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    import cv2

    from refdeblur_video.data.manifest import read_manifest
    from refdeblur_video.evaluate.metrics import psnr
    from refdeblur_video.model import load_model
    from refdeblur_video.video.sources import load_image

    restorer = load_model(args.model, "cpu", reference_check=0)
    table = {}
    for generator in args.generators:
        triplets = list(read_manifest(args.valdir / generator / "manifest.jsonl"))
        scores: dict[str, list[float]] = {name: [] for name in args.stand_ins}
        for i, triplet in enumerate(triplets):
            blurry, sharp, reference = (load_image(p) for p in
                                        (triplet.blur, triplet.sharp, triplet.ref))
            other = load_image(triplets[(i + len(triplets) // 2) % len(triplets)].ref)
            other = cv2.resize(other, (blurry.shape[1], blurry.shape[0]),
                               interpolation=cv2.INTER_AREA)
            refs = stand_ins(blurry, reference, other)
            for name in args.stand_ins:
                out = blurry if refs[name] is None else \
                    restorer.restore_images([blurry], [refs[name]])[0]
                scores[name].append(psnr(out, sharp))
        table[generator] = {name: float(np.mean(v)) for name, v in scores.items()}
        print(f"{generator:10}" + "".join(f"  {k} {v:.2f}" for k, v in table[generator].items()),
              flush=True)
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "psnr": table}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

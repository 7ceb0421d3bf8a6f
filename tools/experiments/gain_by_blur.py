#!/usr/bin/env python
"""Per-frame gains of a ``refdeblur-eval generators`` report beside each frame's blur length.

Joins REPORT/GENERATOR/frames.csv with the generator's blur metadata
(VALDIR/GENERATOR/blur_meta.jsonl; rs6dof gives the mean blur extent in pixels, shake the
camera path's length) and prints, per frame and per blur-length band, the input PSNR and the
gains of the network alone, of the default and of the frame as its own reference:

    python tools/experiments/gain_by_blur.py runs/eval20_shipped runs/validation rs6dof
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

LENGTH_KEYS = ("extent_mean_px", "path_px")  # rs6dof, shake
BANDS = (0.0, 8.0, 16.0, 32.0, float("inf"))  # blur length bands, px


def rows(report: Path, valdir: Path, generator: str) -> list[dict]:
    """One dict per frame: sequence, frame, blur length (px) and the PSNR columns."""
    meta = {}
    for line in (valdir / generator / "blur_meta.jsonl").read_text().splitlines():
        item = json.loads(line)
        length = next((item[k] for k in LENGTH_KEYS if k in item), None)
        meta[(item["sequence"], int(item["frame"]))] = length
    out = []
    with open(report / generator / "frames.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            frame = int(Path(row["blur"]).stem)
            out.append({"sequence": row["sequence"], "frame": frame,
                        "length": meta.get((row["sequence"], frame)),
                        **{k: float(row[k]) for k in ("psnr_input", "psnr_network_only",
                                                       "psnr_model", "psnr_self_ref")}})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="refdeblur-eval generators --report folder")
    parser.add_argument("valdir", type=Path, help="tools/recipes/make_validation.sh's folder")
    parser.add_argument("generator")
    args = parser.parse_args(argv)
    frames = sorted(rows(args.report, args.valdir, args.generator),
                    key=lambda r: (r["length"] is None, r["length"] or 0.0))
    print(f"{'sequence':14} {'frame':>5} {'blur px':>7} {'input':>6} {'network':>7} "
          f"{'default':>7} {'self':>6}")
    for r in frames:
        length = "?" if r["length"] is None else f"{r['length']:.1f}"
        print(f"{r['sequence']:14} {r['frame']:5d} {length:>7} {r['psnr_input']:6.2f} "
              f"{r['psnr_network_only'] - r['psnr_input']:+7.2f} "
              f"{r['psnr_model'] - r['psnr_input']:+7.2f} "
              f"{r['psnr_self_ref'] - r['psnr_input']:+6.2f}")
    print("\nmean gain by blur length (dB): band, frames, network, default, self")
    for low, high in zip(BANDS, BANDS[1:], strict=False):
        band = [r for r in frames if r["length"] is not None and low <= r["length"] < high]
        if band:
            gain = {k: float(np.mean([r[k] - r["psnr_input"] for r in band]))
                    for k in ("psnr_network_only", "psnr_model", "psnr_self_ref")}
            print(f"{low:4.0f}-{high:<4.0f} {len(band):3d} {gain['psnr_network_only']:+6.2f} "
                  f"{gain['psnr_model']:+6.2f} {gain['psnr_self_ref']:+6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Does a network's output lead the reference transfer's flow astray? For each frame the
pipeline restores in a clip with ground truth: the reference aligned by the flow computed on
the network's output, on the ground truth (the best this flow can do) and on the blurry
input, as PSNR against the ground truth, and the output flow's error against the ground
truth's (mean length, and mean vector: a mean error of the opposite sign to the truth's
flow means the flow falls short, as if the output sat partly where the reference has the
scene).

    python tools/experiments/make_adapt_clips.py runs/adapt_clips
    python tools/experiments/flow_bias.py runs/adapt_clips/average_Dragonfly \\
        --models default runs/gb.safetensors

Each model runs the whole pipeline once on the clip without the transfer (FFV1 output in a
temporary folder) and with the reference the pipeline chose; the flow is the transfer's
default (its first DIS patch size, at full resolution), without a model's second alignment
on its low-passed output (``transfer_smoothing``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np


def _align(image: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The transfer's forward flow from ``image`` to ``reference`` (its first usable patch
    size) and ``reference`` warped by it: (flow, aligned)."""
    from refdeblur_video.refine.transfer import (
        DEFAULT_TRANSFER,
        _forward_warp,
        _gray8,
        _pixel_grid,
        usable_patch_sizes,
    )

    h, w = image.shape[:2]
    patch = usable_patch_sizes(DEFAULT_TRANSFER.patch_sizes, h, w)[0]
    flow, _, _, aligned = _forward_warp((_gray8(image), _gray8(reference)), reference,
                                        _pixel_grid(h, w), patch, DEFAULT_TRANSFER)
    return flow, aligned


def measure(clip: Path, model: str, work: Path) -> list[dict]:
    """One row per restored frame of ``clip`` (a folder with input.mp4 and gt/*.png)."""
    from refdeblur_video.evaluate.metrics import psnr
    from refdeblur_video.image_files import from_float, read_image, to_float
    from refdeblur_video.model.restorer import load_model
    from refdeblur_video.pipeline import deblur_video
    from refdeblur_video.video.reader import open_reader

    restorer = load_model(model, "cpu")
    out, log = work / f"{Path(model).stem}.mkv", work / f"{Path(model).stem}.json"
    deblur_video(clip / "input.mp4", out, restorer, codec="ffv1", log=str(log), quiet=True,
                 overwrite=True, both_sides=False, transfer=False)
    # frames restored with a reference (not the frame itself, after the reference check)
    records = [r for r in json.loads(log.read_text())["frames"]
               if r["blurry"] and r["reference"] >= 0 and r.get("reference_used") != 0]
    with open_reader(clip / "input.mp4") as reader:
        frames = {f.index: to_float(f.image) for f in reader}
    with open_reader(out) as reader:
        outputs = {f.index: to_float(f.image) for f in reader}
    truths = sorted((clip / "gt").glob("*.png"))
    rows = []
    for record in records:
        index, reference = record["index"], frames[record["reference"]]
        truth = read_image(truths[index])
        found = {name: _align(image, reference) for name, image in
                 (("output", outputs[index]), ("truth", to_float(truth)),
                  ("input", frames[index]))}
        flows = {name: flow for name, (flow, _) in found.items()}
        error = (flows["output"] - flows["truth"]).reshape(-1, 2)
        rows.append({
            "model": model, "frame": index, "reference": record["reference"],
            "network": psnr(from_float(outputs[index], np.uint8), truth),
            **{f"aligned_by_{name}": psnr(from_float(aligned, np.uint8), truth)
               for name, (_, aligned) in found.items()},
            "flow_error": float(np.linalg.norm(error, axis=1).mean()),
            "flow_bias": [round(float(v), 3) for v in error.mean(0)],
            "truth_flow": [round(float(v), 2) for v in flows["truth"].reshape(-1, 2).mean(0)],
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("--models", nargs="+", default=["default"])
    args = parser.parse_args(argv)
    print(f"{'model':24} {'frame':>5} {'network':>7}  aligned by: {'output':>6} {'truth':>6} "
          f"{'input':>6}  flow error  bias (x, y)  truth flow")
    with tempfile.TemporaryDirectory() as work:
        for model in args.models:
            for row in measure(args.clip, model, Path(work)):
                print(f"{Path(model).stem:24} {row['frame']:5d} {row['network']:7.2f}"
                      f"  {'':11} {row['aligned_by_output']:6.2f} {row['aligned_by_truth']:6.2f} "
                      f"{row['aligned_by_input']:6.2f}  {row['flow_error']:10.2f}  "
                      f"{row['flow_bias']}  {row['truth_flow']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

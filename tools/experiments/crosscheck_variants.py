#!/usr/bin/env python
"""Does ``--adapt``'s end-to-end check judge right? Score kept adapted copies with several
ways of comparing a finished frame with its other sharp neighbour, beside the true gain.

Run ``measure_adapt.py --always-adopt --keep DIR`` first: DIR then holds each clip's adapted
weights (``<clip>_adapt<budget>.safetensors``) and the JSON rows give the true gain of the
copy on the clip's blurry frames (with ground truth). This script re-reads each clip, keeps
the frames the check uses, and prints one row per (clip, copy) with each variant's verdict:

- ``original``: the other neighbour aligned to the original's output, weighed by the
  transfer's full confidence (agreement, consistency, sharpness);
- ``blurry``: aligned to the blurry frame itself, weighed by flow consistency only (no cue
  that depends on either model's output);
- ``own``: each model's output gets its own alignment and weights (self-serving);
- ``common``: aligned to the original's output, weighed by the smaller of both models'
  confidences;
- ``reblur``: as ``own``, but each finished frame is first blurred by the kernel that best
  turns it into the aligned neighbour (``adapt.kernels.reblur_to_match``), so a neighbour
  that is itself blurred does not reward an output for being blurred the same way;
- ``reblur2``: ``reblur``, then aligned and weighed again (``adapt.crosscheck.agreement``).

    python tools/experiments/crosscheck_variants.py runs/adapt/always_default_60.json \\
        runs/adapt/kept_default --clips runs/validation/rs6dof/clips
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _psnr(pairs) -> float:
    from refdeblur_video.adapt.crosscheck import weighted_psnr

    return weighted_psnr([(float((weight[..., None] * (out - aligned) ** 2).sum()),
                           3.0 * float(weight.sum())) for out, aligned, weight in pairs])


def variants(checks, original, adapted, refiner) -> dict[str, float]:
    """Each variant's gain of ``adapted`` over ``original`` (dB)."""
    from refdeblur_video.adapt.crosscheck import _finished, agreement, weighted_psnr
    from refdeblur_video.adapt.kernels import reblur_to_match
    from refdeblur_video.image_files import to_float
    from refdeblur_video.refine.transfer import blend_weight, transfer_confidence, transfer_cues

    rows = {k: ([], []) for k in ("original", "blurry", "own", "common", "reblur")}
    twice = ([], [])
    for check in checks:
        other = to_float(check.other)
        out_o, out_a = (_finished(m, refiner, check) for m in (original, adapted))
        al_o, w_o = transfer_confidence(out_o, other)
        al_a, w_a = transfer_confidence(out_a, other)
        cues = transfer_cues(to_float(check.blurry), other)
        w_b = blend_weight(cues.consistency * cues.inside, cues)
        rows["original"][0].append((out_o, al_o, w_o))
        rows["original"][1].append((out_a, al_o, w_o))
        rows["blurry"][0].append((out_o, cues.aligned, w_b))
        rows["blurry"][1].append((out_a, cues.aligned, w_b))
        rows["own"][0].append((out_o, al_o, w_o))
        rows["own"][1].append((out_a, al_a, w_a))
        rows["reblur"][0].append((reblur_to_match(out_o, al_o), al_o, w_o))
        rows["reblur"][1].append((reblur_to_match(out_a, al_a), al_a, w_a))
        twice[0].append(agreement(out_o, other))
        twice[1].append(agreement(out_a, other))
        common = (w_o + w_a - abs(w_o - w_a)) / 2
        rows["common"][0].append((out_o, al_o, common))
        rows["common"][1].append((out_a, al_o, common))
    found = {k: _psnr(a) - _psnr(o) for k, (o, a) in rows.items()}
    return {**found, "reblur2": weighted_psnr(twice[1]) - weighted_psnr(twice[0])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=Path, help="measure_adapt.py --json output")
    parser.add_argument("kept", type=Path, help="its --keep folder")
    parser.add_argument("--clips", type=Path, required=True, help="folder of the clips")
    args = parser.parse_args(argv)

    from refdeblur_video.adapt.reservoir import scan_video
    from refdeblur_video.model.restorer import load_model
    from refdeblur_video.pipeline.options import DeblurOptions
    from refdeblur_video.refine import DEFAULT_TRANSFER, Refiner
    from refdeblur_video.video.reader import open_reader

    opts = DeblurOptions()
    original = load_model("default", "cpu")
    refiner = Refiner(DEFAULT_TRANSFER)
    rows = json.loads(args.rows.read_text())
    base = {r["clip"]: r["psnr"] for r in rows if r["budget_s"] is None}
    for row in rows:
        if row["budget_s"] is None:
            continue
        clip = row["clip"]
        weights = args.kept / f"{clip}_adapt{row['budget_s']:g}.safetensors"
        with open_reader(args.clips / clip / "input.mp4") as reader:
            sample = scan_video(reader, window=opts.window, max_offset=opts.max_offset,
                                threshold=opts.threshold, cuts=opts.cuts, crop=128,
                                capacity=4, held_capacity=2, held_every=4,
                                frame_count=reader.info.frame_count, deadline=None, seed=0)
        if not sample.crosschecks:
            print(json.dumps({"clip": clip, "checks": 0}))
            continue
        adapted = load_model(str(weights), "cpu")
        found = variants(sample.crosschecks, original, adapted, refiner)
        print(json.dumps({"clip": clip, "true_gain": round(row["psnr"] - base[clip], 3),
                          "checks": len(sample.crosschecks),
                          **{k: round(v, 3) for k, v in found.items()}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

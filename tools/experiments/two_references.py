#!/usr/bin/env python
"""The reference transfer from the sharp frames on both sides of a blurry frame (the
default) against the chosen reference only (``--one-reference``) and no transfer
(``--no-transfer``, the network alone): the whole pipeline on clips with ground truth,
PSNR/SSIM of the frames it restored, and its time.

    python tools/experiments/make_adapt_clips.py runs/adapt_clips     # training generators
    python tools/experiments/two_references.py runs/validation/rs6dof/clips/* runs/adapt_clips/* \\
        --json runs/two_references.json
    # the default only, with the transfer's settings changed (tune_transfer.py's syntax)
    python tools/experiments/two_references.py runs/adapt_clips/* --variants both \\
        --transfer homography_consistency=round_trip
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from measure_adapt import restored_scores, work_folder, write_rows  # noqa: E402

VARIANTS = {"both": (True, True), "one": (False, True), "network": (True, False)}


def measure(clip: Path, restorer, work: Path, variants=tuple(VARIANTS), **options) -> dict:
    """One row: each of ``variants``' scores and seconds on ``clip`` (a folder with
    input.mp4 and gt/; the first variant also scores the input); ``options``: more
    pipeline options for every variant."""
    from refdeblur_video.pipeline import deblur_video

    gt = sorted((clip / "gt").glob("*.png"))
    row: dict = {"clip": clip.name}
    for name in variants:
        both_sides, transfer = VARIANTS[name]
        out, log = work / f"{clip.name}_{name}.mkv", work / f"{clip.name}_{name}.json"
        summary = deblur_video(clip / "input.mp4", out, restorer, codec="ffv1", log=str(log),
                               quiet=True, overwrite=True, both_sides=both_sides,
                               transfer=transfer, **options)
        row[name] = {**restored_scores(out, log, gt), "seconds": round(summary.seconds, 2),
                     "second_references": sum(r.second_reference >= 0
                                              for r in summary.records)}
        if "input" not in row:
            row["input"] = restored_scores(clip / "input.mp4", log, gt)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="+", type=Path)
    parser.add_argument("--model", default="default")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the outputs and frame logs in this folder (for "
                        "refdeblur-eval temporal, say)")
    parser.add_argument("--flow-alignment", action="store_true",
                        help="the pipeline's --flow-alignment (the transfer before session 30)")
    parser.add_argument("--no-motion-prior", dest="motion_prior", action="store_false",
                        help="the pipeline's --no-motion-prior (the transfer before session 31)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        help="both: the default; one: --one-reference; network: --no-transfer")
    parser.add_argument("--transfer", default="",
                        help="the transfer's settings changed, key=value,... (as "
                        "tune_transfer.py's --settings)")
    args = parser.parse_args(argv)
    from tune_transfer import transfer_settings

    import refdeblur_video.refine.step as step
    from refdeblur_video.model.restorer import load_model

    step.DEFAULT_TRANSFER = transfer_settings(args.transfer)  # what transfer_for starts from
    restorer = load_model(args.model, args.device)
    rows = []
    with work_folder(args.keep) as work:
        for clip in args.clips:
            rows.append(measure(clip, restorer, work, args.variants,
                                flow_alignment=args.flow_alignment,
                                motion_prior=args.motion_prior))
            print(json.dumps(rows[-1]), flush=True)
    print(f"{'clip':22} {'frames':>6} {'input':>7} "
          + " ".join(f"{name:>7}" for name in args.variants) + " seconds")
    for row in rows:
        first = row[args.variants[0]]
        if not first["frames"]:
            print(f"{row['clip']:22} {0:6d}  (no blurry frames)")
            continue
        print(f"{row['clip']:22} {first['frames']:6d} {row['input']['psnr']:7.2f} "
              + " ".join(f"{row[name]['psnr']:7.2f}" for name in args.variants)
              + " " + "/".join(f"{row[name]['seconds']:.1f}" for name in args.variants))
    write_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

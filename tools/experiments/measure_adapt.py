#!/usr/bin/env python
"""Measure ``--adapt``: blurry-frame PSNR/SSIM without and with adaptation at some budgets.

Each CLIP is a folder with ``input.mp4`` and ``gt/*.png`` (one sharp frame per input frame,
in order), as ``tools/recipes/make_validation.sh`` writes the left-out rs6dof clips under
``runs/validation/rs6dof/clips/``; a plain video file instead has no ground truth, and gets
the adaptation's own findings only (held-back gain, fallback). Outputs are encoded
losslessly (FFV1) so that the codec does not blur the comparison; the blurry frames are
those the pipeline restored (its frame log).

    python tools/experiments/measure_adapt.py runs/validation/rs6dof/clips/* \\
        --budgets 60 180 600 --json runs/adapt/rs6dof.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path


def restored_scores(output: Path, log: Path, gt: list[Path]) -> dict:
    """Mean PSNR/SSIM of the restored frames against their ground truth."""
    import numpy as np

    from refdeblur_video.evaluate.metrics import psnr, ssim
    from refdeblur_video.image_files import read_image
    from refdeblur_video.video.reader import open_reader

    rows = json.loads(log.read_text())["frames"]
    blurry = {r["index"] for r in rows if r["blurry"]}
    values = []
    with open_reader(output) as reader:
        for frame in reader:
            if frame.index in blurry:
                truth = read_image(gt[frame.index])
                values.append((psnr(frame.image, truth), ssim(frame.image, truth)))
    if not values:
        return {"frames": 0}
    p, s = np.mean(values, axis=0)
    return {"frames": len(values), "psnr": float(p), "ssim": float(s)}


def _sharpness(output: Path, log: Path, video: Path) -> dict:
    """Without ground truth: the restored frames' sharpness over the input's (the pipeline's
    score; a proxy only, which sharpening artefacts raise too)."""
    import numpy as np

    from refdeblur_video.frames.sharpness import sharpness
    from refdeblur_video.video.reader import open_reader

    rows = json.loads(log.read_text())["frames"]
    blurry = {r["index"] for r in rows if r["blurry"]}
    ratios = []
    with open_reader(video) as before, open_reader(output) as after:
        for b, a in zip(before, after, strict=True):
            if b.index in blurry and sharpness(b.image) > 0:
                ratios.append(sharpness(a.image) / sharpness(b.image))
    return {"frames": len(ratios), "sharpness_gain": float(np.mean(ratios)) if ratios else None}


def measure(clip: Path, budgets: list[float], restorer, work: Path,
            transfer: bool = True) -> list[dict]:
    """One row per run of ``clip``: without adaptation, then with each budget."""
    from refdeblur_video.model.weights import read_checkpoint_metadata
    from refdeblur_video.pipeline import deblur_video

    video = clip / "input.mp4" if clip.is_dir() else clip
    gt = sorted((clip / "gt").glob("*.png")) if clip.is_dir() else []
    rows = []
    for budget in [None, *budgets]:
        tag = "base" if budget is None else f"adapt{budget:g}"
        out, log = work / f"{clip.name}_{tag}.mkv", work / f"{clip.name}_{tag}.json"
        saved = work / f"{clip.name}_{tag}.safetensors"
        extra = {} if budget is None else {"adapt": True, "adapt_seconds": budget,
                                           "save_adapted": str(saved)}
        summary = deblur_video(video, out, restorer, codec="ffv1", log=str(log), quiet=True,
                               overwrite=True, transfer=transfer, **extra)
        row = {"clip": clip.name, "budget_s": budget, "restored": summary.restored,
               "restore_s": round(summary.restoring_seconds, 1), "adaptation": summary.adaptation}
        if budget is not None:
            meta = read_checkpoint_metadata(saved)
            details = json.loads(meta["adapt_settings"])
            row.update(adopted=meta["adapt_result"] == "adapted",
                       **{k: details.get(k) for k in ("steps", "held_psnr_original",
                                                      "held_psnr_adapted",
                                                      "crosscheck_gain_db", "fit",
                                                      "pseudo_targets")})
        if gt:
            row.update(restored_scores(out, log, gt))
            if budget is None:
                row["input"] = restored_scores(video, log, gt)  # the blurry frames as they came
        else:
            row.update(_sharpness(out, log, video))
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


@contextlib.contextmanager
def work_folder(keep: Path | None) -> Iterator[Path]:
    """``keep`` (made if need be) for the outputs, or a temporary folder removed after."""
    with tempfile.TemporaryDirectory() as temporary:
        work = keep or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        yield work


def write_rows(path: Path | None, rows: list[dict]) -> None:
    """The measurement's rows as one JSON list at ``path`` (nothing without one)."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rows, indent=2))


def _override_settings(changes: dict) -> None:
    """Change the adaptation settings the pipeline picks, for this measurement only."""
    if not changes:
        return
    import dataclasses

    import refdeblur_video.adapt.entry as entry

    chosen = entry.settings_for

    def settings_for(*args, **kwargs):
        return dataclasses.replace(chosen(*args, **kwargs), **changes)

    entry.settings_for = settings_for


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="+", type=Path)
    parser.add_argument("--budgets", nargs="+", type=float, default=[60, 180, 600])
    parser.add_argument("--model", default="default")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-transfer", dest="transfer", action="store_false")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the outputs, frame logs and adapted weights in this folder")
    parser.add_argument("--always-adopt", action="store_true",
                        help="use the adapted copy whatever the safety checks say (their "
                        "verdicts are still reported): to see whether they judge right")
    parser.add_argument("--generators", type=json.loads, default=None,
                        help='the crops\' blur mix, e.g. \'{"own": 0.6, "shake": 0.4}\'')
    parser.add_argument("--max-steps", type=int, default=None,
                        help="cap the adaptation's steps (the budget still bounds them)")
    parser.add_argument("--lr", type=float, default=None,
                        help="the adaptation's peak learning rate")
    parser.add_argument("--pseudo-share", type=float, default=None,
                        help="the share of steps on the video's own blurry frames (pseudo "
                        "targets)")
    args = parser.parse_args(argv)
    changes = {key: value for key, value in (("generators", args.generators),
                                             ("max_steps", args.max_steps), ("lr", args.lr),
                                             ("pseudo_share", args.pseudo_share))
               if value is not None}
    if args.always_adopt:
        changes.update(min_gain_db=-float("inf"), min_crosscheck_gain_db=-float("inf"))
    _override_settings(changes)
    from refdeblur_video.model.restorer import load_model

    restorer = load_model(args.model, args.device)
    rows = []
    with work_folder(args.keep) as work:
        for clip in args.clips:
            rows.extend(measure(clip, args.budgets, restorer, work, args.transfer))
    write_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

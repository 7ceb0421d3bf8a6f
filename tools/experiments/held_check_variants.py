#!/usr/bin/env python
"""Does ``--adapt``'s held-back check judge right? Score kept adapted copies on the clip's
held-back crops with several ways of pooling the crops' errors, beside the true gain.

Run ``measure_adapt.py --always-adopt --keep DIR`` first: DIR then holds each clip's adapted
weights (``<clip>_adapt<budget>.safetensors``) and the JSON rows give the true gain of the
copy on the clip's blurry frames (with ground truth). This script re-reads each clip and
rebuilds its held-back batches as ``--adapt`` did (the copy's recorded settings, same seeds;
the rebuilt original's score must match the recorded one), then prints one row per copy with
each variant's gain of the copy over the original (dB):

- ``per_crop``: the mean of the crops' PSNRs (the check until this tool's finding);
- ``pooled``: the PSNR of all the crops' squared errors together (as a whole frame's PSNR);
- ``textured``: as ``pooled``, each crop's mean squared error weighed by its sharp crop's
  gradient energy (textured crops, where deblurring shows, count more).

A last line counts, per variant, the copies it judges right at the adoption margin
(``AdaptSettings.min_gain_db``): a copy whose true gain is below 0 must be refused, one
above 0.1 dB adopted; and the rank correlation of its gains with the true ones. Rows whose
kept weights are the original (a copy that was not adopted) are skipped: their true gain is
not known.

    python tools/experiments/held_check_variants.py \\
        --set runs/adapt/train_gen_always_60.json runs/adapt/kept_train_gen \\
        --set runs/adapt/train_gen_300.json runs/adapt/kept_train_gen_300 \\
        --clips runs/adapt_clips
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np

VARIANTS = ("per_crop", "pooled", "textured")
ACCEPT_ABOVE = 0.1  # a copy this much better in truth should be adopted


def held_batches(video: Path, settings, opts) -> tuple[list, int]:
    """The held-back batches ``--adapt`` scores both models on (as ``adapt.entry`` builds
    them, the reading pass not cut short), and the frames read."""
    from refdeblur_video.adapt.fit import estimate_noise, fit_strengths
    from refdeblur_video.adapt.kernels import kernel_bank
    from refdeblur_video.adapt.reservoir import scan_video
    from refdeblur_video.adapt.samples import fixed_batches
    from refdeblur_video.video.reader import open_reader

    with open_reader(video, backend=opts.reader) as reader:
        sample = scan_video(
            reader, window=opts.window, max_offset=opts.max_offset,
            threshold=opts.threshold, cuts=opts.cuts, crop=settings.crop,
            capacity=settings.capacity, held_capacity=settings.held_capacity,
            held_every=settings.held_every, frame_count=reader.info.frame_count,
            deadline=None, seed=settings.seed)
    if not sample.held or not sample.train:
        return [], sample.frames
    fit = fit_strengths(sample.thumbnails, sample.blurry_ratios, settings.seed,
                        estimate_noise([r.target for r in sample.train]),
                        frame_hw=sample.train[0].frame_hw)
    kernels = kernel_bank(sample.probes, sample.train[0].frame_hw, settings.seed)
    fit = dataclasses.replace(fit, kernels=tuple(k.weights for k in kernels))
    return fixed_batches(sample.held, settings.held_samples, settings.batch, fit, settings,
                         settings.seed + 1), sample.frames


def crop_errors(model, batches, device, amp) -> np.ndarray:
    """Each held-back crop's mean squared error (peak 1), computed as ``held_psnr`` does."""
    import torch

    from refdeblur_video.adapt.tune import to_device

    model.eval()
    errors = []
    with torch.no_grad():
        for batch in batches:
            batch = to_device(batch, device)
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                out = model(batch["blur"], batch["ref"]).float().clamp(0, 1)
            mse = (out - batch["sharp"]).pow(2).flatten(1).mean(1).clamp_min(1e-10)
            errors.extend(mse.tolist())
    return np.asarray(errors, dtype=np.float64)


def texture(batches) -> np.ndarray:
    """Each held-back crop's gradient energy (mean squared finite difference of its target)."""
    values = []
    for batch in batches:
        sharp = batch["sharp"].double()
        dy = (sharp[..., 1:, :] - sharp[..., :-1, :]).pow(2).flatten(1).mean(1)
        dx = (sharp[..., :, 1:] - sharp[..., :, :-1]).pow(2).flatten(1).mean(1)
        values.extend((dx + dy).tolist())
    return np.asarray(values, dtype=np.float64)


def scores(mse: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """Each variant's score (dB) of one model from its crops' errors."""
    return {"per_crop": float(np.mean(-10 * np.log10(mse))),
            "pooled": float(-10 * np.log10(mse.mean())),
            "textured": float(-10 * np.log10((weights * mse).sum() / weights.sum()))}


def spearman(a: list[float], b: list[float]) -> float:
    if len(a) < 3:
        return float("nan")
    ra, rb = (np.argsort(np.argsort(x)).astype(float) for x in (a, b))
    return float(np.corrcoef(ra, rb)[0, 1])


def summary(found: list[dict], margin: float) -> dict:
    """Per variant: copies judged right of those it should refuse / adopt, rank correlation."""
    bad = [r for r in found if r["true_gain"] < 0]
    good = [r for r in found if r["true_gain"] > ACCEPT_ABOVE]
    out: dict = {"copies": len(found), "should_refuse": len(bad), "should_adopt": len(good),
                 "margin_db": margin}
    for name in VARIANTS:
        refused = sum(r[name] < margin for r in bad)
        adopted = sum(r[name] >= margin for r in good)
        out[name] = {"refused_bad": refused, "adopted_good": adopted,
                     "right": refused + adopted,
                     "spearman": round(spearman([r[name] for r in found],
                                                [r["true_gain"] for r in found]), 3)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="sets", nargs=2, action="append", required=True,
                        type=Path, metavar=("ROWS", "KEPT"),
                        help="measure_adapt.py --json output and its --keep folder")
    parser.add_argument("--clips", type=Path, required=True, help="folder of the clips")
    args = parser.parse_args(argv)

    from refdeblur_video.adapt.settings import AdaptSettings
    from refdeblur_video.model.restorer import load_model
    from refdeblur_video.model.weights import read_checkpoint_metadata
    from refdeblur_video.pipeline.options import DeblurOptions

    opts = DeblurOptions()
    original = load_model("default", "cpu")
    device, amp = original.device, original.amp_dtype
    fields = {f.name for f in dataclasses.fields(AdaptSettings)}
    margin = AdaptSettings().min_gain_db
    found = []
    for rows_path, kept in args.sets:
        rows = json.loads(rows_path.read_text())
        base = {r["clip"]: r["psnr"] for r in rows if r["budget_s"] is None}
        for row in rows:
            if row["budget_s"] is None:
                continue
            clip, budget = row["clip"], row["budget_s"]
            weights = kept / f"{clip}_adapt{budget:g}.safetensors"
            meta = read_checkpoint_metadata(weights)
            details = json.loads(meta["adapt_settings"])
            if details.get("steps") != row.get("steps"):
                raise SystemExit(f"{weights}: {details.get('steps')} steps, the row says "
                                 f"{row.get('steps')}: not this row's copy")
            if meta["adapt_result"] != "adapted" or not row.get("adopted"):
                print(json.dumps({"clip": clip, "budget": budget, "skipped":
                                  "the original was kept (copy not adopted)"}), flush=True)
                continue
            settings = AdaptSettings(**{k: v for k, v in details["settings"].items()
                                        if k in fields})
            batches, frames = held_batches(args.clips / clip / "input.mp4", settings, opts)
            if frames != details["frames_read"]:
                raise SystemExit(f"{clip}: read {frames} frames, the run {details['frames_read']}")
            adapted = load_model(str(weights), "cpu")
            grad = texture(batches)
            before = scores(crop_errors(original.model, batches, device, amp), grad)
            after = scores(crop_errors(adapted.model, batches, device, amp), grad)
            recorded = details["held_psnr_adapted"] - details["held_psnr_original"]
            result = {"clip": clip, "budget": budget,
                      "true_gain": round(row["psnr"] - base[clip], 3),
                      **{k: round(after[k] - before[k], 3) for k in VARIANTS},
                      "crops": len(grad), "recorded_gain": round(recorded, 3),
                      "recorded_original": details["held_psnr_original"]}
            # runs before session 13 recorded the mean of crop PSNRs, later ones the pooled
            if not any(math.isclose(before[k], details["held_psnr_original"], abs_tol=0.01)
                       for k in ("per_crop", "pooled")):
                result["mismatch"] = "rebuilt held-back crops differ from the run's"
            found.append(result)
            print(json.dumps(result), flush=True)
    print(json.dumps({"summary": summary(found, margin)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Experiment (issue 18): adapt the network to a video's real blur with pseudo targets.

``--adapt`` teaches a copy on the video's sharp frames blurred by synthetic generators, and
on the left-out camera those copies finish the real frames worse. This tries the video's own
blurry frames instead: each restored blurry frame's sharp reference, aligned onto the
network's output by the reference transfer's flow, is its target where the transfer trusts
it (``transfer_confidence``: agreement, flow consistency, sharpness), and the copy learns
(blurry frame, reference) -> aligned reference under that weight. No ground truth is used;
the frames trained on are the frames restored (test-time training on the video itself).
There are no safety checks here: the copy is always used, to see what it is worth.

Each CLIP is a folder with ``input.mp4`` and ``gt/*.png`` (as ``measure_adapt.py`` takes).

    OMP_NUM_THREADS=1 python tools/experiments/pseudo_target_adapt.py runs/adapt_clips/* \\
        --steps 330 --json runs/adapt/pseudo.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _pairs(video: Path, log: Path, restorer) -> list[tuple[np.ndarray, ...]]:
    """(blurry, reference, aligned reference, weight) per restored frame whose reference
    passed the check: the pseudo targets."""
    from refdeblur_video.image_files import to_float
    from refdeblur_video.refine.transfer import transfer_confidence
    from refdeblur_video.video.reader import open_reader

    rows = json.loads(log.read_text())["frames"]
    wanted = {r["index"]: r["reference"] for r in rows if r["blurry"] and r["reference"] >= 0}
    with open_reader(video) as reader:
        frames = {f.index: f.image for f in reader}
    pairs = []
    for index, ref_index in sorted(wanted.items()):
        blurry, reference = frames[index], frames[ref_index]
        restored, used = restorer.restore_floats([blurry], [reference])
        if not used[0]:
            continue
        aligned, weight = transfer_confidence(restored[0], to_float(reference))
        pairs.append((blurry, reference, aligned.astype(np.float32), weight.astype(np.float32)))
    return pairs


def _batch(pairs, crop: int, count: int, rng: np.random.Generator) -> dict:
    """``count`` random crops, as float tensors: for each, up to 20 places are tried for
    one where the target is mostly trusted (else the last is taken; its weight still
    counts). Frames smaller than ``crop`` are not cropped from."""
    import torch

    from refdeblur_video.image_files import to_float

    pairs = [p for p in pairs if min(p[3].shape) >= crop]
    if not pairs:
        raise SystemExit(f"no frame is at least {crop} pixels on both sides")
    blur, ref, target, weight = [], [], [], []
    while len(blur) < count:
        b, r, a, w = pairs[int(rng.integers(len(pairs)))]
        h, wd = w.shape
        for _ in range(20):  # look for a crop the transfer mostly trusts
            y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, wd - crop + 1))
            if w[y:y + crop, x:x + crop].mean() > 0.5:
                break
        sl = (slice(y, y + crop), slice(x, x + crop))
        blur.append(to_float(b[sl]))
        ref.append(to_float(r[sl]))
        target.append(a[sl])
        weight.append(w[sl][..., None])

    def stack(items):
        return torch.from_numpy(np.stack(items)).permute(0, 3, 1, 2).contiguous()

    return {"blur": stack(blur), "ref": stack(ref), "sharp": stack(target),
            "weight": stack(weight)}


def adapt(restorer, pairs, steps: int, lr: float, crop: int, batch: int, seed: int):
    """A copy of the restorer's network taught the pseudo targets (weighted L1), with the
    learning-rate schedule of ``--adapt``."""
    import torch

    from refdeblur_video.adapt.entry import restorer_with
    from refdeblur_video.adapt.settings import AdaptSettings
    from refdeblur_video.adapt.tune import learning_rate, make_optimizer

    model = copy.deepcopy(restorer.model).train()
    optimizer = make_optimizer(model, lr)
    schedule = AdaptSettings(lr=lr)
    amp = restorer.amp_dtype
    rng = np.random.default_rng(seed)
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(schedule, step, step / steps)
        data = _batch(pairs, crop, batch, rng)
        with torch.autocast(restorer.device.type, dtype=amp, enabled=amp is not None):
            out = model(data["blur"], data["ref"]).float()
        w = data["weight"]
        loss = ((out - data["sharp"]).abs() * w).sum() / (w.sum() * 3 + 1e-6)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
    return restorer_with(restorer, model)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="+", type=Path)
    parser.add_argument("--steps", type=int, default=330)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from measure_adapt import restored_scores, write_rows

    from refdeblur_video.model.restorer import load_model
    from refdeblur_video.pipeline import deblur_video

    restorer = load_model("default", "cpu")
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        for clip in args.clips:
            video, gt = clip / "input.mp4", sorted((clip / "gt").glob("*.png"))
            out, log = work / f"{clip.name}_base.mkv", work / f"{clip.name}_base.json"
            deblur_video(video, out, restorer, codec="ffv1", log=str(log), quiet=True,
                         overwrite=True)
            base = restored_scores(out, log, gt)
            pairs = _pairs(video, log, restorer)
            row = {"clip": clip.name, "base": base, "pairs": len(pairs)}
            if pairs:
                adapted = adapt(restorer, pairs, args.steps, args.lr, args.crop, args.batch, 0)
                out2 = work / f"{clip.name}_pseudo.mkv"
                deblur_video(video, out2, adapted, codec="ffv1", log=str(log), quiet=True,
                             overwrite=True)
                row["pseudo"] = restored_scores(out2, log, gt)
                row["gain_db"] = row["pseudo"]["psnr"] - base["psnr"]
            print(json.dumps(row), flush=True)
            rows.append(row)
    write_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

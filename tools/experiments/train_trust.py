#!/usr/bin/env python
"""A learned trust for the reference transfer, trained on several training generators, with
the blurry frame as a witness (an experiment, not taken: it gained on the training camera
shake and lost on the averaged generator; docs/EXPERIMENTS.md, session 42).

The hand-made trust of ``refdeblur_video/refine/transfer.py`` leaves 0.4 dB on the left-out
camera and 1.5 / 0.8 dB on the training generators to a per-block oracle
(docs/EXPERIMENTS.md, session 39). The refiner of ``transfer_net.py`` (2026-11-26) learned
from one generator's triplets and the transfer of that day, and lost on held-out frames.
This one differs in three ways: its triplets come from two training generators (the
training camera shake with noise and JPEG, and GoPro-style averages of consecutive real
frames) on training sources only; it also sees the blurry frame, which, unlike the
network's output, has borrowed nothing from the reference, so it can tell where a copied
reference is misplaced; and it corrects the transfer's final weight (after its smoothing),
so what it learns is what the blend uses.

    V=../shared/data/videos
    python -m refdeblur_video.data.cli video $V/01_dog.mp4 $V/02_cups.mp4 $V/03_blocks.mp4 \\
        .data/bikes.mp4 runs/s42/trust_shake --frames-per-video 40 --seed 42 \\
        --val-fraction 0 --noise 3 --jpeg 75,95
    python -m refdeblur_video.data.cli hfr $V/01_dog.mp4 $V/02_cups.mp4 $V/03_blocks.mp4 \\
        runs/s42/trust_avg --min-frames 5 --max-frames 11 --ref-min 4 --ref-max 12 \\
        --max-per-sequence 30 --seed 42
    python tools/experiments/train_trust.py train runs/s42/trust_shake/manifest.jsonl \\
        runs/s42/trust_avg/manifest.jsonl --features runs/s42/trust_features \\
        --out runs/s42/trust.safetensors
    python tools/experiments/train_trust.py score runs/validation runs/validation_seed1 \\
        runs/validation_seed2 --refiner runs/s42/trust.safetensors \\
        --features runs/s42/trust_val_features

The second try (B) left out the clips' averages for ``--photo-averages 5`` (averages of
training photographs filmed by a drifting camera):

    python tools/experiments/train_trust.py train runs/s42/trust_shake/manifest.jsonl \\
        --photo-averages 5 --features runs/s42/trust_features --out runs/s42/trust_b.safetensors

Each triplet's features (network output, aligned reference, blurry frame, cues, weight,
sharp frame) are computed once with the shipped network (reference check off, as
``tools/recipes/judge.py`` scores) and kept as float16 ``.npy`` files in ``--features``.
``score`` prints, per generator and draw, the PSNR of the hand-made transfer and of the
refined one; shake and average choose, rs6dof is reported.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transfer_net import ConfidenceRefiner  # noqa: E402

from refdeblur_video.evaluate.metrics import psnr
from refdeblur_video.image_files import from_float, to_float
from refdeblur_video.model.weights import read_safetensors, write_safetensors
from refdeblur_video.refine.transfer import blend_weight, transfer_cues

EPS = 1e-3
# channels of a feature file: output, aligned reference, blurry frame, 4 cues, weight, sharp
OUT, ALIGNED, BLURRY, CUES, WEIGHT, SHARP = (slice(0, 3), slice(3, 6), slice(6, 9),
                                             slice(9, 13), slice(13, 14), slice(14, 17))
FORMAT = "refdeblur-video/trust-refiner/1"


class TrustRefiner(ConfidenceRefiner):
    """Corrects the transfer's weight: ``sigmoid(logit(weight) + cnn(...))``, at half
    resolution with dilated convolutions (``transfer_net.py``'s body and zero-started head,
    on more inputs: the blurry frame among them); an untrained refiner is the hand-made
    weight."""

    def __init__(self, width: int = 24, dilations: tuple[int, ...] = (1, 2, 4, 8, 16)) -> None:
        super().__init__(width, dilations, in_channels=3 + 3 + 3 + 3 + 4 + 1)

    def forward(self, x: Tensor) -> Tensor:
        """``x``: (B, 14+, H, W) feature channels; returns the weight (B, 1, H, W)."""
        out, aligned, blurry = x[:, OUT], x[:, ALIGNED], x[:, BLURRY]
        weight = x[:, WEIGHT]
        logit = torch.logit(weight.clamp(EPS, 1 - EPS))
        features = torch.cat([out, aligned - out, blurry - out, blurry - aligned,
                              x[:, CUES], logit / 4], dim=1)
        half = F.avg_pool2d(features, 2, ceil_mode=True)
        delta = F.interpolate(self.head(self.body(half)), size=x.shape[-2:], mode="bilinear",
                              align_corners=False)
        inside = x[:, CUES][:, 3:4]
        return torch.sigmoid(logit + delta) * inside


def blend(x: Tensor, weight: Tensor) -> Tensor:
    return (x[:, OUT] + weight * (x[:, ALIGNED] - x[:, OUT])).clamp(0, 1)


def features(restored: np.ndarray, reference: np.ndarray, blurry: np.ndarray,
             sharp: np.ndarray) -> np.ndarray:
    """H x W x 17 float16: the channels named above (float RGB in [0, 1] in)."""
    cues = transfer_cues(restored, reference)
    weight = blend_weight(cues.confidence, cues)
    stack = [restored, cues.aligned, blurry, cues.agreement[..., None],
             cues.consistency[..., None], cues.sharpness[..., None], cues.inside[..., None],
             weight[..., None], sharp]
    return np.concatenate(stack, axis=2).astype(np.float16)


def _restorer():
    from refdeblur_video.model.restorer import load_model

    return load_model("refdeblur_video/weights/lite.safetensors", "cpu", reference_check=0.0)


def manifest_features(manifests: list[Path], folder: Path) -> list[Path]:
    """Feature files of every triplet of ``manifests`` (computed where missing)."""
    from refdeblur_video.data.manifest import read_manifest
    from refdeblur_video.video.sources import load_image

    folder.mkdir(parents=True, exist_ok=True)
    restorer, paths = None, []
    for m, manifest in enumerate(manifests):
        for i, triplet in enumerate(read_manifest(manifest)):
            path = folder / f"{m}_{i:04d}.npy"
            paths.append(path)
            if path.is_file():
                continue
            restorer = restorer or _restorer()
            blurry, sharp, ref = (load_image(p) for p in (triplet.blur, triplet.sharp,
                                                          triplet.ref))
            out = restorer.restore_floats([blurry], [ref])[0][0]
            np.save(path, features(out, to_float(ref), to_float(blurry), to_float(sharp)))
    return paths


def photo_average_features(photos: Path, folder: Path, per_photo: int, seed: int) -> list[Path]:
    """Feature files of GoPro-style averages on training photographs filmed by a drifting
    camera (``data.photo_clips.pan_clip``, as the average generator films its photograph):
    the blurry frame the linear-light mean of 5-9 frames, its reference a sharp frame 3-6
    frames away (computed where missing)."""
    from refdeblur_video.data.photo_clips import pan_clip
    from refdeblur_video.data.shake import average_linear
    from refdeblur_video.image_files import read_image, to_uint8

    folder.mkdir(parents=True, exist_ok=True)
    restorer, paths = None, []
    for n, photo in enumerate(sorted(photos.glob("*.jpg"))):
        rng = np.random.default_rng([seed, n])
        frames = None
        for k in range(per_photo):
            path = folder / f"avg_{photo.stem}_{k}.npy"
            paths.append(path)
            if path.is_file():
                continue
            frames = frames or pan_clip(to_uint8(read_image(photo)), 30, rng=rng)
            half = int(rng.choice((2, 3, 4)))
            centre = int(rng.integers(10, 20))
            offset = int(rng.integers(3, 7)) * int(rng.choice((-1, 1)))
            blurry = average_linear(frames[centre - half:centre + half + 1])
            sharp, ref = frames[centre], frames[centre + offset]
            restorer = restorer or _restorer()
            out = restorer.restore_floats([blurry], [ref])[0][0]
            np.save(path, features(out, to_float(ref), to_float(blurry), to_float(sharp)))
    return paths


def validation_features(valdir: Path, folder: Path) -> dict[str, list[Path]]:
    """Per generator, the feature files of a validation draw's triplets; network outputs
    from ``runs/judge_cache`` where ``judge.py`` left them."""
    sys.path.insert(0, str(Path(__file__).parent))
    from flow_source import _cache_key

    from refdeblur_video.evaluate.generators import read_index
    from refdeblur_video.evaluate.triplets import _read_sorted, load_triplet

    folder = folder / valdir.name
    folder.mkdir(parents=True, exist_ok=True)
    cache = Path("runs/judge_cache") / valdir.name
    key = _cache_key("refdeblur_video/weights/lite.safetensors")
    restorer, result = None, {}
    for entry in read_index(valdir):
        generator = entry["name"]
        triplets = _read_sorted(valdir / generator / "manifest.jsonl", "val")
        for k, triplet in enumerate(triplets):
            path = folder / f"{generator}_{k:03d}.npy"
            result.setdefault(generator, []).append(path)
            if path.is_file():
                continue
            raw = load_triplet(triplet)
            cached = cache / f"{generator}_{k:03d}_new_{key}.npz"
            if cached.is_file():
                out = np.load(cached)["out"].astype(np.float32)
            else:
                restorer = restorer or _restorer()
                out = restorer.restore_floats([raw["blurry"]], [raw["reference"]])[0][0]
            np.save(path, features(out, to_float(raw["reference"]), to_float(raw["blurry"]),
                                   to_float(raw["sharp"])))
    return result


def _tensor(path: Path) -> Tensor:
    return torch.from_numpy(np.load(path)).permute(2, 0, 1)[None]


def _psnr8(x: Tensor, sharp: Tensor) -> float:
    as8 = lambda t: from_float(t[0].permute(1, 2, 0).float().numpy(), np.uint8)  # noqa: E731
    return psnr(as8(x), as8(sharp))


def train(args: argparse.Namespace) -> None:
    paths = manifest_features(args.manifests, args.features)
    if args.photo_averages:
        paths += photo_average_features(args.photos, args.features, args.photo_averages,
                                        args.seed)
    print(f"{len(paths)} triplets", flush=True)
    rng = np.random.default_rng(args.seed)
    crops = []
    for path in paths:
        x = np.load(path)
        h, w = x.shape[:2]
        size = min(args.crop, h, w)
        for _ in range(args.crops_per_frame):
            y0, x0 = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
            crop = np.ascontiguousarray(x[y0:y0 + size, x0:x0 + size])
            if size == args.crop:
                crops.append(torch.from_numpy(crop).permute(2, 0, 1))
    crops_t = torch.stack(crops)
    print(f"{len(crops_t)} crops", flush=True)
    torch.manual_seed(args.seed)
    refiner = TrustRefiner(args.width)
    optimizer = torch.optim.Adam(refiner.parameters(), lr=args.lr)
    start = time.time()
    for step in range(1, args.steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / args.steps))
        batch = crops_t[torch.from_numpy(rng.integers(0, len(crops_t), args.batch))].float()
        if rng.integers(2):
            batch = batch.flip(-1)
        if rng.integers(2):
            batch = batch.flip(-2)
        loss = F.mse_loss(blend(batch, refiner(batch)), batch[:, SHARP])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % args.every == 0 or step == args.steps:
            with torch.no_grad():
                base = F.mse_loss(blend(batch, batch[:, WEIGHT] * batch[:, CUES][:, 3:4]),
                                  batch[:, SHARP])
            print(f"step {step} loss {loss.item():.6f} (hand-made {base.item():.6f}) "
                  f"{time.time() - start:.0f} s", flush=True)
    write_safetensors(args.out, refiner.state_dict(),
                      {"format": FORMAT, "config": json.dumps({"width": args.width})})
    print(f"wrote {args.out}")


def score(args: argparse.Namespace) -> None:
    refiners = {}
    for spec in args.refiner:
        state, meta = read_safetensors(spec, what="trust refiner")
        net = TrustRefiner(json.loads(meta["config"])["width"])
        net.load_state_dict(state)
        refiners[spec] = net.eval()
    table: dict[str, dict[str, list[float]]] = {}
    for valdir in args.valdirs:
        for generator, paths in validation_features(valdir, args.features).items():
            rows = {"input": [], "network": [], "hand-made": [], **{r: [] for r in refiners}}
            for path in paths:
                x = _tensor(path).float()
                sharp = x[:, SHARP]
                rows["input"].append(_psnr8(x[:, BLURRY], sharp))
                rows["network"].append(_psnr8(x[:, OUT], sharp))
                rows["hand-made"].append(_psnr8(blend(x, x[:, WEIGHT]), sharp))
                with torch.inference_mode():
                    for spec, net in refiners.items():
                        rows[spec].append(_psnr8(blend(x, net(x)), sharp))
            for name, values in rows.items():
                table.setdefault(generator, {}).setdefault(name, []).append(
                    float(np.mean(values)))
            print(valdir.name, generator, "  ".join(f"{n[-24:]} {np.mean(v):.2f}"
                                                    for n, v in rows.items()), flush=True)
    print("mean of draws:")
    for generator, rows in table.items():
        hand = np.mean(rows["hand-made"])
        print(f"  {generator:8}", "  ".join(f"{n[-24:]} {np.mean(v):.2f}"
                                           + (f" ({np.mean(v) - hand:+.2f})"
                                              if n in refiners else "")
                                           for n, v in rows.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("manifests", nargs="*", type=Path)
    t.add_argument("--features", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--width", type=int, default=24)
    t.add_argument("--steps", type=int, default=3000)
    t.add_argument("--batch", type=int, default=12)
    t.add_argument("--crop", type=int, default=192)
    t.add_argument("--crops-per-frame", type=int, default=8)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--every", type=int, default=250)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--photos", type=Path, default=Path(".data/photos"))
    t.add_argument("--photo-averages", type=int, default=0,
                   help="averaged triplets per training photograph (photo_average_features)")
    s = sub.add_parser("score")
    s.add_argument("valdirs", nargs="+", type=Path)
    s.add_argument("--refiner", nargs="*", default=[])
    s.add_argument("--features", type=Path, required=True)
    args = parser.parse_args(argv)
    (train if args.command == "train" else score)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

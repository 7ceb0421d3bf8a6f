#!/usr/bin/env python
"""Train the confidence refiner of the reference transfer (transfer_net.py, beside this file).

An experiment, not shipped: the refiner it trained (2026-11-26, a 2-core CPU, about 20
minutes) matched the hand-made confidence on training-clip triplets (+1.93 dB over the
network alone) and did worse on the held-out frames (+1.22 against +1.31 dB), both with the
one-flow transfer of that day (patch 32). To repeat it:

    V=../shared/data/videos
    python -m refdeblur_video.data.cli video $V/01_dog.mp4 $V/02_cups.mp4 $V/03_blocks.mp4 \
        .data/bikes.mp4 runs/transfer_triplets --frames-per-video 60 --seed 23 --val-fraction 0
    python tools/experiments/train_transfer.py runs/transfer_triplets/manifest.jsonl \
        --monitor runs/tune_triplets/manifest.jsonl --out runs/transfer.safetensors \
        --loss mse --lr 5e-4 --steps 4000

Training clips only (the validation clips, juggle and bedroom, are never seen). The shipped
network runs once per triplet (outputs cached next to the manifest); the transfer's cues are
computed on whole frames (the flow needs the context), then random crops (cached next to
the manifest as safetensors) train the refiner on the blended output against the sharp
frame. ``--monitor`` prints the PSNR gain of the transfer over the network alone on another
manifest, with the hand-made confidence and with the refiner, every ``--every`` steps; the
last step is saved. Both blend with the confidence as is: the shipped transfer smooths its
weight afterwards (``transfer.blend_weight``), which this experiment predates.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transfer_net import ConfidenceRefiner, cue_stack, save_refiner  # noqa: E402
from tune_transfer import network_outputs  # noqa: E402

from refdeblur_video.evaluate.metrics import psnr_torch  # noqa: E402
from refdeblur_video.model.weights import read_safetensors, write_safetensors  # noqa: E402


def _arrays(manifest: Path, model: str):
    """Per triplet: network output, aligned reference, sharp frame (H x W x 3 float32), cues
    (H x W x 4) and hand-made confidence (H x W), all in [0, 1]."""
    from refdeblur_video.refine.transfer import transfer_cues

    for _, sharp, ref, restored in network_outputs(
            manifest, model, manifest.parent / "network_outputs_amp", amp=True):
        restored, ref, sharp = (x.astype(np.float32) / 255 for x in (restored, ref, sharp))
        cues = transfer_cues(restored, ref)
        yield restored, cues.aligned, sharp, cue_stack(cues), cues.confidence


def _crops(manifest: Path, model: str, per_frame: int, size: int, seed: int) -> torch.Tensor:
    """Random crops of every triplet: (N, 3 + 3 + 3 + 4 + 1, size, size) float16."""
    rng = np.random.default_rng(seed)
    crops = []
    for restored, aligned, sharp, cues, prior in _arrays(manifest, model):
        stacked = np.concatenate([restored, aligned, sharp, cues, prior[..., None]], axis=2)
        h, w = prior.shape
        for _ in range(per_frame):
            y, x = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
            crop = stacked[y:y + size, x:x + size]
            crops.append(torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).half())
    return torch.stack(crops)


def _blend(refiner, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(blended output, sharp frame) of a batch of crops; no refiner: hand-made confidence."""
    restored, aligned, sharp = batch[:, 0:3], batch[:, 3:6], batch[:, 6:9]
    cues, prior = batch[:, 9:13], batch[:, 13:14]
    alpha = prior if refiner is None else refiner(restored, aligned, cues, prior)
    return restored + alpha * (aligned - restored), sharp


def _monitor(refiner, frames: list[torch.Tensor]) -> tuple[float, float]:
    """Mean PSNR gain over the network alone: hand-made confidence, refined."""
    gains = {None: [], "refined": []}
    with torch.inference_mode():
        for frame in frames:
            batch = frame.float()[None]
            base = float(psnr_torch(batch[:, 0:3], batch[:, 6:9])[0])
            for key, net in ((None, None), ("refined", refiner)):
                gains[key].append(float(psnr_torch(*_blend(net, batch))[0]) - base)
    return float(np.mean(gains[None])), float(np.mean(gains["refined"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="default")
    parser.add_argument("--monitor", type=Path, default=None)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=192)
    parser.add_argument("--crops-per-frame", type=int, default=6)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--loss", choices=("l1", "mse"), default="mse")
    args = parser.parse_args(argv)
    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER

    torch.manual_seed(args.seed)
    start = time.time()
    # the crops hold the transfer's cues: their file names the settings they were made with
    key = zlib.crc32(repr((DEFAULT_TRANSFER, args.crop, args.crops_per_frame)).encode())
    cached = args.manifest.parent / f"refiner_crops_{key:08x}.safetensors"
    if cached.is_file():  # the crops of an earlier run (safetensors: nothing is unpickled)
        crops = read_safetensors(cached, what="crop cache")[0]["crops"]
    else:
        crops = _crops(args.manifest, args.model, args.crops_per_frame, args.crop, args.seed)
        write_safetensors(cached, {"crops": crops}, {})
    print(f"{len(crops)} crops of {args.crop}x{args.crop} ({time.time() - start:.0f} s)",
          flush=True)
    monitor = []
    if args.monitor:
        for arrays in _arrays(args.monitor, args.model):
            restored, aligned, sharp, cues, prior = arrays
            whole = np.concatenate([restored, aligned, sharp, cues, prior[..., None]], axis=2)
            monitor.append(torch.from_numpy(whole).permute(2, 0, 1).half())
    refiner = ConfidenceRefiner()
    optimizer = torch.optim.Adam(refiner.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    for step in range(1, args.steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / args.steps))
        batch = crops[torch.from_numpy(rng.integers(0, len(crops), args.batch))].float()
        flips = rng.integers(0, 2, 2)
        if flips[0]:
            batch = batch.flip(-1)
        if flips[1]:
            batch = batch.flip(-2)
        output, sharp = _blend(refiner, batch)
        loss = (F.l1_loss if args.loss == "l1" else F.mse_loss)(output, sharp)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % args.every == 0 or step == args.steps:
            line = f"step {step} loss {loss.item():.5f} ({time.time() - start:.0f} s)"
            if monitor:
                refiner.eval()
                hand, refined = _monitor(refiner, monitor)
                refiner.train()
                line += f"  monitor gain: hand-made {hand:+.3f} dB, refined {refined:+.3f} dB"
            print(line, flush=True)
    save_refiner(args.out, refiner.eval(), {"step": args.steps, "manifest": args.manifest})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

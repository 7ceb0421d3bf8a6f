#!/usr/bin/env python
"""Train the matching encoder phi to find a blurry patch in its reference (an experiment).

The network's patch matching picks, for every 1/4-resolution cell of the blurry frame, the
reference cell whose phi features are most similar; phi has only ever been trained through
the confidence of that match, never through which cell wins (the arg-max has no gradient).
Here phi alone learns correspondence from the contrastive matching loss
(``refdeblur_video.training.match_loss``) on the training material; the rest of the network
stays as it is (``train.match_weight`` trains phi so beside the whole network).

    python tools/experiments/train_phi_matching.py runs/general_prealigned/train_config.json \\
        --model default --out runs/phi_match.safetensors --steps 600
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train_config", type=Path, help="a run's train_config.json (its data)")
    parser.add_argument("--model", default="default")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--radius", type=int, default=4, help="training window, in cells")
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from refdeblur_video.model.restorer import load_model
    from refdeblur_video.model.weights import save_checkpoint
    from refdeblur_video.training.config import train_config_from_dict
    from refdeblur_video.training.loop import build_datasets
    from refdeblur_video.training.match_loss import matching_loss

    values = json.loads(args.train_config.read_text())
    values["data"]["mix"]["aligned_ref_prob"] = 0.0  # the reference is not used here
    values["data"]["batch"] = args.batch
    values["data"]["val_count"] = 1
    cfg = train_config_from_dict(values)
    train_set, _ = build_datasets(cfg)
    loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch, num_workers=1,
                                         shuffle=True)
    restorer = load_model(args.model, "cpu")
    net = restorer.model.float().train()
    net.requires_grad_(False)
    net.phi.requires_grad_(True)
    optimizer = torch.optim.Adam(net.phi.parameters(), lr=args.lr)
    generator = torch.Generator().manual_seed(args.seed)
    step, start = 0, time.time()
    recent: list[tuple[float, float]] = []
    while step < args.steps:
        for batch in loader:
            blur = batch["blur"].contiguous()
            sharp = batch["sharp"].contiguous()
            loss, right = matching_loss(net, blur, sharp, args.radius, args.temperature,
                                        generator)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            recent.append((loss.item(), right.item()))
            if step % 20 == 0:
                mean_loss = sum(r[0] for r in recent) / len(recent)
                mean_right = sum(r[1] for r in recent) / len(recent)
                print(f"step={step} loss={mean_loss:.4f} right={mean_right:.3f} "
                      f"seconds={time.time() - start:.0f}", flush=True)
                recent.clear()
            if step % 100 == 0 or step >= args.steps:
                net.eval()
                save_checkpoint(args.out, net, net.config, settings=restorer.settings,
                                extra={"phi_matching_step": str(step)})
                net.train()
            if step >= args.steps:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())

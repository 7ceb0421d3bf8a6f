#!/usr/bin/env python
"""A diagnostic, never a recipe: rs6dof triplets (the LEFT-OUT camera) filmed from the
*training* sources, to fine-tune a throwaway copy of the network on the left-out blur itself
and see how much of its weakness there is the blur model. Weights trained on this set must
never ship or choose anything (docs/TRAINING.md, session 32).

    python tools/experiments/oracle_rs6dof.py runs/rs6_train_diag
    python -m refdeblur_video.training.cli --config configs/train/lite.yaml \\
        --set out=runs/diag_rs6 --set data.source=manifest \\
        --set data.manifest=runs/rs6_train_diag/manifest.jsonl \\
        --set init=refdeblur_video/weights/lite.safetensors --set train.freeze_phi=true \\
        --set train.lr=3.0e-5 --set train.steps=1500 --set train.warmup_steps=50 \\
        --set train.gan_start=null --set data.workers=1 --set data.crop=192
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from refdeblur_video.data.rs6dof_triplets import Rs6DofSource, build_rs6dof_triplets

VAL_SOURCES = ("cups", "Wood")  # the run's own monitor, not the left-out validation


def training_sources(photos: list[Path], videos: Path) -> list[Rs6DofSource]:
    """The photographs and real clips that tools/recipes/train_general.sh trains on."""
    sources = [Rs6DofSource(p.stem[:20], p) for p in photos]
    return sources + [Rs6DofSource("dog", videos / "01_dog.mp4", (0, 120)),
                      Rs6DofSource("cups", videos / "02_cups.mp4", (0, 300)),
                      Rs6DofSource("blocks", videos / "03_blocks.mp4", (0, 200))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir")
    parser.add_argument("--photos", nargs="+", default=[".data/photos", ".data/photos_lomiri"])
    parser.add_argument("--videos", default="../shared/data/videos")
    parser.add_argument("--targets", type=int, default=4, help="blurry frames per source")
    args = parser.parse_args()
    photos = sorted(p for folder in args.photos for p in Path(folder).iterdir() if p.is_file())
    build_rs6dof_triplets(training_sources(photos, Path(args.videos)), args.outdir,
                          targets=args.targets, seed=7)
    manifest = Path(args.outdir) / "manifest.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    for row in rows:  # the builder writes validation sets: split them for training here
        row["split"] = "val" if row["sequence"] in VAL_SOURCES else "train"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(f"{len(rows)} triplets -> {manifest}")


if __name__ == "__main__":
    main()

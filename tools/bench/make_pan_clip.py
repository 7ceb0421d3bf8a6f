#!/usr/bin/env python
"""Make a large test clip like a phone's: a slow pan across a photo, every N-th frame
motion-blurred (the average of nine steps of a faster pan), in the phone's own format
(10-bit HEVC in MOV with AAC audio by default). For memory and speed runs at sizes the
bundled clips do not have (4K); the photo is upscaled where it is smaller than the frame.

    bash tools/recipes/get_photos.sh   # once: .data/photos
    python tools/bench/make_pan_clip.py .data/photos/Garden.jpg phone4k.mov --frames 60
    /usr/bin/time -v refdeblur-video phone4k.mov out.mov   # peak RSS, wall time
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction

import av
import cv2
import numpy as np

from refdeblur_video.video.synthetic import add_tone_stream, write_tone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo")
    parser.add_argument("output")
    parser.add_argument("--size", default="3840x2160", help="WxH (3840x2160)")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--every", type=int, default=6, help="blur every N-th frame (6)")
    parser.add_argument("--codec", default="libx265")
    parser.add_argument("--pix-fmt", default="yuv420p10le")
    parser.add_argument("--fps", type=int, default=30)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))

    photo = cv2.imread(args.photo, cv2.IMREAD_COLOR)
    if photo is None:
        parser.error(f"cannot read {args.photo}")
    photo = np.ascontiguousarray(photo[:, :, ::-1])
    scale = max((height + 200) / photo.shape[0], (width + 8 * args.frames + 200) / photo.shape[1])
    if scale > 1:
        photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)

    def view(x: float, y: float) -> np.ndarray:
        return photo[int(y):int(y) + height, int(x):int(x) + width]

    with av.open(args.output, "w") as out:
        video = out.add_stream(args.codec, rate=args.fps)
        video.width, video.height, video.pix_fmt = width, height, args.pix_fmt
        options = {"preset": "ultrafast", "crf": "18"}
        if args.codec == "libx265":
            options["x265-params"] = "log-level=error"
        video.codec_context.options = options
        audio = add_tone_stream(out, ".mov")
        for i in range(args.frames):
            x, y = 100 + 4 * i, 100 + 3 * np.sin(i / 5)
            if i % args.every == args.every // 2:
                steps = [view(x + 6 * k - 24, y + 2 * k - 8).astype(np.float32) for k in range(9)]
                image = np.mean(steps, axis=0).round().astype(np.uint8)
            else:
                image = view(x, y)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, args.fps)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        write_tone(out, audio, args.frames / args.fps, seed=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

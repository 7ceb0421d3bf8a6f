#!/usr/bin/env python
"""Encoding speed of each output format the writer codes, on real 720p frames.

The output keeps the input's format where its container holds it
(``encoding_choice.default_codec``), so a long video with few blurry frames pays that format's
encoder for every frame that passes through. This times :class:`VideoWriter` itself, with the
pipeline's defaults (CRF 16, preset medium and what each encoder maps them to), on the first
``--frames`` frames of a real clip decoded once into memory: frames as decoded (their planes
pass straight through, as an untouched frame does) and, with ``--restored``, frames that carry
only RGB (as a restored frame does, so the RGB-to-YUV conversion is timed too). Each row is the
median of ``--repeats`` runs taken in turns.

    python tools/bench/bench_encoders.py --frames 60 --repeats 3 --json encoders.json
    python tools/bench/bench_encoders.py --rows libx265:medium libx265:fast libx265:veryfast

Prints a table (CPU, encoder, pixel format, preset, frames/s, KiB per frame) and the same rows
as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_model import cpu_name  # tools/bench/ is on sys.path as a script

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

DEFAULT_CLIP = ROOT.parent / "shared" / "data" / "videos" / "05_default_juggle.mp4"

#: encoder -> (container suffix, pixel format a source of that format typically has)
ENCODERS = {
    "libx264": (".mp4", "yuv420p"),
    "libx265": (".mp4", "yuv420p10le"),
    "libvpx-vp9": (".webm", "yuv420p"),
    "libsvtav1": (".mkv", "yuv420p10le"),
    "prores_ks": (".mov", "yuv422p10le"),
    "ffv1": (".mkv", "yuv420p"),
}
DEFAULT_ROWS = ("libx264:medium", "libx265:medium", "libx265:fast", "libx265:veryfast",
                "libvpx-vp9:medium", "libsvtav1:medium", "prores_ks:medium", "ffv1:medium")


def decode(clip: Path, frames: int, pix_fmt: str) -> tuple[object, list]:
    """The clip's probe (as if it were stored in ``pix_fmt``) and its first ``frames``
    frames, converted to ``pix_fmt`` so that their planes pass straight through."""
    import dataclasses

    import av

    from refdeblur_video.video.frame import Frame
    from refdeblur_video.video.metadata import pix_fmt_bit_depth, probe
    from refdeblur_video.video.yuv import frame_planes, plane_layout

    info = dataclasses.replace(probe(clip), pix_fmt=pix_fmt)
    layout = plane_layout(pix_fmt)
    rgb = "rgb48le" if pix_fmt_bit_depth(pix_fmt) > 8 else "rgb24"
    out: list = []
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        for index, frame in enumerate(container.decode(stream)):
            if index == frames:
                break
            converted = frame.reformat(format=pix_fmt)
            out.append(Frame(index, frame.pts, stream.time_base,
                             converted.to_ndarray(format=rgb), frame.duration,
                             frame_planes(converted, layout), pix_fmt))
    return info, out


def encode_once(info, frames: list, encoder: str, preset: str, suffix: str,
                restored: bool) -> tuple[float, int]:
    """Seconds to write ``frames`` (and close the file) and the file's size in bytes."""
    from refdeblur_video.video.writer import VideoWriter

    if restored:
        frames = [f.with_image(f.image) for f in frames]
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / f"out{suffix}"
        start = time.perf_counter()
        with VideoWriter(path, info, codec=encoder, crf=16, preset=preset, audio=False,
                         subtitles=False) as writer:
            for frame in frames:
                writer.write(frame)
        seconds = time.perf_counter() - start
        return seconds, path.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", nargs="+", default=list(DEFAULT_ROWS),
                        help="ENCODER:PRESET (x264 preset names; VP9 and AV1 map them)")
    parser.add_argument("--restored", action="store_true",
                        help="frames carry RGB only (the conversion to YUV is timed too)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not args.clip.is_file():
        parser.error(f"{args.clip} not found (--clip)")

    rows = [row.split(":", 1) for row in args.rows]
    unknown = sorted({encoder for encoder, _ in rows} - set(ENCODERS))
    if unknown:
        parser.error(f"unknown encoder(s) {', '.join(unknown)}; known: {', '.join(ENCODERS)}")
    decoded = {fmt: decode(args.clip, args.frames, fmt)
               for fmt in sorted({ENCODERS[encoder][1] for encoder, _ in rows})}
    times: dict[int, list[float]] = {i: [] for i in range(len(rows))}
    sizes: dict[int, int] = {}
    for _ in range(args.repeats):
        for i, (encoder, preset) in enumerate(rows):
            suffix, pix_fmt = ENCODERS[encoder]
            info, frames = decoded[pix_fmt]
            seconds, size = encode_once(info, frames, encoder, preset, suffix, args.restored)
            times[i].append(seconds)
            sizes[i] = size

    cpu = cpu_name()
    results = []
    for i, (encoder, preset) in enumerate(rows):
        info, frames = decoded[ENCODERS[encoder][1]]
        seconds = statistics.median(times[i])
        results.append({"cpu": cpu, "encoder": encoder, "pix_fmt": ENCODERS[encoder][1],
                        "preset": preset, "size": f"{info.width}x{info.height}",
                        "frames": len(frames), "restored": args.restored,
                        "frames_per_s": round(len(frames) / seconds, 2),
                        "kib_per_frame": round(sizes[i] / 1024 / len(frames), 1)})
    print("| CPU | encoder | pixel format | preset | frames/s | KiB per frame |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['cpu']} | {r['encoder']} | {r['pix_fmt']} | {r['preset']} | "
              f"{r['frames_per_s']} | {r['kib_per_frame']} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

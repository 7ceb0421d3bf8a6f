#!/usr/bin/env python
"""End-to-end pipeline benchmark on a real 720p clip: overhead over the model, and memory.

Measures, on the first N frames of a clip (default ``../shared/data/videos/02_cups.mp4``,
re-encoded once to H.264 so every run reads the same file):

* end-to-end: ``deblur_video`` with the default model (frames/s, wall time);
* model-only: a fresh process loads the model and runs the same blurry frames and
  references, already in memory, through it with the same batch size (so the difference
  is the pipeline's own cost);
* decode-only and encode-only time of those frames;
* pipeline overhead = (end-to-end - model-only) / model-only (target <= 10 % on CPU);
* peak RSS of a whole run in a fresh process for ``--frames`` and ``--long-frames``
  (target: within 10 % of each other, i.e. memory does not grow with the video's length),
  and the highest RSS sampled in the first and in the second half of the long run (the
  short run ends before the encoder's look-ahead and the queues are full; the halves of
  the long run compare steady states).

    python tools/bench/bench_pipeline.py --frames 30 --long-frames 300 --json bench_pipeline.json

``--compare`` instead times whole runs before and after issue 19 on a short clip made from
the first ``--compare-frames`` frames of the clip, every frame but each fourth blurred by
synthetic camera shake (so 6 of 8 frames are restored): the shipped model with the code and
reference-transfer settings of 2026-11 (``legacy.py``) against today's defaults, in fresh
processes taken in turns, each row the median (model loading included):

    python tools/bench/bench_pipeline.py --compare --repeats 3 --json compare.json
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from bench_model import cpu_name, run_isolated  # tools/bench/ is on sys.path as a script


def trim(source: str, target: Path, frames: int, size: tuple[int, int] | None = None) -> None:
    """The first ``frames`` frames of ``source`` as H.264 CRF 16 (no audio), scaled to
    ``size`` (W, H) if given."""
    import dataclasses

    import cv2

    from refdeblur_video.video.reader import Frame, open_reader
    from refdeblur_video.video.writer import VideoWriter

    with open_reader(source) as reader:
        info = reader.info if size is None else dataclasses.replace(
            reader.info, width=size[0], height=size[1])
        writer = VideoWriter(target, info, audio=False, subtitles=False, preset="veryfast")
        for frame in reader:
            if frame.index >= frames:
                break
            image = frame.image if size is None else cv2.resize(
                frame.image, size, interpolation=cv2.INTER_AREA)
            writer.write(Frame(frame.index, frame.pts, frame.time_base, image))
        writer.close()


class CopyRestorer:
    """Stands in for the network (``--model copy``): returns copies of the blurry frames, so
    the run measures the pipeline's own time and memory."""

    trained = False  # nothing after the network either

    def restore_floats(self, blurry, references):
        return [image.astype(np.float32) / 255 for image in blurry], [True] * len(blurry)


class RssSampler(threading.Thread):
    """Samples this process's resident memory every ``interval`` seconds until stopped."""

    def __init__(self, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.interval, self.samples, self.done = interval, [], threading.Event()

    def run(self) -> None:
        page = resource.getpagesize()
        while not self.done.wait(self.interval):
            with open("/proc/self/statm") as handle:
                self.samples.append(int(handle.read().split()[1]) * page / 2**20)

    def halves(self) -> tuple[float, float]:
        """Highest sample in the first and in the second half of the run (MB)."""
        self.done.set()
        self.join()
        middle = len(self.samples) // 2
        return max(self.samples[:middle], default=0.0), max(self.samples[middle:], default=0.0)


def _end_to_end(clip: str, out: str, model: str, batch: int, log: str, all_frames: bool,
                q) -> None:
    import warnings

    from refdeblur_video.malloc import share_malloc_arenas

    share_malloc_arenas()  # as the command line does, before any library starts a thread
    from refdeblur_video.pipeline import deblur_video

    warnings.simplefilter("ignore", UserWarning)
    restorer = CopyRestorer() if model == "copy" else None
    sampler = RssSampler()
    sampler.start()
    start = time.perf_counter()
    summary = deblur_video(clip, out, restorer, model=model, batch=batch, quiet=True,
                           overwrite=True, log=log, all_frames=all_frames)
    seconds = time.perf_counter() - start
    first_half, second_half = sampler.halves()
    q.put({"seconds": seconds, "frames": summary.frames, "restored": summary.sent_to_network,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "rss_first_half_mb": first_half, "rss_second_half_mb": second_half})


def _model_only(clip: str, log: str, model: str, batch: int, q) -> None:
    """Load the model and restore the run's blurry frames, already decoded, in batches."""
    from refdeblur_video.model import load_model
    from refdeblur_video.video.reader import open_reader

    with open_reader(clip) as reader:
        images = {frame.index: frame.image for frame in reader}
    with open(log) as handle:
        rows = [r for r in csv.DictReader(handle) if r["blurry"] == "1"]
    pairs = [(images[int(r["index"])],
              images[int(r["reference"])] if int(r["reference"]) >= 0
              else images[int(r["index"])]) for r in rows]
    start = time.perf_counter()
    restorer = CopyRestorer() if model == "copy" else load_model(model, "auto",
                                                                  warn_untrained=False)
    for i in range(0, len(pairs), batch):
        chunk = pairs[i : i + batch]
        restorer.restore_floats([b for b, _ in chunk], [r for _, r in chunk])
    q.put({"model_only_s": time.perf_counter() - start, "model_frames": len(pairs)})


def stage_times(clip: Path, log: Path, model: str, batch: int, workdir: Path) -> dict:
    """Decode-only, encode-only and model-only seconds for the frames of ``clip``.

    Model-only runs in a fresh process, like the end-to-end run, and counts the same model
    loading and first-batch warm-up, so the difference is the pipeline's own cost.
    """
    from refdeblur_video.video.reader import open_reader
    from refdeblur_video.video.writer import VideoWriter

    start = time.perf_counter()
    with open_reader(clip) as reader:
        frames = list(reader)
        info = reader.info
    decode = time.perf_counter() - start
    start = time.perf_counter()
    writer = VideoWriter(workdir / "encode_only.mp4", info, audio=False)
    for frame in frames:
        writer.write(frame)
    writer.close()
    encode = time.perf_counter() - start
    del frames
    return {"decode_s": decode, "encode_s": encode,
            **run_isolated(_model_only, str(clip), str(log), model, batch)}


def make_blurry_clip(source: str, target: Path, frames: int, seed: int = 0) -> None:
    """The first ``frames`` frames of ``source``, lossless, all but every fourth blurred."""
    import numpy as np

    from refdeblur_video.data.shake import synthesize_camera_blur
    from refdeblur_video.video.reader import Frame, open_reader
    from refdeblur_video.video.writer import VideoWriter

    rng = np.random.default_rng(seed)
    with open_reader(source) as reader:
        writer = VideoWriter(target, reader.info, codec="ffv1", pix_fmt="bgr0", audio=False,
                             subtitles=False)
        for frame in reader:
            if frame.index >= frames:
                break
            image = frame.image
            if frame.index % 4:
                image, _ = synthesize_camera_blur(image, rng, 1.0)
            writer.write(Frame(frame.index, frame.pts, frame.time_base, image))
        writer.close()


COMPARED = {
    "before": "2026-11 code and transfer settings",
    "after": "today's defaults",
}


def _variant_run(clip: str, out: str, variant: str, q) -> None:
    """One whole run in this fresh process, model loading included."""
    import contextlib
    import warnings

    from refdeblur_video.malloc import share_malloc_arenas

    share_malloc_arenas()  # as the command line does, before any library starts a thread
    from legacy import TRANSFER_2026_11, TransferInNetworkStage, legacy_path

    from refdeblur_video.model import load_model
    from refdeblur_video.pipeline import deblur_video

    warnings.simplefilter("ignore", UserWarning)
    before = variant == "before"
    start = time.perf_counter()
    with legacy_path() if before else contextlib.nullcontext():
        restorer = load_model("default", "auto", warn_untrained=False)
        if before:  # the transfer inside the network's stage, as in 2026-11
            restorer = TransferInNetworkStage(restorer, TRANSFER_2026_11)
        summary = deblur_video(clip, out, restorer, quiet=True, overwrite=True,
                               transfer=not before)
    q.put({"seconds": time.perf_counter() - start, "restored": summary.sent_to_network})


def compare(args: argparse.Namespace) -> dict:
    """Whole runs before and after on a short blurry clip, in turns; medians."""
    import statistics

    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "blurry.mkv"
        make_blurry_clip(args.clip, clip, args.compare_frames)
        runs: dict[str, list[dict]] = {variant: [] for variant in COMPARED}
        for _ in range(max(1, args.repeats)):
            for variant in COMPARED:
                runs[variant].append(run_isolated(_variant_run, str(clip),
                                                  str(Path(tmp) / f"{variant}.mkv"), variant))
    rows = []
    for variant, samples in runs.items():
        seconds = statistics.median(r["seconds"] for r in samples)
        restored = samples[0]["restored"]
        rows.append({"variant": variant, "about": COMPARED[variant], "cpu": cpu_name(),
                     "seconds": seconds, "restored": restored,
                     "seconds_per_restored": seconds / max(restored, 1),
                     "samples": [r["seconds"] for r in samples]})
    return {"clip": args.clip, "frames": args.compare_frames, "rows": rows,
            "ratio": rows[-1]["seconds"] / rows[0]["seconds"]}


def _print_compare(result: dict) -> None:
    rows = result["rows"]
    print(f"whole runs on {result['frames']} frames of {result['clip']} ({rows[0]['cpu']}), "
          f"median of {len(rows[0]['samples'])} fresh processes each, taken in turns")
    print(f"{'variant':8} {'seconds':>8} {'restored':>8} {'s/restored':>10}  settings")
    for r in rows:
        print(f"{r['variant']:8} {r['seconds']:>8.2f} {r['restored']:>8} "
              f"{r['seconds_per_restored']:>10.2f}  {r['about']}")
    print(f"after / before: {result['ratio']:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default="../shared/data/videos/02_cups.mp4")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--long-frames", type=int, default=300)
    parser.add_argument("--model", default="default",
                        help="default, lite, paper, PATH, or copy (no network: the "
                        "pipeline's own cost)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--all-frames", action="store_true",
                        help="run every frame through the model (a model-bound run)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--compare", action="store_true",
                        help="only whole runs before and after issue 19 (see above)")
    parser.add_argument("--compare-frames", type=int, default=8, metavar="N")
    parser.add_argument("--repeats", type=int, default=3, metavar="N",
                        help="runs per --compare row, taken in turns (3)")
    args = parser.parse_args(argv)
    if not Path(args.clip).is_file():
        print(f"error: clip not found: {args.clip}", file=sys.stderr)
        return 2
    if args.compare:
        result = compare(args)
        _print_compare(result)
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        short, long = work / "short.mp4", work / "long.mp4"
        trim(args.clip, short, args.frames)
        trim(args.clip, long, args.long_frames)
        e2e = run_isolated(_end_to_end, str(short), str(work / "out.mp4"), args.model,
                           args.batch, str(work / "frames.csv"), args.all_frames)
        stages = stage_times(short, work / "frames.csv", args.model, args.batch, work)
        e2e_long = run_isolated(_end_to_end, str(long), str(work / "out_long.mp4"), args.model,
                                args.batch, str(work / "frames_long.csv"), args.all_frames)
    overhead = ((e2e["seconds"] - stages["model_only_s"]) / stages["model_only_s"]
                if stages["model_frames"] else float("nan"))
    result = {
        "clip": args.clip, "frames": e2e["frames"], "restored": e2e["restored"],
        "end_to_end_s": e2e["seconds"], "end_to_end_fps": e2e["frames"] / e2e["seconds"],
        **stages, "overhead": overhead,
        "peak_rss_short_mb": e2e["peak_rss_mb"], "long_frames": e2e_long["frames"],
        "long_restored": e2e_long["restored"], "long_end_to_end_s": e2e_long["seconds"],
        "peak_rss_long_mb": e2e_long["peak_rss_mb"],
        "rss_growth": e2e_long["peak_rss_mb"] / e2e["peak_rss_mb"] - 1,
        "long_rss_first_half_mb": e2e_long["rss_first_half_mb"],
        "long_rss_second_half_mb": e2e_long["rss_second_half_mb"],
        "long_rss_growth": e2e_long["rss_second_half_mb"] / e2e_long["rss_first_half_mb"] - 1,
    }
    rows = [
        ("frames (restored)", f"{result['frames']} ({result['restored']})"),
        ("end-to-end", f"{result['end_to_end_s']:.2f} s, {result['end_to_end_fps']:.2f} frames/s"),
        ("model only (same frames)", f"{result['model_only_s']:.2f} s "
                                     f"({result['model_frames']} frames)"),
        ("decode only", f"{result['decode_s']:.2f} s"),
        ("encode only", f"{result['encode_s']:.2f} s"),
        ("pipeline overhead", f"{overhead:+.1%} (target <= 10 %)" if stages["model_frames"]
         else "n/a (no frame was restored; use --all-frames)"),
        (f"peak RSS, {result['frames']} frames", f"{result['peak_rss_short_mb']:.0f} MB"),
        (f"peak RSS, {result['long_frames']} frames ({result['long_restored']} restored)",
         f"{result['peak_rss_long_mb']:.0f} MB ({result['rss_growth']:+.1%}, target within 10 %)"),
        (f"highest RSS, {result['long_frames']}-frame run, 1st / 2nd half",
         f"{result['long_rss_first_half_mb']:.0f} / {result['long_rss_second_half_mb']:.0f} MB "
         f"({result['long_rss_growth']:+.1%})"),
    ]
    width = max(len(k) for k, _ in rows)
    mode = "every frame through the model" if args.all_frames else "blurry frames only"
    print(f"pipeline benchmark on {args.clip}, model {args.model}, batch {args.batch}, {mode}")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

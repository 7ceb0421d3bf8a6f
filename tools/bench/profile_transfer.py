#!/usr/bin/env python
"""Where the PyTorch reference transfer's time goes on a device (the step after the network
on a GPU): wall time per frame for one frame per call and for a batch of frames per call,
the kernels' own time against the wall (a transfer whose kernels are busy only part of the
wall is bound by launching them), and the operators that take the most device time.

    python tools/bench/profile_transfer.py --device cuda --json transfer_profile.json
    python tools/bench/profile_transfer.py --device cpu --size 320x180 --repeats 2

The frames are two neighbours of ``--clip`` (default ``../shared/data/videos/02_cups.mp4``)
scaled to ``--size``, or a synthetic pair where that file is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from bench_stages import DEFAULT_CLIP, sync_device  # tools/bench/ is on sys.path as a script

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from refdeblur_video.model.restorer import images_to_tensor  # noqa: E402
from refdeblur_video.refine.torch_transfer import transfer_reference_torch  # noqa: E402
from refdeblur_video.refine.transfer import DEFAULT_TRANSFER  # noqa: E402


def frame_pair(clip: Path, size: tuple[int, int]) -> list[np.ndarray]:
    """Two consecutive frames of ``clip`` resized to ``size`` (W, H), or a synthetic pair."""
    import cv2

    if clip.exists():
        from refdeblur_video.video.reader import open_reader

        with open_reader(clip) as reader:
            frames = [frame.image for _, frame in zip(range(2), reader, strict=False)]
    else:
        rng = np.random.default_rng(0)
        noise = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        base = cv2.GaussianBlur(noise, (0, 0), 3)
        frames = [base, np.roll(base, 3, axis=1)]
    return [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]


def seconds_per_frame(restored: torch.Tensor, reference: torch.Tensor, repeats: int) -> float:
    """Best wall time of ``repeats`` calls, divided by the frames in one call."""
    device, best = restored.device, float("inf")
    transfer_reference_torch(restored, reference, DEFAULT_TRANSFER)  # warm-up
    for _ in range(repeats):
        sync_device(device)
        tick = time.perf_counter()
        transfer_reference_torch(restored, reference, DEFAULT_TRANSFER)
        sync_device(device)
        best = min(best, time.perf_counter() - tick)
    return best / restored.shape[0]


def profile(restored: torch.Tensor, reference: torch.Tensor, rows: int) -> dict:
    """Kernel time against wall time for one call, and the top operators by device time."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    device = restored.device
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    sync_device(device)
    tick = time.perf_counter()
    with torch_profile(activities=activities) as prof:
        transfer_reference_torch(restored, reference, DEFAULT_TRANSFER)
        sync_device(device)
    wall = time.perf_counter() - tick
    events = prof.key_averages()
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    ranked = sorted(events, key=lambda e: getattr(e, key), reverse=True)
    busy = sum(getattr(e, key) for e in events) / 1e6
    return {"wall_s": wall, "busy_s": busy, "launches": sum(e.count for e in events),
            "top": [{"op": e.key, "calls": e.count, "seconds": getattr(e, key) / 1e6}
                    for e in ranked[:rows]]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT")
    parser.add_argument("--batch", type=int, default=4, help="frames per call, batched row")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, default=15)
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    width, height = (int(v) for v in args.size.split("x"))
    frame, reference = frame_pair(args.clip, (width, height))
    restored = images_to_tensor([frame], device).float()
    ref = images_to_tensor([reference], device).float()
    one = seconds_per_frame(restored, ref, args.repeats)
    many = seconds_per_frame(restored.repeat(args.batch, 1, 1, 1),
                             ref.repeat(args.batch, 1, 1, 1), args.repeats)
    found = profile(restored, ref, args.rows)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    result = {"device": name, "size": args.size, "seconds_per_frame": one,
              f"seconds_per_frame_batch{args.batch}": many, **found}
    print(f"{name}, {args.size}: {one * 1000:.1f} ms per frame one at a time, "
          f"{many * 1000:.1f} ms per frame in calls of {args.batch}")
    print(f"one call: wall {found['wall_s'] * 1000:.1f} ms (profiled), kernels busy "
          f"{found['busy_s'] * 1000:.1f} ms, {found['launches']} operator calls")
    print("| operator | calls | ms |\n| --- | --- | --- |")
    for row in found["top"]:
        print(f"| {row['op']} | {row['calls']} | {row['seconds'] * 1000:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Frames per second of the main job with every frame restored, and where the time goes.

For each model config, precision and frame size: the whole ``refdeblur-video --all-frames``
run on a clip of N frames (frames per second, model loading excluded), then the same
frames through each stage on its own, in order, with the device synchronised after each
(seconds per frame): decode, to the device, network (with the reference check), the step
after the network (the reference transfer from both sides: PyTorch on a GPU, OpenCV on a
CPU), back from the device, encode. On a GPU the frames go to the device once and only the
finished frame comes back, as in the main job (``Restorer.restore_on_device`` and
``Refiner``).

    python tools/bench/bench_stages.py --device cuda --configs lite paper \\
        --precisions amp fp32 --sizes 1280x720 1920x1080 --json stages.json
    python tools/bench/bench_stages.py --device cpu --configs lite --sizes 320x180 --frames 4

The clip is ``--clip`` (default ``../shared/data/videos/02_cups.mp4``) scaled to each size,
or a synthetic one where that file is missing. "amp" is bf16/fp16 autocast where the device
has it (the main job's default), "fp32" is ``--fp32``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from bench_model import cpu_name  # tools/bench/ is on sys.path as a script
from bench_pipeline import trim

DEFAULT_CLIP = Path(__file__).resolve().parents[2] / "../shared/data/videos/02_cups.mp4"


def make_clip(source: Path, target: Path, size: tuple[int, int], frames: int) -> None:
    """``frames`` frames of ``source`` scaled to ``size`` (W, H), or of the synthetic scene
    where ``source`` does not exist."""
    from refdeblur_video.video.synthetic import make_clip as synthetic

    if source.exists():
        trim(str(source), target, frames, size)
    else:
        synthetic(target, n_frames=frames, size=size)


def sync_device(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def stage_times(clip: Path, restorer, batch: int, on_device: bool) -> dict[str, float]:
    """Seconds per frame of each stage, run one after another on the clip's frames (each
    frame restored against the next one, the last against the one before); ``on_device``:
    as on a GPU (outputs finished where the network ran), else as on a CPU."""
    import torch

    from refdeblur_video.model.restorer import DeviceOutput, images_to_tensor
    from refdeblur_video.refine import Refiner, transfer_for
    from refdeblur_video.video.reader import Frame, open_reader
    from refdeblur_video.video.writer import VideoWriter

    device, times = restorer.device, dict.fromkeys(
        ("decode", "to_device", "network", "transfer", "from_device", "encode"), 0.0)
    start = time.perf_counter()
    with open_reader(clip) as reader:
        info = reader.info
        frames = [frame for frame in reader]
    times["decode"] = time.perf_counter() - start
    images = [f.image for f in frames]
    refs = images[1:] + images[-2:-1]
    # the other side's reference, for the second transfer: never the first one again
    others = [images[i - 1] if i > 0 else images[min(2, len(images) - 1)]
              for i in range(len(images))]
    if len(images) > 2:
        others[-1] = images[-3]
    refine, plain, finished = Refiner(transfer_for(restorer)), Refiner(None), []
    for i in range(0, len(images), batch):
        chunk, chunk_refs, chunk_others = (images[i:i + batch], refs[i:i + batch],
                                           others[i:i + batch])
        tick = time.perf_counter()
        b, r = (images_to_tensor(x, device) for x in (chunk, chunk_refs))
        sync_device(device)
        times["to_device"] += time.perf_counter() - tick
        tick = time.perf_counter()
        with torch.inference_mode():
            out, used_refs, _ = restorer._restore_here(b, r)
        sync_device(device)
        times["network"] += time.perf_counter() - tick
        tick = time.perf_counter()
        if not on_device:
            for k, frame in enumerate(chunk):
                restored = out[k].permute(1, 2, 0).numpy()
                finished.append(refine(restored, frame, chunk_refs[k], chunk_others[k]))
            times["transfer"] += time.perf_counter() - tick
            continue
        from refdeblur_video.refine.torch_transfer import transfer_reference_torch

        # as Refiner.many does: the chunk's frames together, one side after the other
        fused = transfer_reference_torch(out.float(), used_refs.float(), refine.settings)
        fused = transfer_reference_torch(fused, images_to_tensor(chunk_others, device),
                                         refine.settings)
        sync_device(device)
        times["transfer"] += time.perf_counter() - tick
        tick = time.perf_counter()
        finished += plain.many([(DeviceOutput(f, f), frame, None, None)  # rounding only
                                for f, frame in zip(fused, chunk, strict=True)])
        times["from_device"] += time.perf_counter() - tick
    with tempfile.TemporaryDirectory() as tmp:
        tick = time.perf_counter()
        writer = VideoWriter(Path(tmp) / "out.mp4", info, audio=False, subtitles=False)
        for frame, image in zip(frames, finished, strict=True):
            writer.write(Frame(frame.index, frame.pts, frame.time_base, image))
        writer.close()
        times["encode"] = time.perf_counter() - tick
    return {k: v / len(images) for k, v in times.items()}


def measure(clip: Path, config: str, device: str, precision: str, batch: int,
            repeats: int, torch_transfer: bool = False) -> dict:
    """End-to-end frames per second (best of ``repeats``) and the stage times."""
    import torch

    import refdeblur_video.pipeline.run as run
    from refdeblur_video.model import load_model
    from refdeblur_video.pipeline import deblur_video

    restorer = load_model(config, device, amp=precision == "amp", warn_untrained=False)
    # a config without installed weights runs its randomly initialised network, and the
    # transfer after it, as trained weights would: the work, and so the time, are the same
    restorer.trained = True
    on_device = restorer.device.type != "cpu" or torch_transfer
    if on_device:  # what the main job does on a GPU (and, asked for, here on a CPU)
        run.restore_step = lambda r, _: r.restore_on_device
    with tempfile.TemporaryDirectory() as tmp:
        deblur_video(clip, Path(tmp) / "warm.mp4", restorer, quiet=True, all_frames=True,
                     batch=batch)  # the first run pays for kernels being compiled/tuned
        best, frames = float("inf"), 0
        for k in range(repeats):
            sync_device(restorer.device)
            tick = time.perf_counter()
            frames = deblur_video(clip, Path(tmp) / f"run{k}.mp4", restorer, quiet=True,
                                  all_frames=True, batch=batch).frames
            sync_device(restorer.device)
            best = min(best, time.perf_counter() - tick)
    stages = stage_times(clip, restorer, batch, on_device)
    total = sum(stages.values())
    name = (torch.cuda.get_device_name(restorer.device) if restorer.device.type == "cuda"
            else cpu_name())
    return {"config": config, "device": name, "precision": precision,
            "transfer": "pytorch" if on_device else "opencv",
            "amp_dtype": str(restorer.amp_dtype).replace("torch.", "") if restorer.amp_dtype
            else "fp32", "frames": frames, "fps": frames / best,
            "stage_seconds": stages, "stage_share": {k: v / total for k, v in stages.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--configs", nargs="+", default=["lite", "paper"])
    parser.add_argument("--precisions", nargs="+", choices=("amp", "fp32"),
                        default=["amp", "fp32"])
    parser.add_argument("--sizes", nargs="+", default=["1280x720", "1920x1080"])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--torch-transfer", action="store_true",
                        help="finish frames with the PyTorch transfer even on a CPU (a dry "
                        "run of the GPU path)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            w, h = (int(v) for v in size.lower().split("x"))
            clip = Path(tmp) / f"clip_{w}x{h}.mp4"
            make_clip(args.clip, clip, (w, h), args.frames)
            for config in args.configs:
                for precision in args.precisions:
                    row = measure(clip, config, args.device, precision, args.batch,
                                  args.repeats, args.torch_transfer)
                    row["size"] = f"{w}x{h}"
                    rows.append(row)
                    _print_row(row, header=len(rows) == 1)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


STAGES = ("decode", "to_device", "network", "transfer", "from_device", "encode")


def _print_row(row: dict, header: bool) -> None:
    if header:
        print("| size | config | precision | device | transfer | frames/s | "
              + " | ".join(f"{s} ms" for s in STAGES) + " |")
        print("|" + " --- |" * (6 + len(STAGES)))
    stages = " | ".join(f"{row['stage_seconds'][s] * 1000:.1f} "
                        f"({row['stage_share'][s] * 100:.0f} %)" for s in STAGES)
    print(f"| {row['size']} | {row['config']} | {row['amp_dtype']} | {row['device']} | "
          f"{row['transfer']} | "
          f"{row['fps']:.2f} | {stages} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())

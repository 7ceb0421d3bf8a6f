#!/usr/bin/env python
"""Benchmark the network: parameters, GMACs, forward time, peak memory, matching memory, the
flow-guided reference transfer that follows the network, and one ``--adapt`` training step.

Prints a table and writes JSON (``--json``). Every measurement runs in a fresh subprocess
so that CPU peak memory (ru_maxrss growth) belongs to that measurement alone. On a CUDA
machine the GPU rows (fp32 and bf16/fp16 autocast) are added.

    python tools/bench/bench_model.py                      # lite and paper, 1280x720
    python tools/bench/bench_model.py --configs lite --size 640x360 --json out.json
    python tools/bench/bench_model.py --configs lite lite:nocheck   # the reference check's cost
    python tools/bench/bench_model.py --frames-only --frame-repeats 5  # before/after rows only
    python tools/bench/bench_model.py --frames-only --frame-weights runs/x/model.safetensors

A config is a name or YAML path; ``NAME:nocheck`` is that config with its reference check
off (``reference_check: 0``).

The "restored frame" rows time what one blurry frame costs as ``refdeblur-video`` restores
it on the CPU (reference check, network, reference transfer), for the shipped model with the
code and settings of 2026-11 ("before", ``legacy.py``) and with today's defaults ("after"),
in fresh processes taken in turns (before, after, before, ...), so that a shared machine's
load falls on both alike; each row is the median.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import queue
import resource
import sys
import time


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def _config(spec: str):
    """The model config and inference settings named by ``spec`` (``NAME`` or
    ``NAME:nocheck``)."""
    from refdeblur_video.model.config import load_model_yaml

    name, _, variant = spec.partition(":")
    config, settings = load_model_yaml(name)
    return config, settings.replace(reference_check=0.0) if variant == "nocheck" else settings


def _net(spec: str):
    """The network named by ``spec`` (see :func:`_config`) and its reference check."""
    from refdeblur_video.model import RefDeblurNet

    config, settings = _config(spec)
    return RefDeblurNet(config, settings.matching), settings.reference_check


def _restore(net, check, blurry, reference) -> None:
    """What :class:`Restorer` runs per frame: the reference check when on, then the net."""
    matched = None
    if check > 0:  # the reference passes: its match is reused
        matched = net.reference_scores(blurry, reference).matched
    net(blurry, reference, matched)


def _measure_forward(config: str, device: str, dtype: str, h: int, w: int, repeats: int, q):
    import torch

    from refdeblur_video.model import count_parameters

    torch.manual_seed(0)
    net, check = _net(config)
    net = net.eval().to(device)
    net = net.to(memory_format=torch.channels_last)  # as the Restorer runs it
    x = torch.rand(1, 3, h, w, device=device).contiguous(memory_format=torch.channels_last)
    # the reference: the frame moved by a few pixels (a reference that passes the check)
    y = torch.roll(x, shifts=(3, 5), dims=(2, 3)).contiguous(memory_format=torch.channels_last)
    amp = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    base = _current_rss_mb()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base_gpu = torch.cuda.memory_allocated()
    times = []
    with torch.inference_mode(), torch.autocast(device, dtype=amp, enabled=amp is not None):
        for i in range(repeats + 1):
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            _restore(net, check, x, y)
            if device == "cuda":
                torch.cuda.synchronize()
            if i:  # the first run warms up
                times.append(time.perf_counter() - start)
    peak = (
        (torch.cuda.max_memory_allocated() - base_gpu) / 2**20
        if device == "cuda"
        else _rss_mb() - base
    )
    q.put({"params": count_parameters(net), "seconds": min(times), "peak_mb": peak})


def _measure_flops(config: str, h: int, w: int, q):
    import torch
    from torch.utils.flop_counter import FlopCounterMode


    net, check = _net(config)
    net.eval()
    # count on a small frame and scale: the network is fully convolutional
    sh, sw = 64, 64 * w // h // 4 * 4 or 64
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        _restore(net, check, torch.rand(1, 3, sh, sw), torch.rand(1, 3, sh, sw))
    q.put({"gmacs": counter.get_total_flops() / 2 / 1e9 * (h * w) / (sh * sw)})


def _measure_matching(config: str, mode: str, device: str, h: int, w: int, q):
    import torch

    from refdeblur_video.model.matching import match

    cfg, settings = _config(config)
    c = cfg.phi_channels[2]
    query = torch.randn(1, c, h // 4, w // 4, device=device)
    key = torch.randn(1, c, h // 4, w // 4, device=device)
    base = _current_rss_mb()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base_gpu = torch.cuda.memory_allocated()
    start = time.perf_counter()
    with torch.inference_mode():
        match(query, key, mode, settings.match_radius, settings.match_memory_mb)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = (
        (torch.cuda.max_memory_allocated() - base_gpu) / 2**20
        if device == "cuda"
        else _rss_mb() - base
    )
    q.put({"seconds": seconds, "peak_mb": peak, "channels": c})


def _measure_matmul(device: str, q):
    import torch

    n = 2048 if device == "cpu" else 8192
    a = torch.rand(n, n, device=device)
    b = torch.rand(n, n, device=device)
    best = float("inf")
    for _ in range(4):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    q.put({"gflops": 2 * n**3 / best / 1e9})


def _textured_frames(h: int, w: int):
    """A textured frame softened by a Gaussian, a sharp copy moved by a few pixels (a
    reference that passes the reference check) and one moved the other way (the sharp
    frame on the other side), H x W x 3 float32 in [0, 1]."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    scene = cv2.resize(rng.random((h // 8 + 2, w // 8 + 2, 3), dtype=np.float32),
                       (w + 16, h + 16), interpolation=cv2.INTER_CUBIC)
    scene += cv2.GaussianBlur(rng.random(scene.shape, dtype=np.float32), (0, 0), 1.0)
    scene = np.clip(scene / 2, 0, 1)
    frame, reference = scene[8:8 + h, 8:8 + w], scene[5:5 + h, 12:12 + w]
    return (cv2.GaussianBlur(frame, (0, 0), 1.5), np.ascontiguousarray(reference),
            np.ascontiguousarray(scene[11:11 + h, 4:4 + w]))


def _measure_transfer(h: int, w: int, repeats: int, q):
    """The reference transfer (``refine/transfer.py``) on a textured frame and a moved copy."""
    from refdeblur_video.refine.transfer import transfer_reference

    restored, reference, _ = _textured_frames(h, w)
    base = _current_rss_mb()
    best = float("inf")
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        transfer_reference(restored, reference)
        best = min(best, time.perf_counter() - start)
    q.put({"seconds": best, "peak_mb": _rss_mb() - base})


def _measure_adapt_step(device: str, h: int, w: int, repeats: int, q):
    """One ``--adapt`` training step on crops of an H x W frame, as :mod:`refdeblur_video.adapt`
    takes it on ``device`` (its crop size and batch): making the crops (the camera-shake
    blur of a fitted strength, the references), then the network's forward, backward and
    Adam step, after one warm-up step; the best of ``repeats``."""
    import copy

    import numpy as np
    import torch

    from refdeblur_video.adapt.fit import StrengthFit
    from refdeblur_video.adapt.reservoir import Region, crop_size, margin_for
    from refdeblur_video.adapt.samples import make_batch
    from refdeblur_video.adapt.settings import settings_for
    from refdeblur_video.adapt.tune import make_optimizer, to_device, train_step
    from refdeblur_video.model import load_model

    restorer = load_model("default", device, warn_untrained=False)
    settings = settings_for(restorer.device.type)
    scene = (_textured_frames(h, w)[1] * 255).round().astype(np.uint8)
    crop, margin = crop_size(settings.crop, (h, w)), margin_for((h, w))
    rng = np.random.default_rng(0)
    regions = []
    for _ in range(8):  # the frame's shifted copies stand in for its neighbours
        y = int(rng.integers(margin, h - crop - margin))
        x = int(rng.integers(margin, w - crop - margin))
        near = {d: scene[y:y + crop, x + d:x + d + crop] for d in (-2, -1, 1, 2)}
        regions.append(Region(0, scene[y - margin:y + crop + margin,
                                       x - margin:x + crop + margin], margin,
                              (y - margin, x - margin), (h, w), near, dict.fromkeys(near, True)))
    fit = StrengthFit((0.5,), (), (), noise_sigma=2.0)
    model = copy.deepcopy(restorer.model).train()
    optimizer = make_optimizer(model, settings.lr)

    def step() -> tuple[float, float]:
        start = time.perf_counter()
        batch = make_batch(regions, settings.batch, fit, settings, rng)
        made = time.perf_counter()
        train_step(model, optimizer, to_device(batch, restorer.device), settings.lr,
                   restorer.amp_dtype, settings.grad_clip)
        if restorer.device.type == "cuda":
            torch.cuda.synchronize()
        return made - start, time.perf_counter() - made

    step()  # warm-up
    crops_s, step_s = (min(v) for v in zip(*(step() for _ in range(max(1, repeats))),
                                            strict=True))
    q.put({"device": device, "crop": crop, "batch": settings.batch, "crops_s": crops_s,
           "step_s": step_s, "threads": torch.get_num_threads()})


FRAME_VARIANTS = {
    "before": "2026-11 code and transfer settings (3 flows, stride 1/4)",
    "after": "today's defaults (a second transfer, from the other side; the motion prior)",
    "flow": "today's defaults, references warped by the dense flow (--flow-alignment)",
    "no_prior": "today's defaults without the motion prior (--no-motion-prior)",
    "round_trip": "today's defaults, a homography's alignment checked by the round trip "
                  "through a backward flow (the default until 2026-12-06)",
    "whole": "today's defaults, the network on the whole frame at any size (--tile 0; "
             "until 2026-12-06 a CPU tiled only to fit its memory)",
}


def _measure_frame(variant: str, weights: str, h: int, w: int, q):
    """One restored frame on the CPU as the Restorer runs it: the reference check and the
    network (after one warm-up frame), then the reference transfer on its output (before);
    today, the refine step's transfers from both sides, the frame half-way between them."""
    import contextlib
    from dataclasses import replace

    import cv2
    import numpy as np
    import torch
    from legacy import TRANSFER_2026_11, legacy_path

    from refdeblur_video.image_files import from_float
    from refdeblur_video.model import load_model
    from refdeblur_video.refine import Refiner, transfer_for
    from refdeblur_video.refine.transfer import transfer_reference

    before = variant == "before"
    restorer = load_model(weights, "cpu", warn_untrained=False,
                          tile=0 if variant == "whole" else None)
    settings = TRANSFER_2026_11 if before else transfer_for(  # the model's own
        restorer, variant == "flow", motion_prior=variant != "no_prior")
    if variant == "round_trip":
        settings = replace(settings, homography_consistency="round_trip")
    blurry, reference, other = _textured_frames(h, w)
    sharp_pair = [from_float(image, np.uint8) for image in (reference, other)]
    b, r = (torch.from_numpy(x).permute(2, 0, 1)[None] for x in (blurry, reference))
    base = _current_rss_mb()
    frame_u8, reference_u8 = from_float(blurry, np.uint8), sharp_pair[0]

    def network() -> np.ndarray:
        if before:
            return restorer.restore(b, r)[0].permute(1, 2, 0).numpy()
        # as the pipeline calls it: images in, the reference placed first where the model
        # asks (prealign)
        return restorer.restore_floats([frame_u8], [reference_u8])[0][0]

    with legacy_path() if before else contextlib.nullcontext():
        network()  # warm-up
        start = time.perf_counter()
        out = network()
        middle = time.perf_counter()
        if before:
            transfer_reference(np.ascontiguousarray(out), reference, settings)
        else:
            Refiner(settings)(np.ascontiguousarray(out), from_float(blurry, np.uint8),
                              *sharp_pair, 0.5)
        end = time.perf_counter()
    dtype = str(restorer.amp_dtype).replace("torch.", "") if restorer.amp_dtype else "fp32"
    q.put({"network_s": middle - start, "transfer_s": end - middle,
           "frame_s": end - start, "peak_mb": _rss_mb() - base, "dtype": dtype,
           "torch_threads": torch.get_num_threads(), "cv2_threads": cv2.getNumThreads()})


def measure_frames(h: int, w: int, repeats: int, weights: list[str] | None = None,
                   names: list[str] | None = None) -> dict:
    """Median seconds per restored frame of each variant ``names`` (all of
    :data:`FRAME_VARIANTS` by default; and after with each of ``weights`` instead of the
    shipped model), measured in turns; ``ratio``: each row's frame time over the first's."""
    import statistics

    variants = [(name, "default", FRAME_VARIANTS[name]) for name in names or FRAME_VARIANTS]
    variants += [("after", path, f"today's defaults, weights {path}") for path in weights or []]
    samples: list[list[dict]] = [[] for _ in variants]
    for _ in range(max(1, repeats)):
        for runs, (variant, model, _about) in zip(samples, variants, strict=True):
            runs.append(run_isolated(_measure_frame, variant, model, h, w))
    rows = []
    for runs, (variant, _model, about) in zip(samples, variants, strict=True):
        row = {"variant": variant, "about": about, "cpu": cpu_name(),
               **{k: runs[0][k] for k in ("dtype", "torch_threads", "cv2_threads")},
               "samples": [r["frame_s"] for r in runs]}
        for key in ("network_s", "transfer_s", "frame_s", "peak_mb"):
            row[key] = statistics.median(r[key] for r in runs)
        rows.append(row)
    return {"rows": rows, "ratio": {row["variant"]: row["frame_s"] / rows[0]["frame_s"]
                                    for row in rows[1:]}}


def cpu_name() -> str:
    """The processor's model name (Linux), else what the platform module says."""
    import platform

    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class MeasurementFailed(RuntimeError):
    """A measurement's process ended without a result (its error, if it could say one, is
    above)."""


def run_isolated(fn, *args):
    """Run ``fn(*args, queue)`` in a fresh process; return what it put in the queue, or
    raise :class:`MeasurementFailed` when the process ends without putting anything."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=fn, args=(*args, q))
    proc.start()
    while True:  # poll: a child that died (an error, the OOM killer) never puts a result
        try:
            result = q.get(timeout=1.0)
            break
        except queue.Empty:
            if not proc.is_alive() and q.empty():
                proc.join()
                raise MeasurementFailed(
                    f"{getattr(fn, '__name__', fn)} ended without a result "
                    f"(exit code {proc.exitcode})") from None
    proc.join()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["lite", "paper"])
    parser.add_argument("--size", default="1280x720", type=_size,
                        help="WIDTHxHEIGHT (default 1280x720)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--skip-cpu-paper", action="store_true",
                        help="skip the (slow) paper forward on CPU")
    parser.add_argument("--gpu-only", action="store_true", help="only the CUDA rows")
    parser.add_argument("--frames-only", action="store_true",
                        help="only the before/after rows of a restored frame")
    parser.add_argument("--frame-repeats", type=int, default=3, metavar="N",
                        help="fresh processes per before/after row, taken in turns (3)")
    parser.add_argument("--frame-weights", nargs="+", default=[], metavar="PATH",
                        help="also time today's code with these weights instead of the "
                             "shipped model (a candidate model beside the shipped one)")
    parser.add_argument("--frame-variants", nargs="+", choices=list(FRAME_VARIANTS),
                        default=None, metavar="NAME",
                        help="only these restored-frame rows, the first the one the others "
                             "are compared with (all by default: "
                             + ", ".join(FRAME_VARIANTS) + ")")
    args = parser.parse_args(argv)
    try:
        return _measure_all(args)
    except MeasurementFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _size(text: str) -> tuple[int, int]:
    """WIDTHxHEIGHT as (width, height)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, not {text!r}") from None
    if min(w, h) < 16:
        raise argparse.ArgumentTypeError(f"{text}: at least 16 pixels each way")
    return w, h


def _measure_all(args: argparse.Namespace) -> int:
    w, h = args.size
    import torch

    from refdeblur_video.model.device import cpu_supports_bf16

    devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    cpu_dtypes = ["fp32", "bf16"] if cpu_supports_bf16() else ["fp32"]
    if args.gpu_only:
        devices = [d for d in devices if d != "cpu"]
    results: dict = {"size": [w, h], "threads": torch.get_num_threads(), "cpu": cpu_name(),
                     "rows": [], "matching": [], "matmul_gflops": {}}
    if not args.gpu_only:
        results["frames"] = measure_frames(h, w, args.frame_repeats, args.frame_weights,
                                           args.frame_variants)
    if args.frames_only:
        devices, args.configs = [], []
    for device in devices:
        results["matmul_gflops"][device] = run_isolated(_measure_matmul, device)["gflops"]
    for config in args.configs:
        gmacs = run_isolated(_measure_flops, config, h, w)["gmacs"]
        for device in devices:
            dtypes = ["fp32", "bf16", "fp16"] if device != "cpu" else cpu_dtypes
            for dtype in dtypes:
                if device == "cpu" and config == "paper" and args.skip_cpu_paper:
                    continue
                r = run_isolated(_measure_forward, config, device, dtype, h, w, args.repeats)
                gflops = 2 * gmacs / r["seconds"]
                results["rows"].append({
                    "config": config, "device": device, "dtype": dtype, "params": r["params"],
                    "gmacs": gmacs, "seconds": r["seconds"], "peak_mb": r["peak_mb"],
                    "gflops": gflops,
                    "fraction_of_matmul": gflops / results["matmul_gflops"][device],
                })
        for mode in ("local", "global") if not config.endswith(":nocheck") else ():
            for device in devices:
                m = run_isolated(_measure_matching, config, mode, device, h, w)
                results["matching"].append({"config": config, "mode": mode, "device": device, **m})
    if not args.gpu_only and not args.frames_only:
        results["transfer"] = run_isolated(_measure_transfer, h, w, args.repeats)
        results["adapt_step"] = [run_isolated(_measure_adapt_step, d, h, w, args.repeats)
                                 for d in devices]
    _print(results)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


def _print(results: dict) -> None:
    w, h = results["size"]
    if "frames" in results:
        _print_frames(results["frames"], w, h)
    if not results["rows"]:
        return
    print(f"network forward at {w}x{h} (one frame + reference), torch threads "
          f"{results['threads']}; dense matmul: " + ", ".join(
              f"{d} {g:.0f} GFLOP/s" for d, g in results["matmul_gflops"].items()))
    print(f"{'config':12} {'device':6} {'dtype':5} {'params':>10} {'GMACs':>8} {'seconds':>8} "
          f"{'peak MB':>8} {'GFLOP/s':>8} {'of matmul':>9}")
    for r in results["rows"]:
        print(f"{r['config']:12} {r['device']:6} {r['dtype']:5} {r['params']:>10,} "
              f"{r['gmacs']:>8.1f} {r['seconds']:>8.3f} {r['peak_mb']:>8.0f} "
              f"{r['gflops']:>8.1f} {r['fraction_of_matmul']:>9.1%}")
    print(f"\npatch matching at 1/4 of {w}x{h} (phi features, 3x3 patches)")
    print(f"{'config':7} {'mode':6} {'device':6} {'channels':>8} {'seconds':>8} {'extra MB':>9}")
    for m in results["matching"]:
        print(f"{m['config']:7} {m['mode']:6} {m['device']:6} {m['channels']:>8} "
              f"{m['seconds']:>8.3f} {m['peak_mb']:>9.0f}")
    if "transfer" in results:
        t = results["transfer"]
        print(f"\nreference transfer at {w}x{h} (CPU, OpenCV threads): {t['seconds']:.3f} s, "
              f"{t['peak_mb']:.0f} MB extra")
    for a in results.get("adapt_step", []):
        print(f"--adapt step on {a['device']} ({a['batch']} crops of {a['crop']} px from "
              f"{w}x{h} frames, torch threads {a['threads']}): making the crops "
              f"{a['crops_s']:.3f} s, forward + backward + Adam {a['step_s']:.3f} s")


def _print_frames(frames: dict, w: int, h: int) -> None:
    rows = frames["rows"]
    print(f"one restored {w}x{h} frame on the CPU ({rows[0]['cpu']}, torch threads "
          f"{rows[0]['torch_threads']}, OpenCV threads {rows[0]['cv2_threads']}), median of "
          f"{len(rows[0]['samples'])} fresh processes each, taken in turns")
    print(f"{'variant':10} {'dtype':8} {'network s':>9} {'transfer s':>10} {'frame s':>8} "
          f"{'peak MB':>8}  settings")
    for r in rows:
        print(f"{r['variant']:10} {r['dtype']:8} {r['network_s']:>9.3f} "
              f"{r['transfer_s']:>10.3f} {r['frame_s']:>8.3f} {r['peak_mb']:>8.0f}  {r['about']}")
    first = rows[0]
    for r in rows[1:]:
        print(f"{r['variant']} / {first['variant']}: frame {r['frame_s'] / first['frame_s']:.3f}, "
              f"transfer {r['transfer_s'] / first['transfer_s']:.3f}")
    print()


if __name__ == "__main__":
    sys.exit(main())

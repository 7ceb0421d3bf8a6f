#!/usr/bin/env python
"""Score settings of the reference transfer (refdeblur_video/refine/transfer.py) on triplets.

The network runs once per triplet (its outputs are cached in ``--cache``: delete it when the
model changes); each ``--try``
then blends the flow-aligned reference into those outputs and reports the PSNR gain over the
network alone, in all and per sequence, and the seconds per frame. Prints a table, writes
JSON with ``--json``. The shipped settings were chosen on training clips, never on the
validation clips:

    python -m refdeblur_video.data.cli video ../shared/data/videos/01_dog.mp4 \\
        ../shared/data/videos/02_cups.mp4 ../shared/data/videos/03_blocks.mp4 \\
        .data/bikes.mp4 runs/tune_triplets --frames-per-video 10 --seed 11 --val-fraction 0
    python tools/experiments/tune_transfer.py runs/tune_triplets/manifest.jsonl \\
        --try patch_sizes=32 --try patch_sizes=32/64 --try patch_sizes=32/64/96

``--backends opencv torch`` scores each setting with both implementations: OpenCV's DIS
(the CPU's) and the PyTorch one a GPU runs (``refine/torch_transfer.py``), here on the CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np


def transfer_settings(spec: str):
    """``key=value,...`` over the shipped :class:`TransferSettings` (empty: the shipped);
    also the variants' overrides of ``flow_source.py``."""
    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER

    fields = {f.name: f.type for f in dataclasses.fields(DEFAULT_TRANSFER)}
    changes = {}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        if key not in fields:
            raise SystemExit(f"error: unknown setting {key!r} (known: {', '.join(fields)})")
        if fields[key].startswith("tuple"):  # patch_sizes=32/64/96
            changes[key] = tuple(int(v) for v in value.split("/"))
        elif fields[key] == "str":  # alignment=flow
            changes[key] = value
        else:
            changes[key] = int(value) if fields[key] == "int" else float(value)
    return dataclasses.replace(DEFAULT_TRANSFER, **changes)


def network_outputs(manifest: Path, model: str, cache: Path, amp: bool = False):
    """(sequence, sharp, reference, network output) per triplet, RGB uint8; the network's
    outputs are cached as PNG files in ``cache`` (fp32 unless ``amp``)."""
    from refdeblur_video.data.manifest import read_manifest
    from refdeblur_video.image_files import read_image, write_image
    from refdeblur_video.video.sources import load_image

    restorer = None
    cache.mkdir(parents=True, exist_ok=True)
    for i, triplet in enumerate(read_manifest(manifest)):
        blurry, sharp, ref = (load_image(p) for p in (triplet.blur, triplet.sharp, triplet.ref))
        path = cache / f"{i:04d}.png"
        if not path.exists():
            if restorer is None:
                from refdeblur_video.model import load_model

                restorer = load_model(model, "cpu", amp=amp)
            write_image(path, restorer.restore_images([blurry], [ref])[0])
        yield triplet.sequence, sharp, ref, read_image(path)


def _transfer(backend: str):
    """``transfer(restored, reference, settings)`` on H x W x 3 float32 arrays."""
    from refdeblur_video.refine.transfer import transfer_reference

    if backend == "opencv":
        return transfer_reference
    import torch

    from refdeblur_video.refine.torch_transfer import transfer_reference_torch

    def on_torch(restored, reference, settings):
        r, ref = (torch.from_numpy(x).permute(2, 0, 1)[None] for x in (restored, reference))
        return transfer_reference_torch(r, ref, settings)[0].permute(1, 2, 0).numpy()

    return on_torch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--model", default="default")
    parser.add_argument("--cache", type=Path, default=None,
                        help="network outputs (default: MANIFEST's folder/network_outputs)")
    parser.add_argument("--try", dest="tries", action="append", default=None,
                        metavar="KEY=VALUE,...", help="settings to score (repeatable; "
                        "default: the shipped ones)")
    parser.add_argument("--backends", nargs="+", choices=("opencv", "torch"),
                        default=["opencv"], help="implementations of the transfer to score")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from refdeblur_video.evaluate.metrics import psnr

    cache = args.cache or args.manifest.parent / "network_outputs"
    data = list(network_outputs(args.manifest, args.model, cache))
    rows = []
    for spec, backend in ((s, b) for s in args.tries or [""] for b in args.backends):
        settings = transfer_settings(spec)
        transfer = _transfer(backend)
        gains: dict[str, list[float]] = {}
        start = time.perf_counter()
        for sequence, sharp, ref, restored in data:
            fused = transfer(restored.astype(np.float32) / 255, ref.astype(np.float32) / 255,
                             settings)
            fused = np.round(fused * 255).astype(np.uint8)
            gains.setdefault(sequence, []).append(psnr(fused, sharp) - psnr(restored, sharp))
        seconds = (time.perf_counter() - start) / len(data)
        every = [g for values in gains.values() for g in values]
        rows.append({"settings": f"{backend}: {spec or 'shipped'}",
                     "gain_db": float(np.mean(every)),
                     "per_sequence": {k: float(np.mean(v)) for k, v in gains.items()},
                     "seconds_per_frame": seconds})
    print(f"{len(data)} triplets; PSNR gain of the transfer over the network alone (dB)")
    for row in rows:
        per = "  ".join(f"{k} {v:+.2f}" for k, v in row["per_sequence"].items())
        print(f"{row['settings']:40} {row['gain_db']:+.3f}  {row['seconds_per_frame']:.2f} s"
              f"  ({per})")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

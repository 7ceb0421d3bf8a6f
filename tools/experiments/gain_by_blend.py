#!/usr/bin/env python
"""Where does one network gain over another: where the reference transfer blends the
aligned reference in (its weight high), or where it leaves the network's output (low)?

The judge's cached network outputs (``tools/recipes/judge.py``, one .npz per triplet and
model in ``runs/judge_cache/<draw>``), split by the transfer's blend weight on the first
model's output (default settings): the share of pixels in each band and the second model's
gain there, from the mean squared error against the truth. A gain where the weight is high
does not reach the default, since the reference replaces the output there.

    python tools/experiments/gain_by_blend.py runs/validation runs/judge_cache/validation \\
        lite ema48b --json runs/gain_by_blend.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

BANDS = (("low", 0.0, 0.2), ("mid", 0.2, 0.6), ("high", 0.6, 1.01))


def cached_output(cache: Path, generator: str, index: int, model: str) -> np.ndarray:
    """A network output the judge cached (H x W x 3 float32 in [0, 1])."""
    found = sorted(cache.glob(f"{generator}_{index:03d}_new_{model}-*.npz"))
    if not found:
        raise SystemExit(f"no cached output of {model} for {generator} #{index} in {cache}")
    return np.load(found[-1])["out"].astype(np.float32)


def generator_row(validation: Path, cache: Path, generator: str, first: str,
                  second: str) -> dict:
    """Each band's share of pixels and the second model's gain (dB) over the first there."""
    from refdeblur_video.evaluate.triplets import _read_sorted, load_triplet
    from refdeblur_video.image_files import to_float
    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER, blend_weight, transfer_cues

    sums = {name: [0.0, 0.0, 0] for name, _, _ in BANDS}
    triplets = _read_sorted(validation / generator / "manifest.jsonl", "val")
    for index, triplet in enumerate(triplets):
        raw = load_triplet(triplet)
        truth, reference = to_float(raw["sharp"]), to_float(raw["reference"])
        a = cached_output(cache, generator, index, first)
        b = cached_output(cache, generator, index, second)
        cues = transfer_cues(a, reference, DEFAULT_TRANSFER)
        weight = blend_weight(cues.confidence, cues, DEFAULT_TRANSFER)
        error_a = ((a - truth) ** 2).mean(-1)
        error_b = ((b - truth) ** 2).mean(-1)
        for name, low, high in BANDS:
            band = (weight >= low) & (weight < high)
            sums[name][0] += float(error_a[band].sum())
            sums[name][1] += float(error_b[band].sum())
            sums[name][2] += int(band.sum())
    total = sum(n for _, _, n in sums.values())
    return {name: {"share": round(n / total, 3),
                   "gain_db": round(10 * float(np.log10(sa / sb)), 3) if n else None}
            for name, (sa, sb, n) in sums.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("validation", type=Path, help="a validation set (make_validation.sh)")
    parser.add_argument("cache", type=Path, help="the judge's cache of that set")
    parser.add_argument("first", help="the model compared against (a cache name: lite)")
    parser.add_argument("second", help="the model whose gains are placed (a cache name)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from refdeblur_video.evaluate.generators import read_index

    rows = {}
    for entry in read_index(args.validation):
        name = entry["name"]
        rows[name] = generator_row(args.validation, args.cache, name, args.first, args.second)
        print(name, " | ".join(f"{band}: {v['share']:.0%} {v['gain_db']:+.2f} dB"
                               for band, v in rows[name].items() if v["gain_db"] is not None),
              flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python
"""Judge candidate networks against the shipped one on several draws of the validation sets.

One draw has 15 triplets per generator, and one frame can move a generator's mean by tenths
between two networks (docs/TRAINING.md, session 37). Each draw holds the same held-out
sources filmed with another seed (``SEED=N bash tools/recipes/make_validation.sh
runs/validation_seedN``, made here where missing). For every model and draw, the network
alone and the default (the network, then the transfer from its one reference) on every
triplet (``tools/experiments/flow_source.py``: the network's outputs are cached, so a
second judgement of the same model costs only the transfer; the transfer's settings are
the defaults, without a model's ``transfer_smoothing``). The training generators choose;
the left-out one is reported.

    kill -STOP $(pgrep -f 'out=runs/NAME')  # pause any training run first: it halves the speed
    python tools/recipes/judge.py runs/cand.safetensors --json runs/judge_cand.json
    kill -CONT $(pgrep -f 'out=runs/NAME')

Prints, per generator, each model's network alone and default per draw and their mean, and
the mean's difference from the first model (the shipped one unless ``--baseline``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "experiments"))

SHIPPED = "refdeblur_video/weights/lite.safetensors"
COLUMNS = (("network", "network alone"), ("own", "default"))


def ensure_draw(valdir: Path) -> None:
    """Build the validation draw ``valdir`` (``validation_seedN`` takes seed N) if missing."""
    if (valdir / "generators.json").is_file():
        return
    seed = valdir.name.rpartition("_seed")[2] if "_seed" in valdir.name else "0"
    if not seed.isdigit():
        raise SystemExit(f"error: {valdir} is missing and its name gives no seed "
                         "(validation_seedN)")
    subprocess.run(["bash", str(ROOT / "tools/recipes/make_validation.sh"), str(valdir)],
                   check=True, env={**os.environ, "SEED": seed})


def score(model: str, valdir: Path, cache: Path) -> dict[str, dict[str, float]]:
    """Per generator, the mean PSNR of the input, the network alone and the default."""
    from flow_source import main as flow_source

    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "rows.jsonl"
        flow_source([str(valdir), "--model", model, "--cache", str(cache), "--variants", "own",
                     "--json", str(out)])
        rows = [json.loads(line) for line in out.read_text().splitlines()]
    return {row["generator"]: row for row in rows}


def table(results: dict[str, dict[str, dict[str, dict]]], draws: list[str]) -> list[str]:
    """The printed comparison: one line per generator, model and column."""
    models = list(results)
    first = models[0]
    generators = list(results[first][draws[0]])
    lines = [f"{'generator':9} {'model':40} {'':14} "
             + " ".join(f"{d[-12:]:>12}" for d in draws) + f" {'mean':>7} {'vs first':>8}"]
    for generator in generators:
        for model in models:
            for key, label in COLUMNS:
                values = [results[model][d][generator][key] for d in draws]
                mean = sum(values) / len(values)
                base = [results[first][d][generator][key] for d in draws]
                diff = mean - sum(base) / len(base)
                lines.append(f"{generator:9} {model[-40:]:40} {label:14} "
                             + " ".join(f"{v:12.2f}" for v in values)
                             + f" {mean:7.2f} {diff:+8.2f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="checkpoints to judge (safetensors)")
    parser.add_argument("--baseline", default=SHIPPED,
                        help="the model the others are compared with (the shipped one)")
    parser.add_argument("--draws", nargs="+", type=Path,
                        default=[Path("runs/validation"), Path("runs/validation_seed1"),
                                 Path("runs/validation_seed2")],
                        help="validation sets (built where missing: validation_seedN)")
    parser.add_argument("--cache", type=Path, default=Path("runs/judge_cache"),
                        help="network outputs, one folder per draw")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    missing = [m for m in [args.baseline, *args.models]  # shipped names (lite) need no file
               if m.endswith(".safetensors") and not Path(m).is_file()]
    if missing:  # before the baseline is scored, which takes minutes
        print(f"error: no such checkpoint: {', '.join(missing)}", file=sys.stderr)
        return 2
    for draw in args.draws:
        ensure_draw(draw)
    results: dict[str, dict[str, dict]] = {}
    for model in [args.baseline, *args.models]:
        results[model] = {str(draw): score(model, draw, args.cache / draw.name)
                          for draw in args.draws}
    print("\n".join(table(results, [str(d) for d in args.draws])))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

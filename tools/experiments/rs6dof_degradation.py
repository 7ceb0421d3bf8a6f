"""What part of the left-out rs6dof set holds the network back: the blur, or the sensor noise
and H.264 that the rs6dof camera adds on top of it?

Films the rs6dof validation sources (the sources, seed and camera of
``tools/recipes/make_validation.sh``) four times, each time with the same camera, path and
exposures: as built (noise + H.264), without H.264, without noise, and with neither; then
scores a model on each (input, network alone, default, self reference). Each variant
picks its references on its own frames, as the pipeline would; the variants without H.264
write no clip video.

    python tools/experiments/rs6dof_degradation.py --photos .data/val_photos_new \
        --model refdeblur_video/weights/lite.safetensors [--model runs/general/model.safetensors]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from refdeblur_video.data.rs6dof_triplets import build_rs6dof_triplets
from refdeblur_video.data.validation import rs6dof_sources
from refdeblur_video.evaluate.triplets import evaluate_triplets

VARIANTS = {  # name: (noise, compress)
    "built": (True, True),
    "no_codec": (True, False),
    "no_noise": (False, True),
    "clean": (False, False),
}
COLUMNS = ("input", "network_only", "model", "self_ref")


def build(out: Path, videos: Path, photos: Path) -> None:
    """Each variant's set in ``out/<variant>`` (skipped where it is already there), built as
    ``make_validation.sh`` builds rs6dof (targets 3, seed 0)."""
    sources = rs6dof_sources(videos, photos)
    for name, (noise, compress) in VARIANTS.items():
        if not (out / name / "manifest.jsonl").is_file():
            build_rs6dof_triplets(sources, out / name, targets=3, seed=0, noise=noise,
                                  compress=compress)


def score(out: Path, model: str) -> dict:
    """PSNR means per variant and column for one model."""
    from refdeblur_video.model import load_model

    restorer = load_model(model, "cpu")
    table = {}
    for name in VARIANTS:
        evaluation = evaluate_triplets(out / name / "manifest.jsonl", model, restorer=restorer,
                                       self_ref=True, network_only=True, quiet=True,
                                       examples=0)
        stats = evaluation.summary["metrics"]
        table[name] = {c: round(stats[f"psnr_{c}"]["mean"], 2) for c in COLUMNS}
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/rs6dof_degradation"))
    parser.add_argument("--videos", type=Path, default=Path("../shared/data/videos"))
    parser.add_argument("--photos", type=Path, required=True,
                        help="the folder of make_validation.sh's photos (its VAL_PHOTOS)")
    parser.add_argument("--model", action="append", required=True)
    args = parser.parse_args()
    build(args.out, args.videos, args.photos)
    results = {model: score(args.out, model) for model in args.model}
    print("| model | variant | " + " | ".join(COLUMNS) + " |")
    print("|" + " --- |" * (len(COLUMNS) + 2))
    for model, table in results.items():
        for name, row in table.items():
            print(f"| {Path(model).name} | {name} | "
                  + " | ".join(f"{row[c]:.2f}" for c in COLUMNS) + " |")
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Install a trained lite checkpoint as the shipped default model.

Writes SRC's weights to ``refdeblur_video/weights/lite.safetensors`` (or ``--dest``) under
the config of ``configs/model/lite.yaml``, so the shipped file carries the YAML's inference
options (matching, reference check, pre-alignment, the transfer's low-pass) along with the
weights. SRC must have the YAML's
architecture; its other metadata (step, validation scores) is kept.

    python tools/recipes/ship_default.py runs/lite_cpu8/best.safetensors
"""

from __future__ import annotations

import argparse
import sys

from refdeblur_video.errors import run_reporting
from refdeblur_video.model import RefDeblurNet
from refdeblur_video.model.config import load_model_yaml
from refdeblur_video.model.weights import (
    DEFAULT_WEIGHTS,
    load_weights_into,
    read_checkpoint_metadata,
    save_checkpoint,
)


def ship(source: str, dest: str = str(DEFAULT_WEIGHTS), config_name: str = "lite") -> None:
    """Copy ``source``'s weights to ``dest`` with the named YAML config (architecture and
    inference settings) in the metadata."""
    config, settings = load_model_yaml(config_name)
    model = RefDeblurNet(config, settings.matching)
    load_weights_into(model, config, source)  # refuses another architecture
    extra = {k: v for k, v in read_checkpoint_metadata(source).items()
             if k not in ("format", "config")}
    save_checkpoint(dest, model, config, extra=extra, settings=settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a training checkpoint (.safetensors)")
    parser.add_argument("--dest", default=str(DEFAULT_WEIGHTS))
    parser.add_argument("--config", default="lite", help="model config name or YAML path")
    args = parser.parse_args(argv)

    def install() -> str:
        ship(args.source, args.dest, args.config)
        return f"{args.source} -> {args.dest}"

    return run_reporting(install)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Blend two checkpoints of one architecture: every weight ``(1 - alpha) * A + alpha * B``.

A network fine-tuned on a narrow training mix (B) gains there and may lose on what it was not
tuned on; interpolating its weights with those it started from (A) keeps much of the gain and
little of the loss (weight-space ensembles, "WiSE-FT", Wortsman et al., CVPR 2022). Both must
have the same architecture (A's config and inference settings are written; B's are checked
against A's architecture), or B may add ResBlocks to A's groups (a deeper network grown from
A in training): A's blocks then count as identities, each added block of B enters with its
last convolution times ``alpha``, and B's config is written with A's inference settings.
``alpha`` is chosen on the training generators' validation:

    python tools/recipes/blend_weights.py runs/shipped.safetensors \\
        runs/general_homalign/model.safetensors --alpha 0.5 --out runs/blend.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from refdeblur_video.errors import UserError, run_reporting
from refdeblur_video.model.weights import (
    config_json,
    is_added,
    read_checkpoint,
    read_checkpoint_settings,
    write_safetensors,
    zeroed_when_added,
)


def _architecture(config) -> dict:
    """A config without its name (a run's YAML may rename the same network)."""
    return {k: v for k, v in config.to_dict().items() if k != "name"}


def _only_deeper(config_a, config_b) -> bool:
    """Whether B is A with more ResBlocks in some groups and nothing else changed."""
    a, b = _architecture(config_a), _architecture(config_b)
    depths = zip(a.pop("n_resblocks"), b.pop("n_resblocks"), strict=True)
    return a == b and all(x <= y for x, y in depths)


def _as_identities(state_a: dict, config_a, state_b: dict) -> dict:
    """A's state with B's added ResBlocks as identities, as a warm start grows them
    (:func:`~refdeblur_video.model.weights.is_added`): B's tensors with each block's last
    convolution zeroed, so that the blend scales each added block's residual by ``alpha``.
    Anything else B has that A lacks stays missing (and is refused)."""
    grown = dict(state_a)
    for key, b in state_b.items():
        if key not in state_a and is_added(key, config_a):
            grown[key] = torch.zeros_like(b) if zeroed_when_added(key) else b
    return grown


def blend(first: str | Path, second: str | Path, alpha: float, out: str | Path) -> None:
    """Write ``(1 - alpha) * first + alpha * second`` to ``out`` with ``first``'s config and
    settings (``second``'s architecture where it only adds ResBlocks) and a ``blend`` entry
    naming both and ``alpha`` (no step or scores)."""
    if not 0.0 <= alpha <= 1.0:
        raise UserError(f"alpha must be in [0, 1], not {alpha}")
    config_a, state_a, metadata = read_checkpoint(first)
    config_b, state_b, _ = read_checkpoint(second)
    if _architecture(config_a) != _architecture(config_b):
        if not _only_deeper(config_a, config_b):
            raise UserError(f"{first} and {second} are not the same architecture")
        state_a = _as_identities(state_a, config_a, state_b)
        metadata = {**metadata,
                    "config": config_json(config_b, read_checkpoint_settings(first))}
    if state_a.keys() != state_b.keys():
        raise UserError(f"{first} and {second} are not the same architecture")
    mixed = {}
    for key, a in state_a.items():
        b = state_b[key]
        if a.shape != b.shape:
            raise UserError(f"{key}: shapes {tuple(a.shape)} and {tuple(b.shape)} differ")
        if a.is_floating_point():
            mixed[key] = torch.lerp(a.float(), b.float(), alpha).to(a.dtype)
        else:  # counters and indices are not interpolated
            mixed[key] = a
    # a blend is no training step: A's step and scores would misdescribe it
    metadata = {k: v for k, v in metadata.items() if k in ("format", "config")}
    metadata["blend"] = f"{Path(first).name} x {1 - alpha:g} + {Path(second).name} x {alpha:g}"
    write_safetensors(out, mixed, metadata)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", help="checkpoint A (its config and settings are kept)")
    parser.add_argument("second", help="checkpoint B")
    parser.add_argument("--alpha", type=float, required=True, help="B's share, 0..1")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    def write() -> str:
        blend(args.first, args.second, args.alpha, args.out)
        return f"{args.out}: {args.first} x {1 - args.alpha:g} + {args.second} x {args.alpha:g}"

    return run_reporting(write)


if __name__ == "__main__":
    sys.exit(main())

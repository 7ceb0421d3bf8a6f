"""``refdeblur-train``: argument parsing only; the loop lives in :mod:`.loop`."""

from __future__ import annotations

import argparse
import os
import sys

import yaml

from refdeblur_video.argparsing import OneLineParser, at_least_one, positive_seconds

from ..errors import UserError, one_line
from ..interrupts import exit_after, handle_signals
from ..messages import route_messages
from .config import load_train_config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(
        prog="refdeblur-train",
        description="Train the reference-based deblurring network (single process, or many "
        "GPUs/machines with torchrun).",
    )
    parser.add_argument("--config", required=True, help="training YAML (configs/train/*.yaml)")
    start = parser.add_mutually_exclusive_group()  # continue or start again, not both
    start.add_argument("--resume", action="store_true",
                       help="continue from OUT/last.safetensors with the run's own settings "
                       "(the config file's are not used; what --set names is, each change "
                       "said)")
    start.add_argument("--overwrite", action="store_true",
                        help="start afresh in an OUT that holds an earlier run (its checkpoints "
                        "are replaced)")
    parser.add_argument("--max-steps", type=at_least_one, default=None,
                        help="stop after this many more steps (the schedule spans train.steps)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.steps=100 --set out=runs/x")
    parser.add_argument("--time-limit", type=positive_seconds, default=None, metavar="SECONDS",
                        help="save and stop after this much wall time (continue with --resume)")
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


def _overrides(pairs: list[str]) -> dict:
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UserError(f"--set needs KEY=VALUE, got '{pair}'")
        result[key] = yaml.safe_load(value)
    return result


def main(argv: list[str] | None = None, *, exiting: bool = False) -> int:
    args = parse_args(argv)
    route_messages()  # warnings as the commands' own lines, not Python's
    try:
        from .loop import train

        overrides = _overrides(args.set)
        cfg = load_train_config(args.config, overrides)
        # SIGTERM and SIGHUP (`kill PID`, a closed terminal) stop training as Ctrl-C does:
        # the state is saved first. A job started in the background from a script ignores
        # SIGINT, so without this `kill` would lose the steps since the last state.
        with handle_signals(then_ignore=exiting):
            train(cfg, resume=args.resume, max_steps=args.max_steps, quiet=args.quiet,
                  time_limit=args.time_limit, overwrite=args.overwrite,
                  explicit=overrides.keys())
    except UserError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        # the training loop says where it saved; before it runs, say what is left (once,
        # under torchrun too)
        if not getattr(exc, "state_saved", False) and os.environ.get("RANK", "0") == "0":
            kept = ("the run's saved state is as it was" if args.resume
                    else "no training state was saved")
            print(f"interrupted before the first step: {kept}", file=sys.stderr)
        return 130
    return 0


def run() -> None:
    """The ``refdeblur-train`` program: :func:`main`, then exit with its status (signals from then
    on are ignored: the run is over)."""
    exit_after(main)


if __name__ == "__main__":
    run()

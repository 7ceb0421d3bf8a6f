"""``refdeblur-video``: argument parsing only; the work is done by :mod:`.pipeline`."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings

from . import __version__
from .errors import UserError
from .frames.references import DEFAULT_MAX_OFFSET, DEFAULT_THRESHOLD, DEFAULT_WINDOW
from .malloc import share_malloc_arenas

EPILOG = """examples:
  refdeblur-video shaky.mp4 steady.mp4
  refdeblur-video blurry.jpg restored.png --ref sharp.jpg
  refdeblur-video 'clips/*.mp4' restored/ --log frames.csv
  torchrun --nproc-per-node 4 -m refdeblur_video.cli clips/ restored/
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="refdeblur-video", epilog=EPILOG, formatter_class=argparse.RawTextHelpFormatter,
        description="Remove motion blur from a video (or photo) by borrowing detail from "
        "nearby sharp frames.",
    )
    p.add_argument("input", help="video, image, folder of videos, or glob pattern")
    p.add_argument("output", help="output file, or folder (for a folder/glob input)")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    m = p.add_argument_group("model")
    m.add_argument("--model", default="default",
                   help="default (shipped weights), lite, paper, or PATH.safetensors/.yaml")
    m.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    m.add_argument("--fp32", action="store_true",
                   help="run in float32 (no bf16/fp16 autocast on GPUs and bf16-capable CPUs)")
    m.add_argument("--batch", type=int, default=2, help="blurry frames per model call (2)")
    m.add_argument("--tile", type=int, default=None,
                   help="tile edge in pixels for large frames (0: never tile; default: "
                   "automatic from the memory budget)")
    m.add_argument("--reference-check", type=float, default=None, metavar="R",
                   help="use a frame as its own reference when the chosen reference matches "
                   "it less than R times as well as the frame matches itself (a scene cut, a "
                   "wrong --ref); default: the model's (0.85 for the shipped one), 0: off")
    m.add_argument("--no-transfer", dest="transfer", action="store_false",
                   help="leave out the flow-guided reference transfer after the network "
                   "(aligns the reference by optical flow and copies its detail where it is "
                   "trustworthy; +2.1 dB on the validation frames, 2.2 s per 720p frame on "
                   "a 2-core CPU)")
    f = p.add_argument_group("frames and references")
    f.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"sharpness relative to the best of its window below which a frame "
                   f"is blurry ({DEFAULT_THRESHOLD})")
    f.add_argument("--window", type=int, default=DEFAULT_WINDOW,
                   help=f"half-width of the normalising window, frames ({DEFAULT_WINDOW})")
    f.add_argument("--max-offset", type=int, default=DEFAULT_MAX_OFFSET,
                   help=f"how far a reference may be, frames ({DEFAULT_MAX_OFFSET})")
    f.add_argument("--all-frames", action="store_true",
                   help="run every frame through the network")
    f.add_argument("--no-cuts", dest="cuts", action="store_false",
                   help="treat the video as one shot (by default sharpness is not compared, "
                   "nor a reference taken, across a detected shot cut)")
    f.add_argument("--ref", default=None, help="one reference image for every blurry frame")
    f.add_argument("--reader", choices=("pyav", "decord"), default="pyav")
    e = p.add_argument_group("encoding")
    e.add_argument("--codec", default=None, help="video encoder (default libx264; vp9 for webm)")
    e.add_argument("--crf", type=int, default=16, help="constant rate factor (16)")
    e.add_argument("--preset", default="medium", help="encoder preset (medium)")
    e.add_argument("--pix-fmt", default=None, help="pixel format (default: the input's)")
    e.add_argument("--no-audio", dest="audio", action="store_false",
                   help="drop audio and subtitle streams instead of copying them")
    o = p.add_argument_group("output")
    o.add_argument("--log", default=None, help="per-frame log, frames.csv or frames.json")
    o.add_argument("-y", "--overwrite", action="store_true", help="replace existing outputs")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    share_malloc_arenas()  # before PyTorch and the codecs start their threads
    args = vars(build_parser().parse_args(argv))
    warnings.showwarning = _show_warning
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    source, target = args.pop("input"), args.pop("output")
    try:
        from .pipeline import deblur

        results = deblur(source, target, **args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: no output was written", file=sys.stderr)
        return 130
    if not args["quiet"]:
        for r in results:
            dropped = (f" ({r.references_dropped} without their reference)"
                       if r.references_dropped else "")
            shots = f" in {r.shots} shots" if r.shots > 1 else ""
            state = "already done, skipped" if r.skipped else (
                f"{r.frames} frames{shots}, {r.restored} restored{dropped}, {r.seconds:.1f} s")
            print(f"{r.output}: {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

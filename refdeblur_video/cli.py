"""``refdeblur-video``: argument parsing only; the work is done by :mod:`.pipeline`.

The arguments, paths and output container are checked before PyTorch and the model are
imported (:mod:`.pipeline.preflight`), so a mistake is reported at once.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import os
import shlex
import signal
import sys
from typing import TYPE_CHECKING

from . import __version__
from .argparsing import OneLineParser
from .errors import UserError
from .interrupts import Interrupted, exit_after, handle_signals
from .malloc import share_malloc_arenas
from .messages import route_messages, say
from .pipeline.options import DeblurOptions
from .pipeline.preflight import preflight
from .pipeline.resume import UnfinishedRun, interrupted_line

if TYPE_CHECKING:  # the pipeline loads PyTorch: only once the arguments are checked
    from .pipeline.dry_run import PlanSummary
    from .pipeline.run import RunSummary

EPILOG = """examples:
  refdeblur-video shaky.mp4 steady.mp4
  refdeblur-video blurry.jpg restored.png --ref sharp.jpg
  refdeblur-video 'clips/*.mp4' restored/ --log frames.csv
  refdeblur-video frames/ restored/     (a folder of images: one sequence)
  refdeblur-video frames/ restored.mp4 --fps 24
  refdeblur-video shaky.mp4 'frames/%06d.png'
  torchrun --nproc-per-node 4 -m refdeblur_video.cli in/ out/ --frame-log f.csv
"""


def build_parser() -> argparse.ArgumentParser:
    """The command's arguments; their defaults are :class:`DeblurOptions`' (written there
    only)."""
    d = DeblurOptions()
    p = OneLineParser(
        prog="refdeblur-video", epilog=EPILOG,
        # the examples keep their lines; the option help wraps to the terminal
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Remove motion blur from a video (or photo) by borrowing detail from\n"
        "nearby sharp frames.",
    )
    # an unquoted glob reaches the command as many inputs
    p.extra_arguments_hint = ("; it takes one input and one output: for many videos give a "
                              "folder or a quoted glob ('clips/*.mp4') and an output folder")
    p.add_argument("input", help="video, image, folder of videos, glob pattern, or folder "
                   "of images (one image sequence: written under the same names into an "
                   "output folder, or made into an output video)")
    p.add_argument("output", nargs="?",
                   help="output file, or folder (for a folder/glob input), or numbered "
                   "images ('frames/%%06d.png': every frame of a video as an image, from "
                   "000000.png); none with --dry-run")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.set_defaults(**dataclasses.asdict(d))
    m = p.add_argument_group("model")
    m.add_argument("--model",
                   help="default (the shipped weights; lite is the same), paper (the paper's "
                   "configuration: no weights are shipped, so pass its trained .safetensors), "
                   "or PATH.safetensors/.yaml")
    m.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    m.add_argument("--fp32", action="store_true",
                   help="run in float32 (no bf16/fp16 autocast on GPUs and bf16-capable CPUs)")
    m.add_argument("--batch", type=int, help=f"blurry frames per model call ({d.batch})")
    m.add_argument("--tile", type=int,
                   help="tile edge in pixels for large frames (0: never tile; default: "
                   "automatic: from the memory budget, and on a CPU 768 above 1080p, where "
                   "tiles run faster than the whole frame)")
    m.add_argument("--reference-check", type=float, metavar="R",
                   help="drop the chosen reference (for the sharp frame on the other side, else "
                   "the frame itself) when it matches the frame less than R times as well as "
                   "the frame matches itself (a scene cut, a wrong --ref); default: the "
                   "model's (0.85 for the shipped one), 0: off")
    m.add_argument("--no-transfer", dest="transfer", action="store_false",
                   help="leave out the flow-guided reference transfer after the network "
                   "(aligns the reference by optical flow and copies its detail where it is "
                   "trustworthy, where the network's own matching borrows only coarsely; on a "
                   "CPU it takes longer per frame than the lite network)")
    m.add_argument("--one-reference", dest="both_sides", action="store_false",
                   help="transfer detail from the chosen reference only; by default the sharp "
                   "frame on the other side of a blurry frame is transferred from too, after "
                   "it, and fills in what the first does not show (one more transfer per "
                   "blurry frame)")
    m.add_argument("--flow-alignment", action="store_true",
                   help="warp each reference by the dense optical flow itself instead of the "
                   "homography fitted to it: for scenes where much of the frame moves "
                   "differently from the camera (strong depth close to the lens, large moving "
                   "subjects), where a homography covers less; on blurry frames the dense "
                   "flow drifts where blur hides the texture")
    m.add_argument("--no-motion-prior", dest="motion_prior", action="store_false",
                   help="place each reference by the flow on the network's output alone; by "
                   "default, where a blurry frame has sharp frames on both sides, the camera's "
                   "motion between those two, taken at the frame's time, places them instead "
                   "when it is close to what the output shows (a blurry output cannot place "
                   "the frame as exactly; a camera that jerks between frames may want this off)")
    m.add_argument("--cpu-transfer", action="store_true",
                   help="on a GPU, run the reference transfer on the CPU with OpenCV's optical "
                   "flow, as a CPU run does (its frames, many times slower), instead of on "
                   "the GPU with a PyTorch flow written for it")
    f = p.add_argument_group("frames and references")
    f.add_argument("--threshold", type=float,
                   help=f"sharpness relative to the best of its window below which a frame "
                   f"is blurry ({d.threshold})")
    f.add_argument("--window", type=int,
                   help="a frame is judged blurry against the sharpest of this many frames "
                   f"on each side ({d.window})")
    f.add_argument("--max-offset", type=int,
                   help=f"how far a reference may be, frames ({d.max_offset})")
    f.add_argument("--all-frames", action="store_true",
                   help="run every frame through the network, for a video blurred evenly "
                   "throughout; a frame it does not sharpen is kept as it came, and one "
                   "that was sharp gets no detail copied from a neighbour, which would be no "
                   "sharper than it is")
    f.add_argument("--no-cuts", dest="cuts", action="store_false",
                   help="treat the video as one shot (by default sharpness is not compared, "
                   "nor a reference taken, across a detected shot cut)")
    f.add_argument("--dry-run", action="store_true",
                   help="decode and plan only, without PyTorch or the network (a small "
                   "part of a run's time): say which frames would be restored, against which "
                   "frames; --log writes the plan (with many files: in the output folder, "
                   "if given, unless --log names one). The reference checks, which need the "
                   "network or the noise of --ref, are not made, so a run may still set a "
                   "planned reference aside. With an output named, what a run would refuse at once "
                   "(an existing file, an encoder its container cannot hold) is refused "
                   "too. Nothing else is written")
    f.add_argument("--ref", help="one reference image for every blurry frame (one much "
                   "noisier than a frame is set aside for it, as its noise would be copied "
                   "in as detail: a photo is restored with it but copies nothing from it, "
                   "a video's frame is restored as without --ref)")
    f.add_argument("--reader", choices=("pyav", "decord"),
                   help="video decoder: pyav (default; every format, damaged streams "
                   "salvaged) or decord (if installed)")
    e = p.add_argument_group("encoding")
    e.add_argument("--codec", help="video encoder (default: the input's format where the "
                   "output container holds it, so the result plays where the input did; "
                   "else libx264, or vp9 for webm)")
    e.add_argument("--crf", type=int, help="constant rate factor: lower is better quality, 0 "
                   f"lossless with libx264/libx265 ({d.crf})")
    e.add_argument("--preset", help="encoder speed, x264's names ultrafast .. placebo, mapped "
                   "onto VP9's and AV1's speeds; every untouched frame passes through the "
                   "encoder, so on a long HEVC or 4K video a faster preset shortens the whole "
                   f"run ({d.preset})")
    e.add_argument("--pix-fmt", help="pixel format (default: the input's)")
    e.add_argument("--no-audio", dest="audio", action="store_false",
                   help="drop audio and subtitle streams instead of copying them")
    e.add_argument("--quality", type=int, metavar="Q",
                   help="quality of a restored JPEG or WebP photo, 1-100 (default: 95 for "
                   "JPEG, lossless WebP); a video's is --crf")
    e.add_argument("--fps", metavar="RATE",
                   help="frame rate of an image sequence made into a video: 24, 29.97, "
                   "30000/1001 (default: 25, as FFmpeg reads image sequences)")
    o = p.add_argument_group("output")
    o.add_argument("--log", "--frame-log", dest="log",
                   help="per-frame log, frames.csv or frames.json (under torchrun write "
                   "--frame-log: torchrun reads --log as its own --log-dir)")
    o.add_argument("-y", "--overwrite", action="store_true",
                   help="replace existing outputs (and --log, --save-adapted files)")
    o.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar or closing line")
    o.add_argument("--resume", action="store_true",
                   help="go on from the work an interrupted run of the same command kept "
                   "(in .OUTPUT.refdeblur/ beside the output)")
    o.add_argument("--segment-seconds", type=float, metavar="S",
                   help="commit finished work every S seconds of video, each part starting "
                   f"with a keyframe ({d.segment_seconds:g})")
    a = p.add_argument_group("adaptation")
    a.add_argument("--adapt", action="store_true",
                   help="before restoring, fine-tune a copy of the network on this video's own "
                   "sharp frames, blurred as strongly as its blurry ones (they show this "
                   "camera, scene, noise and compression); some sharp frames are held back "
                   "and the copy is used only if it restores them better than the original")
    a.add_argument("--adapt-seconds", type=float, metavar="S",
                   help="time for --adapt, reading pass included (default: 300 on a CPU, 60 "
                   "on a GPU); more time, more training steps, up to a fixed number of steps "
                   "(more would fit the synthetic blur rather than the video's), so a fast "
                   "machine may finish early")
    a.add_argument("--save-adapted", metavar="PATH",
                   help="keep the weights the video was restored with (.safetensors, with the "
                   "video's name and the adaptation settings in its metadata), to reuse with "
                   "--model PATH; with many inputs a folder, one file per video")
    return p


def _resume_command(argv: list[str] | None) -> str:
    """The command line that continues this one's run."""
    words = sys.argv[1:] if argv is None else list(argv)
    return shlex.join(["refdeblur-video", *words, "--resume"])


def _exit_now(code: int) -> None:
    """Leave without the interpreter's shutdown: a model call still running in a worker
    thread would make a C++ runtime abort there (``terminate called without an active
    exception``, exit 134). The output files are closed and removed by now."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _close(result: RunSummary | PlanSummary) -> None:
    """A file's closing line, as soon as it is done."""
    print(result.closing_line(), flush=True)


def main(argv: list[str] | None = None, *, exiting: bool = False) -> int:
    """Run the command; SIGINT, SIGTERM and SIGHUP stop it alike (exit 130, one line).
    ``exiting``: the process ends when this returns (:func:`run`), so a signal after the
    run is ignored rather than cutting the interpreter's shutdown short."""
    share_malloc_arenas()  # before PyTorch and the codecs start their threads
    with handle_signals(then_ignore=exiting):
        parser = build_parser()
        args = vars(parser.parse_args(argv))
        if args["output"] is None and not args["dry_run"]:
            parser.error("the following arguments are required: output")
        route_messages()
        source, target = args.pop("input"), args.pop("output")
        try:
            options = DeblurOptions.from_kwargs(**args)
            if options.dry_run:  # its own checks: the output is optional there
                from .pipeline.dry_run import plan

                results = plan(source, target, None if args["quiet"] else _close,
                               options=options)
                return 2 if any(result.error for result in results) else 0
            preflight(source, target, options)  # before the slow imports below
            from .pipeline.run import deblur

            # each file's closing line as it finishes: a run of many files stopped later
            # has already said what it made
            results = deblur(source, target, report=None if args["quiet"] else _close,
                             options=options)
        except UnfinishedRun as exc:
            say(f"error: {exc.describe(_resume_command(argv))}")
            return 2
        except UserError as exc:
            say(f"error: {exc}")
            return 2
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise
            # a path checked before anything is written: nothing was made
            say(f"error: a file name is too long for its disk: {exc.filename}")
            return 2
        except KeyboardInterrupt as exc:
            by = getattr(exc, "signum", signal.SIGINT)
            with contextlib.suppress(OSError):  # SIGHUP: the terminal may be gone
                say("interrupted: no video was written (plans of the files done are kept)"
                    if args["dry_run"] else
                    interrupted_line(target, None if by == signal.SIGINT else exc.name,
                                     source))
            if isinstance(exc, Interrupted):
                _exit_now(exc.exit_code)
            return 130
        if any(result.error for result in results):  # each said so already
            return 2
    return 0


def run() -> None:
    """The ``refdeblur-video`` program: :func:`main`, then exit with its status."""
    exit_after(main)


if __name__ == "__main__":
    run()

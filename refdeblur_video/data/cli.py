"""``refdeblur-triplets``: build (blurry, sharp, reference) training triplets.

    refdeblur-triplets gopro ROOT OUT_MANIFEST [--dmin 2 --dmax 6 --seed 0 --val-sequences A,B
                                                --overwrite]
    refdeblur-triplets hfr SRC [SRC ...] OUTDIR [--min-frames 7 --max-frames 13 ...]
    refdeblur-triplets video VIDEO [VIDEO ...] OUTDIR [--frames-per-video 20 --val-videos A ...]
    refdeblur-triplets validation OUTDIR [--videos DIR --photos DIR --seed 0 --only NAMES
                                         --response-gamma G]

Argument parsing only: the work is done by :mod:`refdeblur_video.data.gopro` and
:mod:`refdeblur_video.data.triplets` (and :mod:`refdeblur_video.data.validation`).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from refdeblur_video.argparsing import OneLineParser, positive_number
from refdeblur_video.errors import UserError
from refdeblur_video.interrupts import exit_after, handle_signals
from refdeblur_video.messages import route_messages


def _names(values: list[str] | None) -> list[str]:
    """Repeatable, comma-separated name lists."""
    return [n.strip() for v in values or () for n in v.split(",") if n.strip()]


def _int_range(text: str) -> tuple[int, int]:
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or LOW,HIGH, got {text!r}") from None
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected N or LOW,HIGH, got {text!r}")
    if parts[0] > parts[-1]:
        raise argparse.ArgumentTypeError(f"LOW,HIGH with LOW no more than HIGH, got {text!r}")
    return parts[0], parts[-1]


def _add_split(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(f"--val-{what}", action="append", metavar="NAMES",
                   help=f"{what} (comma-separated, repeatable) moved from train to val")
    p.add_argument("--val-fraction", type=float, default=0.0,
                   help=f"fraction of training {what} drawn (from --seed) for val (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="refdeblur-triplets",
        description="Build (blurry, sharp, reference) training triplets and their manifest.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("gopro", help="manifest of a GoPro-style blur/sharp tree")
    g.add_argument("root", help="dataset root: ROOT/{train,test}/<seq>/{blur,sharp}/*.png")
    g.add_argument("manifest", help="output manifest (.jsonl)")
    g.add_argument("--dmin", type=int, default=2, help="smallest |reference offset| (default 2)")
    g.add_argument("--dmax", type=int, default=6, help="largest |reference offset| (default 6)")
    g.add_argument("--blur-dir", default="blur", help="blurry folder name (blur, blur_gamma)")
    g.add_argument("--default-split", choices=("train", "val", "test"), default="train",
                   help="split of sequences outside train/test folders (default train)")
    g.add_argument("--overwrite", action="store_true",
                   help="replace an existing manifest (else it is refused)")
    _add_split(g, "sequences")

    h = sub.add_parser("hfr", help="GoPro-style triplets from high-frame-rate videos/frames")
    h.add_argument("sources", nargs="+", metavar="SRC", help="video files or frame folders")
    h.add_argument("outdir", help="output folder")
    h.add_argument("--min-frames", type=int, default=7, help="fewest frames averaged (7)")
    h.add_argument("--max-frames", type=int, default=13, help="most frames averaged (13)")
    h.add_argument("--ref-min", type=int, default=8,
                   help="smallest reference distance from the middle frame, in source frames (8)")
    h.add_argument("--ref-max", type=int, default=48, help="largest reference distance (48)")
    h.add_argument("--gap", type=int, default=0, help="frames skipped between windows (0)")
    h.add_argument("--max-per-sequence", type=int, help="cap on triplets per sequence")
    h.add_argument("--default-split", choices=("train", "val", "test"), default="train")
    h.add_argument("--reader", choices=("auto", "project", "av", "cv2"), default="auto")
    _add_split(h, "sequences")

    v = sub.add_parser("video", help="synthetic camera-blur triplets from ordinary videos")
    v.add_argument("videos", nargs="+", metavar="VIDEO", help="video files or frame folders")
    v.add_argument("outdir", help="output folder")
    v.add_argument("--frames-per-video", type=int, default=20, help="triplets per video (20)")
    v.add_argument("--dmin", type=int, default=1, help="smallest |reference offset| (1)")
    v.add_argument("--dmax", type=int, default=6, help="largest |reference offset| (6)")
    v.add_argument("--strength", type=float, default=1.0,
                   help="scales every blur extent below (default 1; 0 = no blur)")
    v.add_argument("--max-translation", type=float, default=40.0,
                   help="longest camera path at 720p, pixels (default 40)")
    v.add_argument("--max-rotation", type=float, default=2.0,
                   help="largest in-plane rotation sweep, degrees (default 2)")
    v.add_argument("--max-zoom", type=float, default=0.02, help="largest zoom change (0.02)")
    v.add_argument("--max-perspective", type=float, default=0.01,
                   help="largest perspective corner shift, fraction (0.01)")
    v.add_argument("--min-exposure", type=float, default=0.15,
                   help="per-sample exposure drawn in [this, 1] (default 0.15)")
    v.add_argument("--steps", type=_int_range, default=(16, 32), metavar="LOW,HIGH",
                   help="sub-steps averaged (default 16,32; more for longer paths)")
    v.add_argument("--noise", type=float, default=0.0,
                   help="Gaussian noise, sigma drawn in [0, NOISE] 8-bit levels (default off)")
    v.add_argument("--poisson", type=float, default=0.0,
                   help="shot noise, photons at white >= this (lower = noisier; default off)")
    v.add_argument("--jpeg", type=_int_range, metavar="LOW,HIGH",
                   help="JPEG-compress the blurry frame at a quality in this range (default off)")
    v.add_argument("--max-side", type=int, help="downsize frames to this longer side first")
    v.add_argument("--all-frames", action="store_true",
                   help="do not prefer the sharper of two candidate frames")
    v.add_argument("--reader", choices=("auto", "project", "av", "cv2"), default="auto")
    v.add_argument("--progress", action="store_true", help="show a progress bar")
    _add_split(v, "videos")

    val = sub.add_parser("validation", help="the held-out validation sets of the three blur "
                         "generators (rs6dof, left out of training; shake; average)")
    val.add_argument("outdir", help="output folder (OUTDIR/<generator>/manifest.jsonl and "
                     "OUTDIR/generators.json)")
    val.add_argument("--videos", default="../shared/data/videos",
                     help="folder of 05_default_juggle.mp4 and bedroom.mp4 "
                     "(default ../shared/data/videos)")
    val.add_argument("--photos", default=".data/val_photos",
                     help="folder of the held-out photos (data/validation.py lists them; "
                     "default .data/val_photos; tools/recipes/make_validation.sh fetches them)")
    val.add_argument("--only", action="append", metavar="NAMES",
                     help="build only these generators (comma-separated, repeatable)")
    val.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    val.add_argument("--response-gamma", type=positive_number, metavar="G",
                     help="blur the shake and average sets through a power-law camera "
                     "response of gamma G instead of sRGB's curve (1: on the coded values, as "
                     "averaging decoded frames does), to see how a model takes blur that "
                     "brightens less; rs6dof keeps its own")
    return parser


# the video command's blur options: (name, smallest, largest, whether the smallest is allowed)
_VIDEO_RANGES = (("strength", 0.0, None, True), ("max_translation", 0.0, None, True),
                 ("max_rotation", 0.0, None, True), ("max_zoom", 0.0, None, True),
                 ("max_perspective", 0.0, None, True), ("min_exposure", 0.0, 1.0, False),
                 ("noise", 0.0, None, True), ("poisson", 0.0, None, True))


def _check_video_options(args: argparse.Namespace) -> None:
    """Refuse blur options outside their range, before any video is read."""
    for name, low, high, low_ok in _VIDEO_RANGES:
        value = getattr(args, name)
        if not (value > low or (low_ok and value == low)) or (high is not None and value > high):
            bound = f"{'at least' if low_ok else 'above'} {low:g}"
            bound += f" and at most {high:g}" if high is not None else ""
            raise UserError(f"--{name.replace('_', '-')} must be {bound}, not {value:g}")
    if args.steps[0] < 1:
        raise UserError(f"--steps must be at least 1, not {args.steps[0]}")
    if args.jpeg is not None and not (args.jpeg[0] >= 1 and args.jpeg[1] <= 100):
        raise UserError(f"--jpeg qualities must lie in 1..100, not {args.jpeg[0]},{args.jpeg[1]}")


def _fresh_folder(outdir: str) -> Path:
    """Refuse an output that is a file, or a folder that already holds something (the new
    triplets would mix with its files, and their manifest would not say which are which)."""
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise UserError(f"output {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()):
        raise UserError(f"output folder {out} is not empty: give a new folder")
    return out


def _check_manifest_path(manifest: Path, overwrite: bool) -> None:
    """Refuse a manifest name that is not a .jsonl file (an image of the dataset, given by
    a slip, would be written over), and an existing manifest unless ``overwrite``."""
    if manifest.is_dir():
        raise UserError(f"output manifest {manifest} is a folder; give a .jsonl file")
    if manifest.suffix.lower() != ".jsonl":
        raise UserError(f"output manifest {manifest} must end in .jsonl (it is JSON Lines)")
    if manifest.exists() and not overwrite:
        raise UserError(f"output manifest {manifest} exists: --overwrite replaces it")


@contextlib.contextmanager
def _built_then_moved(out: Path) -> Iterator[Path]:
    """A hidden folder beside ``out`` to build in, renamed to ``out`` once all is written:
    an interrupted or failed run leaves nothing behind (manifests hold relative paths)."""
    work = out.parent / f".{out.name}.partial"
    shutil.rmtree(work, ignore_errors=True)  # what a killed run left
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if out.is_dir():
        out.rmdir()  # empty, as _fresh_folder made sure
    work.rename(out)


def _run(args: argparse.Namespace) -> list:
    if args.command in ("hfr", "video"):
        if args.command == "video":
            _check_video_options(args)
        out = _fresh_folder(args.outdir)
        with _built_then_moved(out) as work:
            return _build(args, str(work))
    if args.command == "gopro":
        _check_manifest_path(Path(args.manifest), args.overwrite)
    return _build(args, args.outdir if args.command == "validation" else None)


def _build(args: argparse.Namespace, outdir: str | None) -> list:
    """The command's triplets, written into ``outdir`` (gopro: its manifest)."""
    if args.command == "gopro":
        from refdeblur_video.data.gopro import gopro_triplets

        return gopro_triplets(
            args.root, args.manifest, dmin=args.dmin, dmax=args.dmax, seed=args.seed,
            val_sequences=_names(args.val_sequences), val_fraction=args.val_fraction,
            blur_dir=args.blur_dir, default_split=args.default_split,
        )
    if args.command == "hfr":
        from refdeblur_video.data.gopro import build_hfr_triplets

        return build_hfr_triplets(
            args.sources, outdir, min_frames=args.min_frames, max_frames=args.max_frames,
            ref_min=args.ref_min, ref_max=args.ref_max, gap=args.gap,
            max_per_sequence=args.max_per_sequence, seed=args.seed,
            val_sequences=_names(args.val_sequences), val_fraction=args.val_fraction,
            default_split=args.default_split, reader=args.reader,
        )
    if args.command == "validation":
        from refdeblur_video.data.validation import build_validation

        return build_validation(outdir, args.videos, args.photos, seed=args.seed,
                                only=_names(args.only), response_gamma=args.response_gamma)
    from refdeblur_video.data.shake import CameraShake
    from refdeblur_video.data.triplets import build_video_triplets

    shake = CameraShake(
        max_translation_px=args.max_translation, min_exposure=args.min_exposure,
        max_rotation_deg=args.max_rotation, max_zoom=args.max_zoom,
        max_perspective=args.max_perspective, min_steps=args.steps[0], max_steps=args.steps[1],
    )
    return build_video_triplets(
        args.videos, outdir, frames_per_video=args.frames_per_video, dmin=args.dmin,
        dmax=args.dmax, seed=args.seed, val_videos=_names(args.val_videos),
        val_fraction=args.val_fraction, strength=args.strength, shake=shake,
        noise_sigma=args.noise, poisson_peak=args.poisson, jpeg_quality=args.jpeg,
        pick_sharpest=not args.all_frames, max_side=args.max_side, reader=args.reader,
        progress=args.progress,
    )


def main(argv: Sequence[str] | None = None, *, exiting: bool = False) -> int:
    """Entry point of ``refdeblur-triplets``; returns the exit status."""
    args = build_parser().parse_args(argv)
    route_messages()
    try:
        with handle_signals(then_ignore=exiting):
            triplets = _run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"interrupted ({exc or 'SIGINT'}): no triplets were written", file=sys.stderr)
        return 130
    counts = Counter(t.split for t in triplets)
    if args.command == "gopro":
        where = args.manifest
    elif args.command == "validation":
        where = f"{args.outdir}/generators.json"
    else:
        where = str(Path(args.outdir) / "manifest.jsonl")
    summary = ", ".join(f"{split} {n}" for split, n in sorted(counts.items()))
    print(f"{len(triplets)} triplets ({summary}) -> {where}")
    return 0


def run() -> None:
    """The ``refdeblur-triplets`` program: :func:`main`, then exit with its status
    (signals from then on are ignored: the run is over)."""
    exit_after(main)


if __name__ == "__main__":
    run()

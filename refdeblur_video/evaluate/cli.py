"""``refdeblur-eval``: per-frame evaluation reports (argument parsing only)."""

from __future__ import annotations

import argparse
import sys

from refdeblur_video.argparsing import OneLineParser, at_least_one, zero_or_more
from refdeblur_video.errors import UserError
from refdeblur_video.interrupts import exit_after, handle_signals
from refdeblur_video.messages import counted, route_messages

DESCRIPTION = "Per-frame evaluation reports (frames.csv, summary.json, report.html)."


def _common(parser: argparse.ArgumentParser, *, y_channel: bool = True,
            examples: bool = True) -> None:
    parser.add_argument("--report", required=True, metavar="DIR",
                        help="folder for frames.csv, summary.json and report.html (new or "
                        "empty)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier report in DIR (else it is refused)")
    if examples:
        parser.add_argument("--examples", type=zero_or_more, default=1, metavar="N",
                            help="best and worst frames shown as crops in the HTML (default 1 "
                            "each)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    if y_channel:
        parser.add_argument("--y-channel", action="store_true",
                            help="PSNR/SSIM on BT.601 luma (MATLAB rgb2ycbcr) instead of RGB")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="refdeblur-eval", description=DESCRIPTION)
    modes = parser.add_subparsers(dest="mode", required=True, title="modes", metavar="MODE")

    compare = modes.add_parser(
        "compare", help="restored video/frames vs ground truth (and the blurry input: the gain)"
    )
    compare.add_argument("--output", required=True, metavar="VIDEO|DIR",
                         help="restored video, folder of frames or image")
    compare.add_argument("--gt", required=True, metavar="VIDEO|DIR", help="sharp ground truth")
    compare.add_argument("--input", metavar="VIDEO|DIR",
                         help="the blurry input, to report the gain of every frame")
    compare.add_argument("--log", metavar="FRAMES.csv|json",
                         help="the pipeline's frame log (blurry flags, references used)")
    _common(compare)

    triplets = modes.add_parser(
        "triplets", help="run a model on a triplet manifest, optionally with reference ablations"
    )
    triplets.add_argument("manifest", metavar="MANIFEST.jsonl")
    triplets.add_argument("--model", default="lite", metavar="lite|paper|PATH",
                          help="shipped model name or checkpoint (default: lite)")
    triplets.add_argument("--split", help="only triplets of this split (default: all)")
    triplets.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    triplets.add_argument("--batch-size", type=at_least_one, default=1, metavar="N",
                          help="triplets per model call (default 1)")
    triplets.add_argument("--ablation-self-ref", action="store_true",
                          help="also run with the blurry frame as its own reference")
    triplets.add_argument("--ablation-unrelated-ref", action="store_true",
                          help="also run with a sharp frame of another sequence as reference")
    triplets.add_argument("--ablation-network-only", action="store_true",
                          help="also run without the flow-guided reference transfer after the "
                          "network")
    triplets.add_argument("--reference-check", type=float, default=None, metavar="R",
                          help="replace references whose match confidence is below R times "
                          "the frame's own (default: the model's; 0: off)")
    _common(triplets)

    noref = modes.add_parser(
        "noref", help="no ground truth: sharpness before/after and the references the pipeline used"
    )
    noref.add_argument("--input", required=True, metavar="VIDEO|DIR", help="the blurry input")
    noref.add_argument("--output", required=True, metavar="VIDEO|DIR", help="the restored output")
    noref.add_argument("--log", metavar="FRAMES.csv|json",
                       help="the pipeline's frame log (blurry flags, references used)")
    _common(noref, y_channel=False)

    temporal = modes.add_parser(
        "temporal", help="flicker of a restored video: warping error and tOF against the "
        "ground truth's motion")
    temporal.add_argument("--output", required=True, metavar="VIDEO|DIR",
                          help="restored video or folder of frames")
    temporal.add_argument("--gt", required=True, metavar="VIDEO|DIR", help="sharp ground truth")
    temporal.add_argument("--input", metavar="VIDEO|DIR", help="the blurry input, for comparison")
    temporal.add_argument("--log", metavar="FRAMES.csv|json",
                          help="the pipeline's frame log (marks pairs holding a restored frame)")
    _common(temporal, y_channel=False, examples=False)  # its page shows no crops

    generators = modes.add_parser(
        "generators", help="one model on every blur generator's held-out set, in one table "
        "(left-out generator first)")
    generators.add_argument("valdir", metavar="VALDIR",
                            help="folder with generators.json (tools/recipes/make_validation.sh)")
    generators.add_argument("--model", default="lite", metavar="lite|paper|PATH",
                            help="shipped model name or checkpoint (default: lite)")
    generators.add_argument("--only", action="append", metavar="NAMES",
                            help="only these generators (comma-separated, repeatable)")
    generators.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    generators.add_argument("--batch-size", type=at_least_one, default=1, metavar="N",
                            help="triplets per model call (default 1)")
    generators.add_argument("--reference-check", type=float, default=None, metavar="R",
                            help="override the model's reference check (0: off)")
    generators.add_argument("--report", required=True, metavar="DIR",
                            help="folder for generators.json and one triplet report per "
                            "generator (new or empty)")
    generators.add_argument("--overwrite", action="store_true",
                            help="replace an earlier report in DIR (else it is refused)")
    generators.add_argument("--examples", type=zero_or_more, default=0, metavar="N",
                            help="best and worst triplets shown per report (default 0: each "
                            "costs four more model runs)")
    generators.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _evaluate(args: argparse.Namespace):
    if args.mode == "compare":
        from refdeblur_video.evaluate.compare import evaluate_compare

        return evaluate_compare(
            args.output, args.gt, args.input, log=args.log, y_channel=args.y_channel,
            quiet=args.quiet, examples=args.examples,
        )
    if args.mode == "triplets":
        from refdeblur_video.evaluate.triplets import evaluate_triplets

        return evaluate_triplets(
            args.manifest, args.model, split=args.split, device=args.device,
            self_ref=args.ablation_self_ref, unrelated_ref=args.ablation_unrelated_ref,
            network_only=args.ablation_network_only,
            y_channel=args.y_channel, quiet=args.quiet, batch_size=args.batch_size,
            examples=args.examples, reference_check=args.reference_check,
        )
    if args.mode == "temporal":
        from refdeblur_video.evaluate.temporal import evaluate_temporal

        return evaluate_temporal(args.output, args.gt, args.input, log=args.log,
                                 quiet=args.quiet)
    from refdeblur_video.evaluate.noref import evaluate_noref

    return evaluate_noref(
        args.input, args.output, log=args.log, quiet=args.quiet, examples=args.examples
    )


def _generators(args: argparse.Namespace) -> int:
    from refdeblur_video.evaluate.generators import (
        evaluate_generators,
        format_generators,
        written_files,
    )
    from refdeblur_video.evaluate.report import check_report_folder, drop_stale

    only = [n.strip() for v in args.only or () for n in v.split(",") if n.strip()]
    try:
        earlier = check_report_folder(args.report, args.overwrite)
        table = evaluate_generators(
            args.valdir, args.model, args.report, device=args.device,
            batch_size=args.batch_size, reference_check=args.reference_check,
            examples=args.examples, only=only, quiet=args.quiet)
        drop_stale(earlier, written_files(args.report, table))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{table['model']} on {table['valdir']} ({table['cpu']}, "
          f"{table['seconds'] / 60:.1f} min); PSNR/SSIM means on RGB")
    print(format_generators(table))
    print(f"reports: {args.report}/<generator>/report.html; table: "
          f"{args.report}/generators.json")
    return 0


def main(argv: list[str] | None = None, *, exiting: bool = False) -> int:
    """Entry point of ``refdeblur-eval``; SIGINT, SIGTERM and SIGHUP stop it with one line
    (exit 130), and no report is written."""
    args = build_parser().parse_args(argv)
    route_messages()  # warnings as the commands' own lines, not Python's
    try:
        with handle_signals(then_ignore=exiting):
            return _generators(args) if args.mode == "generators" else _compare_modes(args)
    except KeyboardInterrupt as exc:
        print(f"interrupted ({exc or 'SIGINT'}): no report was written", file=sys.stderr)
        return 130


def _compare_modes(args: argparse.Namespace) -> int:
    from refdeblur_video.evaluate.report import (
        check_report_folder,
        check_report_spares,
        format_table,
        infinite_note,
        summary_table,
        write_report,
    )

    try:
        check_report_spares(args.report, getattr(args, "log", None),
                            *(getattr(args, name, None) for name in ("input", "output", "gt")))
        check_report_folder(args.report, args.overwrite)
        evaluation = _evaluate(args)
        paths = write_report(evaluation, args.report)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{evaluation.title}: {counted(len(evaluation.rows), 'frame')} "
          f"({evaluation.convention})")
    print(format_table(*summary_table(evaluation)))
    for note in [*evaluation.notes, infinite_note(evaluation)]:
        if note:
            print(note)
    print(f"report: {paths['html']}  (also {paths['csv'].name}, {paths['json'].name})")
    return 0


def run() -> None:
    """The ``refdeblur-eval`` program: :func:`main`, then exit with its status (signals from then
    on are ignored: the run is over)."""
    exit_after(main)


if __name__ == "__main__":
    run()

"""``temporal`` mode: does a restored video flicker? One row per pair of consecutive frames:
warping error and tOF (:mod:`refdeblur_video.evaluate.flicker`) of the output, of the blurry
input when given, and the warping error of the ground truth itself (the floor).

A restored frame between two untouched ones shows as two pairs whose output warping error
rises above the ground truth's (and above its neighbours'), or as a tOF spike.
"""

from __future__ import annotations

from pathlib import Path

from refdeblur_video.errors import UserError
from refdeblur_video.evaluate import plots
from refdeblur_video.evaluate.flicker import ground_truth_pair, tof, warping_error
from refdeblur_video.evaluate.report import Evaluation
from refdeblur_video.evaluate.runner import (
    expected_length,
    frame_size,
    metric_columns,
    progress,
    walk_in_step,
)
from refdeblur_video.evaluate.stats import summarize
from refdeblur_video.pipeline.framelog import check_log_matches, read_frame_log

METRICS = ["warp", "tof"]
LABELS = {"input": "input", "output": "output", "gt": "ground truth"}
CONVENTION = ("warp: mean |frame t - frame t-1 warped by the ground truth's DIS flow|, 8-bit "
              "levels, non-occluded pixels; tof: mean |flow - ground-truth flow| (Farneback), px")


def evaluate_temporal(
    output: str | Path,
    truth: str | Path,
    blurry: str | Path | None = None,
    *,
    log: str | Path | None = None,
    quiet: bool = False,
) -> Evaluation:
    """Flicker of ``output`` (and ``blurry``) against ``truth``, pair by pair.

    The sources are videos or folders of images with equal frame counts (at least two).
    ``log`` (the pipeline's frame log) marks the pairs that hold a restored frame.
    """
    sources = {"output": output, "gt": truth}
    if blurry is not None:
        sources["input"] = blurry
    frame_log = read_frame_log(log) if log is not None else {}
    shown = [v for v in ("input", "output") if v in sources]
    rows: list[dict] = []
    previous = None
    bar = progress(expected_length(sources), "temporal", quiet)
    for position, step in enumerate(walk_in_step(sources)):
        frames = {name: frame.image for name, frame in step.items()}
        for name, image in frames.items():
            if image.shape != frames["gt"].shape:
                raise UserError(f"{name} frame {position}: size {frame_size(image)} differs "
                                f"from the ground truth's {frame_size(frames['gt'])}")
        if previous is not None:
            rows.append(_pair_row(position, previous, frames, shown, frame_log))
        previous = frames
        bar.update()
    bar.close()
    if not rows:
        raise UserError("the temporal metrics need at least two frames")
    check_log_matches(frame_log, len(rows) + 1, log)

    variants = [*shown, "gt"]
    columns = ["frame", *metric_columns(METRICS, variants), "valid"]
    if frame_log:
        columns.insert(1, "restored")
    summary = {
        "mode": "temporal",
        "convention": CONVENTION,
        "sources": {k: str(v) for k, v in sources.items()},
        "n_pairs": len(rows),
        "metrics": summarize(rows, metric_columns(METRICS, variants)),
    }
    evaluation = Evaluation(
        mode="temporal", title="Temporal consistency, frame t against t-1", convention=CONVENTION,
        metrics=METRICS, variants=variants, variant_labels=LABELS, columns=columns, rows=rows,
        summary=summary,
        sources={k: str(v) for k, v in sources.items()}
        | ({"frame log": str(log)} if log is not None else {}),
    )
    evaluation.notes.append(
        "Rows are pairs: frame t against frame t-1. The ground truth's warping error is the "
        "floor (flow error, light changes); an output above it flickers. tOF of the ground "
        "truth is 0 by definition.")
    evaluation.figures.append(_curves(rows, variants))
    return evaluation


def _pair_row(position, previous, frames, shown, frame_log) -> dict:
    pair = ground_truth_pair(previous["gt"], frames["gt"])
    row: dict = {"frame": position, "valid": pair.valid_share}
    for name in [*shown, "gt"]:
        row[f"warp_{name}"] = warping_error(previous[name], frames[name], pair)
    for name in shown:
        row[f"tof_{name}"] = tof(previous[name], frames[name], pair)
    row["tof_gt"] = 0.0
    if frame_log:
        logged = [frame_log.get(i) for i in (position - 1, position)]
        row["restored"] = int(any(f is not None and f.restored for f in logged))
    return row


def _curves(rows: list[dict], variants: list[str]) -> tuple[str, bytes]:
    series = {
        label: {v: [row[f"{metric}_{v}"] for row in rows] for v in variants}
        for metric, label in (("warp", "warping error (levels)"), ("tof", "tOF (px)"))
    }
    png = plots.metric_curves([row["frame"] for row in rows], series,
                              xlabel="frame t (pair t-1, t)", labels=LABELS)
    return ("Warping error and tOF per pair of consecutive frames; the ground truth's warping "
            "error is the floor."), png

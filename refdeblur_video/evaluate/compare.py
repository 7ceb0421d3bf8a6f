"""``compare`` mode: per-frame PSNR/SSIM of a restored video (and its blurry input) against
the ground truth, so every row shows what the restoration gained."""

from __future__ import annotations

from pathlib import Path

from refdeblur_video.evaluate import metrics, plots
from refdeblur_video.evaluate.crops import focus_map, make_example
from refdeblur_video.evaluate.report import Evaluation
from refdeblur_video.evaluate.runner import (
    expected_length,
    metric_columns,
    pick_extremes,
    progress,
    score,
    walk_in_step,
)
from refdeblur_video.evaluate.stats import gain, summarize
from refdeblur_video.messages import counted
from refdeblur_video.pipeline.framelog import check_log_matches, read_frame_log
from refdeblur_video.video.sources import fetch_frames

METRICS = ["psnr", "ssim"]
RANK_NAMES = {"psnr_gain": "PSNR gain", "psnr_output": "output PSNR"}
LABELS = {"input": "input", "output": "output", "gain": "gain (output - input)"}


def evaluate_compare(
    output: str | Path,
    truth: str | Path,
    blurry: str | Path | None = None,
    *,
    log: str | Path | None = None,
    y_channel: bool = False,
    quiet: bool = False,
    examples: int = 1,
) -> Evaluation:
    """Score ``output`` (and ``blurry`` when given) against ``truth``, frame by frame.

    The sources are videos, folders of images or single images with equal frame counts.
    ``log`` (the pipeline's frame log) adds which frames were restored and which reference
    each one used.
    """
    sources = {"output": output, "ground truth": truth}
    if blurry is not None:
        sources["input"] = blurry
    frame_log = read_frame_log(log) if log is not None else {}
    variants = ["input", "output", "gain"] if blurry is not None else ["output"]

    rows = []
    bar = progress(expected_length(sources), "compare", quiet)
    for position, step in enumerate(walk_in_step(sources)):
        gt = step["ground truth"].image
        logged = frame_log.get(position)
        times = [frame.time_s for frame in step.values()] + [logged and logged.time_s]
        row: dict = {"frame": position, "time_s": next((t for t in times if t is not None), None)}
        row["psnr_output"], row["ssim_output"] = score(
            step["output"].image, gt, y_channel=y_channel, what=f"output frame {position}"
        )
        if blurry is not None:
            row["psnr_input"], row["ssim_input"] = score(
                step["input"].image, gt, y_channel=y_channel, what=f"input frame {position}"
            )
            row["psnr_gain"] = gain(row["psnr_output"], row["psnr_input"])
            row["ssim_gain"] = gain(row["ssim_output"], row["ssim_input"])
        if logged is not None:
            row["restored"] = logged.restored
            row["reference"] = logged.reference
        rows.append(row)
        bar.update()
    bar.close()
    check_log_matches(frame_log, len(rows), log)

    columns = ["frame", *metric_columns(METRICS, variants)]
    if any(row["time_s"] is not None for row in rows):
        columns.insert(1, "time_s")
    if frame_log:
        columns += ["restored", "reference"]
    rank_by = "psnr_gain" if blurry is not None else "psnr_output"
    chosen = pick_extremes(rows, rank_by, examples)
    summary = {
        "mode": "compare",
        "convention": metrics.convention_label(y_channel),
        "y_channel": y_channel,
        "sources": {k: str(v) for k, v in sources.items()},
        "n_frames": len(rows),
        "metrics": summarize(rows, metric_columns(METRICS, variants)),
        "examples": [{"kind": kind, "frame": rows[i]["frame"], rank_by: rows[i][rank_by]}
                     for kind, i in chosen],
    }
    notes = []
    if frame_log:  # the frames the pipeline restored: the others are untouched
        restored = [row for row in rows if row.get("restored")]
        summary["n_restored"] = len(restored)
        summary["restored_frames"] = summarize(restored, metric_columns(METRICS, variants))
        notes = _log_notes(rows, summary["restored_frames"], blurry is not None)
    evaluation = Evaluation(
        mode="compare",
        title="Restoration vs ground truth",
        convention=metrics.convention_label(y_channel),
        metrics=METRICS,
        variants=variants,
        variant_labels=LABELS,
        columns=columns,
        rows=rows,
        summary=summary,
        sources={k: str(v) for k, v in sources.items()}
        | ({"frame log": str(log)} if log is not None else {}),
        notes=notes,
    )
    if rows:
        evaluation.figures.append(_curves(rows, variants))
        evaluation.examples = _examples(chosen, rows, sources, rank_by)
    return evaluation


def _log_notes(rows: list[dict], restored: dict[str, dict], with_input: bool) -> list[str]:
    """What the frame log tells of the scores: the restored frames' own (the whole clip's
    mean dilutes them with the untouched ones), and with the input, whether the frames the
    pipeline kept came out as they went in (a lossy encoder changes them a little)."""
    notes = []
    output = restored["psnr_output"]
    count = output["n"] - output.get("n_infinite", 0)  # the frames the means are over
    if output["n"] and not count:
        notes.append(f"The {counted(output['n'], 'frame')} the pipeline restored "
                     f"{'is' if output['n'] == 1 else 'are'} identical to the ground truth.")
    elif count:
        line = (f"The {counted(output['n'], 'frame')} the pipeline restored: mean PSNR "
                f"{output['mean']:.2f} dB")
        if with_input:
            before, gained = restored["psnr_input"]["mean"], restored["psnr_gain"]["mean"]
            line += f" (input {before:.2f} dB, gain {gained:+.2f} dB)"
        if count < output["n"]:
            line += f", over the {count} not identical to the ground truth"
        notes.append(line + ".")
    kept = [row for row in rows if not row.get("restored")]
    changed = [row for row in kept if with_input and row["psnr_gain"] is not None
               and row["psnr_output"] != row["psnr_input"]]
    if changed:
        mean = sum(row["psnr_gain"] for row in changed) / len(changed)
        notes.append(f"Frames the pipeline kept as they came differ from the input ("
                     f"{len(changed)} of {len(kept)}, mean gain {mean:+.2f} dB): re-encoded by a "
                     "lossy encoder; a lossless one (--codec ffv1) keeps them exact, to "
                     "score the restoration alone.")
    return notes


def _curves(rows: list[dict], variants: list[str]) -> tuple[str, bytes]:
    shown = [v for v in variants if v != "gain"]
    series = {
        plots_label: {v: [row[f"{metric}_{v}"] for row in rows] for v in shown}
        for metric, plots_label in (("psnr", "PSNR (dB)"), ("ssim", "SSIM"))
    }
    png = plots.metric_curves(
        [row["frame"] for row in rows], series, xlabel="frame", labels=LABELS
    )
    return ("PSNR and SSIM per frame against the ground truth; triangles on top: frames "
            "identical to it (infinite PSNR)."), png


def _examples(chosen, rows, sources, rank_by):
    positions = [rows[i]["frame"] for _, i in chosen]
    references = {rows[i].get("reference") for _, i in chosen} - {None}
    images = {name: fetch_frames(path, positions, uint8=True) for name, path in sources.items()}
    reference_images = (
        fetch_frames(sources["input"], references, uint8=True)
        if "input" in sources and references
        else {}
    )
    examples = []
    for kind, i in chosen:
        row, position = rows[i], rows[i]["frame"]
        blurry = images.get("input", {}).get(position)
        output, truth = images["output"][position], images["ground truth"][position]
        reference = reference_images.get(row.get("reference"))
        panels = {"input": blurry, "output": output, "ground truth": truth}
        if reference is not None:
            panels[f"reference (frame {row['reference']})"] = reference
        caption = (f"frame {position}: PSNR output {row['psnr_output']:.2f} dB"
                   + (f", input {row['psnr_input']:.2f} dB" if blurry is not None else ""))
        examples.append(make_example(
            f"{kind.capitalize()} frame by {RANK_NAMES[rank_by]}: frame {position}",
            caption, panels, focus_map(output, blurry, truth),
            largest=kind == "best" and blurry is not None,  # else: where the output errs most
        ))
    return examples

"""``noref`` mode: no ground truth -- per-frame no-reference sharpness of the input and the
restored output, plus which frames the pipeline restored and which reference each used
(from its frame log)."""

from __future__ import annotations

from pathlib import Path

from refdeblur_video.errors import UserError
from refdeblur_video.evaluate import plots
from refdeblur_video.evaluate.crops import focus_map, make_example
from refdeblur_video.evaluate.report import Evaluation
from refdeblur_video.evaluate.runner import (
    expected_length,
    frame_size,
    pick_extremes,
    progress,
    walk_in_step,
)
from refdeblur_video.evaluate.stats import gain, summarize
from refdeblur_video.frames.sharpness import sharpness  # the pipeline's own score
from refdeblur_video.messages import counted
from refdeblur_video.pipeline.framelog import check_log_matches, read_frame_log
from refdeblur_video.video.sources import fetch_frames

LABELS = {"input": "input", "output": "output", "gain": "gain (output - input)"}
COLUMNS = ["sharpness_input", "sharpness_output", "sharpness_gain"]
SHARPNESS_LABEL = (
    "sharpness: variance of the Laplacian of a grey copy at most 320 px on its longest side, "
    "intensities 0..1 (refdeblur_video.frames.sharpness, the pipeline's score; higher = sharper)"
)


def evaluate_noref(
    blurry: str | Path,
    output: str | Path,
    *,
    log: str | Path | None = None,
    quiet: bool = False,
    examples: int = 1,
) -> Evaluation:
    """Sharpness before/after for every frame; ``log`` adds which frames were restored, and
    their references."""
    sources = {"input": blurry, "output": output}
    frame_log = read_frame_log(log) if log is not None else {}
    rows = []
    bar = progress(expected_length(sources), "noref", quiet)
    for position, step in enumerate(walk_in_step(sources)):
        if step["output"].image.shape[:2] != step["input"].image.shape[:2]:
            raise UserError(f"output frame {position}: size {frame_size(step['output'].image)} "
                            f"differs from the input's {frame_size(step['input'].image)}")
        before = sharpness(step["input"].image)
        after = sharpness(step["output"].image)
        logged = frame_log.get(position)
        time_s = step["input"].time_s
        if logged is not None and logged.time_s is not None:
            time_s = logged.time_s
        rows.append({
            "frame": position, "time_s": time_s,
            "sharpness_input": before, "sharpness_output": after,
            "sharpness_gain": gain(after, before),
            "restored": logged.restored if logged else None,
            "reference": logged.reference if logged else None,
        })
        bar.update()
    bar.close()
    check_log_matches(frame_log, len(rows), log)

    # with a log, the interesting frames are the ones the pipeline restored
    candidates = [r for r in rows if r["restored"]] if frame_log else rows
    chosen = [(kind, candidates[i]["frame"])
              for kind, i in pick_extremes(candidates, "sharpness_gain", examples)]
    columns = ["frame", "time_s", *COLUMNS]
    if frame_log:
        columns += ["restored", "reference"]
    summary = {
        "mode": "noref",
        "sources": {k: str(v) for k, v in sources.items()}
        | ({"frame log": str(log)} if log is not None else {}),
        "n_frames": len(rows),
        "n_restored": sum(1 for r in rows if r["restored"]) if frame_log else None,
        "metrics": summarize(rows, COLUMNS),
        "examples": [{"kind": kind, "frame": frame, "sharpness_gain": rows[frame]["sharpness_gain"]}
                     for kind, frame in chosen],
    }
    notes = []
    if frame_log:
        restored_rows = [r for r in rows if r["restored"]]
        summary["restored_frames"] = summarize(restored_rows, COLUMNS)
        before = summary["restored_frames"]["sharpness_input"]["mean"]
        after = summary["restored_frames"]["sharpness_output"]["mean"]
        if restored_rows:
            notes.append(f"The {counted(len(restored_rows), 'frame')} the pipeline restored: mean "
                         f"sharpness {before:.4g} -> {after:.4g}.")
    evaluation = Evaluation(
        mode="noref",
        title="No-reference sharpness, input vs output",
        convention=SHARPNESS_LABEL,
        metrics=["sharpness"],
        variants=["input", "output", "gain"],
        variant_labels=LABELS,
        columns=columns,
        rows=rows,
        summary=summary,
        sources=summary["sources"],
        notes=notes,
    )
    if rows:
        evaluation.figures.append(_timeline(rows, bool(frame_log)))
        evaluation.examples = _examples(chosen, rows, sources)
    return evaluation


def _timeline(rows: list[dict], with_log: bool) -> tuple[str, bytes]:
    timed = all(r["time_s"] is not None for r in rows)
    x = [r["time_s"] if timed else r["frame"] for r in rows]
    png = plots.sharpness_timeline(
        x, [r["sharpness_input"] for r in rows], [r["sharpness_output"] for r in rows],
        xlabel="time (s)" if timed else "frame",
        blurry=[bool(r["restored"]) for r in rows] if with_log else (),
        references=[r["reference"] for r in rows] if with_log else (),
    )
    caption = "No-reference sharpness of every frame before and after restoration"
    if with_log:
        caption += ("; x: frames the pipeline restored, triangles: frames used as references;"
                    " lower panel: the reference each frame used")
    return caption + ".", png


def _examples(chosen: list[tuple[str, int]], rows: list[dict], sources: dict) -> list:
    positions = [frame for _, frame in chosen]
    references = {rows[f]["reference"] for f in positions} - {None}
    inputs = fetch_frames(sources["input"], set(positions) | references, uint8=True)
    outputs = fetch_frames(sources["output"], positions, uint8=True)
    examples = []
    for kind, frame in chosen:
        row = rows[frame]
        panels = {"input": inputs[frame], "output": outputs[frame]}
        if row["reference"] is not None and row["reference"] in inputs:
            panels[f"reference (frame {row['reference']})"] = inputs[row["reference"]]
        caption = (f"frame {frame}: sharpness {row['sharpness_input']:.4g} -> "
                   f"{row['sharpness_output']:.4g}")
        examples.append(make_example(
            f"{kind.capitalize()} frame by sharpness gain: frame {frame}", caption, panels,
            focus_map(outputs[frame], inputs[frame]),  # where the output changed most
        ))
    return examples

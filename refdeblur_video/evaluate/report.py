"""Write an evaluation to a report folder: ``frames.csv``, ``summary.json``, ``report.html``.

The HTML page is self-contained: plots and crops are embedded as base64 PNG ``data:`` URIs,
the style sheet is inline, and there are no scripts or links to other files.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import html
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from refdeblur_video.errors import UserError
from refdeblur_video.evaluate.crops import Example

MAX_HTML_ROWS = 2000
METRIC_NAMES = {"psnr": "PSNR (dB)", "ssim": "SSIM", "sharpness": "sharpness"}


@dataclass
class Evaluation:
    """Everything a report shows. Per-frame columns are named ``<metric>_<variant>``."""

    mode: str
    title: str
    convention: str
    metrics: list[str]
    variants: list[str]
    variant_labels: dict[str, str]
    columns: list[str]
    rows: list[dict]
    summary: dict
    sources: dict[str, str] = field(default_factory=dict)
    figures: list[tuple[str, bytes]] = field(default_factory=list)  # caption, PNG
    examples: list[Example] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def report_paths(folder: str | Path) -> dict[str, Path]:
    """The three files a report writes into ``folder``."""
    folder = Path(folder)
    return {"csv": folder / "frames.csv", "json": folder / "summary.json",
            "html": folder / "report.html"}


# the files the reports write (the generator table's report adds one folder per generator)
REPORT_FILES = ("frames.csv", "summary.json", "report.html", "generators.json")


def check_report_folder(folder: str | Path, overwrite: bool) -> list[Path]:
    """Refuse a report folder that holds anything but an earlier report (the ground
    truth's frames, say; hidden files such as .DS_Store aside), and an earlier report
    unless ``overwrite``. Returns the earlier report's files, for :func:`drop_stale`."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--report {folder} is a file; give a folder")
    earlier: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.startswith("."):
                continue
            if name not in REPORT_FILES:
                raise UserError(f"--report {folder} holds other files ({name}): give a new "
                                "or empty folder")
            earlier.append(Path(root) / name)
    if earlier and not overwrite:
        raise UserError(f"--report {folder} holds an earlier report: --overwrite replaces it")
    return earlier


def drop_stale(earlier: list[Path], written: list[Path]) -> None:
    """Remove the earlier report's files the new one did not write again (a generator left
    out of the new table), and the folders that leaves empty."""
    kept = {path.resolve() for path in written}
    for path in earlier:
        if path.resolve() not in kept:
            with contextlib.suppress(OSError):
                path.unlink()
                path.parent.rmdir()  # only when empty


def check_report_spares(folder: str | Path, *inputs: str | Path | None) -> None:
    """Refuse a report that would be written over one of its own ``inputs`` (a frame log
    named frames.csv in the report's folder, say)."""
    for given in filter(None, inputs):
        for written in report_paths(folder).values():
            if Path(given).resolve() == written.resolve():
                raise UserError(f"the report in {folder} would overwrite its input {given}: "
                                "give --report another folder")


def write_report(evaluation: Evaluation, folder: str | Path) -> dict[str, Path]:
    """Write the three report files into ``folder`` (created if needed); returns their paths."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create report folder {folder}: {exc.strerror or exc}") from None
    paths = report_paths(folder)
    write_csv(evaluation, paths["csv"])
    paths["json"].write_text(
        json.dumps(_json_safe(evaluation.summary), indent=2, allow_nan=False) + "\n",
        encoding="utf-8",
    )
    paths["html"].write_text(render_html(evaluation), encoding="utf-8")
    return paths


# --- CSV ----------------------------------------------------------------------------------


def format_value(value) -> str:
    """Cell text: floats with 8 significant digits (``inf`` kept), None as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return "inf" if value == math.inf else f"{float(value):.8g}"
    return str(value)


def write_csv(evaluation: Evaluation, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(evaluation.columns)
        for row in evaluation.rows:
            writer.writerow([format_value(row.get(c)) for c in evaluation.columns])


def _json_safe(value):
    """Replace non-finite floats with None so the file is strict JSON."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


# --- summary table (CLI and HTML) -----------------------------------------------------------


def summary_table(evaluation: Evaluation) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per variant, mean and median of each metric."""
    header = ["", *[f"{METRIC_NAMES.get(m, m)} {s}" for m in evaluation.metrics
                    for s in ("mean", "median")]]
    stats = evaluation.summary.get("metrics", {})
    rows = []
    for variant in evaluation.variants:
        cells = [evaluation.variant_labels.get(variant, variant)]
        for metric in evaluation.metrics:
            column = stats.get(f"{metric}_{variant}", {})
            signed = variant.endswith("gain")
            cells += [_number(column.get("mean"), metric, signed),
                      _number(column.get("median"), metric, signed)]
        rows.append(cells)
    return header, rows


def infinite_note(evaluation: Evaluation) -> str | None:
    """A sentence naming the columns whose statistics left out frames (see
    :mod:`.stats`), if any."""
    counts = [
        f"{column} {stats['n_infinite']} of {stats['n']}"
        for column, stats in evaluation.summary.get("metrics", {}).items()
        if stats.get("n_infinite")
    ]
    if not counts:
        return None
    return ("Frames with an infinite PSNR in any column (identical images) are left out of "
            "the PSNR means and medians, so that every row covers the same frames: "
            + ", ".join(counts) + " frames.")


def _number(value, metric: str, signed: bool = False) -> str:
    if value is None:
        return "-"
    if metric == "sharpness":  # thousandths to millionths: one notation down a column
        return f"{value:+.3e}" if signed else f"{value:.3e}"
    if metric not in ("psnr", "ssim"):  # e.g. warping error: scale depends on the measure
        return f"{value:+.4g}" if signed else f"{value:.4g}"
    digits = 4 if metric == "ssim" else 2
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Plain-text table with aligned columns."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w)
                       for i, (cell, w) in enumerate(zip(r, widths, strict=True)))
             for r in [header, *rows]]
    return "\n".join(lines)


# --- HTML ---------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1100px;
       color: #222; padding: 0 16px; }
h1 { font-size: 1.5em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f4; }
.meta { color: #555; font-size: 0.9em; }
.note { color: #555; font-size: 0.85em; }
figure { margin: 12px 0; }
figure > img { max-width: 100%; }
figcaption { color: #555; font-size: 0.85em; }
.panels { display: flex; flex-wrap: wrap; gap: 8px; }
.panel { text-align: center; font-size: 0.85em; }
.panel img { display: block; image-rendering: pixelated; border: 1px solid #ccc; }
"""


def _img_tag(png: bytes, alt: str, width: int | None = None) -> str:
    data = base64.b64encode(png).decode("ascii")
    size = f' width="{width}"' if width else ""
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}"{size}>'


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB uint8 image."""
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buffer.tobytes()


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _groups_section(evaluation: Evaluation) -> str:
    groups = evaluation.summary.get("per_sequence") or {}
    if not groups:
        return ""
    header = ["sequence", "n"]
    keys = []
    for metric in evaluation.metrics:
        for variant in evaluation.variants:
            header.append(f"{METRIC_NAMES.get(metric, metric)} "
                          f"{evaluation.variant_labels.get(variant, variant)}")
            keys.append((metric, variant))
    rows = []
    for name, group in groups.items():
        cells = [name, str(group["n"])]
        for metric, variant in keys:
            mean = group["metrics"].get(f"{metric}_{variant}", {}).get("mean")
            cells.append(_number(mean, metric, variant.endswith("gain")))
        rows.append(cells)
    return "<h2>Per sequence (means)</h2>" + _html_table(header, rows)


def _example_html(example: Example) -> str:
    panels = []
    for label, image in example.panels:
        side = image.shape[1]
        scale = 2 if side <= 128 else 1
        panels.append(
            f'<div class="panel">{_img_tag(encode_png(image), label, side * scale)}'
            f"{html.escape(label)}</div>"
        )
    return (
        f"<h3>{html.escape(example.title)}</h3>"
        f'<p class="note">{html.escape(example.caption)}</p>'
        f'<div class="panels">{"".join(panels)}</div>'
    )


def _frames_section(evaluation: Evaluation) -> str:
    rows = evaluation.rows[:MAX_HTML_ROWS]
    cells = [[format_value(row.get(c)) for c in evaluation.columns] for row in rows]
    shown = (f"{len(evaluation.rows)} rows" if len(rows) == len(evaluation.rows)
             else f"first {len(rows)} of {len(evaluation.rows)} rows")
    return (
        f"<h2>Per frame</h2><details><summary>{shown} (all in frames.csv)</summary>"
        f"{_html_table(list(evaluation.columns), cells)}</details>"
    )


def render_html(evaluation: Evaluation) -> str:
    """The self-contained report page."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(evaluation.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(evaluation.title)}</h1>",
    ]
    meta = [f"<b>{html.escape(k)}</b>: {html.escape(v)}" for k, v in evaluation.sources.items()]
    meta.append(f"<b>metrics</b>: {html.escape(evaluation.convention)}")
    parts.append('<p class="meta">' + "<br>".join(meta) + "</p>")
    header, rows = summary_table(evaluation)
    parts.append(f"<h2>Summary ({len(evaluation.rows)} frames)</h2>")
    parts.append(_html_table(header, rows))
    notes = [*evaluation.notes, infinite_note(evaluation)]
    parts += [f'<p class="note">{html.escape(note)}</p>' for note in notes if note]
    parts.append(_groups_section(evaluation))
    if evaluation.figures:
        parts.append("<h2>Plots</h2>")
        for caption, png in evaluation.figures:
            parts.append(f"<figure>{_img_tag(png, caption)}"
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    if evaluation.examples:
        parts.append("<h2>Best and worst frames</h2>")
        parts += [_example_html(example) for example in evaluation.examples]
    parts.append(_frames_section(evaluation))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"

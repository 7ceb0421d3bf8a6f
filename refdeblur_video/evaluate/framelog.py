"""Read the pipeline's per-frame log (``refdeblur-video --log frames.csv|frames.json``).

One row per frame with the columns ``index, pts, time_s, shot, sharpness, blurry, reference,
reference_used, seconds`` (docs/CONVENTIONS.md; only ``index, blurry, reference`` are
required): ``blurry`` is 0/1 and ``reference`` the
index of the reference frame, -1 when none; where ``reference_used`` is 0 the reference
check put the frame itself in its place, so no reference was used. JSON logs may be a list
of row objects, an object with a ``"frames"`` list, or JSON Lines.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from refdeblur_video.errors import UserError

REQUIRED_COLUMNS = ("index", "blurry", "reference")


@dataclass(frozen=True)
class LoggedFrame:
    """What the pipeline did with one frame."""

    index: int
    time_s: float | None
    sharpness: float | None
    blurry: bool
    reference: int | None  # None: no reference used


def read_frame_log(path: str | Path) -> dict[int, LoggedFrame]:
    """Rows of a frame log keyed by frame index."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such frame log: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read frame log {path}: {exc}") from None
    rows = _json_rows(text, path) if path.suffix.lower() in (".json", ".jsonl") else _csv_rows(text)
    if not rows:
        raise UserError(f"frame log {path} has no rows")
    missing = [c for c in REQUIRED_COLUMNS if c not in rows[0]]
    if missing:
        raise UserError(f"frame log {path} lacks the column(s) {', '.join(missing)}")
    frames = {}
    for number, row in enumerate(rows, start=1):
        try:
            frame = _parse_row(row)
        except (TypeError, ValueError):
            raise UserError(f"frame log {path}: row {number} is malformed") from None
        frames[frame.index] = frame
    return frames


def _csv_rows(text: str) -> list[dict]:
    reader = csv.DictReader(text.splitlines())
    return [{key.strip(): value for key, value in row.items() if key} for row in reader]


def _json_rows(text: str, path: Path) -> list[dict]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:  # JSON Lines
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError:
            raise UserError(f"frame log {path} is not valid JSON") from None
    if isinstance(data, dict):
        data = data.get("frames")
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise UserError(f"frame log {path} must hold a list of frame objects")
    return data


def _parse_row(row: dict) -> LoggedFrame:
    reference = _optional_float(row.get("reference"))
    if _optional_float(row.get("reference_used")) == 0:  # dropped by the reference check
        reference = None
    return LoggedFrame(
        index=int(float(row["index"])),
        time_s=_optional_float(row.get("time_s")),
        sharpness=_optional_float(row.get("sharpness")),
        blurry=_truthy(row.get("blurry")),
        reference=None if reference is None or reference < 0 else int(reference),
    )


def _optional_float(value) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return float(value)


def _truthy(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)

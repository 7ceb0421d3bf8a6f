"""The per-frame log of a run (``--log frames.csv|frames.json``): written atomically by the
pipeline, read back by the evaluator.

One row per frame, the fields of :class:`FrameRecord` in order (:data:`COLUMNS`; their
meaning: docs/CONVENTIONS.md), and an image sequence's file names as a last column.
``blurry`` is 0/1, the sharpness verdict; ``restored`` is
0/1, whether the frame went through the network (every frame under ``--all-frames``);
``reference`` the index of the reference frame, -1 when none; where ``reference_used`` is 0
the reference check put the frame itself in its place, so no reference was used. Reading
needs only ``index, blurry, reference`` (:data:`REQUIRED_COLUMNS`; a log without
``restored`` counts its blurry frames as the restored ones) and takes JSON logs as a list
of row objects, an object with a ``"frames"`` list, or JSON Lines.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from refdeblur_video.errors import UserError


@dataclass(kw_only=True)
class FrameRecord:
    """What happened to one frame (docs/CONVENTIONS.md)."""

    index: int
    pts: int | None
    time_s: float | None
    shot: int  # 0, 1, ...: a new number after each detected cut
    sharpness: float
    blurry: int  # 1: below the sharpness threshold (a photo: 1)
    restored: int  # 1: sent to the network (blurry, or every frame with --all-frames)
    reference: int
    reference_used: int | None  # 1/0: the reference passed/failed the check; None: not restored
    second_reference: int  # the frame the transfer was also given, after ``reference``
    seconds: float
    # 1: restored, but no sharper than it came, so written as it came (frames.sharpness)
    unchanged: int = 0
    file: str | None = None  # an image sequence's frame: its file's name (a log's last column)

    @property
    def network_written(self) -> bool:
        """Whether the frame written is the network's (not the frame as it came)."""
        return self.reference_used is not None and not self.unchanged


COLUMNS = tuple(f.name for f in fields(FrameRecord) if f.name != "file")


def write_frame_log(path: str | Path, records: list[FrameRecord]) -> None:
    """Write records as CSV or JSON (by suffix) through a temporary file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    columns = (*COLUMNS, "file") if any(r.file is not None for r in records) else COLUMNS
    rows = [{name: value for name, value in asdict(r).items() if name in columns}
            for r in records]
    try:
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            if path.suffix.lower() == ".json":
                json.dump({"frames": rows}, handle, indent=1)
            else:
                writer = csv.DictWriter(handle, fieldnames=columns)
                writer.writeheader()
                writer.writerows(rows)
        os.replace(tmp, path)
    except BaseException:  # a full disk, Ctrl-C: no half-written log is left
        tmp.unlink(missing_ok=True)
        raise


# -- reading ---------------------------------------------------------------------------------

REQUIRED_COLUMNS = ("index", "blurry", "reference")


@dataclass(frozen=True)
class LoggedFrame:
    """What the pipeline did with one frame."""

    index: int
    time_s: float | None
    sharpness: float | None
    # the network's output was written (the log's ``restored``, else its ``blurry``; not
    # where ``unchanged`` says it came out no sharper and the frame was written as it came)
    restored: bool
    reference: int | None  # None: no reference used


def read_frame_log(path: str | Path) -> dict[int, LoggedFrame]:
    """Rows of a frame log keyed by frame index."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such frame log: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path} is no frame log (a .csv or .json that refdeblur-video "
                        "--log writes): it is not text") from None
    except OSError as exc:
        raise UserError(f"cannot read frame log {path}: {exc.strerror or exc}") from None
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


def check_log_matches(frames: dict[int, LoggedFrame], n_frames: int,
                      path: str | Path) -> None:
    """Refuse a frame log whose rows are not frames 0 .. ``n_frames`` - 1 of the video it
    is read with (a log of another run, or cut short): its restored frames would be
    wrong."""
    if frames and sorted(frames) != list(range(n_frames)):
        raise UserError(f"frame log {path} has rows for {len(frames)} frames (numbered "
                        f"{min(frames)} to {max(frames)}), the video {n_frames}: a log of "
                        "another run?")


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
        # a frame the network did not sharpen was written as it came: not a restored one
        restored=(_truthy(row.get("restored", row.get("blurry")))
                  and not _truthy(row.get("unchanged", 0))),
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

"""The per-frame log of a run (``--log frames.csv|frames.json``), written atomically."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

COLUMNS = ("index", "pts", "time_s", "shot", "sharpness", "blurry", "reference",
           "reference_used", "seconds")


@dataclass(kw_only=True)
class FrameRecord:
    """What happened to one frame (docs/CONVENTIONS.md)."""

    index: int
    pts: int | None
    time_s: float | None
    shot: int  # 0, 1, ...: a new number after each detected cut
    sharpness: float
    blurry: int
    reference: int
    reference_used: int | None  # 1/0: the reference passed/failed the check; None: not restored
    seconds: float


def write_frame_log(path: str | Path, records: list[FrameRecord]) -> None:
    """Write records as CSV or JSON (by suffix) through a temporary file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    rows = [asdict(r) for r in records]
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        if path.suffix.lower() == ".json":
            json.dump({"frames": rows}, handle, indent=1)
        else:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    os.replace(tmp, path)

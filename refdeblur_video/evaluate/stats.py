"""Summary statistics of per-frame metric columns (means, medians, per sequence).

Frames with an infinite PSNR (identical images) would make every mean infinite, so they are
left out, and their number is reported beside the statistics (``n_infinite``). In a table
(:func:`summarize`) a frame infinite in any PSNR column is left out of every PSNR column,
so that the input's, the output's and the gain's means cover the same frames and the gain
is the difference of the means. Empty values (``None``, e.g. no input given) are skipped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def column_stats(values: Sequence[float | None]) -> dict:
    """``mean``, ``median``, ``min``, ``max`` of the finite values, ``n`` and ``n_infinite``."""
    present = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    finite = np.array([v for v in present if math.isfinite(v)], dtype=np.float64)
    stats: dict = {"n": len(present), "n_infinite": len(present) - int(finite.size)}
    if finite.size:
        stats.update(
            mean=float(finite.mean()),
            median=float(np.median(finite)),
            min=float(finite.min()),
            max=float(finite.max()),
        )
    else:
        stats.update(mean=None, median=None, min=None, max=None)
    return stats


def summarize(rows: Sequence[dict], columns: Sequence[str]) -> dict[str, dict]:
    """:func:`column_stats` of each named column over ``rows``; the PSNR columns over the
    rows where none of them is infinite (``n``: the column's values, ``n_infinite``: those
    left out)."""
    psnr = [c for c in columns if "psnr" in c]
    common = [row for row in rows if not any(_infinite(row.get(c)) for c in psnr)]
    summary = {}
    for column in columns:
        if column not in psnr:
            summary[column] = column_stats([row.get(column) for row in rows])
            continue
        stats = column_stats([row.get(column) for row in common])
        everywhere = column_stats([row.get(column) for row in rows])["n"]
        stats.update(n=everywhere, n_infinite=everywhere - stats["n"])
        summary[column] = stats
    return summary


def _infinite(value: float | None) -> bool:
    return value is not None and math.isinf(float(value))


def summarize_groups(rows: Sequence[dict], columns: Sequence[str], key: str) -> dict[str, dict]:
    """Per group (value of ``key``, in first-seen order): ``n`` rows and each column's stats."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(str(row.get(key)), []).append(row)
    return {
        name: {"n": len(members), "metrics": summarize(members, columns)}
        for name, members in groups.items()
    }


def gain(after: float | None, before: float | None) -> float | None:
    """``after - before``; None when either is missing or the difference is undefined."""
    if after is None or before is None:
        return None
    value = after - before
    return None if math.isnan(value) else value

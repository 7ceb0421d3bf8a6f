"""Summary statistics of per-frame metric columns (means, medians, per sequence).

Frames with an infinite PSNR (identical images) would make every mean infinite, so the
statistics are taken over the finite values and the number of infinite ones is reported
beside them (``n_infinite``). Empty values (``None``, e.g. no input given) are skipped.
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
    """:func:`column_stats` of each named column over ``rows``."""
    return {c: column_stats([row.get(c) for row in rows]) for c in columns}


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

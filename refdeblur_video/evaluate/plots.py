"""Report figures drawn with matplotlib's Agg canvas, returned as PNG bytes.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot), so the
global backend and any interactive session of the caller are left alone.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# One colour per variant, the same in every figure.
COLOURS = {
    "input": "#d62728",
    "output": "#1f77b4",
    "model": "#1f77b4",
    "self_ref": "#ff7f0e",
    "unrelated_ref": "#2ca02c",
    "network_only": "#9467bd",
}
STYLES = {  # line style and marker per variant, so curves that coincide stay visible
    "input": ("-", "o"),
    "output": ("-", "s"),
    "model": ("-", "s"),
    "self_ref": ("--", "^"),
    "unrelated_ref": (":", "v"),
    "network_only": ("-.", "D"),
}
DPI = 100


def _finite_or_nan(values: Sequence[float | None]) -> list[float]:
    return [v if v is not None and math.isfinite(v) else math.nan for v in values]


def _to_png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # a tiny report's axes may not fit: drawn as they are
        warnings.filterwarnings("ignore", message="constrained_layout not applied")
        figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _style(variant: str, n: int) -> dict:
    line, marker = STYLES.get(variant, ("-", "o"))
    return {"linestyle": line, "marker": marker if n <= 120 else None, "markersize": 3.5,
            "markerfacecolor": "none", "linewidth": 1.2, "color": COLOURS.get(variant)}


def _mark_infinite(ax, x: Sequence[float], variants: dict[str, Sequence[float | None]]) -> None:
    """Draw infinite values (identical images) as hollow triangles along the top edge."""
    infinite = {v: [i for i, value in enumerate(vals) if value == math.inf]
                for v, vals in variants.items()}
    if not any(infinite.values()):
        return
    finite = [value for vals in variants.values() for value in _finite_or_nan(vals)
              if not math.isnan(value)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    top = high + max(1.0, 0.08 * (high - low))
    for variant, positions in infinite.items():
        if positions:
            ax.scatter([x[i] for i in positions], [top] * len(positions), marker="^", s=28,
                       facecolors="none", edgecolors=COLOURS.get(variant), zorder=3)
    ax.set_ylim(top=top + max(0.5, 0.1 * (top - low)))
    ax.annotate("inf (identical)", (0.0, top), xycoords=("axes fraction", "data"),
                xytext=(4, 5), textcoords="offset points", fontsize=7, color="grey")


def metric_curves(
    x: Sequence[float],
    series: dict[str, dict[str, Sequence[float | None]]],
    *,
    xlabel: str,
    labels: dict[str, str],
    boundaries: Sequence[tuple[float, str]] = (),
) -> bytes:
    """One panel per metric (``series[metric][variant] = values``), one line per variant.

    Infinite values (PSNR of identical frames) are drawn as hollow triangles along the top
    of the panel, with gaps in the lines. ``boundaries``
    draws labelled vertical separators (e.g. where a new sequence starts).
    """
    figure = Figure(figsize=(10, 2.6 * len(series) + 0.6), layout="constrained")
    axes = figure.subplots(len(series), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (metric, variants) in zip(axes, series.items(), strict=True):
        for variant, values in variants.items():
            ax.plot(x, _finite_or_nan(values), label=labels.get(variant, variant),
                    **_style(variant, len(x)))
        _mark_infinite(ax, x, variants)
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
        for position, name in boundaries:
            ax.axvline(position - 0.5, color="grey", linewidth=0.8, linestyle=":")
            if ax is axes[0]:
                ax.annotate(
                    name, (position - 0.5, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(2, -2), textcoords="offset points", va="top", fontsize=7,
                    color="grey",
                )
        ax.legend(loc="best", fontsize=8)
    axes[-1].set_xlabel(xlabel)
    return _to_png(figure)


def group_bars(
    groups: Sequence[str], means: dict[str, Sequence[float | None]], *, ylabel: str,
    labels: dict[str, str],
) -> bytes:
    """Grouped bars: per group (sequence), the mean of each variant."""
    width = 0.8 / max(1, len(means))
    figure = Figure(figsize=(max(6.5, 0.9 * len(groups) + 4), 3.2), layout="constrained")
    ax = figure.subplots()
    for k, (variant, values) in enumerate(means.items()):
        positions = [i + (k - (len(means) - 1) / 2) * width for i in range(len(groups))]
        ax.bar(
            positions, _finite_or_nan(values), width, label=labels.get(variant, variant),
            color=COLOURS.get(variant),
        )
    ax.set_xticks(range(len(groups)), groups, rotation=30 if len(groups) > 6 else 0, ha="right")
    ax.set_ylabel(ylabel)
    finite = [v for vals in means.values() for v in _finite_or_nan(vals) if not math.isnan(v)]
    if finite and ylabel.startswith("PSNR"):  # zoom in on the differences
        ax.set_ylim(max(0.0, min(finite) - 2.0), max(finite) + 1.0)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars
    return _to_png(figure)


def sharpness_timeline(
    x: Sequence[float],
    before: Sequence[float | None],
    after: Sequence[float | None],
    *,
    xlabel: str,
    blurry: Sequence[bool] = (),
    references: Sequence[int | None] = (),
) -> bytes:
    """Sharpness of input and output over time; blurry frames and chosen references marked.

    ``blurry`` and ``references`` (reference frame number per frame, position = frame
    number in ``x``'s order) come from the pipeline's frame log; when given, a second panel
    shows which reference each frame used.
    """
    has_refs = any(r is not None for r in references)
    figure = Figure(figsize=(10, 5.6 if has_refs else 3.2), layout="constrained")
    rows = 2 if has_refs else 1
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    ax = axes[0]
    ax.plot(x, _finite_or_nan(before), color=COLOURS["input"], label="input", linewidth=1.2)
    ax.plot(x, _finite_or_nan(after), color=COLOURS["output"], label="output", linewidth=1.2)
    marked_blurry = [i for i, b in enumerate(blurry) if b and i < len(x)]
    if marked_blurry:
        ax.scatter(
            [x[i] for i in marked_blurry], [before[i] for i in marked_blurry], marker="x",
            color=COLOURS["input"], s=22, label="restored (log)", zorder=3,
        )
    used = sorted({r for r in references if r is not None and 0 <= r < len(x)})
    if used:
        ax.scatter(
            [x[r] for r in used], [before[r] for r in used], marker="^", s=40,
            facecolors="none", edgecolors="black", label="used as reference", zorder=4,
        )
    ax.set_ylabel("sharpness")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    if has_refs:
        ax2 = axes[1]
        pairs = [(x[i], x[r]) for i, r in enumerate(references) if r is not None and r < len(x)]
        ax2.plot(x, x, color="lightgrey", linewidth=0.8, label="frame itself")
        ax2.scatter(
            [p[0] for p in pairs], [p[1] for p in pairs], s=14, color="black",
            label="reference used",
        )
        ax2.set_ylabel(f"reference ({xlabel})")
        ax2.grid(True, alpha=0.3)
        ax2.legend(loc="best", fontsize=8)
    axes[-1].set_xlabel(xlabel)
    return _to_png(figure)

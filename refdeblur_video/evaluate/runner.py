"""Pieces shared by the evaluation modes: walking sources in step, scoring, ranking, progress."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, closing
from pathlib import Path

import numpy as np
from tqdm import tqdm

from refdeblur_video.errors import UserError
from refdeblur_video.evaluate import metrics
from refdeblur_video.video.frame import Frame
from refdeblur_video.video.sources import announced_frames, iter_frames, known_frames


def progress(total: int | None, description: str, quiet: bool) -> tqdm:
    """A tqdm bar on stderr (disabled with ``quiet``)."""
    return tqdm(total=total, desc=description, unit="frame", disable=quiet, leave=False)


def score(
    result: np.ndarray, truth: np.ndarray, *, y_channel: bool, what: str
) -> tuple[float, float]:
    """``(psnr, ssim)`` of ``result`` against ``truth``; size errors name ``what``."""
    if result.shape != truth.shape:
        raise UserError(f"{what}: size {frame_size(result)} differs from the ground truth's "
                        f"{frame_size(truth)}")
    return (
        metrics.psnr(result, truth, y_channel=y_channel),
        metrics.ssim(result, truth, y_channel=y_channel),
    )


def frame_size(image: np.ndarray) -> str:
    """``WIDTHxHEIGHT`` of an H x W (x C) image, for messages."""
    return f"{image.shape[1]}x{image.shape[0]}"


def walk_in_step(sources: dict[str, str | Path]) -> Iterator[dict[str, Frame]]:
    """Frames of several sources side by side (``name -> Frame`` per step).

    The sources must have the same number of frames: counts known up front (folders) are
    checked before decoding, video lengths when the first one ends.
    """
    known = {name: known_frames(path) for name, path in sources.items()}
    counts = {name: n for name, n in known.items() if n is not None}
    if len(set(counts.values())) > 1:
        raise UserError(f"frame counts differ: {_describe_counts(counts)}")
    with ExitStack() as stack:
        streams = {
            name: stack.enter_context(closing(iter_frames(path, uint8=True)))
            for name, path in sources.items()
        }
        position = 0
        while True:
            step = {name: next(stream, None) for name, stream in streams.items()}
            ended = [name for name, frame in step.items() if frame is None]
            if len(ended) == len(step):
                return
            if ended:
                totals = {
                    name: position + (0 if frame is None else 1 + sum(1 for _ in streams[name]))
                    for name, frame in step.items()
                }
                raise UserError(f"frame counts differ: {_describe_counts(totals)}")
            yield step
            position += 1


def _describe_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} has {n} frame{'s' if n != 1 else ''}" for name, n in counts.items())


def expected_length(sources: dict[str, str | Path]) -> int | None:
    """Frame count for the progress bar when any source knows it."""
    return next((n for n in map(announced_frames, sources.values()) if n is not None), None)


def pick_extremes(rows: Sequence[dict], key: str, count: int = 1) -> list[tuple[str, int]]:
    """``("best"|"worst", row position)`` of the ``count`` rows with the largest and the
    ``count`` with the smallest ``key``; where there are fewer than twice as many, the upper
    half (with the middle row) is the best and the rest the worst, so that no row is
    named for the other end."""
    ranked = [i for i in range(len(rows)) if rows[i].get(key) is not None]
    ranked.sort(key=lambda i: rows[i][key], reverse=True)
    best = ranked[:max(0, min(count, (len(ranked) + 1) // 2))]
    worst = ranked[len(best):][::-1][:max(0, count)]
    return [("best", i) for i in best] + [("worst", i) for i in worst]


def metric_columns(metric_names: Sequence[str], variants: Sequence[str]) -> list[str]:
    """``<metric>_<variant>`` for every pair, metric-major."""
    return [f"{m}_{v}" for m in metric_names for v in variants]

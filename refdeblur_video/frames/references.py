"""Which frames are blurry, and which nearby sharp frame each blurry frame borrows from.

Rules (the same for :func:`plan_references` and the streaming :class:`ReferencePlanner`):

0. **Shots.** Every window and candidate list below holds only frames of the frame's own
   shot (the shot numbers come from :mod:`refdeblur_video.frames.shots`; without them the
   whole video is one shot): sharpness is not comparable across a cut, and a frame of
   another shot is no reference.
1. **Normalise.** A frame's score is divided by the best score within ``+-window`` frames
   (itself included). Sharpness scores depend on scene content, so only this local ratio is
   compared. A window whose best score is 0 (flat frames) gives ratio 1.
2. **Classify.** Ratio ``>= threshold`` means sharp: the frame passes through untouched.
   Below it the frame is blurry. ``all_frames=True`` marks every frame blurry (sent to the
   network); ``FrameDecision.sharp`` still says which reached the threshold.
   Default threshold 0.8: motion blur of a few pixels typically cuts the variance of the
   Laplacian by well over half, while sharp frames of one shot vary by roughly 10-20% as the
   content moves; 0.8 still catches mild blur, and a sharp frame wrongly sent to the model
   costs time only: the pipeline writes a frame the network did not sharpen as it came
   (``sharpness.sharpened``).
3. **Reference.** For a blurry frame, the sharpest frame within ``+-max_offset`` frames,
   excluding itself. Scores within ``TIE_RATIO`` (90 %) of that best score count as ties
   (sharp frames of one shot differ by about that much as the content moves), and ties go
   to the nearer frame, then to the earlier one: a nearer frame shows more of the same
   content, which is what the reference is for.
4. **Second choice.** Rule 3 applied to the candidates on the other side of the blurry
   frame only, or -1: the pipeline restores against it when the reference check rejects
   the first choice (a cut the shot detection missed, say, or a flash), and otherwise
   transfers detail from it after the first (it shows what the first may not).
5. **Fallback.** If rule 3 finds no frame scoring strictly higher than the blurry frame
   itself (possible only with ``all_frames=True``, a shot of one frame, or ``max_offset <
   window``), the reference is ``-1``: there is no better frame to borrow from, and the caller
   restores the frame with itself as reference (or leaves it as it is). With the defaults
   ``max_offset >= window``, so a frame classified blurry always has a sharper reference.

Defaults: ``window = 5`` and ``max_offset = 5`` (about 0.2 s at 25-30 fps, short enough that
the reference shows the same content). The streaming planner decides frame ``i`` once frame
``i + lookahead`` (``lookahead = max(window, max_offset)``) has been scored, and keeps only
``2 * lookahead + 1`` scores; a caller buffering frames must keep frames ``i - max_offset ..
i + lookahead`` to have each decision's reference at hand.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_MAX_OFFSET",
    "DEFAULT_THRESHOLD",
    "DEFAULT_WINDOW",
    "FrameDecision",
    "ReferencePlanner",
    "plan_references",
]

DEFAULT_WINDOW = 5
DEFAULT_MAX_OFFSET = 5
DEFAULT_THRESHOLD = 0.8
TIE_RATIO = 0.9


@dataclass(frozen=True)
class FrameDecision:
    """The verdict for one frame. ``blurry``: it goes to the network (rule 2, or every frame
    with ``all_frames``); ``reference`` is a frame index, or -1 when there is none;
    ``second`` is the best frame on the other side of it (rule 4), or -1; ``shot`` is the
    frame's shot number; ``sharp``: its ratio reaches the threshold (rule 2), so it is not
    blurry unless ``all_frames`` sends it anyway."""

    index: int
    score: float
    normalised: float
    blurry: bool
    reference: int
    second: int = -1
    shot: int = 0
    sharp: bool = False


@dataclass(frozen=True)
class _Params:
    window: int
    max_offset: int
    threshold: float
    all_frames: bool

    def __post_init__(self) -> None:
        if self.window < 0:
            raise ValueError(f"window must be >= 0, got {self.window}")
        if self.max_offset < 1:
            raise ValueError(f"max_offset must be >= 1, got {self.max_offset}")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")

    @property
    def lookahead(self) -> int:
        return max(self.window, self.max_offset)


def _check_score(score: float) -> float:
    value = float(score)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"sharpness scores must be finite and >= 0, got {score!r}")
    return value


def _decide(i: int, score: Callable[[int], float], shot: Callable[[int], int], last: int,
            p: _Params) -> FrameDecision:
    """Decision for frame ``i`` given the scores and shots of frames ``0..last`` (only the
    window is read)."""
    own, own_shot = score(i), shot(i)

    def near(radius: int) -> list[int]:
        return [j for j in range(max(0, i - radius), min(last, i + radius) + 1)
                if shot(j) == own_shot]

    best = max(score(j) for j in near(p.window))
    normalised = own / best if best > 0 else 1.0
    sharp = normalised >= p.threshold
    blurry = p.all_frames or not sharp
    reference = second = -1
    if blurry:
        candidates = [j for j in near(p.max_offset) if j != i]
        reference = _pick(i, candidates, own, score)
        if reference >= 0:
            other_side = [j for j in candidates if (j - i) * (reference - i) < 0]
            second = _pick(i, other_side, own, score)
    return FrameDecision(i, own, normalised, blurry, reference, second, own_shot, sharp)


def _pick(i: int, candidates: list[int], own: float, score: Callable[[int], float]) -> int:
    """Rule 3 among ``candidates``: the sharpest (ties: nearer, then earlier), if sharper
    than frame ``i`` itself; else -1."""
    if not candidates:
        return -1
    top = max(score(j) for j in candidates)
    ties = [j for j in candidates if score(j) >= TIE_RATIO * top and score(j) > own]
    return min(ties, key=lambda j: (abs(j - i), j)) if ties else -1


def plan_references(
    scores: Sequence[float],
    *,
    window: int = DEFAULT_WINDOW,
    max_offset: int = DEFAULT_MAX_OFFSET,
    threshold: float = DEFAULT_THRESHOLD,
    all_frames: bool = False,
    shots: Sequence[int] | None = None,
) -> list[FrameDecision]:
    """Decisions for a whole list of sharpness scores (offline); ``shots`` gives each
    frame's shot number (non-decreasing; default: one shot)."""
    p = _Params(window, max_offset, threshold, all_frames)
    values = [_check_score(s) for s in scores]
    shot_of = [0] * len(values) if shots is None else list(shots)
    steps = zip(shot_of, shot_of[1:], strict=False)
    if len(shot_of) != len(values) or any(b < a for a, b in steps):
        raise ValueError("shots needs one non-decreasing number per score")
    last = len(values) - 1
    return [_decide(i, values.__getitem__, shot_of.__getitem__, last, p)
            for i in range(len(values))]


class ReferencePlanner:
    """Streaming version of :func:`plan_references` with memory bounded by the window.

    ``push(score, new_shot)`` returns the decisions that became final (at most one per push
    once the look-ahead is filled), ``finish()`` returns the rest. Concatenated, they equal
    ``plan_references(all_scores, shots=...)`` with a new shot number wherever ``new_shot``
    was True.
    """

    def __init__(
        self,
        *,
        window: int = DEFAULT_WINDOW,
        max_offset: int = DEFAULT_MAX_OFFSET,
        threshold: float = DEFAULT_THRESHOLD,
        all_frames: bool = False,
    ) -> None:
        self._p = _Params(window, max_offset, threshold, all_frames)
        self._scores: deque[float] = deque(maxlen=2 * self._p.lookahead + 1)
        self._shots: deque[int] = deque(maxlen=2 * self._p.lookahead + 1)
        self._count = 0  # scores pushed so far
        self._next = 0  # next index to decide
        self._finished = False

    @property
    def lookahead(self) -> int:
        """How many later frames must be scored before a frame's decision is released."""
        return self._p.lookahead

    @property
    def max_offset(self) -> int:
        """How far back (and ahead) a reference can be."""
        return self._p.max_offset

    def _score(self, j: int) -> float:
        return self._scores[j - (self._count - len(self._scores))]

    def _shot(self, j: int) -> int:
        return self._shots[j - (self._count - len(self._shots))]

    def push(self, score: float, new_shot: bool = False) -> list[FrameDecision]:
        """Add the next frame's score (``new_shot``: a cut before this frame); return the
        decisions that no longer depend on the future."""
        if self._finished:
            raise RuntimeError("push() after finish()")
        self._scores.append(_check_score(score))
        self._shots.append((self._shots[-1] + bool(new_shot)) if self._shots else 0)
        self._count += 1
        return self._release(self._count - 1 - self._p.lookahead)

    def finish(self) -> list[FrameDecision]:
        """No more frames: release every remaining decision."""
        self._finished = True
        return self._release(self._count - 1)

    def _release(self, up_to: int) -> list[FrameDecision]:
        out = []
        while self._next <= up_to:
            out.append(_decide(self._next, self._score, self._shot, self._count - 1, self._p))
            self._next += 1
        return out

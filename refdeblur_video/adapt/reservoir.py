"""One decoding pass that keeps a bounded sample of a video's sharp frames for adaptation.

The pass scores and plans every frame as the pipeline does (same sharpness, cuts and
reference planner), so "sharp" means what it means there: a frame the pipeline leaves
untouched. From each sharp frame that the reservoir accepts it keeps one *region*: a crop
(at the most textured of a few random places) with a margin around it for the synthetic
blur, and the same place in its real neighbours of the same shot (for averaging and as
references). Reservoir sampling (Vitter's algorithm R) keeps every sharp frame equally
likely to be chosen while holding at most ``capacity`` regions, whatever the video's length.

Frames are split by blocks of consecutive frames into training and held-back frames; the
held-back ones only ever serve the safety check. The pass also keeps the sharpness ratios
of the blurry frames (what the strength fit matches), small thumbnails of sharp frames, and
*probes*: a sample of blurry frames with their planned sharp reference, in small grey
copies, from which :mod:`.kernels` estimates the video's own blur; and a sample of blurry
frames with their reference at full size, the pseudo targets' sources (:mod:`.pseudo`).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..frames.references import FrameDecision, ReferencePlanner
from ..frames.sharpness import DEFAULT_MAX_SIDE, sharpness
from ..frames.shots import CutDetector
from ..video.reader import CorruptVideoWarning, Frame
from .crosscheck import MAX_PIXELS, Crosscheck
from .kernels import to_working_grey
from .pseudo import BlurryPair

MAX_MARGIN = 160  # pixels of blur margin kept around a crop, at most
MARGIN_AT_720P = 80  # covers the camera-shake paths of the fitted strengths (up to ~2)
AVERAGE_REACH = 2  # neighbours kept on each side for frame averaging (up to 5 frames)
EXTRA_REFERENCES = 2  # sharp neighbours further out kept as references
THUMBNAILS = 8  # sharp-frame thumbnails kept for the strength fit
RATIOS = 4096  # blurry-frame sharpness ratios kept for the strength fit
PROBES = 12  # blurry frames kept (with their references) for the kernel estimates
CROSSCHECKS = 3  # blurry frames kept at full size, with a sharp neighbour on each side
PAIRS = 8  # blurry frames kept at full size with their reference, for pseudo targets
CROP_TRIES = 4  # random places tried per crop; the most textured is kept


@dataclass
class Region:
    """A sharp frame's crop with its blur margin and its real neighbours at the same place.

    ``sharp`` is ``(crop + 2 * margin)`` square, its top-left at ``origin`` (y, x) in the
    frame (reflected where it passes the frame's edge); ``neighbours`` maps an offset in
    frames to the ``crop`` square of that frame at the crop's place; ``usable`` says which
    of them are sharp enough to serve as a reference.
    """

    index: int
    sharp: np.ndarray
    margin: int
    origin: tuple[int, int]
    frame_hw: tuple[int, int]
    neighbours: dict[int, np.ndarray] = field(default_factory=dict)
    usable: dict[int, bool] = field(default_factory=dict)

    @property
    def crop(self) -> int:
        return self.sharp.shape[0] - 2 * self.margin

    @property
    def target(self) -> np.ndarray:
        """The crop itself (the sharp training target)."""
        m, c = self.margin, self.crop
        return self.sharp[m:m + c, m:m + c]

    @property
    def nbytes(self) -> int:
        return self.sharp.nbytes + sum(a.nbytes for a in self.neighbours.values())


class Reservoir:
    """At most ``capacity`` items, each offered one equally likely to be kept (algorithm R).

    ``offer()`` says whether the next item would be kept (and where), so that an item is
    only made when it is kept.
    """

    def __init__(self, capacity: int, rng: np.random.Generator) -> None:
        self.capacity, self.rng = capacity, rng
        self.items: list = []
        self.seen = 0

    def offer(self) -> int | None:
        """The slot the next item goes to, or None when it is not kept."""
        self.seen += 1
        if len(self.items) < self.capacity:
            return len(self.items)
        slot = int(self.rng.integers(self.seen))
        return slot if slot < self.capacity else None

    def put(self, slot: int, item: object) -> None:
        if slot == len(self.items):
            self.items.append(item)
        else:
            self.items[slot] = item


@dataclass
class Probe:
    """A blurry frame and its planned reference, grey at the kernels' working size."""

    index: int
    blurry: np.ndarray
    reference: np.ndarray


@dataclass
class VideoSample:
    """What the pass kept of a video (everything bounded)."""

    train: list[Region]
    held: list[Region]
    thumbnails: list[np.ndarray]
    blurry_ratios: list[float]
    frames: int  # frames read
    sharp_frames: int
    blurry_frames: int
    complete: bool  # False: the pass stopped early (time) and saw only the start
    probes: list[Probe] = field(default_factory=list)
    crosschecks: list[Crosscheck] = field(default_factory=list)
    pairs: list[BlurryPair] = field(default_factory=list)


def margin_for(frame_hw: tuple[int, int]) -> int:
    """Blur margin (pixels) kept around crops of frames of this size."""
    return int(min(MAX_MARGIN, math.ceil(MARGIN_AT_720P * min(frame_hw) / 720)))


def crop_size(wanted: int, frame_hw: tuple[int, int]) -> int:
    """The crop edge for these frames: ``wanted``, or less (a multiple of 8) in small frames."""
    return max(16, min(wanted, min(frame_hw) // 8 * 8))


def held_block(frame_count: int | None) -> int:
    """Frames per block of the training / held-back split: long enough that a held-back
    frame's close neighbours are mostly held back too, short enough for short clips."""
    if not frame_count:
        return 12
    return int(np.clip(frame_count // 20, 1, 30))


def thumbnail(image: np.ndarray) -> np.ndarray:
    """An RGB copy at the resolution the sharpness score is computed at."""
    h, w = image.shape[:2]
    longest = max(h, w)
    if longest <= DEFAULT_MAX_SIDE:
        return image.copy()
    f = DEFAULT_MAX_SIDE / longest
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _padded(frame: np.ndarray, y: int, x: int, size: int) -> np.ndarray:
    """``frame[y:y+size, x:x+size]``, reflected where it passes the edges (a copy)."""
    h, w = frame.shape[:2]
    y1, x1 = y + size, x + size
    region = frame[max(0, y):min(h, y1), max(0, x):min(w, x1)]
    pads = (max(0, -y), max(0, y1 - h), max(0, -x), max(0, x1 - w))
    if any(pads):
        return cv2.copyMakeBorder(region, *pads, cv2.BORDER_REFLECT101)
    return region.copy()


def _texture(patch: np.ndarray) -> float:
    grey = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(cv2.Laplacian(grey, cv2.CV_32F, ksize=1).var())


def _place(frame: np.ndarray, crop: int, rng: np.random.Generator) -> tuple[int, int]:
    """The most textured of a few random crop places (flat sky teaches the network nothing)."""
    h, w = frame.shape[:2]
    step = max(1, crop // 64)  # texture judged on a subsampled crop: cheap at any size
    places = [(int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1)))
              for _ in range(CROP_TRIES)]
    return max(places, key=lambda p: _texture(
        frame[p[0]:p[0] + crop:step, p[1]:p[1] + crop:step]))


class _Collector:
    """The bookkeeping of one pass: frames in a short buffer, decisions, reservoirs."""

    def __init__(self, planner: ReferencePlanner, threshold: float, crop: int, capacity: int,
                 held_capacity: int, block: int, held_every: int,
                 rng: np.random.Generator) -> None:
        self.planner, self.threshold, self.wanted_crop, self.rng = planner, threshold, crop, rng
        self.block, self.held_every = block, held_every
        self.train = Reservoir(capacity, rng)
        self.held = Reservoir(held_capacity, rng)
        self.thumbs = Reservoir(THUMBNAILS, rng)
        self.ratios = Reservoir(RATIOS, rng)
        self.probes = Reservoir(PROBES, rng)
        self.crosschecks = Reservoir(CROSSCHECKS, rng)
        self.pairs = Reservoir(PAIRS, rng)
        self.buffer: dict[int, np.ndarray] = {}
        self.scores: dict[int, float] = {}
        self.shots: dict[int, int] = {}
        self.frames = self.sharp = self.blurry = 0
        self.shot = 0
        self.reach = max(AVERAGE_REACH, planner.max_offset)

    def push(self, image: np.ndarray, new_shot: bool) -> None:
        index = self.frames
        self.frames += 1
        self.shot += bool(new_shot) and index > 0
        self.buffer[index], self.shots[index] = image, self.shot
        self.scores[index] = score = sharpness(image)
        self._handle(self.planner.push(score, new_shot))

    def finish(self) -> None:
        self._handle(self.planner.finish())

    def _handle(self, decisions: list[FrameDecision]) -> None:
        for decision in decisions:
            if decision.normalised < self.threshold:
                self.blurry += 1
                slot = self.ratios.offer()
                if slot is not None:
                    self.ratios.put(slot, float(decision.normalised))
                self._probe(decision)
            else:
                self.sharp += 1
                self._keep(decision)
            forget = decision.index - self.reach
            for table in (self.buffer, self.scores, self.shots):
                for old in [k for k in table if k <= forget]:
                    del table[old]

    def _probe(self, decision: FrameDecision) -> None:
        i, j = decision.index, decision.reference
        if j < 0 or j not in self.buffer or i not in self.buffer:
            return
        slot = self.probes.offer()
        if slot is not None:
            self.probes.put(slot, Probe(i, to_working_grey(self.buffer[i]),
                                        to_working_grey(self.buffer[j])))
        if self.buffer[i].shape[0] * self.buffer[i].shape[1] > MAX_PIXELS:
            return
        k = decision.second
        both = k >= 0 and k in self.buffer
        slot = self.pairs.offer()
        if slot is not None:
            self.pairs.put(slot, BlurryPair(i, self.buffer[i].copy(), self.buffer[j].copy(),
                                            self.buffer[k].copy() if both else None,
                                            (i - j) / (k - j) if both else None))
        if not both:
            return
        slot = self.crosschecks.offer()
        if slot is not None:
            self.crosschecks.put(slot, Crosscheck(i, self.buffer[i].copy(),
                                                  self.buffer[j].copy(), self.buffer[k].copy()))

    def _keep(self, decision: FrameDecision) -> None:
        i = decision.index
        frame = self.buffer[i]
        held = (i // self.block) % self.held_every == self.held_every - 1
        reservoir = self.held if held else self.train
        slot = reservoir.offer()
        if slot is not None:
            reservoir.put(slot, self._region(i, frame))
        if not held:
            slot = self.thumbs.offer()
            if slot is not None:
                self.thumbs.put(slot, thumbnail(frame))

    def _region(self, i: int, frame: np.ndarray) -> Region:
        hw = frame.shape[:2]
        crop, margin = crop_size(self.wanted_crop, hw), margin_for(hw)
        y, x = _place(frame, crop, self.rng)
        region = Region(i, _padded(frame, y - margin, x - margin, crop + 2 * margin), margin,
                        (y - margin, x - margin), (int(hw[0]), int(hw[1])))
        same_shot = [j for j in self.buffer if j != i and self.shots[j] == self.shots[i]]
        near = [j for j in same_shot if abs(j - i) <= AVERAGE_REACH]
        far = [j for j in same_shot if AVERAGE_REACH < abs(j - i) <= self.planner.max_offset
               and self.scores[j] >= self.threshold * self.scores[i]]
        far = list(self.rng.permutation(far))[:EXTRA_REFERENCES] if far else []
        for j in [*near, *far]:
            j = int(j)
            region.neighbours[j - i] = self.buffer[j][y:y + crop, x:x + crop].copy()
            region.usable[j - i] = self.scores[j] >= self.threshold * self.scores[i]
        return region


def scan_video(
    frames: Iterable[Frame], *, window: int, max_offset: int, threshold: float, cuts: bool,
    crop: int, capacity: int, held_capacity: int, held_every: int,
    frame_count: int | None, deadline: float | None, seed: int,
    progress: Callable[[int], None] | None = None,
) -> VideoSample:
    """Read ``frames`` once and keep a bounded sample of them (see the module docstring).

    ``deadline`` (a ``time.monotonic()`` value) ends the pass early: the sample is then of
    the frames read so far. ``progress(n)`` is called after each frame.
    """
    planner = ReferencePlanner(window=window, max_offset=max_offset, threshold=threshold)
    collector = _Collector(planner, threshold, crop, capacity, held_capacity,
                           held_block(frame_count), held_every, np.random.default_rng(seed))
    detector = CutDetector() if cuts else None
    complete = True
    with warnings.catch_warnings():  # the restoring pass reports a damaged stream
        warnings.simplefilter("ignore", CorruptVideoWarning)
        for frame in frames:
            new_shot = detector is not None and detector.push(frame.image)
            collector.push(frame.image, new_shot)
            if progress is not None:
                progress(1)
            if deadline is not None and time.monotonic() > deadline:
                complete = False
                break
    collector.finish()
    return VideoSample(collector.train.items, collector.held.items, collector.thumbs.items,
                       collector.ratios.items, collector.frames, collector.sharp,
                       collector.blurry, complete, collector.probes.items,
                       collector.crosschecks.items, collector.pairs.items)

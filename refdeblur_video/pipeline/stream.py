"""The streaming pipeline of one video: four stages joined by bounded queues.

    decode + score + cuts + plan  ──►  network (batched)  ──►  refine  ──►  encode + log
                                                                          (main thread)

The network (PyTorch) and the refine step (the reference transfer: OpenCV, NumPy, or
PyTorch on a GPU) run in threads of their own, so one batch's transfers overlap the next
batch's network. On a GPU the refine step finishes each network batch's outputs together.

The first stage keeps only the frames that a pending decision may still use as reference
(``max_offset`` back, the planner's look-ahead forward); the queues hold at most
``queue_size`` frames each, so memory does not grow with the video's length.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..frames.references import FrameDecision, ReferencePlanner
from ..frames.sharpness import sharpness
from ..frames.shots import CutDetector
from ..interrupts import Interrupted
from ..malloc import share_malloc_arenas
from ..video.reader import Frame

_END = object()


class TransferRequest(NamedTuple):
    """What the refine step gets for one frame after the network (its call's arguments)."""

    output: Any  # the network's output (float array, or a DeviceOutput)
    frame: np.ndarray  # the blurry input
    reference: np.ndarray | None  # transferred from; None: nothing to transfer
    other: np.ndarray | None  # the other side's, transferred from after it
    fraction: float | None  # where the frame sits in time between the two


@dataclass
class WorkItem:
    """One frame on its way to the encoder."""

    frame: Frame
    decision: FrameDecision
    reference: np.ndarray | None  # None: pass through untouched
    second: np.ndarray | None = None  # the other side's: restored against if the check
    # rejects ``reference``, else transferred from after it (``other_reference``)
    output: np.ndarray | None = None  # the network's float output, then the final image
    reference_used: bool | None = None  # False: the reference check put the frame in its place
    second_used: bool = False  # the output was restored against ``second``
    # restored, but no sharper than it came (``frames.sharpness.sharpened``): the caller
    # writes it as it came
    unchanged: bool = False
    # where ``reference`` is the caller's one image for every frame (forced), what the
    # planner chose (reference, second and their times), taken instead where the check
    # rejects the forced image: a wrong --ref is no worse than none
    planned: tuple | None = None
    seconds: float = 0.0
    ends_batch: bool = False  # the last frame of a network batch (the refine step's groups)
    # presentation times (s) of the frame's reference and second, where the stream has them
    reference_time: float | None = None
    second_time: float | None = None

    @property
    def forced(self) -> bool:
        """``reference`` is the caller's one image for every frame."""
        return self.planned is not None

    def unforce(self) -> None:
        """Drop the forced image for the planner's choice, as without it."""
        self.reference, self.second, self.reference_time, self.second_time = self.planned
        self.planned = None

    @property
    def used_reference(self) -> np.ndarray | None:
        """The image the output was restored against (None: the frame itself)."""
        if not self.reference_used:
            return None
        return self.second if self.second_used else self.reference

    @property
    def other_reference(self) -> np.ndarray | None:
        """The planner's second choice (the sharp frame on the other side) when the output
        was restored against its first: the transfer takes detail from both. None when
        there is none, or when the first was rejected (then the second is the one used)."""
        return self.second if self.reference_used and not self.second_used else None

    @property
    def transfer_request(self) -> TransferRequest:
        """What the refine step gets after the network. A frame judged sharp (sent to the
        network only by ``--all-frames``) gets no reference: a neighbour no sharper than it
        has no detail to add, and the transfer would swap the frame's own fine detail, and
        whatever changed there since (noise, grain, ripples), for the neighbour's."""
        if self.decision.sharp:
            return TransferRequest(self.output, self.frame.image, None, None, None)
        return TransferRequest(self.output, self.frame.image, self.used_reference,
                               self.other_reference, self.fraction)

    @property
    def fraction(self) -> float | None:
        """Where the frame sits in time between the image it was restored against and
        :attr:`other_reference` (0 at the first, 1 at the other), by their presentation
        times (variable frame rates) or else their positions, for the transfer to
        interpolate the camera's motion; None without an other reference."""
        if self.forced or self.other_reference is None:
            return None
        now, first, other = self.frame.time_s, self.reference_time, self.second_time
        if now is None or first is None or other is None or other == first:
            # no timestamps: frames evenly spaced
            now, first, other = self.decision.index, self.decision.reference, self.decision.second
        return (now - first) / (other - first) if other != first else None

    @property
    def reference_index(self) -> int:
        """The frame the output borrowed from, as the frame log gives it: -1 when none (or
        not blurry), -2 for a forced reference image."""
        if not self.decision.blurry:
            return -1
        if self.forced:
            return -2
        return self.decision.second if self.second_used else self.decision.reference


class _Stage(threading.Thread):
    """A daemon thread that records the first exception instead of dying silently."""

    def __init__(self, target: Callable[[], None], errors: list[BaseException],
                 stop: threading.Event, name: str) -> None:
        super().__init__(daemon=True, name=name)
        self._target_fn, self._errors, self._stop_event = target, errors, stop

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self._errors.append(exc)
            self._stop_event.set()


def _put(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put with a timeout loop so that a stopped pipeline never blocks forever."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def plan_frames(
    frames: Iterable[Frame], planner: ReferencePlanner, forced_reference: np.ndarray | None,
    cuts: CutDetector | None = None, forced_fits: Callable[[Frame], bool] | None = None,
) -> Iterator[WorkItem]:
    """Score frames (and find shot cuts, with ``cuts``), release decisions in order, attach
    each blurry frame's reference: ``forced_reference`` where given, unless
    ``forced_fits(frame)`` says it does not suit that frame (then the planner's choice, as
    without it)."""
    buffer: dict[int, Frame] = {}

    def release(decisions: list[FrameDecision]) -> Iterator[WorkItem]:
        for decision in decisions:
            frame = buffer[decision.index]
            reference = second = None
            times: list[float | None] = [None, None]
            if decision.blurry:
                if decision.reference >= 0:
                    reference = buffer[decision.reference].image
                    times[0] = buffer[decision.reference].time_s
                    if decision.second >= 0:
                        second = buffer[decision.second].image
                        times[1] = buffer[decision.second].time_s
                else:  # no sharper neighbour: the frame is its own reference
                    reference = frame.image
            keep_from = decision.index + 1 - planner.max_offset
            for index in [i for i in buffer if i < keep_from]:
                del buffer[index]
            if forced_reference is not None and decision.blurry and (
                    forced_fits is None or forced_fits(frame)):
                yield WorkItem(frame, decision, forced_reference,
                               planned=(reference, second, *times))
            else:
                yield WorkItem(frame, decision, reference, second, reference_time=times[0],
                               second_time=times[1])

    for frame in frames:
        buffer[frame.index] = frame
        new_shot = cuts is not None and cuts.push(frame.image)
        yield from release(planner.push(sharpness(frame.image), new_shot))
    yield from release(planner.finish())


def restore_batch(
    restore: Callable[[list[np.ndarray], list[np.ndarray]], tuple[list[np.ndarray], list[bool]]],
    blurry: list[WorkItem],
) -> None:
    """Run the network on these blurry frames with their references (``output``,
    ``reference_used``, ``seconds``); a frame whose forced reference image was not used is
    restored again against the planner's choice, and one whose planned reference was not
    used against its planner's second choice, when there is one."""
    if not blurry:
        return
    for item, (output, kept, each) in zip(blurry, _timed(restore, blurry), strict=True):
        item.output, item.reference_used, item.seconds = output, kept, each
    unforced = []
    for item in [i for i in blurry if i.forced and not i.reference_used]:
        # the forced image was rejected: the planner's choice, as without it
        item.unforce()
        if item.reference is item.frame.image:  # restored so already, the check passing
            item.reference_used = True
        else:
            unforced.append(item)
    for item, (output, kept, each) in zip(unforced, _timed(restore, unforced), strict=True):
        item.output, item.reference_used = output, kept
        item.seconds += each
    retry = [i for i in blurry if not i.reference_used and i.second is not None]
    # the first choice was rejected: try the planner's second choice
    for item, (output, kept, each) in zip(retry, _timed(restore, retry, second=True),
                                          strict=True):
        item.seconds += each
        if kept:
            item.output, item.reference_used, item.second_used = output, True, True


def _timed(restore: Callable[[list[np.ndarray], list[np.ndarray]],
                             tuple[list[np.ndarray], list[bool]]],
           items: list[WorkItem], second: bool = False) -> list[tuple[np.ndarray, bool, float]]:
    """The network on ``items`` against their references (``second``: their second
    choices): per item its output, whether that reference was used, and its share of the
    time."""
    if not items:
        return []
    start = time.perf_counter()
    outputs, used = restore([i.frame.image for i in items],
                            [i.second if second else i.reference for i in items])
    each = (time.perf_counter() - start) / len(items)
    return [(output, bool(kept), each) for output, kept in zip(outputs, used, strict=True)]


#: what the frames waiting in the queues between the stages may take together
QUEUED_BYTES = 1 << 30
MAX_QUEUE_SIZE = 8


def queue_size_for(width: int, height: int, bit_depth: int, batch: int) -> int:
    """Frames each queue between the stages may hold: as many as fit :data:`QUEUED_BYTES`
    across the three queues, at most :data:`MAX_QUEUE_SIZE` and at least ``batch`` (a
    network batch is gathered in one queue's worth). A queued frame carries its RGB image
    and decoded planes in the input's sample size and the network's float32 output: about
    170 MB at 3840x2160 and 10 bits, where eight a queue came to some 4 GB."""
    sample = 2 if bit_depth > 8 else 1
    per_frame = width * height * (4.5 * sample + 12)
    fits = int(QUEUED_BYTES // (3 * per_frame))
    return max(batch, 2, min(MAX_QUEUE_SIZE, fits))


def run_stream(
    frames: Iterable[Frame],
    planner: ReferencePlanner,
    restore: Callable[[list[np.ndarray], list[np.ndarray]],
                      tuple[list[np.ndarray], list[bool]]],
    refine: Callable[[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None,
                      float | None], np.ndarray],
    write: Callable[[WorkItem], None],
    *,
    batch: int,
    queue_size: int,
    forced_reference: np.ndarray | None = None,
    forced_fits: Callable[[Frame], bool] | None = None,
    fit_forced: Callable[[Frame, np.ndarray], np.ndarray] | None = None,
    cuts: CutDetector | None = None,
    start: int = 0,
    segment: int | None = None,
    replayed: Callable[[WorkItem], None] | None = None,
) -> None:
    """Run the four stages; ``write`` is called in frame order on the calling thread.

    ``restore(frames, references)`` returns the network's outputs and, for each, whether its
    reference was used (:meth:`Restorer.restore_floats`). A frame whose forced reference
    image was not used is restored again against the planner's choice, and one whose
    planned reference was not used against its planner's second choice, when there is one
    (:func:`restore_batch`).
    ``refine(output, frame, reference, second, fraction)`` turns an output into the frame to
    write (:class:`refdeblur_video.refine.Refiner`; ``reference`` None: the frame was its
    own; ``second``: :attr:`WorkItem.other_reference`; ``fraction``:
    :attr:`WorkItem.fraction`); where it has a method ``many(list of (output, frame,
    reference, second, fraction)) -> list of frames``, the outputs of a network batch that
    are still on the device are finished by one call.

    ``forced_reference`` is every blurry frame's reference where ``forced_fits(frame)``
    (if given) allows it, else the planner's choice is (:func:`plan_frames`);
    ``fit_forced(frame, reference)`` makes it that frame's (its exposure matched), for the
    frames restored only.

    Frames before ``start`` are decoded, scored and planned (so that later decisions are the
    same as in a run from the beginning) but neither restored nor written: ``replayed`` gets
    them instead, on the decoding thread. With ``segment``, a batch never spans a multiple
    of ``segment`` frames, so a run resumed there batches (and restores) as one that was not
    interrupted.

    Threads started from here on share one glibc malloc arena (:mod:`refdeblur_video.malloc`;
    the command line asks for it before anything else starts a thread).
    """
    share_malloc_arenas()
    _Stream(frames, planner, restore, refine, batch=batch, queue_size=queue_size,
            forced_reference=forced_reference, forced_fits=forced_fits,
            fit_forced=fit_forced, cuts=cuts, start=start, segment=segment,
            replayed=replayed).run(write)


class _Stream:
    """One run of the stages: the queues and events that join them, a method per stage."""

    def __init__(
        self, frames: Iterable[Frame], planner: ReferencePlanner,
        restore: Callable[[list[np.ndarray], list[np.ndarray]],
                          tuple[list[np.ndarray], list[bool]]],
        refine: Callable[[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None,
                      float | None], np.ndarray], *,
        batch: int, queue_size: int, forced_reference: np.ndarray | None,
        forced_fits: Callable[[Frame], bool] | None,
        fit_forced: Callable[[Frame, np.ndarray], np.ndarray] | None,
        cuts: CutDetector | None, start: int, segment: int | None,
        replayed: Callable[[WorkItem], None] | None,
    ) -> None:
        self.frames, self.planner, self.cuts = frames, planner, cuts
        self.restore, self.refine = restore, refine
        self.many: Callable[[list[tuple]], list[np.ndarray]] | None = getattr(
            refine, "many", None)
        self.batch, self.queue_size, self.forced_reference = batch, queue_size, forced_reference
        self.forced_fits, self.fit_forced = forced_fits, fit_forced
        self.start, self.segment, self.replayed = start, segment, replayed
        self.stop = threading.Event()  # the producing stages stop (the end, an error, a signal)
        self.halt = threading.Event()  # everything stops: the calling thread has left
        self.errors: list[BaseException] = []
        self.planned: queue.Queue = queue.Queue(maxsize=queue_size)
        self.restored: queue.Queue = queue.Queue(maxsize=queue_size)
        self.refined: queue.Queue = queue.Queue(maxsize=queue_size)

    def decode(self) -> None:
        """Stage 1: decode, score and plan; frames before ``start`` go to ``replayed``."""
        for item in plan_frames(self.frames, self.planner, self.forced_reference, self.cuts,
                                self.forced_fits):
            if item.frame.index < self.start:
                if self.replayed is not None:
                    self.replayed(item)
                continue
            if self.fit_forced is not None and item.forced:
                item.reference = self.fit_forced(item.frame, item.reference)
            if not _put(self.planned, item, self.stop):
                return
        _put(self.planned, _END, self.stop)

    def _flush(self, pending: list[WorkItem]) -> bool:
        """Restore the blurry frames of ``pending`` and pass all of them on."""
        restore_batch(self.restore, [item for item in pending if item.reference is not None])
        if pending:
            pending[-1].ends_batch = True
        return all(_put(self.restored, item, self.stop) for item in pending)

    def infer(self) -> None:
        """Stage 2: the network, on batches of ``batch`` blurry frames (or ``queue_size``
        frames in all) that never span a multiple of ``segment``."""
        pending: list[WorkItem] = []
        while not self.stop.is_set():
            try:
                item = self.planned.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _END:
                if self._flush(pending):
                    _put(self.restored, _END, self.stop)
                return
            if pending and self.segment and item.frame.index % self.segment == 0:
                if not self._flush(pending):
                    return
                pending = []
            pending.append(item)
            n_blurry = sum(i.reference is not None for i in pending)
            if n_blurry >= self.batch or len(pending) >= self.queue_size:
                if not self._flush(pending):
                    return
                pending = []

    def _finish_group(self, group: list[WorkItem]) -> bool:
        """Refine the restored frames of ``group`` (together where the refine step has a
        ``many`` method) and pass all of them on, in order."""
        work = [item for item in group if item.output is not None]
        if work:
            began = time.perf_counter()
            requests = [i.transfer_request for i in work]
            outputs = self.many(requests) if self.many else [self.refine(*r) for r in requests]
            each = (time.perf_counter() - began) / len(work)
            for item, output in zip(work, outputs, strict=True):
                item.output = output
                item.seconds += each
        return all(_put(self.refined, item, self.halt) for item in group)

    def _holds(self, group: list[WorkItem]) -> bool:
        """Whether ``group`` waits for the rest of its network batch: only outputs still on
        the network's device are finished together (on a GPU launching the transfer's
        small operations frame by frame costs more than running them); a CPU's are
        finished as they come. A network batch is the same in every run, a resumed one
        too (it never spans a resume segment), and so is each group."""
        return self.many is not None and not group[-1].ends_batch and any(
            item.output is not None and not isinstance(item.output, np.ndarray)
            for item in group)

    def finish(self) -> None:
        """Stage 3: the refine step on each restored frame, or on each network batch's
        outputs still on the device (:meth:`_holds`)."""
        # after an error upstream, what the network already restored is still finished and
        # written (a resumable run keeps it)
        group: list[WorkItem] = []
        while not self.halt.is_set():
            try:
                item = self.restored.get(timeout=0.1)
            except queue.Empty:
                if self.stop.is_set():
                    self._finish_group(group)
                    return
                continue
            if item is _END:
                if self._finish_group(group):
                    _put(self.refined, _END, self.halt)
                return
            group.append(item)
            if not self._holds(group):
                if not self._finish_group(group):
                    return
                group = []

    def run(self, write: Callable[[WorkItem], None]) -> None:
        """Start stages 1-3 and run stage 4, ``write``, here; stop them all on leaving."""
        refining = _Stage(self.finish, self.errors, self.stop, "refdeblur-refine")
        stages = [_Stage(self.decode, self.errors, self.stop, "refdeblur-decode"),
                  _Stage(self.infer, self.errors, self.stop, "refdeblur-restore"), refining]
        for stage in stages:
            stage.start()
        interrupted = False
        try:
            while (item := self._next(stages, refining)) is not _END:
                write(item)
        except Interrupted:
            interrupted = True
            raise
        finally:
            self.stop.set()
            self.halt.set()
            for stage in stages:
                # after a signal the command line exits at once (os._exit): wait for the
                # decoder, whose file is about to be closed, not for a model call of seconds
                quick = interrupted and stage.name != "refdeblur-decode"
                stage.join(timeout=0.2 if quick else 5)

    def _next(self, stages: list[_Stage], refining: _Stage) -> object:
        """The next refined item (or ``_END``); a stage's error once stage 3 is done."""
        while True:
            try:
                return self.refined.get(timeout=0.1)
            except queue.Empty:
                # after an error, what was already restored is written first (a resumable
                # run keeps it)
                if self.errors and not refining.is_alive():
                    raise self.errors[0] from None
                if not any(s.is_alive() for s in stages) and self.refined.empty():
                    raise RuntimeError("pipeline stages ended without finishing") from None

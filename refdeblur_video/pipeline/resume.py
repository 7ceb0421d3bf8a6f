"""Resumable runs: finished work is kept in a hidden state folder beside the output.

Every video run encodes in segments of ``segment_seconds`` of video (``segment_frames``),
each with a fresh encoder (:meth:`VideoWriter.end_segment`), and commits each finished
segment to ``.<output name>.refdeblur/`` beside the output::

    manifest.json      what the run depends on: the input (size, a hash of its first and
                       last MiB, stream facts), the options that decide the output, the
                       segment length, the model (a hash of its weights and settings, and
                       of the model package's code) and the library versions
    lock               held (flock) while a run uses the folder
    000000.packets     the segment's encoded video packets, back to back
    000000.json        the commit: the packets' timestamps, sizes and hash, the segment's
                       frame-log rows and the writer's state after it

A segment is committed by renaming its packet file and then its JSON into place (each
fsynced first), so a run killed at any moment (SIGKILL, power loss) leaves whole segments.
``--resume`` muxes the committed segments again, replays the reference planner over their
frames (decoded and scored, not restored; the decisions must match the stored log) and
goes on from the first frame after them. Because the uninterrupted run cuts its segments,
batches and encoders at the same frames, the two outputs are the same. The temporary
output a killed run leaves beside the output is removed by the next run of that output,
which holds the lock.

The folder is removed when the output is written. A run without ``--resume`` refuses a
folder with committed work (:class:`UnfinishedRun`, which names the way on) unless
``--overwrite`` says to start again; a folder made from another input, other options or
another model is refused with one line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import UserError
from ..interrupts import deferred
from ..safe_output import remove_stale_temps, try_lock
from .framelog import FrameRecord
from .options import DeblurOptions
from .preflight import route

log = logging.getLogger("refdeblur_video")

STATE_FORMAT = 4
MIN_SEGMENT_FRAMES = 8  # above any encoder's reordering delay (x264: 2 frames)
_SAMPLE_BYTES = 1 << 20  # hashed from each end of the input
# options that change neither a decision nor an output sample beyond float rounding; the
# model is compared by its weights, --ref by its content
# (--fps: a sequence's rate is in the manifest as its time base; a video takes none)
_FREE_OPTIONS = frozenset({"model", "device", "batch", "tile", "queue_size", "log",
                           "overwrite", "quiet", "resume", "save_adapted",
                           "quality",  # a photo's: a video takes none
                           "fps"})

__all__ = ["BusyOutput", "RunState", "Segment", "SegmentedOutput", "UnfinishedRun", "kept_frames",
           "model_identity", "open_state", "run_manifest", "segment_frames", "state_dir"]


def state_dir(output: str | os.PathLike) -> Path:
    """The hidden folder that keeps a run's finished work: ``.<output name>.refdeblur``."""
    target = Path(output)
    return target.with_name(f".{target.name}.refdeblur")


def segment_frames(seconds: float, fps: float | None) -> int:
    """Frames per segment for ``seconds`` of video at ``fps`` (25 when unknown)."""
    return max(MIN_SEGMENT_FRAMES, round(seconds * (fps or 25)))


class BusyOutput(UserError):
    """Another run holds the output's state: it is making that output now."""


class UnfinishedRun(UserError):
    """An earlier run of the same output left committed work and ``resume`` was not asked."""

    def __init__(self, output: Path, state: Path, frames: int, total: int | None) -> None:
        self.output, self.state, self.frames, self.total = output, state, frames, total
        super().__init__(self.describe("resume=True", "overwrite=True"))  # the API's words

    def describe(self, how: str, again: str = "--overwrite") -> str:
        """The one-line message, with ``how`` to continue (an option or a command) and
        ``again`` to start afresh."""
        done = f"{self.frames} of {self.total}" if self.total else f"{self.frames}"
        return (f"{self.output} has an unfinished run ({done} frames done, kept in "
                f"{self.state}); continue it with {how}, or start again with {again}")


# -- what a run depends on -------------------------------------------------------------------

def _file_sample_hash(path: Path) -> str:
    """sha256 of the first and last MiB (and the size): cheap, and tells files apart."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    with path.open("rb") as handle:
        digest.update(handle.read(_SAMPLE_BYTES))
        if size > _SAMPLE_BYTES:
            handle.seek(max(_SAMPLE_BYTES, size - _SAMPLE_BYTES))
            digest.update(handle.read())
    digest.update(str(size).encode())
    return digest.hexdigest()


def run_manifest(input: str | os.PathLike, info: Any, opts: DeblurOptions,
                 frames_per_segment: int) -> dict:
    """The input, options and segment length a run's state belongs to (not the model)."""
    import av

    options = {k: v for k, v in dataclasses.asdict(opts).items() if k not in _FREE_OPTIONS}
    if opts.ref is not None:
        options["ref"] = _file_sample_hash(Path(opts.ref))
    source = Path(input)
    return {
        "format": STATE_FORMAT,
        "input": {**_identity(source), "frames": info.frame_count,
                  "size_px": [info.width, info.height], "time_base": str(info.time_base)},
        "options": options,
        "segment_frames": frames_per_segment,
        "versions": {"refdeblur_video": __version__, "av": av.__version__,
                     "libavcodec": list(av.library_versions.get("libavcodec", ()))},
    }


def _identity(source: Path) -> dict:
    """What tells an input file again (not its name: it may have been moved); an image
    sequence's folder, by its files' names, sizes and times."""
    if not source.is_dir():
        return {"size": source.stat().st_size, "sample_sha256": _file_sample_hash(source)}
    from ..image_files import list_images

    digest = hashlib.sha256()
    for path in list_images(source):
        stat = path.stat()
        digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return {"images_sha256": digest.hexdigest()}


def model_identity(restorer: Any) -> dict:
    """What decides the restorer's output: a hash of its weights, configuration and
    autocast type, the code of the network and of the step after it, the device type and
    PyTorch's version (whether the reference transfer runs is one of the run's options)."""
    import torch

    model = getattr(restorer, "model", None)
    if model is None:  # a stand-in without a network: only its type can be told
        return {"type": f"{type(restorer).__module__}.{type(restorer).__qualname__}"}
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        data = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(data.view(torch.uint8).numpy().tobytes())
    settings = (getattr(model, "config", None), getattr(restorer, "amp_dtype", None))
    digest.update(repr(settings).encode())
    device = getattr(restorer, "device", None)
    return {"sha256": digest.hexdigest(), "code": _model_code_hash(),
            "device": getattr(device, "type", str(device)), "torch": torch.__version__}


def _model_code_hash() -> str:
    """sha256 of the source of the network (``model/``) and of the step after it
    (``refine/``): the same weights give other frames when the code that runs them was
    changed (a development install, a patched copy)."""
    from .. import model, refine

    digest = hashlib.sha256()
    for package in (model, refine):
        folder = Path(package.__file__).parent
        for path in sorted(folder.glob("*.py")):
            digest.update(f"{folder.name}/{path.name}".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _first_difference(old: Any, new: Any, path: str = "") -> str | None:
    """Where two manifests differ, as ``key (then X, now Y)``; None when they agree."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            found = _first_difference(old.get(key), new.get(key), f"{path}.{key}".lstrip("."))
            if found:
                return found
        return None
    if old == new:
        return None
    return f"{path} (then {_short(old)}, now {_short(new)})"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 24 else text[:20] + "..."


_WHAT = {"input": "another input", "options": "other options", "segment_frames": "other options",
         "model": "another model", "versions": "another version of the software",
         "format": "another version of the software"}


# -- the folder -------------------------------------------------------------------------------

@dataclass
class Segment:
    """A committed segment: frames ``first .. first + len(records) - 1``."""

    index: int
    first: int
    records: list[dict]  # frame-log rows (FrameRecord fields)
    packets: list[list[int]]  # [pts, dts, duration, keyframe, size] in the writer's time base
    sha256: str  # of the packet file
    writer: dict  # VideoWriter.snapshot() after the segment

    @property
    def end(self) -> int:
        return self.first + len(self.records)


class RunState:
    """The state folder of one output, locked while open; use :meth:`open`."""

    def __init__(self, output: Path, folder: Path, lock: int | None) -> None:
        self.output, self.folder, self._lock = output, folder, lock
        self.manifest: dict | None = None  # the stored one, for a resumed run
        self._new: dict | None = None  # this run's, until the model is known
        self.committed_frames = 0
        self.segments_committed = 0

    # opening

    @classmethod
    def open(cls, output: str | os.PathLike, *, resume: bool, overwrite: bool,
             total: int | None) -> RunState:
        """Lock the folder of ``output`` (created if missing) and decide what to do with an
        earlier run's work: resume it, discard it (``overwrite``) or refuse."""
        output = Path(output)
        folder = state_dir(output)
        try:
            folder.mkdir(exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create {folder}: {exc.strerror}") from exc
        state = cls(output, folder, _lock(folder, output))
        try:
            state._tidy()
            metas = state._metas()
            manifest = state._read_manifest() if metas else None
            if manifest is not None:  # what the folder holds, until it is cleared
                state.committed_frames, state.segments_committed = metas[-1].end, len(metas)
            if manifest is not None and not resume:
                if not overwrite:
                    raise UnfinishedRun(output, folder, metas[-1].end, total)
                log.info("discarding the unfinished run in %s (--overwrite)", folder)
            if manifest is not None and resume:
                state.manifest = manifest
            else:
                if resume:
                    log.warning("--resume: no interrupted run of %s was found; starting from "
                                "the first frame", output)
                state._clear()
                state.committed_frames = state.segments_committed = 0
        except BaseException:
            state.close(keep=True)
            raise
        return state

    def _tidy(self) -> None:
        """Remove what a killed run leaves half-written: temporary files here and beside
        the output (the lock says no other run is writing them)."""
        for path in self.folder.glob("*.tmp"):
            path.unlink(missing_ok=True)
        remove_stale_temps(self.output)

    def _clear(self) -> None:
        for path in self.folder.iterdir():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            elif path.name != "lock":
                path.unlink(missing_ok=True)

    def _read_manifest(self) -> dict | None:
        path = self.folder / "manifest.json"
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"the run state {self.folder} is damaged (manifest.json: {exc}); "
                            "delete the folder to start again") from exc

    # checks

    @property
    def resuming(self) -> bool:
        return self.manifest is not None

    def check_run(self, manifest: dict) -> None:
        """Refuse a stored run made from another input or with other options."""
        if self.manifest is None:
            self._new = dict(manifest)
            return
        stored = {k: v for k, v in self.manifest.items() if k != "model"}
        self._refuse_if_different(stored, manifest)

    def check_model(self, identity: dict) -> None:
        """Refuse a stored run made by another model; a new run writes its manifest now."""
        if self.manifest is None:
            assert self._new is not None, "check_run() first"
            _write_json(self.folder / "manifest.json", {**self._new, "model": identity})
            return
        self._refuse_if_different({"model": self.manifest.get("model")}, {"model": identity})

    def _refuse_if_different(self, stored: dict, current: dict) -> None:
        difference = _first_difference(stored, current)
        if difference is None:
            return
        what = _WHAT.get(difference.split(".")[0].split(" ")[0], "other settings")
        raise UserError(f"the unfinished run in {self.folder} was made with {what}: "
                        f"{difference}; run without --resume and with --overwrite to start "
                        "again")

    # segments

    def _metas(self) -> list[Segment]:
        return _read_segments(self.folder)

    def committed(self) -> Iterator[tuple[Segment, bytes]]:
        """Each committed segment with its packet data, in order; a damaged segment and
        those after it are dropped (they will be made again)."""
        self.committed_frames = self.segments_committed = 0
        for segment in self._metas():
            path = self.folder / f"{segment.index:06d}.packets"
            try:
                data = path.read_bytes()
            except OSError:
                data = b""
            if (hashlib.sha256(data).hexdigest() != segment.sha256
                    or len(data) != sum(p[4] for p in segment.packets)):
                log.warning("%s is damaged: resuming before it", path)
                self._drop_from(segment.index)
                return
            self.committed_frames, self.segments_committed = segment.end, segment.index + 1
            yield segment, data

    def _drop_from(self, index: int) -> None:
        for path in self.folder.glob("[0-9]*.*"):
            stem = path.name.split(".")[0]
            if stem.isdigit() and int(stem) >= index:
                path.unlink(missing_ok=True)

    def commit(self, recorder: SegmentRecorder, writer_state: dict) -> None:
        """Make a finished segment part of the state (signals wait until it is done)."""
        with deferred():
            segment = recorder.seal(writer_state)
            _write_json(self.folder / f"{segment.index:06d}.json", dataclasses.asdict(segment))
        self.committed_frames, self.segments_committed = segment.end, segment.index + 1

    def recorder(self, first: int) -> SegmentRecorder:
        return SegmentRecorder(self.folder, self.segments_committed, first)

    # closing

    def close(self, keep: bool) -> None:
        """Unlock; remove the folder unless ``keep`` and it holds committed work."""
        if not (keep and self.committed_frames):
            self._remove()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def _remove(self) -> None:
        """Rename the folder aside, then delete it: never half a state under its name."""
        if not self.folder.exists():
            return
        trash = self.folder.with_name(f"{self.folder.name}.{secrets.token_hex(4)}.trash")
        try:
            self.folder.rename(trash)
        except OSError:
            trash = self.folder
        shutil.rmtree(trash, ignore_errors=True)


@contextlib.contextmanager
def open_state(output: str | os.PathLike, opts: DeblurOptions,
               total: int | None) -> Iterator[RunState]:
    """The locked state of ``output`` for one run: removed when the block succeeds, kept
    (if it holds committed work) when it fails or is interrupted."""
    state: RunState | None = None
    done = False
    try:
        with deferred():  # a signal now would leave a folder no run owns
            state = RunState.open(output, resume=opts.resume, overwrite=opts.overwrite,
                                  total=total)
        yield state
        done = True
    finally:
        if state is not None:
            state.close(keep=not done)


class SegmentRecorder:
    """One segment on its way into the state: packets go to a temporary file as the encoder
    gives them; :meth:`seal` renames it into place and returns the segment's record."""

    def __init__(self, folder: Path, index: int, first: int) -> None:
        self.folder, self.index, self.first = folder, index, first
        self.records: list[dict] = []
        self.packets: list[list[int]] = []
        self._digest = hashlib.sha256()
        self._tmp = folder / f"{index:06d}.packets.tmp"
        self._handle = self._tmp.open("wb")

    def packet(self, packet: Any) -> None:
        """Keep one encoded packet (an ``av.Packet`` in the writer's time base)."""
        data = bytes(packet)
        self._handle.write(data)
        self._digest.update(data)
        self.packets.append([packet.pts, packet.dts, int(packet.duration or 0),
                             int(packet.is_keyframe), len(data)])

    def frame(self, record: FrameRecord) -> None:
        self.records.append(dataclasses.asdict(record))

    def seal(self, writer_state: dict) -> Segment:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        os.replace(self._tmp, self.folder / f"{self.index:06d}.packets")
        return Segment(self.index, self.first, self.records, self.packets,
                       self._digest.hexdigest(), writer_state)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._handle.close()
            self._tmp.unlink()


class SegmentedOutput:
    """Cuts the encoded video into segments of ``size`` frames and commits each one.

    ``writer`` is a :class:`VideoWriter`; its packets are recorded from ``first`` on (the
    frame after the committed ones, a multiple of ``size``).
    """

    def __init__(self, state: RunState, writer: Any, size: int, first: int) -> None:
        self.state, self.writer, self.size = state, writer, size
        self._recorder = state.recorder(first)
        writer.packet_sink = self._packet

    def _packet(self, packet: Any) -> None:
        self._recorder.packet(packet)

    def frame(self, record: FrameRecord) -> None:
        """Frame ``record.index`` was written; commit its segment if it is the last one."""
        self._recorder.frame(record)
        if (record.index + 1) % self.size == 0:
            self._commit()

    def finish(self) -> None:
        """The last frame was written: commit the last segment."""
        if self._recorder.records:
            self._commit()
        self._recorder.discard()

    def abort(self) -> None:
        self._recorder.discard()

    def _commit(self) -> None:
        self.writer.end_segment()
        self.state.commit(self._recorder, self.writer.snapshot())
        self._recorder = self.state.recorder(self.state.committed_frames)


def _read_segments(folder: Path, quiet: bool = False) -> list[Segment]:
    """The committed segments in order, as far as their JSON files are readable and
    contiguous (the packets are checked when they are read)."""
    segments: list[Segment] = []
    for index in range(1 << 30):
        path = folder / f"{index:06d}.json"
        try:
            segment = Segment(**json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            break
        except (OSError, ValueError, TypeError) as exc:
            if not quiet:
                log.warning("%s is damaged (%s): resuming before it", path, exc)
            break
        expected = segments[-1].end if segments else 0
        if segment.index != index or segment.first != expected or not segment.records:
            if not quiet:
                log.warning("%s does not follow the segment before it: resuming before it",
                            path)
            break
        segments.append(segment)
    return segments


def _unfinished_in(folder: str | os.PathLike) -> list[str]:
    """Names of the outputs in ``folder`` that have a state folder beside them."""
    suffix = ".refdeblur"
    return sorted(p.name[1:-len(suffix)] for p in Path(folder).glob(f".*{suffix}")
                  if p.is_dir())


def kept_frames(output: str | os.PathLike) -> int:
    """How many finished frames the state folder of ``output`` keeps (0 if none)."""
    folder = state_dir(output)
    if not (folder / "manifest.json").is_file():
        return 0
    segments = _read_segments(folder, quiet=True)
    return segments[-1].end if segments else 0


def interrupted_line(target: str, signal_name: str | None = None,
                     source: str | None = None) -> str:
    """The one line an interrupted run of ``source`` ends with: what is left, and how to go
    on (``signal_name``: the signal that stopped it, when it was not Ctrl-C)."""
    head = "interrupted" if signal_name is None else f"interrupted ({signal_name})"
    mode = route(source, target) if source is not None else None
    if mode == "sequence":  # its frames are moved in at the end
        return f"{head}: no frame of the sequence was written ({target} is as it was)"
    if mode == "frames":  # so are a video's numbered images
        return f"{head}: no frame was written ({Path(target).parent} is as it was)"
    return unfinished_line(target, head)


def unfinished_line(target: str, head: str) -> str:
    """``head`` (why the run stopped), then what it left of ``target`` and how to go on."""
    if Path(target).is_dir() or target.endswith(os.sep):
        kept = {name: kept_frames(Path(target) / name) for name in _unfinished_in(target)}
        kept = {name: frames for name, frames in kept.items() if frames}
        if not kept:
            return (f"{head}: the video in progress was not written (those finished are "
                    "kept); the same command goes on with the rest")
        which = ", ".join(f"{frames} finished frames of {name}" for name, frames in kept.items())
        return (f"{head}: the video in progress was not written; {which} are kept: the same "
                "command with --resume goes on from there")
    kept = kept_frames(target)
    if not kept:
        return f"{head}: no output was written"
    return (f"{head}: no output was written; {kept} finished frames are kept in "
            f"{state_dir(target)}: the same command with --resume goes on from there")


def _write_json(path: Path, data: dict) -> None:
    """Write ``path`` through a fsynced temporary file and a rename."""
    tmp = path.with_name(f"{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, separators=(",", ":"))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # the rename itself survives a power loss
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _lock(folder: Path, output: Path) -> int | None:
    """Hold ``folder/lock`` for this process; refuse when another run holds it."""
    fd = try_lock(folder / "lock")
    if fd is None:
        raise BusyOutput(f"another run is writing {output} (its state {folder} is locked)")
    return fd

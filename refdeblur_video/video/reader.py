"""Decode a video into :class:`Frame` objects (PyAV, or decord as an optional backend).

Frames come out in presentation order (the order a decoder outputs them), numbered from 0,
with the stream's own ``pts`` and ``time_base`` so the writer can put them back unchanged.
Images are ``H x W x 3`` RGB in the coded orientation (the display rotation is metadata, see
``VideoInfo.rotation``): ``uint8`` for 8-bit sources, ``uint16`` on the full 0..65535 scale for
deeper ones. Planar YUV is turned into RGB by :mod:`refdeblur_video.video.yuv` with the stream's
own matrix and range (the writer goes back the same way), and each frame of a planar format
also keeps its decoded planes (``Frame.planes``), from which the writer encodes a frame that
was passed through, bit for bit.

Damaged input: a truncated or partly corrupt stream is *salvaged*. Every frame the decoder
can still produce is yielded; packets or demux steps that fail are skipped, and once the
stream ends a single :class:`CorruptVideoWarning` (a ``UserWarning``) says how many frames were
recovered. The same warning is given when fewer frames decode than the container announced,
and when the timestamps stop increasing: those frames are renumbered one frame interval
apart, so the output still plays.
Only a stream with no decodable frame at all is an error (:class:`UserError`), and so is one
whose every frame the decoder had to conceal (random bytes can pass for a raw H.263 stream
whose frames decode as noise: there is nothing to restore). We chose this
because a long recording with a damaged tail is still worth deblurring, and refusing it would
force the user to repair the file with other tools first.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from fractions import Fraction

import av
import numpy as np

from refdeblur_video.errors import FrameSizeError, UserError
from refdeblur_video.video.frame import Frame, frame_interval, to_coded_orientation
from refdeblur_video.video.metadata import (
    VideoInfo,
    main_video_stream,
    open_container,
    probe,
    video_duration_s,
)
from refdeblur_video.video.pixel_formats import has_alpha
from refdeblur_video.video.yuv import (
    PlaneLayout,
    YuvConverter,
    frame_planes,
    plane_layout,
    yuv_converter,
)

__all__ = ["CorruptVideoWarning", "Frame", "VideoReader", "open_reader", "BACKENDS"]

log = logging.getLogger(__name__)
_warned: set[tuple[str, str]] = set()  # what this process has said already, per file


def _warn_once(key: tuple[str, str], message: str) -> None:
    """A warning about a file, said once however many times the file is read."""
    if key not in _warned:
        _warned.add(key)
        log.warning("%s", message)


BACKENDS = ("pyav", "decord")
_MAX_DEMUX_RETRIES = 16
# leading frames without timestamps held until one has a timestamp (a B-frame delay's worth
# in a file muxed from negative ones); beyond, they are numbered from 0 as they come
_MAX_UNTIMED_LEAD = 16


class CorruptVideoWarning(UserWarning):
    """The input stream was truncated or corrupt; only the decodable frames were read, or
    its timestamps did not increase and were renumbered."""


# said every time a file is read, not once per process as Python's default has it: a
# notebook cell run again on the same damaged file says so again
warnings.filterwarnings("always", category=CorruptVideoWarning)


class _IncreasingPts:
    """Timestamps that always increase, as the writer (and every player) needs them: a
    frame whose pts is not after the previous frame's (a broken muxer wrote them all 0, or
    they restart part-way) is placed one frame interval at ``fps`` after it instead, and
    one warning says so."""

    def __init__(self, path: str, fps: Fraction | None) -> None:
        self.path, self.fps = path, fps or Fraction(25)
        self.last: int | None = None
        self.renumbered = False

    def __call__(self, index: int, pts: int | None, time_base: Fraction) -> int | None:
        if pts is not None and self.last is not None and pts <= self.last:
            if not self.renumbered:
                warnings.warn(
                    f"{self.path}: the timestamps do not increase from frame {index} (pts "
                    f"{pts} after {self.last}); frames from there on are timed "
                    f"{float(self.fps):g} per second", CorruptVideoWarning, stacklevel=3)
                self.renumbered = True
            pts = self.last + frame_interval(self.fps, time_base)
        if pts is not None:
            self.last = pts
        return pts


# containers that store decode order only: their packets' pts count in decode order, and a
# stream with B-frames decodes into frames that carry them shuffled
_DECODE_ORDER_FORMATS = ("avi",)


def _display_order_pts(path: str, container) -> list[int] | None:
    """For a container that times packets in decode order only (AVI), the frames' display
    timestamps: its video packets' pts in increasing order, which the decoder's frames
    (in display order) take one by one (a frame carries the pts of the packet it came in,
    so B-frames shuffle them). None for other containers."""
    if not any(name in _DECODE_ORDER_FORMATS for name in container.format.name.split(",")):
        return None
    with open_container(path) as prepass:
        video = main_video_stream(prepass)
        pts = {p.pts for p in prepass.demux(video) if p.size and p.pts is not None}
    return sorted(pts) or None


def open_reader(path: str | os.PathLike, backend: str = "pyav") -> VideoReader:
    """Open ``path`` for decoding; use as ``with open_reader(p) as r: for f in r: ...``."""
    return VideoReader(path, backend=backend)


class VideoReader:
    """Iterates the frames of the video (not a cover picture); ``.info`` describes them.

    Each ``iter()`` starts a fresh decoding pass from the beginning. Decoding runs on FFmpeg's
    own threads (``thread_type = "AUTO"``); memory use does not grow with the video length.
    """

    def __init__(self, path: str | os.PathLike, backend: str = "pyav") -> None:
        if backend not in BACKENDS:
            raise UserError(f"unknown video reader backend {backend!r} (choose pyav or decord)")
        self.path = str(path)
        self.backend = backend
        self.info: VideoInfo = probe(path)
        self.frames_read = 0
        self.frames_concealed = 0
        self.problems: list[str] = []
        self._container: av.container.InputContainer | None = None
        self._display_pts: tuple[list[int] | None] | None = None  # _display_order_pts, once
        if backend == "decord":
            _import_decord()
            if self.info.bit_depth > 8:
                raise UserError(
                    f"the decord backend decodes 8-bit only and {self.path} is "
                    f"{self.info.bit_depth}-bit; use the pyav backend"
                )
            _warn_once(("decord", self.path),
                       "--reader decord gives RGB through FFmpeg's default conversion (about "
                       "one level darker) and no YUV planes, so no frame comes back "
                       "unchanged; --reader pyav keeps untouched frames exact")
            if has_alpha(self.info.pix_fmt):
                _warn_once(("decord alpha", self.path),
                           f"--reader decord reads no transparency: {self.path}'s "
                           f"{self.info.pix_fmt} frames come back opaque where they are not; "
                           "--reader pyav keeps their alpha")

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the decoder (also done at the end of each pass)."""
        if self._container is not None:
            self._container.close()
            self._container = None

    def __iter__(self) -> Iterator[Frame]:
        self.frames_read = 0
        self.frames_concealed = 0
        self.problems = []
        frames = self._iter_decord() if self.backend == "decord" else self._iter_pyav()
        for frame in frames:
            self.frames_read += 1
            yield frame
        if self.frames_read == 0:
            raise UserError(f"{self.path} has no decodable video frames")
        if self.frames_concealed == self.frames_read:
            raise UserError(f"{self.path}: every one of its {self.frames_read} video frames "
                            "is corrupt (the decoder concealed them all); nothing to restore")
        expected = self.info.frame_count
        display = self._display_pts[0] if self._display_pts is not None else None
        if expected is not None and display:
            # AVI counts its empty chunks (a frame skipped in capture, an encoder's delay),
            # which decode to nothing: the slots its frame-numbered timestamps pass over
            expected -= max(0, display[-1] - display[0] + 1 - len(display))
        if expected is not None and self.frames_read < expected:
            self.problems.append(f"{expected} frames announced")
        if self.problems:
            warnings.warn(
                f"{self.path}: the video stream is truncated or corrupt; salvaged "
                f"{self.frames_read} decodable frames ({'; '.join(self.problems[:3])})",
                CorruptVideoWarning,
                stacklevel=2,
            )

    # -- PyAV ---------------------------------------------------------------------------------

    def _iter_pyav(self) -> Iterator[Frame]:
        self.close()
        container = self._container = open_container(self.path)
        try:
            stream = main_video_stream(container)
            stream.thread_type = "AUTO"
            held: Frame | None = None  # one frame of delay: its duration is the pts gap
            gap_s = 1 / float(self.info.fps) if self.info.fps else 0.04
            for current in self._lead_timed(self._pyav_frames(container, stream)):
                if held is not None:
                    if None not in (held.pts, current.pts) and current.pts > held.pts:
                        held.duration = current.pts - held.pts
                        gap_s = float(held.duration * held.time_base)
                    yield held
                held = current
            if held is not None:
                self._finish_last(stream, held, gap_s)
                yield held
        finally:
            self.close()

    def _pyav_frames(self, container, stream) -> Iterator[Frame]:
        """The decoded frames as :class:`Frame`, their timestamps made increasing (those
        missing left None)."""
        formats: dict[str, tuple[PlaneLayout | None, YuvConverter | None]] = {}
        increasing = _IncreasingPts(self.path, self.info.fps)
        if self._display_pts is None:  # one pass over the packets per reader
            self._display_pts = (_display_order_pts(self.path, container),)
        display = self._display_pts[0]
        for index, frame in enumerate(self._decoded_frames(container, stream)):
            if index == 0 and frame.interlaced_frame:
                _warn_once(("interlaced", self.path),
                           f"{self.path} is interlaced: a blurry frame's two fields "
                           "are restored together, as one picture")
            if (frame.width, frame.height) != (self.info.width, self.info.height):
                raise FrameSizeError(
                    f"{self.path}: the frame size changes at frame {index} (from "
                    f"{self.info.width}x{self.info.height} to {frame.width}x"
                    f"{frame.height}), which is not supported: cut the video there and "
                    "restore each part")
            if display is not None:
                frame.pts = display[index] if index < len(display) else None
            if frame.is_corrupt:
                self.frames_concealed += 1
                self._problem("a corrupt frame was concealed")
            pix_fmt = frame.format.name
            if pix_fmt not in formats:
                formats[pix_fmt] = self._conversion(pix_fmt)
            image, planes = self._pixels(frame, *formats[pix_fmt])
            time_base = Fraction(frame.time_base or stream.time_base or self.info.time_base)
            duration = int(frame.duration) if frame.duration else None
            yield Frame(index, increasing(index, frame.pts, time_base), time_base,
                        image, duration, planes, pix_fmt if planes is not None else None,
                        self._alpha(frame, planes))

    def _lead_timed(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        """``frames``, the first ones that came without timestamps (up to
        :data:`_MAX_UNTIMED_LEAD`) timed before the first that has one (:meth:`_time_lead`);
        a stream with none at all (raw H.264) passes as it is, numbered by the writer."""
        untimed: list[Frame] = []
        holding = True  # until a frame with a timestamp, or too many without one
        for frame in frames:
            if holding and frame.pts is None and len(untimed) < _MAX_UNTIMED_LEAD:
                untimed.append(frame)
                continue
            if untimed and frame.pts is not None:
                yield from self._time_lead(untimed, frame)
            else:
                yield from untimed
                yield frame
            untimed, holding = [], False
        yield from untimed

    def _time_lead(self, untimed: list[Frame], first_timed: Frame) -> list[Frame]:
        """``untimed`` (the first frames, which came without timestamps: a muxer could not
        store their negative ones) placed one frame interval apart before ``first_timed``,
        then ``first_timed``; the writer moves a start before 0 later, with the sound."""
        step = frame_interval(self.info.fps, first_timed.time_base)
        for back, frame in zip(range(len(untimed), 0, -1), untimed, strict=True):
            frame.time_base = first_timed.time_base
            frame.pts = first_timed.pts - back * step
            frame.duration = step
        warnings.warn(f"{self.path}: the first {len(untimed)} frames have no timestamps; "
                      f"they are timed {float(self.info.fps or 25):g} per second before "
                      "the first that has one", CorruptVideoWarning, stacklevel=3)
        return [*untimed, first_timed]

    def _conversion(self, pix_fmt: str) -> tuple[PlaneLayout | None, YuvConverter | None]:
        """How frames of ``pix_fmt`` are kept and turned into RGB: the stream's tags, as the
        writer uses them on the way back."""
        info = self.info
        return plane_layout(pix_fmt), yuv_converter(
            pix_fmt, info.colorspace, info.color_range, info.width, info.height)

    def _pixels(self, frame: av.VideoFrame, layout: PlaneLayout | None,
                converter: YuvConverter | None) -> tuple[np.ndarray, tuple | None]:
        """The RGB image and, for planar formats, the decoded planes."""
        planes = frame_planes(frame, layout) if layout is not None else None
        deep = self.info.bit_depth > 8
        if converter is not None and planes is not None:
            return converter.to_rgb(planes, np.uint16 if deep else np.uint8), planes
        # RGB formats convert exactly; packed or semi-planar YUV, gray and matrices such as
        # YCgCo are left to swscale
        return frame.to_ndarray(format="rgb48le" if deep else "rgb24"), planes

    def _alpha(self, frame: av.VideoFrame, planes: tuple | None) -> np.ndarray | None:
        """The frame's alpha plane, in its image's sample type (deeper samples shifted up,
        as swscale's RGBA has them); None without one. Taken from the decoded planes where
        they are kept, else from an RGBA conversion (packed formats)."""
        components = frame.format.components
        if not components[-1].is_alpha:
            return None
        deep = self.info.bit_depth > 8
        if planes is None:
            return np.ascontiguousarray(
                frame.to_ndarray(format="rgba64le" if deep else "rgba")[..., 3])
        if not deep:
            return planes[-1]
        return planes[-1].astype(np.uint16) << (16 - components[-1].bits)

    def _finish_last(self, stream, last: Frame, previous_gap_s: float) -> None:
        """Give the last frame the duration up to the announced stream end when that is
        plausible (decoded durations follow decode order in MP4); note a truncation when
        decoding stopped clearly before that end (more than 2.5 frame intervals)."""
        announced = video_duration_s(stream)
        if announced is None or last.pts is None:
            return
        tb = last.time_base
        interval = 1 / float(self.info.fps) if self.info.fps else 0.04
        start = (stream.start_time or 0) * tb
        gap = float(start + Fraction(announced) - last.pts * tb)  # seconds left for last frame
        if gap > 2.5 * max(interval, previous_gap_s) + 1e-3:
            shown = float(last.pts * tb - start)
            self._problem(f"stream ends at {shown:.3f} s of {announced:.3f} s announced")
        elif gap > 0:
            last.duration = max(1, round(Fraction(gap) / tb))

    def _problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def _decoded_frames(self, container, stream) -> Iterator[av.VideoFrame]:
        retries = 0
        flushed = False
        while not flushed:
            packets = container.demux(stream)
            try:
                for packet in packets:
                    retries = 0
                    if packet.size == 0:
                        flushed = True
                    try:
                        yield from packet.decode()
                    except av.FFmpegError as exc:
                        self._problem(f"undecodable packet: {exc.strerror or exc}")
                break
            except av.FFmpegError as exc:
                self._problem(f"demuxing failed: {exc.strerror or exc}")
                retries += 1
                if retries > _MAX_DEMUX_RETRIES:
                    break
        if not flushed:
            try:
                yield from stream.decode(None)
            except av.FFmpegError as exc:
                self._problem(f"decoder flush failed: {exc.strerror or exc}")

    # -- decord -------------------------------------------------------------------------------

    def _iter_decord(self) -> Iterator[Frame]:
        decord = _import_decord()
        try:
            vr = decord.VideoReader(self.path, ctx=decord.cpu(0), num_threads=0)
        except Exception as exc:  # decord raises its own DECORDError types
            raise UserError(f"decord could not open {self.path}: {exc}") from exc
        time_base = self.info.time_base
        # decord reports float32 seconds; take exact pts from the packets it indexed (it sorts
        # the video packets by pts and numbers frames in that order).
        exact = _packet_pts(self.path)
        start = (self.info.start_pts or 0) * time_base
        rotation = self.info.rotation
        increasing = _IncreasingPts(self.path, self.info.fps)
        for index in range(len(vr)):
            try:
                image = vr[index].asnumpy()
                start_s, _end_s = vr.get_frame_timestamp(index)
            except Exception as exc:  # corrupt tail: keep what was decoded
                self._problem(f"decord stopped: {exc}")
                break
            if exact is not None and len(exact) == len(vr):
                pts = exact[index]
            else:
                pts = int(round((Fraction(float(start_s)) + start) / time_base))
            # decord shows frames upright; we keep the coded orientation
            image = to_coded_orientation(image, rotation)
            yield Frame(index, increasing(index, pts, time_base), time_base,
                        np.ascontiguousarray(image))
        del vr


def _packet_pts(path: str) -> list[int] | None:
    """Sorted pts of the video stream's packets (no decoding), None if any is missing."""
    try:
        with av.open(path) as container:
            stream = main_video_stream(container)
            pts = [p.pts for p in container.demux(stream) if p.size]
    except av.FFmpegError:
        return None
    if any(p is None for p in pts):
        return None
    return sorted(pts)


def _import_decord():
    try:
        import decord
    except ImportError as exc:
        raise UserError(
            "the decord reader is not installed (pip install decord); use --reader pyav"
        ) from exc
    return decord

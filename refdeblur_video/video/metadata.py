"""What a video file holds: :class:`VideoInfo` and :func:`probe`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from refdeblur_video.errors import UserError
from refdeblur_video.video.hdr import Hdr10, hdr10_of

__all__ = ["VideoInfo", "expected_frames", "open_container", "pix_fmt_bit_depth", "probe",
           "video_duration_s"]


@dataclass(frozen=True)
class VideoInfo:
    """Properties of a file's video stream (:func:`main_video_stream`).

    ``width``/``height`` are the coded size (before rotation). ``rotation`` is the display
    rotation in degrees counter-clockwise (PyAV's ``VideoFrame.rotation`` convention, in
    -180..180); frames are never rotated by the reader, the writer stores the same display
    matrix again. Colour fields are FFmpeg enum values (``AVColorRange``, ``AVColorPrimaries``,
    ``AVColorTransferCharacteristic``, ``AVColorSpace``; 2/0 mean unspecified) as PyAV exposes
    them. ``frame_count`` is ``None`` when the container does not say (e.g. Matroska/WebM).
    ``container_tags`` are the file's own tags (title, recording time, ...; not the ones
    that describe its muxing), ``video_tags`` the video stream's language, title and start
    timecode (the timecode also from a MOV/MP4 timecode track), as ``(key, value)`` pairs.
    """

    path: str
    width: int
    height: int
    fps: Fraction | None
    time_base: Fraction
    frame_count: int | None
    duration_s: float | None
    rotation: int
    pix_fmt: str
    bit_depth: int
    color_range: int
    color_primaries: int
    color_trc: int
    colorspace: int
    codec_name: str  # the video format as FFmpeg names it: h264, hevc, av1, ...
    has_audio: bool
    has_subtitles: bool
    container_format: str = ""
    start_pts: int | None = None
    container_tags: tuple[tuple[str, str], ...] = ()
    video_tags: tuple[tuple[str, str], ...] = ()
    hdr10: Hdr10 | None = None  # HDR10's mastering display and light level, where given
    # the shape of one sample (pixel) where it is not square (DV, DVD, HDV: 4:3 samples
    # make a 1440x1080 frame 16:9); None: square
    sample_aspect_ratio: Fraction | None = None
    # the file's chapters as PyAV gives them (id, start, end, time_base, metadata)
    chapters: tuple[dict[str, Any], ...] = field(default=(), hash=False)
    # FFmpeg's AVFieldOrder: 0 unknown, 1 progressive, 2-5 interlaced (2 and 4 top field
    # first, 3 and 5 bottom field first)
    field_order: int = 0

    @classmethod
    def for_frames(
        cls, width: int, height: int, fps: int | Fraction = 25, *, bit_depth: int = 8
    ) -> VideoInfo:
        """Info for writing frames that come from no video file: constant ``fps``, time base
        ``1/fps`` (pts = frame number), yuv420p (yuv420p10le above 8 bits), untagged colour."""
        fps = Fraction(fps)
        return cls(
            path="",
            width=width,
            height=height,
            fps=fps,
            time_base=1 / fps,
            frame_count=None,
            duration_s=None,
            rotation=0,
            pix_fmt="yuv420p" if bit_depth <= 8 else "yuv420p10le",
            bit_depth=bit_depth,
            color_range=0,
            color_primaries=2,
            color_trc=2,
            colorspace=2,
            codec_name="",
            has_audio=False,
            has_subtitles=False,
        )

    @property
    def is_high_bit_depth(self) -> bool:
        """True when frames are delivered as uint16 (sources deeper than 8 bits)."""
        return self.bit_depth > 8


def pix_fmt_bit_depth(pix_fmt: str) -> int:
    """Bits per colour component of an FFmpeg pixel format (alpha ignored), 8 if unknown."""
    try:
        fmt = av.VideoFormat(pix_fmt)
    except (ValueError, TypeError):
        return 8
    bits = [c.bits for c in fmt.components if not c.is_alpha]
    return max(bits) if bits else 8


def open_container(path: str | os.PathLike) -> av.container.InputContainer:
    """Open ``path`` for reading with PyAV, turning every user-caused failure into UserError."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"input file not found: {p}")
    if p.is_dir():
        raise UserError(f"input is a folder, not a video file: {p}")
    try:
        return av.open(str(p), "r")
    except PermissionError as exc:
        raise UserError(f"cannot read {p}: permission denied") from exc
    except (av.FFmpegError, UnicodeDecodeError, OSError) as exc:
        raise UserError(f"{p} is not a readable video or media file ({_reason(exc)})") from exc


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _first_frame(container: av.container.InputContainer, stream) -> av.VideoFrame | None:
    """Decode packets until one frame comes out (None: no frame).

    PyAV >= 14 does not expose a stream's coded side data for reading, but decoders attach
    the display matrix and HDR10's metadata to frames, so the first decoded frame tells them.
    """
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.FFmpegError:
                continue
            for frame in frames:
                return frame
    except av.FFmpegError:
        return None
    return None


def video_duration_s(stream) -> float | None:
    """Duration of the stream itself (not the container, which may include longer audio).
    Matroska's ``DURATION`` tag is, as FFmpeg writes it, the time at which the stream
    ends, so a stream that starts late (after its audio, or cut) lasts that less its
    start."""
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    end = _duration_tag(stream.metadata)
    if end is None or not stream.start_time or not stream.time_base:
        return end
    start = float(stream.start_time * stream.time_base)
    return end - start if end > start else end


def _duration_tag(metadata: dict) -> float | None:
    """Matroska's per-stream ``DURATION`` tag (``HH:MM:SS.nnnnnnnnn``) in seconds."""
    value = metadata.get("DURATION") or metadata.get("duration")
    if not value:
        return None
    try:
        hours, minutes, seconds = str(value).split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


def _announced_frames(stream, duration_s: float | None, fps: Fraction | None) -> int | None:
    """The stream's frame count as its header gives it; None where the header does not say,
    or where it counts more samples than the stream's duration shows: an edit list (a cut
    made by stream copy, say) then hides the samples before the cut's first keyframe from
    decoding, so the count would promise frames that never come."""
    count = int(stream.frames) if stream.frames else None
    if count is None or duration_s is None or not fps:
        return count
    shown = duration_s * float(fps)
    # a header's count and duration agree on a whole stream (a truncated file's too: its
    # header still describes all of it); more samples than the duration shows are edited out
    return None if count > shown + 2 else count


def probe(path: str | os.PathLike) -> VideoInfo:
    """Read the properties of the video stream of ``path`` (:func:`main_video_stream`).

    Raises UserError for a missing file, a file that is not media, or one without video.
    """
    with open_container(path) as container:
        return _probe_container(container, str(path))


def _format_name(ctx: av.CodecContext) -> str:
    """The video format as FFmpeg names it (av1, whichever decoder reads it: libdav1d)."""
    name = getattr(ctx.codec, "canonical_name", None) if ctx.codec else None
    return name or ctx.name or ""


def main_video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    """The video: the first video stream that is not a cover picture (an MP4's artwork, a
    Matroska image attachment)."""
    videos = container.streams.video
    return next((s for s in videos if not s.disposition & av.stream.Disposition.attached_pic),
                videos[0])


def _sample_aspect_ratio(stream: av.video.stream.VideoStream) -> Fraction | None:
    """The container's sample aspect ratio, else the coded one; None where square or
    unknown."""
    for ratio in (stream.sample_aspect_ratio, stream.codec_context.sample_aspect_ratio):
        if ratio and ratio.numerator > 0 and ratio != 1:
            return Fraction(ratio)
    return None


def _probe_container(container: av.container.InputContainer, path: str) -> VideoInfo:
    streams = container.streams
    if not (streams.video or streams.audio or streams.subtitles):
        # e.g. an MP4 or MOV whose index, written last, is missing or cut
        raise UserError(f"{path} holds no video or audio: not a video, or one cut short (an "
                        "MP4 or MOV stopped before its end has lost its index)")
    if not container.streams.video:
        raise UserError(f"{path} has no video stream")
    stream = main_video_stream(container)
    if stream.disposition & av.stream.Disposition.attached_pic and streams.audio:
        # an MP3's or M4A's album art: sound, not a video of one frame
        raise UserError(f"{path} has no video stream (only a cover picture)")
    ctx = stream.codec_context
    if ctx is None or not ctx.width or not ctx.height:
        raise UserError(f"{path}: the video stream cannot be decoded (unknown codec or size)")
    fps = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = Fraction(fps) if fps else None
    if fps and ctx.framerate and fps > 4 * ctx.framerate:
        # far more frames per second than coded: timestamps that stand still (a broken muxer
        # wrote them all 0) average to such rates, and the coded rate is the one to go by
        # (variable frame rates average below the coded one, never far above it)
        fps = Fraction(ctx.framerate)
    time_base = Fraction(stream.time_base) if stream.time_base else (1 / fps if fps else None)
    if time_base is None:
        time_base = Fraction(1, 1000)
    duration_s = video_duration_s(stream)
    if duration_s is None and container.duration is not None:
        duration_s = container.duration / av.time_base
    frame_count = _announced_frames(stream, duration_s, fps)
    pix_fmt = ctx.pix_fmt or (ctx.format.name if ctx.format else "") or ""
    info = dict(
        path=path,
        width=int(ctx.width),
        height=int(ctx.height),
        fps=fps,
        time_base=time_base,
        frame_count=frame_count,
        duration_s=duration_s,
        pix_fmt=pix_fmt,
        bit_depth=pix_fmt_bit_depth(pix_fmt) if pix_fmt else 8,
        color_range=int(ctx.color_range or 0),
        color_primaries=int(ctx.color_primaries if ctx.color_primaries is not None else 2),
        color_trc=int(ctx.color_trc if ctx.color_trc is not None else 2),
        colorspace=int(ctx.colorspace if ctx.colorspace is not None else 2),
        codec_name=_format_name(ctx),
        has_audio=bool(container.streams.audio),
        has_subtitles=bool(container.streams.subtitles),
        container_format=container.format.name if container.format else "",
        start_pts=stream.start_time,
        sample_aspect_ratio=_sample_aspect_ratio(stream),
        field_order=int(ctx.field_order or 0),
    )
    first = _first_frame(container, stream)
    info["rotation"] = int(round(first.rotation)) if first is not None else 0
    info["hdr10"] = hdr10_of(first) if first is not None else None
    info["container_tags"], info["video_tags"] = _tags(container, stream)
    info["chapters"] = tuple(container.chapters())
    return VideoInfo(**info)


# tags that describe how a file was muxed, not what it holds: the writer sets its own
_MUXING_TAGS = {"major_brand", "minor_version", "compatible_brands", "encoder", "duration"}


def _lowered(tags: dict[str, str]) -> dict[str, str]:
    """``tags`` with lower-case keys (Matroska upper-cases the ones it has no name for)."""
    return {k.lower(): v for k, v in tags.items()}


def _tags(container: av.container.InputContainer, stream: av.video.stream.VideoStream
          ) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """``(container tags, video stream tags)`` worth carrying into the output."""
    own = {k: v for k, v in container.metadata.items() if k.lower() not in _MUXING_TAGS}
    found = _lowered(stream.metadata)
    video = {key: found[key] for key in ("language", "title") if found.get(key)}
    if "title" not in video and found.get("name"):  # MP4/MOV keep a track's title as name
        video["title"] = found["name"]
    timecodes = [found.get("timecode")] + [_lowered(other.metadata).get("timecode")
                                           for other in container.streams
                                           if other.type == "data"]
    timecode = next((t for t in timecodes if t), None)
    if timecode and "timecode" not in _lowered(own):
        video["timecode"] = timecode
    return tuple(own.items()), tuple(video.items())


def expected_frames(info: VideoInfo) -> int | None:
    """The progress bar's total: the header's frame count, or where the container gives
    none (Matroska, WebM, MPEG-TS) the duration times the frame rate; None (a count with no
    total) where that is under two frames, as in a file whose timestamps are all 0."""
    if info.frame_count:
        return info.frame_count
    if info.duration_s and info.fps:
        estimate = round(info.duration_s * float(info.fps))
        return estimate if estimate >= 2 else None
    return None

"""Encode frames back into a video that keeps the input's timing, colour and side streams.

What :class:`VideoWriter` preserves:

- **Timestamps.** The output stream gets the input's ``time_base`` and every frame keeps its
  ``pts``, so variable frame rate survives. (A muxer may impose its own time base, e.g.
  Matroska 1/1000; timestamps are then rescaled exactly as FFmpeg does, and times in seconds
  still match.) Matroska's shift of all streams when a copied audio packet starts before 0
  (AAC priming) is switched off, so video pts stay as they were. MPEG-TS holds no decode
  time before 0: where B-frames put the first one there, its muxer starts every stream
  alike that much later.
- **Pixel format.** By default the input's chroma layout and bit depth are kept when the
  encoder supports them, otherwise the nearest format it does support (see
  :func:`.encoding_choice.choose_pix_fmt`); 10-bit stays 10-bit.
- **Format.** The input's video format (H.264, HEVC, VP9, AV1, ProRes, FFV1, MPEG-2) is
  coded again where the container holds it (:mod:`.encoding_choice`: the encoder, its pixel
  format and options), so the output plays where the input did.
- **Untouched frames.** A frame that still carries its decoded planes (``Frame.planes``, see
  :meth:`Frame.with_image`) is encoded from them, never through RGB, when the output pixel
  format is the input's: with a lossless codec (ffv1, or libx264/libx265 with ``crf=0``,
  which is made lossless at every bit depth) it decodes to exactly the input's samples.
- **Colour tags** (range, primaries, transfer, matrix) on the stream and frames; the
  RGB -> YUV conversion of planar YUV (:mod:`refdeblur_video.video.yuv`) uses the same matrix
  and range the reader used the other way, rounding to nearest. (An RGB source encoded as YUV
  is tagged BT.709 limited range; YUV encoded as RGB is tagged RGB; MJPEG is coded and
  tagged BT.601, as its decoders read every JPEG frame whatever the stream says.)
- **Rotation**: the input's display matrix is written again (MP4/MOV ``tkhd`` matrix;
  Matroska/WebM projection pose; checked with the FFmpeg 8 libraries in PyAV 18). Frames
  are not rotated. MPEG-TS holds no rotation, chapters or tags; one warning names what of
  them the input had (:func:`.tracks.say_what_mpegts_drops`).
- **Audio and subtitles** are stream-copied packet for packet (bytes and pts unchanged) from
  ``copy_streams_from`` and interleaved by time with the video, with their flags (default,
  commentary, dub). Audio the container cannot hold is a :class:`UserError` (silently
  losing sound is worse than stopping); text subtitles it cannot hold are converted to its own
  text format (SRT into MP4 becomes timed text: :mod:`.subtitles`), picture ones dropped
  with a warning.

- **Tags**: the file's own (title, recording time, ...) and the video stream's language,
  title and start timecode (:attr:`VideoInfo.container_tags`, :attr:`VideoInfo.video_tags`);
  MP4 and MOV write the timecode as a timecode track again; copied tracks keep their names
  (:mod:`.tracks`). **Chapters** and their titles.
- **Sample aspect ratio** (non-square samples: DV, DVD, HDV).
- **HDR10's metadata** (mastering display, content light level: :mod:`.hdr`) where x265
  codes the output; other encoders keep only the colour tags.

Not kept: Dolby Vision (its base layer's colour tags are kept), display-matrix flips (only
the rotation is read), video tracks besides the one restored, data streams (e.g. camera
telemetry tracks; a timecode track only as its start timecode), each named in a warning
(:mod:`.tracks`), and attachments (e.g. fonts for ASS subtitles in Matroska).
Durations: each frame's duration is passed on, and in MP4/MOV the last packet is sized so the
track length matches the input even with B-frames.

Segments (resumable runs): :meth:`VideoWriter.end_segment` flushes the encoder and the next
frame starts a fresh, identically set-up one (a keyframe, a closed group of pictures), so a
segment is coded the same whether the run went through or was resumed at its start.
``packet_sink`` sees every video packet; a resumed run muxes the kept ones again
(:meth:`~VideoWriter.mux_stored`, :meth:`~VideoWriter.restore`). Decode timestamps stay
increasing across encoders (``_DtsChain``).

Odd frame sizes are kept where the encoder can code them (ffv1, VP9, SVT-AV1). libx264 and
libx265 cannot with subsampled chroma (4:2:0, 4:2:2), so frames are padded to even by
repeating the last column/row, with one warning; the output is then one pixel larger. The
display size cannot be restored by cropping metadata: H.264/HEVC count their cropping in
chroma samples (2 pixels), and PyAV cannot write container cropping (Matroska PixelCrop, MP4
``clap``). ``VideoWriter.padded`` tells whether that happened.

The writer writes ``path`` directly; wrap it in :func:`refdeblur_video.safe_output.atomic_output`
so that a failure never leaves a partial file under the final name.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import math
import os
import warnings
from collections.abc import Callable, Iterable
from fractions import Fraction

import av
import numpy as np

from refdeblur_video.errors import UserError
from refdeblur_video.video.containers import M2TS_SUFFIXES, container_holds
from refdeblur_video.video.encoding_choice import (
    CODEC_TAGS,
    INTERLACED,
    choose_pix_fmt,
    codec_elsewhere,
    coded_format,
    container_for,
    deeper_format,
    default_codec,
    encoder_meant,
    encoder_options,
    lost_detail,
    settings_note,
)
from refdeblur_video.video.frame import frame_interval
from refdeblur_video.video.libav_log import encoder_complaints, last_complaint
from refdeblur_video.video.metadata import VideoInfo
from refdeblur_video.video.pixel_formats import format_traits, has_trait
from refdeblur_video.video.reader import Frame
from refdeblur_video.video.subtitles import SubtitleConverter, text_format_for
from refdeblur_video.video.tracks import (
    QUICKTIME_FORMATS,
    audio_copy_settled,
    muxer_refusal,
    say_defaults_mpegts_drops,
    say_dropped_data,
    say_dropped_video,
    say_tracks_dropped_from,
    say_what_mpegts_drops,
    stored_format,
    suffixes_holding,
    tags_to_write,
    track_names,
    with_keyed_names,
)
from refdeblur_video.video.yuv import (
    alpha_samples,
    matrix_of,
    pad_planes,
    plane_layout,
    plane_samples,
    video_frame,
    yuv_converter,
)

__all__ = ["VideoWriter"]

log = logging.getLogger(__name__)


_AVCOL_SPC_RGB = 0
_AVCOL_SPC_BT709 = 1
_AVCOL_SPC_BT470BG = 5  # BT.601, 625 lines
_AVCOL_RANGE_MPEG = 1
_AVCOL_RANGE_JPEG = 2
_DTS_TIMED_FORMATS = {"mp4", "mov", "ipod", "3gp", "3g2", "psp", "ismv", "f4v"}
# encoders that code odd sizes with subsampled chroma (checked); others get padded frames
_ODD_SIZE_CODECS = frozenset({"ffv1", "libvpx-vp9", "libsvtav1"})
# AVColorSpace -> swscale matrix id (PyAV's reformat takes the latter)
_SWS_MATRIX = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}


# encoders whose time base must be one frame (a standard rate): their streams count in it
_FRAME_RATE_TIMED = frozenset({"mpeg1video", "mpeg2video"})

# FFmpeg's transfer characteristics of HDR video, whose code values span far more light
# than SDR's, so that 8 bits leave steps the eye sees (banding)
HDR_TRANSFERS = {16: "PQ", 18: "HLG"}


def _plain_yuv(pix_fmt: str | None) -> str | None:
    """A pixel format with FFmpeg's full-range ``yuvj`` spelling as its plain ``yuv`` one:
    the samples are laid out alike (the range goes in the stream's colour tags)."""
    return "yuv" + pix_fmt[4:] if pix_fmt and pix_fmt.startswith("yuvj") else pix_fmt


class VideoWriter:
    """Encode :class:`Frame` objects into ``path``; use as a context manager or call close().

    ``info`` describes the input (time base, fps, colour, rotation, pixel format); frames must
    have its ``width x height``. ``codec`` defaults to the input's format
    (:func:`default_codec`).
    ``crf``/``preset`` are mapped onto the encoder's own options where it has them (x264/x265
    names; VP9/AV1 get a matching speed), ``options`` adds raw encoder options on top.
    ``copy_streams_from`` defaults to ``info.path``; ``audio=False`` / ``subtitles=False`` drop
    those streams. Lossless: ffv1, libx264/libx265 with ``crf=0`` (in the input's format, a
    frame that keeps its decoded planes comes back sample for sample), libx264rgb with
    ``crf=0`` or ffv1 with ``pix_fmt="bgr0"`` (exact RGB frames).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        info: VideoInfo,
        *,
        codec: str | None = None,
        crf: int | None = 16,
        preset: str | None = "medium",
        pix_fmt: str | None = None,
        copy_streams_from: str | os.PathLike | None = None,
        audio: bool = True,
        subtitles: bool = True,
        container_format: str | None = None,
        options: dict[str, str] | None = None,
    ) -> None:
        self.path = str(path)
        self.info = info
        self.format_name = container_for(path, container_format)
        self.codec_name = codec or default_codec(self.format_name, info.codec_name,
                                                 info.pix_fmt, info.field_order in INTERLACED,
                                                 pix_fmt)
        try:
            av_codec = av.Codec(self.codec_name, "w")
        except (ValueError, av.FFmpegError) as exc:
            meant = encoder_meant(self.codec_name)
            raise UserError(f"unknown video encoder {self.codec_name!r}: " + (
                f"did you mean {meant}?" if meant else
                "FFmpeg's encoder names, e.g. libx264, libx265, libsvtav1, libvpx-vp9, ffv1")
            ) from exc
        if av_codec.type != "video":
            raise UserError(f"{self.codec_name!r} is not a video encoder")
        # the encoder FFmpeg picks for a format's name (h264: libx264), whose own options
        # (CRF, preset, lossless, its MP4 tag) the settings below are written for
        self.codec_name = av_codec.name
        self.pix_fmt = choose_pix_fmt(self.codec_name, info.pix_fmt, pix_fmt)
        traits = format_traits(self.pix_fmt)
        if pix_fmt is None and has_trait(info.pix_fmt, "rgb") and not traits.rgb:
            log.warning("the input is RGB (%s); %s codes it as %s (BT.709, limited range): "
                        "--codec libx264rgb or ffv1 keeps RGB", info.pix_fmt, self.codec_name,
                        self.pix_fmt)
        lost = lost_detail(info.pix_fmt, traits) if pix_fmt is None else []
        if lost:
            log.warning("the input is %s; %s codes it as %s, losing its %s: --codec ffv1 "
                        "into .mkv keeps them", info.pix_fmt, self.codec_name, self.pix_fmt,
                        " and ".join(lost))
        if pix_fmt is not None and info.color_trc in HDR_TRANSFERS and traits.bits < 10:
            deep = deeper_format(self.codec_name, traits)
            log.warning("the input is HDR (%s); %s has %d-bit samples, which band visibly "
                        "under its transfer: %s keeps it smooth",
                        HDR_TRANSFERS[info.color_trc], self.pix_fmt, traits.bits,
                        f"--pix-fmt {deep}" if deep else "a codec with 10-bit samples "
                        "(libx265, or libx264 into .mkv/.mp4)")
        if info.hdr10 is not None and self.codec_name != "libx265":
            log.warning("the input's HDR10 metadata (mastering display, light level) is "
                        "written only by libx265: %s keeps its colour tags, not that; "
                        "--codec libx265 keeps it", self.codec_name)
        self._alpha = traits.alpha
        # said at the first frame that is not opaque throughout: a GIF decodes with alpha
        # whether or not any pixel is transparent
        self._alpha_lost = has_trait(info.pix_fmt, "alpha") and not traits.alpha
        self.width, self.height = info.width, info.height
        if self.codec_name not in _ODD_SIZE_CODECS:
            self.width += info.width % 2 if traits.sub_w else 0
            self.height += info.height % 2 if traits.sub_h else 0
        self.padded = (self.width, self.height) != (info.width, info.height)
        if self.padded:
            log.warning(
                "odd frame size %dx%d padded to %dx%d (last column/row repeated): %s cannot "
                "code odd sizes in %s and no cropping can be stored; ffv1 or a 4:4:4 pixel "
                "format keeps the size",
                info.width,
                info.height,
                self.width,
                self.height,
                self.codec_name,
                self.pix_fmt,
            )
        self.time_base = Fraction(info.time_base)
        # every stream is moved alike (_move_start) where the video starts before 0, and
        # into Matroska, which writes the end time as the file's duration, where a clip from
        # another container starts later than 0 (an MPEG-TS recording, a cut): it would
        # claim a length of its start time more. It starts at 0 instead, as FFmpeg's own
        # remux does; a Matroska input already claims its end time
        start = info.start_pts
        matroska = ("matroska", "webm")
        self._to_zero = (self.format_name in matroska and bool(start and start > 0)
                         and not info.container_format.startswith(matroska))
        self._shift = 0
        self._move_start(Fraction(start) if start is not None else None)
        self._colour = self._output_colour(traits.rgb)
        # a yuvj source's planes go into the plain yuv format as they are (and the reverse)
        # only where both sides are full range
        full_in = info.pix_fmt.startswith("yuvj") or info.color_range == _AVCOL_RANGE_JPEG
        full_out = (self.pix_fmt.startswith("yuvj")
                    or self._colour["color_range"] == _AVCOL_RANGE_JPEG)
        self._range_kept = full_in == full_out
        # a source's planes are kept only where the output reads them with their matrix
        self._matrix_kept = (matrix_of(info.colorspace, info.width, info.height)
                             == matrix_of(self._colour["colorspace"], info.width, info.height))
        self._layout = plane_layout(self.pix_fmt)
        self._converter = yuv_converter(self.pix_fmt, self._colour["colorspace"],
                                        self._colour["color_range"], info.width, info.height)
        self._last_pts: int | None = None
        self._last_tick: int | None = None  # in the encoder's frame ticks (_frame_ticks)
        self._frame_ticks: Fraction | None = None
        self._durations: dict[int, int] = {}
        self._end_pts: int | None = None
        self._held: av.Packet | None = None
        self._first_pts: int | None = None
        self._first_dts: int | None = None
        self._frames_written = 0
        self._closed = False
        self._source: av.container.InputContainer | None = None
        self._copy_map: dict[int, av.stream.Stream] = {}
        self._converters: dict[int, SubtitleConverter] = {}  # text subtitles, by source index
        self._copied_starts: list[Fraction] = []  # in video ticks
        self._audio_pts: dict[int, int] = {}  # each copied audio track's last packet's pts
        self._pending: av.Packet | None = None
        self._packets = None
        # segments (end_segment): the encoder in use, None until the next frame starts one
        self._encoder: av.CodecContext | None = None
        self._scratch: av.container.OutputContainer | None = None  # holds a fresh encoder
        self._stream_args = (crf, preset, options)
        self._dts = _DtsChain()
        #: called with every video packet the encoder gives, before it is muxed
        self.packet_sink: Callable[[av.Packet], None] | None = None

        # Matroska would shift every stream when a copied audio packet starts before 0
        # (AAC priming from MP4): keep the input's timestamps instead.
        self._container_options = (
            {"avoid_negative_ts": "disabled"} if self.format_name in ("matroska", "webm") else {}
        )
        file_tags, video_tags = tags_to_write(info)
        self._bdav = os.path.splitext(self.path)[1].lower() in M2TS_SUFFIXES
        if self._bdav:
            self._container_options["mpegts_m2ts_mode"] = "1"
        if self.format_name in QUICKTIME_FORMATS and any("." in key for key in file_tags):
            # a phone's own tags (com.apple.quicktime.location.ISO6709, make, model, the
            # local creation date; com.android.capture.fps) have reverse-DNS names, which
            # the MP4 muxer writes only as keyed metadata, and drops otherwise. Keyed, it
            # writes no classic atoms (a title's, a location's) either: their keyed names
            # too, which Apple's readers take
            self._container_options["movflags"] = "use_metadata_tags"
            file_tags = with_keyed_names(file_tags)
        try:
            self._out = av.open(self.path, "w", format=self.format_name,
                                options=self._container_options)
        except (av.FFmpegError, OSError) as exc:
            raise UserError(f"cannot create {self.path}: {exc}") from exc
        try:
            self._stream = self._add_video_stream(crf, preset, options)
            if self.format_name == "mpegts":
                say_what_mpegts_drops(info, file_tags, video_tags, self.codec_name)
            self._out.metadata.update(file_tags)
            self._stream.metadata.update(video_tags)
            if info.chapters:
                self._out.set_chapters(list(info.chapters))
            source = copy_streams_from if copy_streams_from is not None else info.path
            if source and (audio or subtitles):
                self._add_copied_streams(str(source), audio, subtitles)
            elif source:  # audio and subtitles dropped on request: other tracks are not asked
                say_tracks_dropped_from(str(source))
            try:
                with encoder_complaints() as said:
                    self._out.start_encoding()
            except (av.FFmpegError, ValueError) as exc:
                # FFmpeg's text repeats the whole option dictionary: the encoder's own
                # complaint, else the error's reason, says more in one line
                reason = last_complaint(said) or getattr(exc, "strerror", None) or str(exc)
                raise UserError(
                    f"cannot encode {self.codec_name} into {self.format_name}: {reason}"
                    f"{settings_note(crf, preset)}"
                ) from None
            self._encoder = self._stream.codec_context
        except BaseException:
            self.abort()
            raise

    # -- set-up -------------------------------------------------------------------------------

    def _output_colour(self, out_rgb: bool) -> dict[str, int]:
        info = self.info
        colour = {
            "color_range": info.color_range,
            "color_primaries": info.color_primaries,
            "color_trc": info.color_trc,
            "colorspace": info.colorspace,
        }
        in_rgb = info.colorspace == _AVCOL_SPC_RGB or has_trait(info.pix_fmt, "rgb")
        if out_rgb:  # RGB planes must say so, or decoders read them as YUV
            colour["colorspace"] = _AVCOL_SPC_RGB
            if not in_rgb:
                colour["color_range"] = 0
        elif in_rgb:  # RGB source into YUV: pick an explicit, common matrix
            colour.update(colorspace=_AVCOL_SPC_BT709, color_range=_AVCOL_RANGE_MPEG)
        elif (info.pix_fmt or "").startswith("yuvj"):  # full range by its format's name: the
            # plain format that carries its samples must say so
            colour["color_range"] = _AVCOL_RANGE_JPEG
        if self.codec_name == "mjpeg" and not out_rgb:  # decoders read JPEG frames as JFIF
            # says, BT.601, whatever the stream is tagged
            colour["colorspace"] = _AVCOL_SPC_BT470BG
        if has_trait(self.pix_fmt, "gray") and (
                not info.color_range or not has_trait(info.pix_fmt, "gray")):
            # grey samples are full range as FFmpeg makes them (swscale's RGB to grey, and
            # an untagged grey source), while an untagged 4:0:0 H.264/HEVC stream is read as
            # limited range: say so, or players stretch its contrast
            colour["color_range"] = _AVCOL_RANGE_JPEG
        return colour

    def _add_video_stream(self, crf, preset, options, out=None):
        rate = self.info.fps or Fraction(1, 1) / self.time_base
        try:
            if not container_holds(self.format_name, coded_format(self.codec_name)):
                raise ValueError("no stream type for it")
            stream = (out or self._out).add_stream(self.codec_name, rate=rate)
        except ValueError as exc:
            raise UserError(f"the {self.format_name} container cannot hold {self.codec_name} "
                            f"video; {codec_elsewhere(self.codec_name)}") from exc
        stream.width, stream.height = self.width, self.height
        stream.pix_fmt = self.pix_fmt
        tag = CODEC_TAGS.get((self.codec_name, self.format_name))
        if tag:
            stream.codec_tag = tag
        stream.time_base = self.time_base
        ctx = stream.codec_context
        # MPEG-1/2 code one of their standard frame rates as the encoder's time base; the
        # frames' timestamps are rescaled into it and back
        ctx.time_base = (1 / Fraction(rate) if self.codec_name in _FRAME_RATE_TIMED
                         else self.time_base)
        self._frame_ticks = Fraction(ctx.time_base) if ctx.time_base != self.time_base \
            else None
        for key, value in self._colour.items():
            setattr(ctx, key, value)
        if self.info.sample_aspect_ratio:  # else players show non-square samples squeezed
            ctx.sample_aspect_ratio = self.info.sample_aspect_ratio
        if self.info.field_order in INTERLACED:  # the order a player takes the fields in
            ctx.field_order = self.info.field_order
        opts = encoder_options(self.codec_name, crf, preset, self.info.hdr10,
                               self.info.field_order)
        opts.update(options or {})
        ctx.options = opts
        if self.codec_name == "libsvtav1":
            # SVT-AV1 prints its whole configuration to the terminal (about twenty lines)
            # unless told otherwise; errors still come through. A user's own SVT_LOG wins.
            os.environ.setdefault("SVT_LOG", "1")
        if self.info.rotation:
            stream.set_display_rotation(self.info.rotation)
        return stream

    def _add_copied_streams(self, source: str, audio: bool, subtitles: bool) -> None:
        try:
            self._source = av.open(source, "r")
        except (av.FFmpegError, OSError) as exc:
            raise UserError(f"cannot read audio/subtitles from {source}: {exc}") from exc
        say_dropped_data(self._source)
        say_dropped_video(self._source)
        wanted = []
        for stream in self._source.streams:
            if (stream.type == "audio" and audio) or (stream.type == "subtitle" and subtitles):
                codec = stored_format(stream)
                refusal = muxer_refusal(self.format_name, stream, self._bdav)
                if refusal is not None:
                    if stream.type == "audio":
                        elsewhere = " or ".join(suffixes_holding(stream))
                        raise UserError(
                            f"the {self.format_name} container cannot hold the input's {codec} "
                            f"audio{refusal}; "
                            + (f"name the output {elsewhere}, or give " if elsewhere
                               else "give ") + "--no-audio")
                    text = text_format_for(self.format_name, stream)
                    converter = None
                    if text is not None:
                        with contextlib.suppress(av.FFmpegError, ValueError, AttributeError):
                            converter = SubtitleConverter(stream, self._out, text)
                    if converter is None:
                        warnings.warn(f"the input's subtitle track #{stream.index} ({codec}) "
                                      f"cannot be stored in {self.format_name}; dropped",
                                      stacklevel=3)
                        continue
                    self._converters[stream.index] = converter
                    log.info("%s subtitles are converted to %s (%s holds no %s)", codec,
                             text, self.format_name, codec)
                copied = (self._converters[stream.index].stream
                          if stream.index in self._converters
                          else self._out.add_stream_from_template(stream))
                copied.metadata.update(track_names(stream.metadata, self.format_name))
                # which track a player starts with, and which is commentary, a dub, ...
                copied.disposition = stream.disposition
                if stream.type == "audio":
                    audio_copy_settled(stream, copied, self.format_name)
                self._copy_map[stream.index] = copied
                wanted.append(stream)
        if self.format_name == "mpegts":
            say_defaults_mpegts_drops(wanted)
        if wanted:
            self._packets = self._source.demux(wanted)
            self._copied_starts = [Fraction(s.start_time) * s.time_base / self.time_base
                                   for s in wanted if s.start_time is not None and s.time_base]
            if self._shift:  # every stream moves by as much as the earliest needs
                self._move_start(min([-Fraction(self._shift), *self._copied_starts]))
        else:
            self._source.close()
            self._source = None

    # -- writing ------------------------------------------------------------------------------

    def write(self, frame: Frame) -> None:
        """Encode one frame, keeping its pts (rescaled only if its time base differs)."""
        if self._closed:
            raise ValueError("write() on a closed VideoWriter")
        if self._alpha_lost and frame.alpha is not None and not _opaque(frame.alpha):
            log.warning("the input's transparency (alpha, %s) is not kept: the output is "
                        "opaque %s; --codec ffv1 into .mkv keeps it", self.info.pix_fmt,
                        self.pix_fmt)
            self._alpha_lost = False
        vf = self._video_frame(frame)
        for key, value in self._colour.items():
            setattr(vf, key, value)
        vf.pts = self._next_pts(frame)
        if self._first_pts is None:
            self._first_pts = vf.pts
        vf.time_base = self.time_base
        if frame.duration:
            # encoders such as libx264 drop frame durations; put them back on the packets
            vf.duration = round(frame.duration * Fraction(frame.time_base) / self.time_base)
            self._durations[vf.pts] = vf.duration
            self._end_pts = vf.pts + vf.duration
        else:
            self._end_pts = None
        self._mux_video(self._encode(vf))
        self._frames_written += 1

    def _video_frame(self, frame: Frame) -> av.VideoFrame:
        """The frame in the encoder's pixel format and size: its own decoded planes when it
        was passed through in that format, else converted from its RGB image."""
        image = self._checked_image(frame)
        planes = frame.planes
        same = self._matrix_kept and (frame.pix_fmt == self.pix_fmt or (
            self._range_kept and _plain_yuv(frame.pix_fmt) == _plain_yuv(self.pix_fmt)))
        if planes is None or self._layout is None or not same:
            if self._converter is None:
                return self._swscale_frame(image, frame.alpha if self._alpha else None)
            planes = self._converter.from_rgb(np.ascontiguousarray(image))
            if self._layout.alpha:
                planes += (self._alpha_plane(frame),)
        elif planes[0].shape != image.shape[:2]:
            raise ValueError(f"frame {frame.index}: its planes do not match its image")
        if self.padded:
            planes = pad_planes(planes, self._layout, self.width, self.height)
        return video_frame(planes, self._layout)

    def _alpha_plane(self, frame: Frame) -> np.ndarray:
        """The output's alpha plane for ``frame``: its own transparency, or opaque."""
        bits = self._layout.bits
        if frame.alpha is None:
            return np.full(frame.image.shape[:2], (1 << bits) - 1, self._layout.dtype)
        return alpha_samples(frame.alpha, bits)

    def _checked_image(self, frame: Frame) -> np.ndarray:
        image = frame.image
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 RGB image, got shape {image.shape}")
        if image.shape[:2] != (self.info.height, self.info.width):
            raise ValueError(
                f"frame is {image.shape[1]}x{image.shape[0]}, the video is "
                f"{self.info.width}x{self.info.height}"
            )
        if image.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"frames must be uint8 or uint16, got {image.dtype}")
        return image

    def _swscale_frame(self, image: np.ndarray, alpha: np.ndarray | None = None
                       ) -> av.VideoFrame:
        """RGB (with ``alpha`` where given) into a format :mod:`~refdeblur_video.video.yuv`
        does not convert (RGB, packed or semi-planar YUV, gray, any with alpha) through
        swscale."""
        src_format = "rgb24" if image.dtype == np.uint8 else "rgb48le"
        if alpha is not None:
            image = np.dstack((image, alpha.astype(image.dtype)))
            src_format = "rgba" if image.dtype == np.uint8 else "rgba64le"
        if self.padded:
            pad = ((0, self.height - image.shape[0]), (0, self.width - image.shape[1]), (0, 0))
            image = np.pad(image, pad, mode="edge")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=src_format)
        if vf.format.name != self.pix_fmt:
            vf = vf.reformat(
                format=self.pix_fmt,
                dst_colorspace=_SWS_MATRIX.get(self._colour["colorspace"]),
                dst_color_range=self._colour["color_range"] or None,
            )
            if alpha is not None and vf.format.is_planar:
                _put_alpha(vf, image[..., 3])
        return vf

    def _next_pts(self, frame: Frame) -> int:
        if self._last_pts is None and frame.pts is not None:
            video = Fraction(frame.pts) * Fraction(frame.time_base) / self.time_base
            if video + self._shift < 0:  # frames timed before the start (the reader's lead)
                self._move_start(min([video, *self._copied_starts]))
        if frame.pts is None:
            step = frame_interval(self.info.fps, self.time_base)
            pts = 0 if self._last_pts is None else self._last_pts + step
        elif Fraction(frame.time_base) != self.time_base:
            pts = round(frame.pts * Fraction(frame.time_base) / self.time_base) + self._shift
        else:
            pts = int(frame.pts) + self._shift
        if self._last_pts is not None and pts <= self._last_pts:
            raise ValueError(
                f"frame {frame.index}: pts {pts} does not increase (previous {self._last_pts})"
            )
        if self._frame_ticks is not None:
            self._check_frame_tick(pts, frame.index)
        self._last_pts = pts
        self._dts.frame(pts)
        return pts

    def _check_frame_tick(self, pts: int, index: int) -> None:
        """An encoder timed in whole frames (MPEG-1/2) takes one frame per tick: a
        variable frame rate that puts two frames in one is a :class:`UserError`."""
        tick = round(pts * self.time_base / self._frame_ticks)
        if self._last_tick is not None and tick <= self._last_tick:
            raise UserError(f"{self.codec_name} codes a constant frame rate, and this video's "
                            f"frame rate varies (frame {index} falls in the previous frame's "
                            "time): choose another --codec")
        self._last_tick = tick

    def _encode(self, vf: av.VideoFrame | None) -> list[av.Packet]:
        if self._encoder is None:
            if vf is None:
                return []
            self._encoder = self._fresh_encoder()
        return self._encoder.encode(vf)

    def _mux_video(self, packets) -> None:
        for packet in packets:
            if self._frame_ticks is not None:  # from the encoder's frame ticks
                _rescaled(packet, self.time_base)
            packet.stream = self._stream
            self._dts.packet(packet)
            duration = self._durations.pop(packet.pts, None)
            if duration and not packet.duration:
                packet.duration = duration
            if self.packet_sink is not None:
                self.packet_sink(packet)
            self._hold(packet)

    def _hold(self, packet: av.Packet) -> None:
        # One packet is held back so that close() can still fix the last one's duration.
        if self._first_dts is None:
            self._first_dts = packet.dts
        self._mux_held()
        self._held = packet

    def _mux_held(self) -> None:
        packet, self._held = self._held, None
        if packet is None:
            return
        ts = packet.dts if packet.dts is not None else packet.pts
        if ts is not None and packet.time_base:
            self._copy_until(float(ts * packet.time_base))
        self._out.mux(packet)

    def _fix_last_duration(self) -> None:
        """ISO BMFF track length is ``last dts + last duration - first dts`` (decode order);
        with B-frames the last packet is not the last shown and the first dts is shifted
        below the first pts, so size the last packet's duration to give the real length."""
        packet = self._held
        if (
            packet is None
            or self.format_name not in _DTS_TIMED_FORMATS
            or None in (self._end_pts, self._first_pts, self._first_dts, packet.dts)
        ):
            return
        duration = self._end_pts - self._first_pts + self._first_dts - packet.dts
        if duration > 0:
            packet.duration = duration

    def _copy_until(self, seconds: float) -> None:
        """Mux copied audio/subtitle packets that start no later than ``seconds``."""
        while self._packets is not None:
            if self._pending is None:
                self._pending = next(self._packets, None)
                if self._pending is None:
                    self._packets = None
                    break
                self._move_by_shift(self._pending)
            packet = self._pending
            if packet.size == 0 or packet.stream.index not in self._copy_map:
                self._pending = None
                continue
            ts = packet.dts if packet.dts is not None else packet.pts
            if ts is not None and float(ts * packet.time_base) > seconds:
                break
            if packet.stream.type == "audio":
                self._give_audio_duration(packet)
            converter = self._converters.get(packet.stream.index)
            if converter is not None:
                packet = converter.convert(packet)
            else:
                packet.stream = self._copy_map[packet.stream.index]
            if packet is not None:
                self._out.mux(packet)
            self._pending = None

    def _give_audio_duration(self, packet: av.Packet) -> None:
        """An audio packet that came without a duration (Matroska's ALAC) gets the gap
        before it: MP4 and MOV take a sample's length from the next one, and drop the last
        sample, which has none."""
        index, pts = packet.stream.index, packet.pts
        previous = self._audio_pts.get(index)
        if not packet.duration and previous is not None and pts is not None and pts > previous:
            packet.duration = pts - previous
        if pts is not None:
            self._audio_pts[index] = pts

    def _move_start(self, earliest: Fraction | None) -> None:
        """Set ``_shift`` (video ticks) from the earliest start of the streams written:
        a video that starts before 0 (an MPEG-TS whose 33-bit clock wrapped just after it
        began) is moved later, since MP4 would drop the frames before 0 and Matroska lose
        their timestamps; one that goes to Matroska from a late start (``_to_zero``) is
        moved to start at 0, never later."""
        if earliest is None or not (earliest < 0 or self._to_zero):
            return
        shift = -math.floor(earliest)
        self._shift = min(shift, 0) if self._to_zero else shift

    def _move_by_shift(self, packet: av.Packet) -> None:
        """A copied packet moved as the video is (see ``_shift``)."""
        if self._shift and packet.time_base:
            moved = round(self._shift * self.time_base / packet.time_base)
            packet.pts = None if packet.pts is None else packet.pts + moved
            packet.dts = None if packet.dts is None else packet.dts + moved

    # -- finishing ----------------------------------------------------------------------------

    def close(self) -> None:
        """Flush the encoder, copy the remaining audio/subtitles and finalise the file.

        A muxer that refuses the finished file (its index, written last) is a
        :class:`UserError` quoting its complaint, not a libav traceback."""
        if self._closed:
            return
        try:
            with encoder_complaints() as said:
                try:
                    self._mux_video(self._encode(None))
                    self._fix_last_duration()
                    self._mux_held()
                    self._copy_until(math.inf)
                    for converter in self._converters.values():
                        converter.close()
                finally:
                    self._closed = True
                    self._release()
        except av.FFmpegError as exc:
            if isinstance(exc, OSError) and exc.errno != errno.EINVAL:
                raise  # a full or failing disk: the pipeline says so, and how to resume
            complaint = last_complaint(said) or str(exc)
            raise UserError(f"the {self.format_name} muxer could not finish the output "
                            f"({complaint.rstrip('.')}); try another output container "
                            "(.mkv holds most streams)") from exc

    def abort(self) -> None:
        """Stop without flushing (after an error); the partial file is left to the caller."""
        self._closed = True
        try:
            self._release()
        except (av.FFmpegError, OSError) as exc:  # keep the original error visible
            log.debug("ignoring error while aborting %s: %s", self.path, exc)

    def _release(self) -> None:
        out, self._out = getattr(self, "_out", None), None
        source, self._source = self._source, None
        self._packets = self._pending = self._held = self._encoder = None
        self._close_scratch()
        try:
            if out is not None:
                out.close()
        finally:
            if source is not None:
                source.close()

    # -- segments (refdeblur_video.pipeline.resume) -------------------------------------------

    def end_segment(self) -> None:
        """Flush the encoder; the next frame starts a fresh one (a closed group of pictures
        set up exactly like the first, so it begins with a keyframe)."""
        if self._closed:
            raise ValueError("end_segment() on a closed VideoWriter")
        self._mux_video(self._encode(None))
        self._encoder = None
        self._close_scratch()
        self._dts.restart()

    def snapshot(self) -> dict:
        """What :meth:`restore` needs to go on after the packets of the segments so far
        (JSON-serialisable; take it right after :meth:`end_segment`)."""
        if self._encoder is not None or self._dts.delay is None:
            raise ValueError("snapshot() inside a segment: call end_segment() first")
        return {"last_pts": self._last_pts, "first_pts": self._first_pts,
                "end_pts": self._end_pts, "frames": self._frames_written,
                "dts": self._dts.state(), "shift": self._shift}

    def shift_as(self, snapshot: dict) -> None:
        """Move every stream as the writer of ``snapshot`` did (a start before 0 found at
        its first frame, :meth:`_next_pts`): before any stored packet is muxed, so that the
        sound copied again lines up with the stored frames."""
        if self._frames_written or self._held is not None:
            raise ValueError("shift_as() only on a new VideoWriter")
        self._shift = snapshot.get("shift", self._shift)

    def mux_stored(self, data: bytes, pts: int | None, dts: int | None, duration: int,
                   keyframe: bool) -> None:
        """Mux a packet kept from an earlier run's segment (timestamps in the writer's time
        base, as :attr:`packet_sink` saw them)."""
        packet = av.Packet(data)
        packet.pts, packet.dts, packet.duration = pts, dts, duration
        packet.time_base = self.time_base
        packet.is_keyframe = keyframe
        packet.stream = self._stream
        self._hold(packet)

    def restore(self, snapshot: dict) -> None:
        """Go on after stored segments (:meth:`mux_stored`) as the writer that made them
        would have after its :meth:`snapshot`."""
        if self._encoder is not self._stream.codec_context or self._frames_written:
            raise ValueError("restore() only on a new VideoWriter")
        self._encoder = None  # the stream's own encoder made the first segment, long ago
        self._last_pts, self._first_pts = snapshot["last_pts"], snapshot["first_pts"]
        self._end_pts, self._frames_written = snapshot["end_pts"], snapshot["frames"]
        self._dts = _DtsChain.from_state(snapshot["dts"])

    def _fresh_encoder(self) -> av.CodecContext:
        """An encoder set up like the stream's own: through a stream of the same container
        format, which gives it the same flags and options (and so the same headers)."""
        self._close_scratch()
        self._scratch = av.open(io.BytesIO(), "w", format=self.format_name,
                                options=self._container_options)
        stream = self._add_video_stream(*self._stream_args, out=self._scratch)
        self._scratch.start_encoding()
        return stream.codec_context

    def _close_scratch(self) -> None:
        scratch, self._scratch = self._scratch, None
        if scratch is not None:
            try:
                scratch.close()
            except (av.FFmpegError, OSError) as exc:  # an empty in-memory file: nothing lost
                log.debug("ignoring error while closing a scratch container: %s", exc)

    @property
    def frames_written(self) -> int:
        return self._frames_written

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _rescaled(packet: av.Packet, time_base: Fraction) -> None:
    """``packet``'s timestamps and duration moved into ``time_base`` (rounded)."""
    factor = Fraction(packet.time_base) / time_base
    packet.pts = None if packet.pts is None else round(packet.pts * factor)
    packet.dts = None if packet.dts is None else round(packet.dts * factor)
    packet.duration = round(packet.duration * factor) if packet.duration else 0
    packet.time_base = time_base


def _opaque(alpha: np.ndarray) -> bool:
    """Whether an alpha plane (8 or 16 bits; deeper samples shifted up, so a 10-bit
    opaque one reads 65472) is opaque everywhere."""
    low, high = int(alpha.min()), int(alpha.max())
    return low == high and high >= np.iinfo(alpha.dtype).max - 255 * (alpha.itemsize > 1)


def _put_alpha(frame: av.VideoFrame, alpha: np.ndarray) -> None:
    """Write ``alpha`` (8 or 16 bits, as RGBA holds it) into the last plane of a planar
    frame with alpha, exactly: swscale's conversion from RGBA moves some values by one."""
    values = alpha_samples(alpha, frame.format.components[-1].bits)
    plane_samples(frame.planes[-1], values.dtype)[:] = values


class _DtsChain:
    """Decode timestamps that stay increasing across restarted encoders.

    An encoder that reorders frames (B-frames) gives its n-th packet the pts of its
    ``(n - delay)``-th frame in display order as dts (x264 and x265 do), and starts below
    its first pts by ``delay`` frame intervals of its own first frames. A restarted encoder
    starts that way again, which with variable frame rate can fall at or below the previous
    segment's last dts. So the first encoder's dts are kept (and give ``delay``), and the
    packets of each later one get dts by the same rule counted over the whole video: what a
    single encoder would have given. Encoders that do not reorder keep their own dts.
    """

    def __init__(self, delay: int | None = None, pts: Iterable[int] = ()) -> None:
        self.delay = delay  # None while the first encoder runs
        self._pts = list(pts)  # the last ``delay`` frames before this encoder, then its own
        self._packets = 0  # packets of this encoder so far
        self._early = 0  # first encoder: packets whose dts precede its first frame

    def frame(self, pts: int) -> None:
        self._pts.append(pts)

    def packet(self, packet: av.Packet) -> None:
        if self.delay is None:
            if packet.dts is not None and self._pts and packet.dts < self._pts[0]:
                self._early += 1
        elif self.delay and self._packets < len(self._pts):
            packet.dts = self._pts[self._packets]
        self._packets += 1

    def restart(self) -> None:
        """The encoder was flushed: a new one starts with the next frame."""
        if self.delay is None:
            self.delay = self._early
        self._pts = self._pts[len(self._pts) - self.delay:] if self.delay else []
        self._packets = 0

    def state(self) -> dict:
        """The chain between two encoders (after :meth:`restart`), for :meth:`from_state`."""
        return {"delay": self.delay, "pts": list(self._pts)}

    @classmethod
    def from_state(cls, state: dict) -> _DtsChain:
        return cls(state["delay"], state["pts"])

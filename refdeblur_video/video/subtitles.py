"""Text subtitles that the output container cannot hold as they are, converted to its own
text format, as FFmpeg's command line does by default: SRT or ASS from Matroska become MP4's
timed text (``mov_text``), MP4's timed text becomes SRT in Matroska, either becomes WebVTT
in WebM. The words and their times are kept; styling survives where both formats have it
(italics, bold), positions and fonts of ASS do not. Picture subtitles (DVD, Blu-ray) have no
text to convert.
"""

from __future__ import annotations

import logging

import av
import av.subtitles.codeccontext

log = logging.getLogger(__name__)

__all__ = ["SubtitleConverter", "text_format_for"]

# the text subtitle format each output container holds natively
_TEXT_FORMATS = {"mp4": "mov_text", "mov": "mov_text", "matroska": "subrip", "webm": "webvtt"}


# PyAV encodes subtitles from 16.1 on; with an older one they are dropped as before
_ENCODES_SUBTITLES = hasattr(av.subtitles.codeccontext.SubtitleCodecContext,
                             "encode_subtitle")


def text_format_for(format_name: str, stream: av.stream.Stream) -> str | None:
    """The text format a subtitle ``stream`` is converted to for ``format_name``, or None
    where it has no text (pictures), the container has no text format, or this PyAV cannot
    encode subtitles."""
    context = stream.codec_context
    if not _ENCODES_SUBTITLES or context is None or not context.codec.text_sub:
        return None
    return _TEXT_FORMATS.get(format_name)


class SubtitleConverter:
    """Decodes one source subtitle track and encodes its cues into an output track."""

    def __init__(self, source: av.stream.Stream, out: av.container.OutputContainer,
                 codec: str) -> None:
        self._decoder = source.codec_context
        if not self._decoder.is_open:
            self._decoder.open()  # its ASS header (the styles) is made on opening
        self.stream = out.add_stream(codec)
        encoder = self.stream.codec_context
        encoder.subtitle_header = self._decoder.subtitle_header
        encoder.time_base = self.stream.time_base = source.time_base
        self._failed = 0

    def convert(self, packet: av.Packet) -> av.Packet | None:
        """The cue of ``packet`` in the output's format, timed as it was; None for a packet
        that holds no cue (or one the decoder could not read, counted for :meth:`close`)."""
        try:
            cues = self._decoder.decode2(packet)
            if cues is None or not len(cues):
                return None
            converted = self.stream.codec_context.encode_subtitle(cues)
        except (av.FFmpegError, ValueError):
            self._failed += 1
            return None
        converted.stream, converted.time_base = self.stream, packet.time_base
        converted.pts, converted.dts = packet.pts, packet.dts
        converted.duration = packet.duration
        return converted

    def close(self) -> None:
        """Say how many cues could not be converted, if any."""
        if self._failed:
            log.warning("%d subtitle cue%s could not be converted to %s and %s left out",
                        self._failed, "s" * (self._failed > 1), self.stream.codec_context.name,
                        "are" if self._failed > 1 else "is")

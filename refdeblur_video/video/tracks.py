"""The side tracks and tags a :class:`~refdeblur_video.video.writer.VideoWriter` writes
again, and the warnings for the tracks it drops.

- **Track names**: a copied track keeps its language and title, and in MP4/MOV its handler
  name, which is its name there (:func:`track_names`); the MOV muxer's spelling of a language
  is used where it keeps only that one.
- **Copied tracks**: whether the container takes a copy of a track (:func:`muxer_refusal`), and
  copied audio made one it can finish (:func:`audio_copy_settled`: unordered channels get
  FFmpeg's default layout; PCM into MP4 is said to play in few players).
- **Tags**: the file's and the video stream's (:func:`tags_to_write`), a start timecode only at
  a frame rate a timecode track can count; in MP4/MOV a phone's reverse-DNS tags are written as
  keyed metadata, the classic ones then under their keyed names too (:func:`with_keyed_names`).
- **MPEG-TS**: one warning names what of the input it has no place for (rotation, chapters,
  tags, a field order the encoder does not code: :func:`say_what_mpegts_drops`), and one
  each default track that is not the first of its kind (:func:`say_defaults_mpegts_drops`).
- **Dropped tracks**: one warning names the input's data tracks (camera telemetry; a timecode
  track is written again from its start, a MOV/MP4 text track of chapters from the chapters)
  and one its video tracks besides the restored one (:func:`say_dropped_data`,
  :func:`say_dropped_video`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import av

from refdeblur_video.errors import UserError
from refdeblur_video.video.containers import CONTAINERS, M2TS_SUFFIXES, container_holds
from refdeblur_video.video.encoding_choice import FIELD_CODERS, INTERLACED
from refdeblur_video.video.libav_log import encoder_complaints, last_complaint
from refdeblur_video.video.metadata import VideoInfo, main_video_stream

__all__ = ["QUICKTIME_FORMATS", "audio_copy_settled", "muxer_refusal", "say_dropped_data",
           "say_defaults_mpegts_drops", "say_dropped_video", "say_tracks_dropped_from",
           "say_what_mpegts_drops",
           "stored_format", "suffixes_holding", "tags_to_write", "track_names",
           "with_keyed_names"]

log = logging.getLogger(__name__)


# a MOV/MP4 timecode track counts frames per second in one byte (FFmpeg refuses more)
_TIMECODE_MAX_FPS = 255


# the formats of FFmpeg's mov muxer: tags as atoms or keyed metadata, tracks named by handler
QUICKTIME_FORMATS = ("mp4", "mov")


def track_names(tags: dict[str, str], format_name: str) -> dict[str, str]:
    """A copied track's tags that players show in their track menus: its language and
    title, and in MP4/MOV its handler name ("Commentary"), which is the name there (a
    title from another container becomes it)."""
    found = {key.lower(): value for key, value in tags.items() if value}
    names = {key: found[key] for key in ("language", "title") if key in found}
    if format_name == "mov" and names.get("language") in _MOV_LANGUAGES:
        names["language"] = _MOV_LANGUAGES[names["language"]]  # the spelling it keeps
    handler = found.get("handler_name")
    if format_name in QUICKTIME_FORMATS:
        if handler or "title" in found:
            names["handler_name"] = handler or found["title"]
    elif handler and handler not in _MUXER_HANDLER_NAMES and "title" not in names:
        names["title"] = handler  # Matroska names a track by its title
    return names


# the MOV muxer stores a language as QuickTime's old Macintosh code where it has one, and its
# table spells some in ISO 639-2/B (ger), some in /T (fra): any other spelling of those is
# dropped (checked one by one with FFmpeg 8's muxer). Matroska writes /B, MP4 takes either
_MOV_LANGUAGES = {"deu": "ger", "nld": "dut", "zho": "chi", "ell": "gre", "fas": "per",
                  "hye": "arm", "isl": "ice", "kat": "geo", "mkd": "mac", "msa": "may",
                  "mya": "bur", "sqi": "alb", "bod": "tib", "cym": "wel", "eus": "baq",
                  "fre": "fra", "cze": "ces", "rum": "ron", "slo": "slk", "swe": "sve",
                  "nob": "nor", "nno": "nor"}

# the handler names muxers write when a track has none of its own (FFmpeg's, Apple's)
_MUXER_HANDLER_NAMES = {"SoundHandler", "VideoHandler", "SubtitleHandler", "DataHandler",
                        "Core Media Audio", "Core Media Video", "Core Media Data"}


def _text_track(stream: av.stream.Stream) -> bool:
    """Whether a data stream is a MOV/MP4 text track: how those hold a chapter list, which
    the output writes again from the file's chapters."""
    handler = stream.metadata.get("handler_name", "").lower()
    return stream.codec_context is None and any(
        kind in handler for kind in ("subtitle", "chapter", "text"))


def say_dropped_data(source: av.container.InputContainer) -> None:
    """One warning for the input's data tracks the output does not keep (a GoPro's
    telemetry, GPS and gyro, in its "GoPro MET" track): the tool copies audio and subtitle
    streams only; a timecode track is written again from its start (not a loss)."""
    chaptered = bool(source.chapters())
    _say_not_kept("data", [stream for stream in source.streams
                           if stream.type in ("data", "attachment")
                           and not any(key.lower() == "timecode" for key in stream.metadata)
                           and not (chaptered and _text_track(stream))],
                  "the output holds video, audio and subtitles only")


def say_dropped_video(source: av.container.InputContainer) -> None:
    """One warning for the input's video tracks besides the one restored (a second camera
    angle, a proxy): the output holds one video track. Cover pictures are not named."""
    restored = main_video_stream(source)
    _say_not_kept("other video", [stream for stream in source.streams.video
                                  if stream is not restored
                                  and not stream.disposition & av.stream.Disposition.attached_pic],
                  f"the output holds the restored one (#{restored.index}) only")


def say_tracks_dropped_from(source: str) -> None:
    """The warnings for data and other video tracks where no stream of ``source`` is
    copied (an unreadable source is reported where it is read)."""
    with contextlib.suppress(av.FFmpegError, OSError), av.open(source, "r") as container:
        say_dropped_data(container)
        say_dropped_video(container)


def _say_not_kept(kind: str, streams: list[av.stream.Stream], holds: str) -> None:
    """One warning naming ``streams`` (the input's ``kind`` tracks) as not kept."""
    if not streams:
        return
    names = [stream.metadata.get("title") or _own_handler(stream) or f"#{stream.index}"
             for stream in streams]
    many = len(names) > 1
    warnings.warn(f"the input's {kind} track{'s' * many} ({', '.join(names)}) "
                  f"{'are' if many else 'is'} not kept: {holds}", stacklevel=4)


def _own_handler(stream: av.stream.Stream) -> str | None:
    """A track's handler name where it is its own, not a muxer's default."""
    handler = stream.metadata.get("handler_name")
    return handler if handler not in _MUXER_HANDLER_NAMES else None


# the keyed (QuickTime "mdta") names of the tags the MP4 muxer otherwise writes as atoms
_KEYED_NAMES = {"title": "com.apple.quicktime.title", "comment": "com.apple.quicktime.comment",
                "artist": "com.apple.quicktime.artist",
                "location": "com.apple.quicktime.location.ISO6709"}


def with_keyed_names(tags: dict[str, str]) -> dict[str, str]:
    """``tags`` with the keyed name of each classic one added where it is missing."""
    found = {key.lower(): value for key, value in tags.items()}
    return {**{keyed: found[plain] for plain, keyed in _KEYED_NAMES.items()
               if plain in found and keyed not in found}, **tags}


def tags_to_write(info: VideoInfo) -> tuple[dict[str, str], dict[str, str]]:
    """The input's file and video stream tags to write again: a start timecode (on either)
    only at a frame rate a timecode track can count."""
    tags = dict(info.container_tags), dict(info.video_tags)
    if info.fps and info.fps <= _TIMECODE_MAX_FPS:
        return tags
    for found in tags:
        for key in [k for k in found if k.lower() == "timecode"]:
            log.warning("the start timecode %s is dropped: a timecode track cannot count %s "
                        "frames per second", found.pop(key), info.fps or "unknown")
    return tags


# what MPEG-TS keeps of a file's tags (its service's description); a stream's language it
# writes for sound and subtitles only
_MPEGTS_TAGS = {"service_name", "service_provider"}


def say_what_mpegts_drops(info: VideoInfo, file_tags: dict[str, str],
                          video_tags: dict[str, str], encoder: str = "libx264") -> None:
    """One warning naming what of the input an MPEG-TS output has no place for: its rotation
    (it plays unturned), its chapters and its tags, and an interlaced video's field order
    where ``encoder`` does not code the fields."""
    lost = []
    if info.field_order in INTERLACED and encoder not in FIELD_CODERS:
        lost.append(f"field order ({encoder} codes the frames as progressive, which players "
                    "do not deinterlace; libx264 codes the fields)")
    if info.rotation:
        lost.append(f"rotation ({info.rotation} degrees: it plays unturned)")
    if info.chapters:
        lost.append(f"chapters ({len(info.chapters)})")
    tags = sorted({key for key in file_tags if key not in _MPEGTS_TAGS}
                  | {key for key in video_tags if key != "language"})
    if tags:
        lost.append(f"tags ({', '.join(tags)})")
    if lost:
        log.warning("an MPEG-TS output does not keep the input's %s: .mkv, .mp4 and .mov do",
                    ", ".join(lost))


def stored_format(stream: av.stream.Stream) -> str:
    """The format of ``stream``'s packets as FFmpeg names formats (dvb_subtitle, dts), not
    as it names their decoder (dvbsub, dca); for a format this PyAV has no decoder for
    (DVB teletext), ``"a format this PyAV does not read"``."""
    context = stream.codec_context
    if context is None:
        return "a format this PyAV does not read"
    try:
        return context.codec.canonical_name
    except (AttributeError, ValueError, av.FFmpegError):
        return context.name


def say_defaults_mpegts_drops(streams: list[av.stream.Stream]) -> None:
    """A warning for each copied track marked default that is not the first of its kind:
    MPEG-TS has no such mark, and players start with the first."""
    for kind in ("audio", "subtitle"):
        tracks = [s for s in streams if s.type == kind]
        for stream in tracks[1:]:
            if stream.disposition & av.stream.Disposition.default:
                name = (stream.metadata.get("title") or stream.metadata.get("language")
                        or f"#{stream.index}")
                log.warning("the input's default %s track (%s) is not marked so in MPEG-TS, "
                            "which has no such mark: players start with the first; .mkv, "
                            ".mp4 and .mov keep the mark", kind, name)


def muxer_refusal(format_name: str, stream: av.stream.Stream,
                  bdav: bool = False) -> str | None:
    """None where the ``format_name`` muxer (as BDAV, where ``bdav``) takes a copy of
    ``stream``, else why not (`` (its complaint)``, or ``""``). Tried alone on a header
    written to memory: some muxers accept the stream and refuse it only there (Opus in
    MOV), and the error would then blame the video encoder."""
    kind = stored_format(stream)
    if not container_holds(format_name, kind, bdav):
        return f" ({format_name} holds {kind} only as data no player reads)"
    said: list = []
    options = {"mpegts_m2ts_mode": "1"} if bdav else {}
    try:
        with av.open(io.BytesIO(), "w", format=format_name, options=options) as scratch:
            scratch.add_stream_from_template(stream)
            with encoder_complaints() as said:
                scratch.start_encoding()
    except (av.FFmpegError, ValueError):
        complaint = last_complaint(said)
        return f" ({complaint.rstrip('.')})" if complaint else ""
    return None


# FFmpeg's default layout for a channel count (av_channel_layout_default), as its command
# line guesses one for a track that does not say which channel is which
_DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "4.0", 5: "5.0", 6: "5.1",
                    7: "6.1", 8: "7.1"}


def suffixes_holding(stream: av.stream.Stream) -> list[str]:
    """The output suffixes whose container takes a copy of ``stream``."""
    return [suffix for suffix, format_name in CONTAINERS.items()
            if muxer_refusal(format_name, stream, suffix in M2TS_SUFFIXES) is None]


def audio_copy_settled(source: av.stream.Stream, copied: av.stream.Stream,
                       format_name: str) -> None:
    """Make a copied audio track one that ``format_name`` can finish, and say where the
    copy plays in few players.

    A track whose channels carry no order (Matroska's PCM: "2 channels") gets FFmpeg's
    default layout for their count: MP4/MOV refuse an unordered layout only when writing
    their index, after every frame is done. PCM copied into MP4 is stored as ISO ``ipcm``,
    which many players do not play; MOV and Matroska hold it as cameras write it."""
    layout = copied.codec_context.layout
    if layout.name == f"{layout.nb_channels} channels":  # no order given
        guessed = _DEFAULT_LAYOUTS.get(layout.nb_channels)
        if guessed:
            copied.codec_context.layout = guessed
        elif format_name in QUICKTIME_FORMATS:  # refused at the end, after every frame
            raise UserError(f"the {format_name} container cannot hold the input's "
                            f"{layout.nb_channels} audio channels without their order; choose "
                            "another output container (.mkv holds PCM of any channels) or "
                            "--no-audio")
    codec = source.codec_context.name if source.codec_context else ""
    if format_name == "mp4" and codec.startswith("pcm_"):
        warnings.warn(f"the input's PCM audio ({codec}) is copied into MP4, where many "
                      "players do not play it; a .mov or .mkv output keeps it playable",
                      stacklevel=4)

"""The containers the writer writes, by output suffix (no PyAV here: the command line checks
output names with it before anything slow loads)."""

from __future__ import annotations

#: Output suffixes and the FFmpeg muxer each one selects (an AVCHD camera's .MTS and a
#: Blu-ray's .m2ts are MPEG-TS with a timestamp before each packet).
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mkv": "matroska", ".mov": "mov", ".webm": "webm",
              ".ts": "mpegts", ".mts": "mpegts", ".m2ts": "mpegts"}

#: Output suffixes written as BDAV (192-byte packets), as the cameras and discs that use
#: the names write them.
M2TS_SUFFIXES = (".mts", ".m2ts")

#: The formats (FFmpeg's codec names) MPEG-TS has a stream type for. Its muxer takes any
#: other too, as private data that no player decodes, so a stream not listed is refused.
MPEGTS_CODECS = frozenset({
    "mpeg1video", "mpeg2video", "mpeg4", "h264", "hevc", "vvc", "vc1", "dirac",  # video
    "mp2", "mp3", "aac", "aac_latm", "ac3", "eac3", "dts", "truehd", "opus", "s302m",  # sound
    "dvb_subtitle", "dvb_teletext", "hdmv_pgs_subtitle", "arib_caption",  # subtitles
})


#: What BDAV (.mts, .m2ts) holds besides: a Blu-ray's or AVCHD camera's LPCM sound.
BDAV_CODECS = frozenset({"pcm_bluray"})


def container_holds(format_name: str, codec: str, bdav: bool = False) -> bool:
    """Whether the ``format_name`` muxer (written as BDAV, where ``bdav``) stores ``codec``
    (FFmpeg's format name: dvb_subtitle, not the decoder's dvbsub) so that players know it;
    only MPEG-TS is checked here, the other muxers refuse what they lack."""
    return (format_name != "mpegts" or codec in MPEGTS_CODECS
            or (bdav and codec in BDAV_CODECS))


__all__ = ["BDAV_CODECS", "CONTAINERS", "M2TS_SUFFIXES", "MPEGTS_CODECS", "container_holds"]

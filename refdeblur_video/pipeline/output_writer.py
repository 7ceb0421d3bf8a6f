"""The run's video writer, opened from its options, and the same writer opened on a scratch
file and dropped, so that ``--dry-run`` meets the refusals and warnings a run would (an
encoder the container cannot hold, a pixel format or ``--crf`` the encoder refuses, a sound
track the output has no place for)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import UserError
from ..video.metadata import VideoInfo
from ..video.writer import VideoWriter
from .options import DeblurOptions


def open_writer(path: str | os.PathLike, info: VideoInfo, source: str | os.PathLike,
                opts: DeblurOptions) -> VideoWriter:
    """A writer of ``source``'s restored frames into ``path`` as ``opts`` ask (encoder,
    quality, pixel format, and the sound and subtitles copied from ``source`` where it is a
    video file)."""
    copied = source if Path(source).is_file() else ""  # an image sequence has no sound
    return VideoWriter(path, info, codec=opts.codec, crf=opts.crf, preset=opts.preset,
                       pix_fmt=opts.pix_fmt, copy_streams_from=copied, audio=opts.audio,
                       subtitles=opts.audio)


def check_encoding(output: str | os.PathLike, info: VideoInfo, source: str | os.PathLike,
                   opts: DeblurOptions) -> None:
    """Open and drop the writer ``output`` would get, in a scratch folder: raise the
    :class:`~refdeblur_video.errors.UserError` a run would, and say its warnings."""
    try:
        with tempfile.TemporaryDirectory(prefix="refdeblur-dry-run-") as scratch:
            path = Path(scratch) / f"check{Path(output).suffix}"
            try:
                open_writer(path, info, source, opts).abort()
            except UserError as exc:  # in the user's words: the output, not the scratch file
                raise UserError(str(exc).replace(str(path), str(output))) from exc
    except OSError as exc:
        raise UserError(f"cannot check the encoder for {output}: no scratch folder "
                        f"({exc.strerror or exc})") from exc

"""Video input/output: probing, decoding to RGB frames, encoding with timing/colour/audio kept."""

from refdeblur_video.video.metadata import VideoInfo, probe
from refdeblur_video.video.reader import CorruptVideoWarning, Frame, VideoReader, open_reader
from refdeblur_video.video.writer import VideoWriter, choose_pix_fmt

__all__ = [
    "CorruptVideoWarning",
    "Frame",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "choose_pix_fmt",
    "open_reader",
    "probe",
]

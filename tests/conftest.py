"""Shared fixtures: small synthetic clips written on demand into the test's tmp_path.

``make_test_clip(name, **kwargs)`` writes ``tmp_path / name`` with
:func:`refdeblur_video.video.synthetic.make_clip` (same keyword arguments: n_frames, size,
fps, blurry, vfr, audio, rotation, codec, pix_fmt, seed, subtitles, color, ...) and returns a
:class:`SyntheticClip` (path, the RGB frames that were encoded, the blurry indices).
``lossless_clip`` is an FFV1/bgr0 Matroska clip whose decoded frames equal ``frames`` exactly.
``planes_of(path)`` gives every frame's decoded planes, read with plain PyAV (not the reader).
``random_restorer`` is a small network with random weights, which changes every frame it
touches.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from refdeblur_video.model import InferenceSettings, ModelConfig, RefDeblurNet
from refdeblur_video.model.restorer import Restorer
from refdeblur_video.video.synthetic import make_clip

TINY = ModelConfig(name="tiny", channels=(8, 8, 8), n_resblocks=1, ref_channels=(4, 4, 4),
                   phi_channels=(4, 4, 4), sffm_hidden=(4, 4))


@pytest.fixture(scope="module")
def random_restorer() -> Restorer:
    """A small network with random weights: it changes every frame it touches."""
    torch.manual_seed(0)
    net = RefDeblurNet(TINY, InferenceSettings(match_radius=2).matching)
    for p in net.parameters():
        p.data.normal_(0, 0.05)
    return Restorer(net, torch.device("cpu"), trained=True)


@pytest.fixture(autouse=True, scope="session")
def _signals_as_from_a_terminal():
    """Tests send SIGINT and SIGHUP to the command line, which keeps a signal ignored if it
    started ignored (as under nohup). A suite started in the background (``cmd &`` in a
    script ignores SIGINT) or under nohup (SIGHUP) would pass that on to every child: give
    the children a terminal's dispositions instead."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
    yield


@dataclass
class SyntheticClip:
    path: Path
    frames: list[np.ndarray]
    blurry: frozenset[int]


@pytest.fixture()
def make_test_clip(tmp_path: Path) -> Callable[..., SyntheticClip]:
    def factory(name: str = "clip.mp4", **kwargs) -> SyntheticClip:
        path = tmp_path / name
        frames = make_clip(path, **kwargs)
        return SyntheticClip(path, frames, frozenset(kwargs.get("blurry", ())))

    return factory


@pytest.fixture()
def small_clip(make_test_clip) -> SyntheticClip:
    """12 frames, 96x64, 25 fps H.264 in MP4, frames 3 and 7 motion-blurred."""
    return make_test_clip("small.mp4", blurry={3, 7})


def encoded_without_timestamps(source: Path, path: Path) -> None:
    """``source``'s 96x64 frames encoded again into ``path`` (its suffix's container) with
    their timestamps cleared: MOV then stores them all at 0, a raw .h264 stores none."""
    with av.open(str(source)) as decoded, av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for frame in decoded.decode(video=0):
            frame.pts = None
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


@pytest.fixture()
def without_timestamps() -> Callable[[Path, Path], None]:
    """:func:`encoded_without_timestamps`, for a test to make its own such file."""
    return encoded_without_timestamps


@pytest.fixture()
def zero_pts_clip(make_test_clip, tmp_path: Path) -> Path:
    """8 frames (frame 3 blurry) whose timestamps are all 0, as a broken muxer writes them:
    decoded frames encoded again with their pts cleared (MOV)."""
    clip = make_test_clip("source.mp4", n_frames=8, blurry={3})
    path = tmp_path / "zero_pts.mov"
    encoded_without_timestamps(clip.path, path)
    with av.open(str(path)) as check:
        assert {frame.pts for frame in check.decode(video=0)} == {0}
    return path


@pytest.fixture()
def untimed_lead_clip(make_test_clip, tmp_path: Path) -> Path:
    """10 frames (frame 5 blurry) with a tone, in Matroska written without moving negative
    timestamps: the first three frames, once at -3..-1 frame intervals, have none."""
    from refdeblur_video.video.synthetic import add_tone_stream, write_tone

    clip = make_test_clip("src.mp4", n_frames=10, blurry={5})
    path = tmp_path / "untimed.mkv"
    with av.open(str(clip.path)) as source, \
            av.open(str(path), "w", options={"avoid_negative_ts": "disabled"}) as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        tone = add_tone_stream(out, ".mkv")
        for k, frame in enumerate(source.decode(video=0)):
            frame.pts, frame.time_base = k - 3, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
        write_tone(out, tone, 0.28, 0)
    with av.open(str(path)) as check:
        assert [f.pts for f in check.decode(video=0)][:4] == [None, None, None, 0]
    return path


@pytest.fixture()
def lossless_clip(make_test_clip) -> SyntheticClip:
    """12 frames, 96x64, FFV1 (bgr0) in Matroska: decodes bit-exactly to ``frames``."""
    return make_test_clip("lossless.mkv", codec="ffv1", pix_fmt="bgr0", blurry={3, 7})


def _planes_of(path: Path) -> list[list[np.ndarray]]:
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            dtype = np.uint16 if frame.format.components[0].bits > 8 else np.uint8
            frames.append([
                np.frombuffer(p, dtype).reshape(p.height, -1)[:, : p.width].copy()
                for p in frame.planes
            ])
    return frames


@pytest.fixture()
def planes_of() -> Callable[[Path], list[list[np.ndarray]]]:
    """Every frame's decoded planes (2-D arrays, line padding removed), with plain PyAV."""
    return _planes_of


class PooledImage(torch.nn.Module):
    """A transparent matching encoder: the centred image averaged over 4x4 cells."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(image - 0.5, 4)


def _h263_of_noise(path: Path, frames: int = 4) -> Path:
    """A raw H.263 stream whose pictures keep their headers and carry noise after them, as
    random bytes that happen to probe as H.263 do: every frame decodes, concealed."""
    rng = np.random.default_rng(0)
    raw = path.with_suffix(".h263")
    with av.open(str(raw), "w", format="h263") as out:
        stream = out.add_stream("h263", rate=25)
        stream.width, stream.height, stream.pix_fmt = 176, 144, "yuv420p"
        for _ in range(frames):
            image = rng.integers(0, 256, (144, 176, 3), dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    data = bytearray(raw.read_bytes())
    # picture start codes: 22 bits 0000 0000 0000 0000 1000 00
    starts = [i for i in range(len(data) - 2)
              if data[i] == data[i + 1] == 0 and data[i + 2] & 0xFC == 0x80]
    for begin, end in zip(starts, [*starts[1:], len(data)], strict=True):
        data[begin + 8:end] = rng.integers(1, 255, end - begin - 8, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


@pytest.fixture()
def noise_video(tmp_path: Path) -> Callable[[str], Path]:
    """``noise_video(name)``: a 4-frame raw H.263 stream of noise in ``tmp_path`` (see
    :func:`_h263_of_noise`), under the given name."""
    return lambda name: _h263_of_noise(tmp_path / name)


@pytest.fixture()
def pooled_phi() -> torch.nn.Module:
    """A matching encoder whose confidences are easy to predict (for the reference check)."""
    return PooledImage()

"""Video probing, decoding and encoding: timing, colour, rotation, side streams, damage."""

from __future__ import annotations

import dataclasses
import re
import warnings
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from refdeblur_video.errors import UserError
from refdeblur_video.evaluate.metrics import psnr
from refdeblur_video.frames import plan_references
from refdeblur_video.frames.sharpness import sharpness
from refdeblur_video.safe_output import atomic_output
from refdeblur_video.video.encoding_choice import choose_pix_fmt
from refdeblur_video.video.hdr import Hdr10, side_data_of
from refdeblur_video.video.metadata import VideoInfo, _announced_frames, probe
from refdeblur_video.video.reader import CorruptVideoWarning, Frame, open_reader
from refdeblur_video.video.synthetic import make_clip, make_demo_clip, render_frame
from refdeblur_video.video.writer import VideoWriter

BT709 = {"color_range": 1, "color_primaries": 1, "color_trc": 1, "colorspace": 1}


def read_all(path) -> tuple:
    with open_reader(path) as reader:
        return reader.info, list(reader)


def transcode(src, dst, **kwargs) -> list[Frame]:
    info, frames = read_all(src)
    with VideoWriter(dst, info, **kwargs) as writer:
        for frame in frames:
            writer.write(frame)
    return frames


def packets(path, kind: str) -> list[tuple]:
    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type == kind]
        if not streams:
            return []
        return [(p.pts, p.dts, bytes(p)) for p in container.demux(streams) if p.size]


# -- probing -------------------------------------------------------------------------------------


def test_probe_reports_stream_properties(make_test_clip):
    clip = make_test_clip("p.mp4", n_frames=10, audio=True, rotation=90, color=BT709)
    info = probe(clip.path)
    assert (info.width, info.height) == (96, 64)
    assert info.fps == 25 and info.frame_count == 10
    assert info.duration_s == pytest.approx(0.4)
    assert info.rotation == 90
    assert info.pix_fmt == "yuv420p" and info.bit_depth == 8 and info.codec_name == "h264"
    assert (info.color_range, info.color_primaries, info.color_trc, info.colorspace) == (
        1,
        1,
        1,
        1,
    )
    assert info.has_audio and not info.has_subtitles


def test_unknown_frame_count_is_none_and_reading_still_works(make_test_clip):
    clip = make_test_clip("n.mkv", n_frames=9)  # Matroska does not store nb_frames
    info = probe(clip.path)
    assert info.frame_count is None
    assert info.duration_s == pytest.approx(0.36)
    _, frames = read_all(clip.path)
    assert [f.index for f in frames] == list(range(9))


# -- timing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "vfr"), [("cfr.mp4", False), ("vfr.mp4", True), ("vfr.mkv", True)]
)
def test_pts_identical_in_and_out(make_test_clip, tmp_path, name, vfr):
    clip = make_test_clip(name, n_frames=10, vfr=vfr)
    out = tmp_path / f"out_{name}"
    frames = transcode(clip.path, out)  # default preset: B-frames reorder the packets
    in_pts = [f.pts for f in frames]
    if vfr:
        assert len(set(np.diff(in_pts))) > 1, "the synthetic clip should be VFR"
    info_out, back = read_all(out)
    assert [f.pts for f in back] == in_pts
    assert info_out.time_base == frames[0].time_base
    assert probe(out).duration_s == pytest.approx(probe(clip.path).duration_s)


def test_frames_carry_index_pts_and_time(small_clip):
    info, frames = read_all(small_clip.path)
    assert len(frames) == 12
    assert frames[0].image.shape == (64, 96, 3) and frames[0].image.dtype == np.uint8
    assert [f.time_s for f in frames] == pytest.approx([i / 25 for i in range(12)])
    assert all(f.time_base == info.time_base for f in frames)


def test_non_increasing_pts_is_refused(small_clip, tmp_path):
    info, frames = read_all(small_clip.path)
    with VideoWriter(tmp_path / "o.mp4", info) as writer:
        writer.write(frames[1])
        with pytest.raises(ValueError, match="does not increase"):
            writer.write(frames[0])


def test_a_damaged_input_is_said_each_time_it_is_read(zero_pts_clip):
    """Python shows a warning once per place by default: a notebook cell run again on the
    same damaged file would say nothing the second time."""
    import subprocess
    import sys

    reads_twice = ("import sys\nfrom refdeblur_video.video.reader import open_reader\n"
                   "for _ in range(2):\n"
                   "    with open_reader(sys.argv[1]) as reader:\n"
                   "        list(reader)\n")
    done = subprocess.run([sys.executable, "-c", reads_twice, str(zero_pts_clip)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("CorruptVideoWarning: ") == 2


def test_timestamps_that_do_not_increase_are_renumbered_with_one_warning(zero_pts_clip):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info, frames = read_all(zero_pts_clip)
    said = [str(w.message) for w in caught if issubclass(w.category, CorruptVideoWarning)]
    assert len(said) == 1 and "timestamps do not increase from frame 1" in said[0]
    assert info.fps == 25  # the coded rate, not the average of timestamps that stand still
    step = round(1 / (25 * frames[0].time_base))
    assert [f.pts for f in frames] == [k * step for k in range(8)]


def test_first_frames_without_timestamps_are_timed_before_the_first_with_sound_kept(
        untimed_lead_clip, tmp_path):
    """A Matroska muxer told not to move negative timestamps stores none for the first
    frames (their pts were before 0): they are placed one frame apart before the first
    timed frame, with one warning, and the output moves every stream later alike, so the
    sound keeps its offset to each frame (before: a traceback on "pts does not increase")."""
    path = untimed_lead_clip
    sound_at = _first_sound_s(path)  # where the tone starts against the frame timed 0

    with pytest.warns(CorruptVideoWarning, match="the first 3 frames have no timestamps"):
        info, frames = read_all(path)
    assert [f.pts for f in frames] == [40 * (k - 3) for k in range(10)]
    for target in ("out.mkv", "out.mp4"):
        with pytest.warns(CorruptVideoWarning):
            transcode(path, tmp_path / target, preset="ultrafast")
        with av.open(str(tmp_path / target)) as out:
            times = [float(f.pts * f.time_base) for f in out.decode(video=0)]
        assert times == pytest.approx([0.04 * k for k in range(10)], abs=1e-3)
        assert _first_sound_s(tmp_path / target) == pytest.approx(times[3] + sound_at,
                                                                  abs=0.002)


def test_frames_timed_before_a_late_start_are_kept_in_matroska(make_test_clip, tmp_path):
    """A recording that starts late (an MPEG-TS) goes to Matroska from 0; a frame the reader
    timed before its start (a lead without timestamps) moves that start, and keeps its
    timestamp, instead of falling before 0."""
    clip = make_test_clip("in.ts", n_frames=6)
    info, frames = read_all(clip.path)
    late = round(10 / info.time_base)  # a recording's clock 10 s in
    info = dataclasses.replace(info, start_pts=frames[0].pts + late)
    step = frames[1].pts - frames[0].pts
    lead = dataclasses.replace(frames[0], index=0, pts=frames[0].pts + late - step)
    frames = [lead] + [dataclasses.replace(f, index=f.index + 1, pts=f.pts + late)
                       for f in frames]
    with VideoWriter(tmp_path / "out.mkv", info) as writer:
        for frame in frames:
            writer.write(frame)
    with av.open(str(tmp_path / "out.mkv")) as out:
        times = [f.time for f in out.decode(video=0)]
    assert times == pytest.approx([k * float(step * info.time_base) for k in range(7)],
                                  abs=2e-3)


def _first_sound_s(path: Path) -> float:
    with av.open(str(path)) as container:
        sound = container.streams.audio[0]
        return min(float(p.pts * sound.time_base) for p in container.demux(sound) if p.size)


def test_a_raw_h264_stream_has_no_timestamps_and_is_numbered_as_it_comes(
        make_test_clip, without_timestamps, tmp_path):
    """An elementary H.264 stream (.h264) times no frame: more than the reader holds while
    waiting for a first timestamp, and the writer numbers them one frame apart."""
    clip = make_test_clip("src.mp4", n_frames=24)
    without_timestamps(clip.path, tmp_path / "raw.h264")
    frames = transcode(tmp_path / "raw.h264", tmp_path / "out.mkv", preset="ultrafast")
    assert len(frames) == 24 and {f.pts for f in frames} == {None}
    with av.open(str(tmp_path / "out.mkv")) as out:
        times = [float(f.time) for f in out.decode(video=0)]
    assert times == pytest.approx([k / 25 for k in range(24)], abs=1e-3)


def test_an_avi_with_a_skipped_frame_is_read_whole_without_a_warning(tmp_path):
    """AVI's header counts an empty chunk (a frame a capture skipped) as a frame, which
    decodes to nothing: the file is whole, and is not called truncated."""
    path = tmp_path / "skip.avi"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), "rgb24")
            frame.pts = i + (i >= 5)  # slot 5 skipped
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    assert probe(path).frame_count == 11
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, frames = read_all(path)
    assert [f.pts for f in frames] == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]


# -- streams copied ------------------------------------------------------------------------------


def test_audio_packets_are_copied_unchanged(make_test_clip, tmp_path):
    clip = make_test_clip("a.mp4", n_frames=12, audio=True)
    out = tmp_path / "out.mp4"
    transcode(clip.path, out, preset="ultrafast")
    original = packets(clip.path, "audio")
    assert len(original) > 10
    assert packets(out, "audio") == original

    quiet = tmp_path / "quiet.mp4"
    transcode(clip.path, quiet, audio=False, preset="ultrafast")
    assert not probe(quiet).has_audio


def test_audio_and_subtitles_copied_in_matroska(make_test_clip, tmp_path):
    clip = make_test_clip("s.mkv", n_frames=8, audio=True, subtitles=True)
    out = tmp_path / "out.mkv"
    transcode(clip.path, out, preset="ultrafast")
    assert probe(out).has_subtitles
    for kind in ("audio", "subtitle"):
        assert packets(out, kind) == packets(clip.path, kind)


def cues(path) -> list[tuple[float, float, str]]:
    """Each subtitle cue of a file as (start s, end s, its words), decoded by libav."""
    found = []
    with av.open(str(path)) as container:
        stream = container.streams.subtitles[0]
        for packet in container.demux(stream):
            decoded = stream.codec_context.decode2(packet) if packet.size else None
            words = [re.sub(r"\{[^}]*\}", "", r.ass.decode().split(",", 8)[-1])
                     for r in (decoded or []) if r.type == b"ass"]
            if words and any(words):
                start = float(packet.pts * packet.time_base)
                found.append((round(start, 3),
                              round(start + float(packet.duration * packet.time_base), 3),
                              " ".join(words)))
    return found


@pytest.mark.parametrize("why", ["pictures", "no encoder"])
def test_subtitles_that_cannot_be_converted_are_dropped_with_a_warning(make_test_clip,
                                                                       tmp_path, monkeypatch,
                                                                       why):
    """Picture subtitles (DVD, Blu-ray) have no text to convert, and a PyAV before 16.1
    encodes none: the track is dropped with a warning, the sound kept."""
    import refdeblur_video.video.writer as writer

    def unable(*args, **kwargs):
        raise AttributeError("encode_subtitle")

    if why == "pictures":
        monkeypatch.setattr(writer, "text_format_for", lambda *args: None)
    else:
        monkeypatch.setattr(writer, "SubtitleConverter", unable)
    clip = make_test_clip("s.mkv", n_frames=6, audio=True, subtitles=True)
    with pytest.warns(UserWarning, match=r"subtitle track #\d \(\w+\) cannot be stored in "
                      "mp4; dropped"):
        transcode(clip.path, tmp_path / "out.mp4", preset="ultrafast")
    info = probe(tmp_path / "out.mp4")
    assert info.has_audio and not info.has_subtitles


def test_text_subtitles_the_container_cannot_hold_are_converted(make_test_clip, tmp_path):
    """SRT from Matroska has no place in MP4, MP4's timed text none in Matroska, neither
    in WebM: each is converted to the output's own text format (as ffmpeg does), words and
    times kept, instead of being dropped."""
    clip = make_test_clip("s.mkv", n_frames=6, audio=True, subtitles=True)
    transcode(clip.path, tmp_path / "out.mp4", preset="ultrafast")
    transcode(tmp_path / "out.mp4", tmp_path / "back.mkv", preset="ultrafast")
    silent = make_test_clip("silent.mkv", n_frames=6, subtitles=True)  # WebM takes no AAC
    transcode(silent.path, tmp_path / "out.webm", codec="libvpx-vp9",
              options={"deadline": "realtime", "cpu-used": "8"})
    source = cues(clip.path)
    assert [words for _, _, words in source] == ["first cue", "second cue"]
    with av.open(str(clip.path)) as container:  # libav names Matroska's SRT "srt"
        srt = container.streams.subtitles[0].codec_context.name
    for name, codec in (("out.mp4", "mov_text"), ("back.mkv", srt), ("out.webm", "webvtt")):
        with av.open(str(tmp_path / name)) as container:
            assert [s.codec_context.name for s in container.streams.subtitles] == [codec]
        assert cues(tmp_path / name) == source, name
    assert probe(tmp_path / "out.mp4").has_audio


@pytest.mark.parametrize(("name", "codec", "out_name"), [
    ("a.mp4", "aac", "out.webm"),  # refused as the stream is added
    ("w.webm", "opus", "out.mov"),  # accepted then, refused as the header is written
])
def test_audio_the_container_cannot_hold_is_a_user_error(make_test_clip, tmp_path, name, codec,
                                                         out_name):
    """The line names the audio and the container, not the video encoder."""
    clip = make_test_clip(name, n_frames=4, audio=True)
    info = probe(clip.path)
    out = tmp_path / out_name
    with pytest.raises(UserError) as error:
        VideoWriter(out, info)
    container = out_name.rpartition(".")[2]
    assert str(error.value).startswith(
        f"the {container} container cannot hold the input's {codec} audio")
    assert "--no-audio" in str(error.value)
    assert not out.exists() or out.stat().st_size < 1024
    VideoWriter(out, info, audio=False).close()  # the way out it names


def _clip_with_sound(path: Path, codec: str, rate: int, samples: np.ndarray,
                     n_frames: int = 3, chunk: int = 1600) -> None:
    """A 64x48 clip of ``n_frames`` at 25 fps with one stereo ``codec`` track holding the
    int16 ``samples`` (interleaved L, R), encoded ``chunk`` samples at a time."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        sound = out.add_stream(codec, rate=rate, layout="stereo")
        for i in range(n_frames):
            image = np.full((48, 64, 3), 40 * i, np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
        for start in range(0, len(samples) // 2, chunk):
            part = np.ascontiguousarray(samples[2 * start:2 * (start + chunk)])[None]
            frame = av.AudioFrame.from_ndarray(part, format="s16", layout="stereo")
            frame.sample_rate, frame.pts = rate, start
            frame.time_base = Fraction(1, rate)
            out.mux(sound.encode(frame))
        out.mux(sound.encode())


def _pcm_in_matroska(path: Path) -> None:
    """A camera-style clip with 16-bit PCM sound in Matroska, whose channels carry no order
    (Matroska stores only their count)."""
    ramp = np.repeat(100 + np.arange(4800) // 1600 * 1600, 2).astype(np.int16)
    _clip_with_sound(path, "pcm_s16le", 48000, ramp)


def _samples(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)


def test_pcm_sound_from_matroska_goes_into_mp4_whole_with_a_warning(tmp_path):
    """MP4 refuses PCM channels without an order only as it writes its index, after every
    frame: the copy takes FFmpeg's default order for the count instead, and the user hears
    that few players play PCM in MP4."""
    _pcm_in_matroska(tmp_path / "cam.mkv")
    with pytest.warns(UserWarning, match="PCM audio .* many players"):
        transcode(tmp_path / "cam.mkv", tmp_path / "out.mp4", preset="ultrafast")
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert container.streams.audio[0].codec_context.layout.name == "stereo"
    assert np.array_equal(_samples(tmp_path / "out.mp4"), _samples(tmp_path / "cam.mkv"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # MOV holds PCM as cameras write it: nothing to say
        transcode(tmp_path / "cam.mkv", tmp_path / "out.mov", preset="ultrafast")


def test_a_full_disk_at_close_stays_a_disk_error(make_test_clip, tmp_path, monkeypatch):
    """Only a muxer's own refusal becomes the container advice: a disk that fills up as
    the index is written stays an OSError, which the pipeline reports with --resume."""
    import errno

    clip = make_test_clip("in.mp4", n_frames=3)
    info, frames = read_all(clip.path)
    writer = VideoWriter(tmp_path / "out.mp4", info)
    for frame in frames:
        writer.write(frame)

    def full(*args):
        raise av.error.OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(VideoWriter, "_release", full)
    with pytest.raises(OSError) as error:
        writer.close()
    assert error.value.errno == errno.ENOSPC and not isinstance(error.value, UserError)


def test_unordered_audio_of_more_channels_than_a_default_is_refused_before_work(tmp_path):
    """Ten channels without an order have no default layout to take: MP4 would refuse them
    only at the end, so the writer refuses them at the start."""
    with av.open(str(tmp_path / "many.mkv"), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        sound = out.add_stream("pcm_s16le", rate=48000, layout="10 channels")
        out.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8),
                                                         format="rgb24")))
        out.mux(stream.encode())
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 10 * 480), np.int16), format="s16",
                                           layout="10 channels")
        frame.sample_rate, frame.pts = 48000, 0
        out.mux(sound.encode(frame))
        out.mux(sound.encode())
    info = probe(tmp_path / "many.mkv")
    with pytest.raises(UserError, match="cannot hold the input's 10 audio channels"):
        VideoWriter(tmp_path / "out.mp4", info)
    VideoWriter(tmp_path / "out.mkv", info).close()  # the way out it names


def test_ten_bit_rgb_h264_is_not_given_eight_bit_rgb():
    """x264's RGB mode is 8-bit: a deeper RGB H.264 keeps its depth in x264's YUV 4:4:4
    (with the RGB warning) rather than losing it without one."""
    from refdeblur_video.video.encoding_choice import default_codec

    assert default_codec("matroska", "h264", "gbrp") == "libx264rgb"
    assert default_codec("matroska", "h264", "gbrp10le") == "libx264"
    assert default_codec("mp4", "h264", "yuv420p") == "libx264"


@pytest.mark.parametrize("target", ["out.mp4", "out.mov"])
def test_alac_from_matroska_keeps_its_last_packet(tmp_path, target):
    """Matroska gives ALAC packets no duration; MP4 and MOV take a sample's length from the
    next one and dropped the last, 93 ms of sound, until each packet got its gap."""
    tone = (3000 * np.sin(np.arange(21168) / 9)).astype(np.int16)  # 0.48 s
    _clip_with_sound(tmp_path / "cam.mkv", "alac", 44100, np.repeat(tone, 2), n_frames=6,
                     chunk=4096)
    assert len(packets(tmp_path / "cam.mkv", "audio")) == 6
    transcode(tmp_path / "cam.mkv", tmp_path / target, preset="ultrafast")
    assert [p[2] for p in packets(tmp_path / target, "audio")] == \
        [p[2] for p in packets(tmp_path / "cam.mkv", "audio")]


def test_a_muxer_that_refuses_the_finished_file_is_one_line(tmp_path, monkeypatch):
    """Should a muxer refuse the file only when closing it, the user gets its complaint and
    a way out, not a libav traceback."""
    import refdeblur_video.video.writer as writer_module

    _pcm_in_matroska(tmp_path / "cam.mkv")
    monkeypatch.setattr(writer_module, "audio_copy_settled", lambda *args: None)
    with pytest.raises(UserError, match=r"the mp4 muxer could not finish the output "
                       r"\(unsupported channel layout.*\.mkv holds most"):
        transcode(tmp_path / "cam.mkv", tmp_path / "out.mp4", preset="ultrafast")


def test_webm_defaults_to_vp9_and_copies_opus(make_test_clip, tmp_path):
    clip = make_test_clip("w.webm", n_frames=6, audio=True)
    out = tmp_path / "out.webm"
    transcode(clip.path, out)
    assert probe(out).codec_name == "vp9"
    assert packets(out, "audio") == packets(clip.path, "audio")


@pytest.mark.parametrize(
    ("name", "codec", "pix_fmt", "out_name", "expected"),
    [
        ("phone.mp4", "libx265", "yuv420p10le", "out.mp4", "hevc"),
        ("h.mkv", "libx265", "yuv420p", "out.mkv", "hevc"),
        ("v.webm", "libvpx-vp9", "yuv420p", "out.mp4", "vp9"),
        ("p.mov", "prores_ks", "yuv422p10le", "out.mov", "prores"),
        ("a.mkv", "libsvtav1", "yuv420p", "out.mkv", "av1"),
        ("f.mkv", "ffv1", "yuv420p", "out.mkv", "ffv1"),
        ("f.mkv", "ffv1", "yuv420p", "out.mp4", "h264"),  # MP4 holds no FFV1
        ("p.mov", "prores_ks", "yuv422p10le", "out.mp4", "h264"),  # nor ProRes
        ("v.webm", "libvpx-vp9", "yuv420p", "out.mov", "h264"),  # MOV no VP9
        ("m.mkv", "mpeg4", "yuv420p", "out.mkv", "h264"),  # an old format: H.264
    ],
)
def test_the_input_format_is_coded_again_where_the_container_holds_it(
        make_test_clip, tmp_path, name, codec, pix_fmt, out_name, expected):
    clip = make_test_clip(name, n_frames=3, size=(128, 96), codec=codec, pix_fmt=pix_fmt)
    out = tmp_path / out_name
    transcode(clip.path, out, preset="ultrafast")
    found = probe(out)
    assert found.codec_name == expected
    if expected == probe(clip.path).codec_name:
        assert found.pix_fmt == pix_fmt  # depth and chroma kept too


def test_h264_coded_as_rgb_stays_rgb(make_test_clip, tmp_path, caplog):
    """x264's RGB mode (a screen recording, a lossless master) is coded again by it: the
    output stays RGB, with nothing lost to a YUV matrix and nothing to warn about."""
    clip = make_test_clip("rgb.mkv", n_frames=3, codec="libx264rgb", pix_fmt="bgr0")
    assert probe(clip.path).pix_fmt == "gbrp"
    with caplog.at_level("WARNING"):
        transcode(clip.path, tmp_path / "out.mkv", preset="ultrafast")
    found = probe(tmp_path / "out.mkv")
    assert (found.codec_name, found.pix_fmt) == ("h264", "gbrp")
    assert not any("RGB" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("out_name", ["out.mkv", "out.mp4"])
def test_mpeg2_is_coded_in_its_own_frame_rate(make_test_clip, tmp_path, out_name):
    """MPEG-2 (a DVD's, a broadcast's) counts its time in frames: coded at the stream's
    time base it was refused ("does not support 12800/1 fps") for every input."""
    clip = make_test_clip("in.mp4", n_frames=6, fps=25)
    info, frames = read_all(clip.path)
    with VideoWriter(tmp_path / out_name, info, codec="mpeg2video") as writer:
        for frame in frames:
            writer.write(frame)
            if frame.index == 2:  # a segment ends, as a run's do every few seconds
                writer.end_segment()
    with av.open(str(tmp_path / out_name)) as out:
        assert out.streams.video[0].codec_context.name == "mpeg2video"
        assert out.duration / 1e6 == pytest.approx(6 / 25, abs=1e-3)
        times = [float(f.time) for f in out.decode(video=0)]
    assert times == pytest.approx([k / 25 for k in range(6)], abs=1e-3)


def test_mpeg2_refuses_a_variable_frame_rate_in_one_line(make_test_clip, tmp_path):
    clip = make_test_clip("vfr.mkv", n_frames=20, vfr=True)
    with pytest.raises(UserError, match="mpeg2video codes a constant frame rate"):
        transcode(clip.path, tmp_path / "out.mkv", codec="mpeg2video")


@pytest.mark.parametrize("out_name", ["out.mp4", "out.mov"])
def test_hevc_in_mp4_and_mov_is_tagged_for_apple_players(make_test_clip, tmp_path, out_name):
    clip = make_test_clip("phone.mov", n_frames=3, codec="libx265", pix_fmt="yuv420p10le")
    out = tmp_path / out_name
    transcode(clip.path, out, preset="ultrafast")
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.codec_tag == "hvc1"


# -- metadata kept -------------------------------------------------------------------------------


HDR10_PARAMS = ("hdr10=1:master-display=G(13250,34500)B(7500,3000)R(34000,16000)"
                "WP(15635,16450)L(10000000,1):max-cll=1000,400")
PQ_BT2020 = {"color_range": 1, "color_primaries": 9, "color_trc": 16, "colorspace": 9}


def hdr_side_data(path) -> dict[str, bytes]:
    """The first frame's HDR10 side data, FFmpeg's structs as bytes, by type."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
    wanted = ("MASTERING_DISPLAY_METADATA", "CONTENT_LIGHT_LEVEL")
    return {name: data for name, data in side_data_of(frame).items() if name in wanted}


def test_hdr10_metadata_is_read_and_written_again(make_test_clip, tmp_path, caplog):
    clip = make_test_clip("hdr.mkv", n_frames=3, codec="libx265", pix_fmt="yuv420p10le",
                          color=PQ_BT2020, options={"preset": "ultrafast",
                                                    "x265-params": "log-level=error:"
                                                    + HDR10_PARAMS})
    assert probe(clip.path).hdr10 == Hdr10(
        (34000, 16000, 13250, 34500, 7500, 3000, 15635, 16450), (10000000, 1), (1000, 400))
    out = tmp_path / "out.mp4"
    with caplog.at_level("WARNING"):
        transcode(clip.path, out, preset="ultrafast")
    assert not [r for r in caplog.records if "HDR10" in r.getMessage()]
    written = hdr_side_data(out)
    assert set(written) == {"MASTERING_DISPLAY_METADATA", "CONTENT_LIGHT_LEVEL"}
    assert written == hdr_side_data(clip.path)
    assert (probe(out).color_trc, probe(out).color_primaries) == (16, 9)
    with caplog.at_level("WARNING"):  # other encoders: the colour tags only, and a warning
        transcode(clip.path, tmp_path / "lossless.mkv", codec="ffv1")
    assert [r for r in caplog.records if "HDR10 metadata" in r.getMessage()]
    assert hdr_side_data(tmp_path / "lossless.mkv") == {}
    assert (probe(tmp_path / "lossless.mkv").color_trc,
            probe(tmp_path / "lossless.mkv").color_primaries) == (16, 9)
    plain = make_test_clip("sdr.mkv", n_frames=3, codec="libx265", pix_fmt="yuv420p10le")
    assert probe(plain.path).hdr10 is None
    transcode(plain.path, tmp_path / "sdr_out.mkv", preset="ultrafast")
    assert hdr_side_data(tmp_path / "sdr_out.mkv") == {}


@pytest.mark.parametrize(("name", "rotation"), [("r.mp4", 90), ("r.mov", -90), ("r.mkv", 180)])
def test_rotation_is_kept(make_test_clip, tmp_path, name, rotation):
    clip = make_test_clip(name, n_frames=4, rotation=rotation)
    assert abs(probe(clip.path).rotation) == abs(rotation)
    out = tmp_path / f"out_{name}"
    transcode(clip.path, out, preset="ultrafast")
    assert probe(out).rotation == probe(clip.path).rotation


def test_colour_tags_are_kept_and_the_matrix_round_trips(make_test_clip, tmp_path):
    tags = {"color_range": 2, "color_primaries": 9, "color_trc": 14, "colorspace": 9}
    clip = make_test_clip("c.mkv", n_frames=4, codec="ffv1", pix_fmt="yuv444p", color=tags)
    info = probe(clip.path)
    assert (info.color_range, info.color_primaries, info.color_trc, info.colorspace) == (
        2,
        9,
        14,
        9,
    )
    out = tmp_path / "out.mkv"
    frames = transcode(clip.path, out, codec="ffv1")
    out_info, back = read_all(out)
    assert out_info.pix_fmt == "yuv444p"
    got = (out_info.color_range, out_info.color_primaries, out_info.color_trc, out_info.colorspace)
    assert got == (2, 9, 14, 9)
    # lossless YUV both ways: only RGB<->YUV rounding may differ if the same matrix is used
    for a, b in zip(frames, back, strict=True):
        assert np.abs(a.image.astype(int) - b.image.astype(int)).max() <= 2

    h264 = tmp_path / "out.mp4"
    transcode(clip.path, h264, preset="ultrafast")
    h = probe(h264)
    assert (h.color_range, h.color_primaries, h.color_trc, h.colorspace) == (2, 9, 14, 9)


def _tagged_clip(path: Path, fps: int = 25, timecode_on: str = "stream") -> None:
    """A short clip with the tags a camera or an editor writes: title, recording time and a
    comment on the file; language, title and a start timecode on the video stream."""
    with av.open(str(path), "w") as out:
        out.metadata.update(title="My holiday", comment="take 2",
                            creation_time="2024-05-01T10:00:00.000000Z")
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.metadata.update(language="fra", title="cam A")
        (stream if timecode_on == "stream" else out).metadata["timecode"] = "01:02:03:04"
        for i in range(4):
            image = np.full((48, 64, 3), 40 * i, np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())


def _tags_of(path: Path) -> tuple[dict, dict, list[str]]:
    """(file tags, video stream tags, every stream's timecode), keys in lower case."""
    with av.open(str(path)) as container:
        lower = [{k.lower(): v for k, v in s.metadata.items()} for s in container.streams]
        video = lower[container.streams.video[0].index]
        return ({k.lower(): v for k, v in container.metadata.items()}, video,
                [m["timecode"] for m in lower if "timecode" in m])


@pytest.mark.parametrize(("source", "target"),
                         [("t.mov", "o.mp4"), ("t.mkv", "o.mov"), ("t.mp4", "o.mkv")])
def test_file_and_stream_tags_and_the_timecode_are_kept(tmp_path, source, target):
    _tagged_clip(tmp_path / source)
    info = probe(tmp_path / source)
    assert dict(info.video_tags) == {"language": "fra", "title": "cam A",
                                     "timecode": "01:02:03:04"}
    transcode(tmp_path / source, tmp_path / target, preset="ultrafast")
    tags, video, timecodes = _tags_of(tmp_path / target)
    assert tags["title"] == "My holiday" and tags["comment"] == "take 2"
    assert tags["creation_time"].startswith("2024-05-01T10:00:00")
    assert video["language"] == "fra" and (video.get("title") or video.get("name")) == "cam A"
    assert timecodes and set(timecodes) == {"01:02:03:04"}
    if target.endswith((".mp4", ".mov")):  # written as a timecode track again
        with av.open(str(tmp_path / target)) as container:
            assert [s.type for s in container.streams] == ["video", "data"]


PHONE_TAGS = {"com.apple.quicktime.location.ISO6709": "+48.8584+002.2945+035.000/",
              "com.apple.quicktime.make": "Apple", "com.apple.quicktime.model": "iPhone 15",
              "com.apple.quicktime.creationdate": "2026-11-30T11:11:12+0100",
              "com.android.capture.fps": "240.000000"}


@pytest.mark.parametrize("target", ["o.mov", "o.mp4", "o.mkv"])
def test_a_phones_own_tags_are_kept(tmp_path, target):
    """iPhone and Android tags have reverse-DNS names (the place, the camera, the local
    time, a slow-motion clip's capture rate), which the MP4 muxer drops unless told."""
    with av.open(str(tmp_path / "IMG_0001.MOV"), "w",
                 options={"movflags": "use_metadata_tags"}) as out:
        out.metadata.update(PHONE_TAGS, title="At the tower")
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(3):
            image = np.full((48, 64, 3), 40 * i, np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    assert PHONE_TAGS.items() <= dict(probe(tmp_path / "IMG_0001.MOV").container_tags).items()
    transcode(tmp_path / "IMG_0001.MOV", tmp_path / target, preset="ultrafast")
    tags, _, _ = _tags_of(tmp_path / target)
    assert {k.lower(): v for k, v in PHONE_TAGS.items()}.items() <= tags.items()
    assert tags["title"] == "At the tower"
    if target != "o.mkv":  # keyed, the title has no classic atom: its keyed name is written
        assert b"com.apple.quicktime.title" in (tmp_path / target).read_bytes()


def _two_sound_tracks(path: Path, setups: list) -> None:
    """A short clip with one silent mono AAC track per ``setups`` entry, each called on its
    track (to tag it) before anything is written."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        sounds = []
        for setup in setups:
            sound = out.add_stream("aac", rate=48000, layout="mono")
            setup(sound)
            sounds.append(sound)
        for i in range(3):
            image = np.full((48, 64, 3), 40 * i, np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
        for sound in sounds:
            for start in range(0, 4096, 1024):
                frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32),
                                                   format="fltp", layout="mono")
                frame.sample_rate, frame.pts = 48000, start
                frame.time_base = Fraction(1, 48000)
                out.mux(sound.encode(frame))
            out.mux(sound.encode())


@pytest.mark.parametrize("target", ["o.mp4", "o.mov", "o.mkv"])
def test_audio_track_names_are_kept(tmp_path, target):
    """A camera's second microphone or a commentary track is named in the player's menu: in
    MP4/MOV by its handler name, in Matroska by its title."""
    _two_sound_tracks(tmp_path / "two.mp4", [
        lambda sound: sound.metadata.update(language="eng", handler_name="SoundHandler"),
        lambda sound: sound.metadata.update(language="deu", handler_name="Commentary")])
    transcode(tmp_path / "two.mp4", tmp_path / target, preset="ultrafast")
    with av.open(str(tmp_path / target)) as container:
        tags = [{k.lower(): v for k, v in s.metadata.items()} for s in container.streams.audio]
    name = "title" if target == "o.mkv" else "handler_name"
    assert tags[1].get(name) == "Commentary"
    assert tags[1].get("language") in ("deu", "ger")  # the MOV muxer knows the old code


@pytest.mark.parametrize("target", ["o.mp4", "o.mkv"])
def test_audio_track_flags_are_kept(tmp_path, target):
    """Which track a player starts with (default) and what a track is (commentary, a dub)
    are kept: without them an MP4 player started the first track, the commentary."""
    flags = av.stream.Disposition
    _two_sound_tracks(tmp_path / "two.mkv", [
        lambda sound: setattr(sound, "disposition", flags.comment),
        lambda sound: setattr(sound, "disposition", flags.default | flags.dub)])
    transcode(tmp_path / "two.mkv", tmp_path / target, preset="ultrafast")
    with av.open(str(tmp_path / target)) as container:
        kept = [s.disposition for s in container.streams.audio]
    assert kept == [flags.comment, flags.default | flags.dub]


def test_a_second_video_track_dropped_is_named(tmp_path):
    """A second camera angle in the same file is not restored or kept: the user is told."""
    with av.open(str(tmp_path / "two.mkv"), "w") as out:
        streams = []
        for title in ("main", "second angle"):
            stream = out.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            stream.metadata["title"] = title
            streams.append(stream)
        for i in range(4):
            image = np.full((48, 64, 3), 40 * i, np.uint8)
            for stream in streams:
                out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        for stream in streams:
            out.mux(stream.encode())
    with pytest.warns(UserWarning, match=r"other video track \(second angle\) is not kept"):
        transcode(tmp_path / "two.mkv", tmp_path / "out.mkv", preset="ultrafast")
    with av.open(str(tmp_path / "out.mkv")) as container:
        assert len(container.streams.video) == 1
        assert container.streams.video[0].metadata.get("title") == "main"


def test_a_mov_keeps_each_language_in_the_spelling_its_muxer_takes(tmp_path):
    """Matroska spells languages ISO 639-2/B (fre, ger); QuickTime's table spells some /B,
    some /T, and the MOV muxer drops any other spelling: French and German are kept."""
    with av.open(str(tmp_path / "two.mkv"), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        sounds = []
        for language in ("fre", "deu"):
            sound = out.add_stream("aac", rate=48000, layout="mono")
            sound.metadata["language"] = language
            sounds.append(sound)
        out.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8),
                                                         format="rgb24")))
        out.mux(stream.encode())
        for sound in sounds:
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32),
                                               format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, 0
            out.mux(sound.encode(frame))
            out.mux(sound.encode())
    transcode(tmp_path / "two.mkv", tmp_path / "o.mov", preset="ultrafast")
    with av.open(str(tmp_path / "o.mov")) as container:
        assert [s.metadata.get("language") for s in container.streams.audio] == ["fra", "ger"]


@pytest.mark.parametrize("audio", [True, False])
def test_a_dropped_data_track_is_named(tmp_path, audio):
    """An action camera's telemetry (GPS, gyro) rides in a data track, which the output does
    not keep: the user is told, by the track's name, also where sound and subtitles are
    dropped on request (--no-audio asks for those only)."""
    from fractions import Fraction

    with av.open(str(tmp_path / "GX010001.MP4"), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        data = out.add_data_stream("bin_data")
        data.metadata["handler_name"] = "GoPro MET"
        for i in range(3):
            image = np.full((48, 64, 3), 40 * i, np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
        for j in range(2):
            packet = av.Packet(b"DEVC" + bytes(12))
            packet.stream, packet.time_base = data, Fraction(1, 1000)
            packet.pts = packet.dts = 50 * j
            out.mux(packet)
    with pytest.warns(UserWarning, match=re.escape("data track (GoPro MET) is not kept")):
        transcode(tmp_path / "GX010001.MP4", tmp_path / "o.mp4", preset="ultrafast",
                  audio=audio, subtitles=audio)
    with av.open(str(tmp_path / "o.mp4")) as container:
        assert [s.type for s in container.streams] == ["video"]


@pytest.mark.parametrize("timecode_on", ["stream", "file"])
def test_a_timecode_no_track_can_count_is_dropped_with_a_warning(tmp_path, caplog, timecode_on):
    _tagged_clip(tmp_path / "fast.mkv", fps=480, timecode_on=timecode_on)
    with caplog.at_level("WARNING"):
        transcode(tmp_path / "fast.mkv", tmp_path / "o.mp4", preset="ultrafast")
    assert [r for r in caplog.records if "timecode 01:02:03:04 is dropped" in r.getMessage()]
    tags, _, timecodes = _tags_of(tmp_path / "o.mp4")
    assert tags["title"] == "My holiday" and not timecodes and "timecode" not in tags
    assert len(read_all(tmp_path / "o.mp4")[1]) == 4


def test_an_rgb_input_coded_as_yuv_says_so(make_test_clip, tmp_path, caplog):
    clip = make_test_clip("rgb.mkv", n_frames=3, codec="libx264rgb", pix_fmt="bgr0",
                          options={"preset": "ultrafast", "crf": "0"})
    with caplog.at_level("WARNING"):
        transcode(clip.path, tmp_path / "yuv.mkv", codec="libx264", preset="ultrafast")
        transcode(clip.path, tmp_path / "rgb.mkv", preset="ultrafast")  # libx264rgb
    said = [r.getMessage() for r in caplog.records if "input is RGB" in r.getMessage()]
    assert len(said) == 1 and "yuv444p" in said[0] and "--codec libx264rgb" in said[0]
    assert probe(tmp_path / "yuv.mkv").pix_fmt == "yuv444p"
    assert probe(tmp_path / "yuv.mkv").colorspace == 1  # tagged BT.709


def test_an_encoder_that_drops_chroma_or_depth_says_so(make_test_clip, tmp_path, caplog):
    clip = make_test_clip("full.mkv", n_frames=3, codec="ffv1", pix_fmt="yuv444p10le")
    with caplog.at_level("WARNING"):
        transcode(clip.path, tmp_path / "kept.mkv", codec="ffv1")  # keeps both: no word
        transcode(clip.path, tmp_path / "lost.mkv", codec="mpeg4")  # 4:2:0 8-bit only
    said = [r.getMessage() for r in caplog.records if "losing" in r.getMessage()]
    assert said == ["the input is yuv444p10le; mpeg4 codes it as yuv420p, losing its chroma "
                    "resolution and 10-bit samples: --codec ffv1 into .mkv keeps them"]
    assert probe(tmp_path / "kept.mkv").pix_fmt == "yuv444p10le"
    assert probe(tmp_path / "lost.mkv").pix_fmt == "yuv420p"


def test_ten_bit_stays_ten_bit(make_test_clip, tmp_path):
    clip = make_test_clip("t.mp4", n_frames=4, pix_fmt="yuv420p10le")
    info, frames = read_all(clip.path)
    assert info.bit_depth == 10
    assert frames[0].image.dtype == np.uint16
    assert frames[0].image.max() > 255  # full 16-bit scale
    out = tmp_path / "out.mp4"
    transcode(clip.path, out, preset="ultrafast")
    assert probe(out).pix_fmt == "yuv420p10le"
    _, back = read_all(out)
    assert back[0].image.dtype == np.uint16
    diff = np.abs(back[0].image.astype(int) - frames[0].image.astype(int))
    assert diff.mean() < 0.05 * 65535


def test_the_same_frames_encode_to_the_same_file(make_test_clip, tmp_path):
    """x264 is deterministic, except its AVX-512 code (which the writer leaves out): on such
    CPUs the same frames gave different files from run to run."""
    clip = make_test_clip("in.mp4", n_frames=32, blurry={3, 10, 19, 27})
    encoded = []
    for k in range(4):
        out = tmp_path / f"out{k}.mp4"
        with open_reader(clip.path) as reader, VideoWriter(
                out, reader.info, audio=False, subtitles=False) as writer:
            for frame in reader:  # written as decoded, as the main job does
                writer.write(frame)
        encoded.append(packets(out, "video"))
    assert all(e == encoded[0] for e in encoded[1:])


def test_ffv1_round_trip_is_bit_exact(lossless_clip, tmp_path):
    info, frames = read_all(lossless_clip.path)
    for original, decoded in zip(lossless_clip.frames, frames, strict=True):
        np.testing.assert_array_equal(decoded.image, original)
    out = tmp_path / "out.mkv"
    transcode(lossless_clip.path, out, codec="ffv1")
    assert probe(out).pix_fmt == "bgr0"
    _, back = read_all(out)
    for original, decoded in zip(lossless_clip.frames, back, strict=True):
        np.testing.assert_array_equal(decoded.image, original)


YUV_FORMATS = ["yuv420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le", "yuv444p10le"]


@pytest.mark.parametrize(
    ("codec", "pix_fmt"),
    [("ffv1", f) for f in YUV_FORMATS]
    + [("libx264", f) for f in ("yuv420p", "yuv420p10le", "yuv422p10le", "yuv444p")]
    + [("libx265", "yuv420p10le")]
    # the generic names: FFmpeg picks libx264 / libx265, whose lossless settings must follow
    + [("h264", "yuv420p"), ("hevc", "yuv420p10le")],
)
def test_yuv_frames_written_unchanged_are_bit_exact(make_test_clip, tmp_path, planes_of,
                                                    codec, pix_fmt):
    clip = make_test_clip("in.mkv", n_frames=4, codec="ffv1", pix_fmt=pix_fmt)
    out = tmp_path / "out.mkv"
    transcode(clip.path, out, codec=codec, crf=0, preset="ultrafast")
    assert probe(out).pix_fmt == pix_fmt
    source, back = planes_of(clip.path), planes_of(out)
    assert len(back) == len(source) == 4
    for before, after in zip(source, back, strict=True):
        for a, b in zip(before, after, strict=True):
            np.testing.assert_array_equal(b, a)


def _photos(height: int, width: int) -> list[np.ndarray]:
    """Textured photographs. (Large flat areas, such as a clear sky or a black background,
    round to the same few codes everywhere: one such image alone may be off by 0.3 on
    average, in either direction, which says nothing of the rounding's bias.)"""
    from skimage import data

    images = [data.astronaut(), data.chelsea(), data.coffee(), data.immunohistochemistry(),
              *data.stereo_motorcycle()[:2]]
    return [np.ascontiguousarray(image[:height, :width]) for image in images]


def _round_trip(tmp_path, images: list[np.ndarray], pix_fmt: str, tags: dict) -> np.ndarray:
    """RGB images written as ``pix_fmt`` by the writer and read back by the reader: the
    errors (read - written) in 8-bit code values, one row per pixel."""
    height, width = images[0].shape[:2]
    deep = "10" in pix_fmt
    info = dataclasses.replace(VideoInfo.for_frames(width, height, bit_depth=10 if deep else 8),
                               pix_fmt=pix_fmt, **tags)
    scale = 257 if deep else 1
    out = tmp_path / "out.mkv"
    with VideoWriter(out, info, codec="ffv1") as writer:
        for i, image in enumerate(images):
            writer.write(Frame(i, i, info.time_base, image.astype(np.uint16) * scale if deep
                               else image))
    _, back = read_all(out)
    return np.concatenate([
        (b.image.astype(np.float64) / scale - a).reshape(-1, 3)
        for a, b in zip(images, back, strict=True)
    ])


@pytest.mark.parametrize(
    ("pix_fmt", "tags"),
    [
        ("yuv444p", {}),
        ("yuv444p", {"colorspace": 1, "color_range": 2}),
        ("yuv420p", {"colorspace": 1, "color_range": 1}),
        ("yuv420p", {"colorspace": 9, "color_range": 2}),
        ("yuv422p10le", {"colorspace": 5, "color_range": 1}),
    ],
)
def test_rgb_through_yuv_and_back_has_no_bias(tmp_path, pix_fmt, tags):
    errors = _round_trip(tmp_path, _photos(296, 448), pix_fmt, tags)
    assert np.all(np.abs(errors.mean(axis=0)) < 0.05), errors.mean(axis=0)
    if pix_fmt.startswith("yuv444"):  # only rounding
        assert np.abs(errors).max() <= 2
    else:  # subsampled chroma loses detail at colour edges, not level
        assert np.sqrt((errors**2).mean()) < 3.5
        assert np.percentile(np.abs(errors), 99) <= 12


def test_yuv_frame_through_rgb_keeps_its_planes(tmp_path, planes_of):
    # what a restored frame's untouched areas go through: decoded to RGB, encoded again
    images = _photos(296, 448)
    info = dataclasses.replace(VideoInfo.for_frames(448, 296), colorspace=1, color_range=1)
    source, out = tmp_path / "in.mkv", tmp_path / "out.mkv"
    with VideoWriter(source, info, codec="ffv1") as writer:
        for i, image in enumerate(images):
            writer.write(Frame(i, i, info.time_base, image))
    info, frames = read_all(source)
    with VideoWriter(out, info, codec="ffv1") as writer:
        for f in frames:  # without its planes: through RGB
            writer.write(Frame(f.index, f.pts, f.time_base, f.image, f.duration))
    diff = np.concatenate([
        (b.astype(int) - a).ravel()
        for before, after in zip(planes_of(source), planes_of(out), strict=True)
        for a, b in zip(before, after, strict=True)
    ])
    assert np.mean(diff == 0) > 0.99  # the rest: where RGB clips an out-of-gamut colour
    assert abs(diff.mean()) < 0.01 and np.abs(diff).mean() < 0.02


@pytest.mark.parametrize("tags", [{}, {"colorspace": 1, "color_range": 2}])
def test_rounding_to_yuv_and_back_is_unbiased_on_noise(tmp_path, tags):
    rng = np.random.default_rng(0)
    noise = [rng.integers(8, 248, (128, 192, 3), dtype=np.uint8) for _ in range(4)]
    errors = _round_trip(tmp_path, noise, "yuv444p", tags)
    assert np.all(np.abs(errors.mean(axis=0)) < 0.01), errors.mean(axis=0)
    assert np.abs(errors).max() <= 2


def test_libx264rgb_crf0_round_trip_is_bit_exact(lossless_clip, tmp_path):
    out = tmp_path / "out.mkv"
    transcode(lossless_clip.path, out, codec="libx264rgb", crf=0, preset="ultrafast")
    _, back = read_all(out)
    for original, decoded in zip(lossless_clip.frames, back, strict=True):
        np.testing.assert_array_equal(decoded.image, original)


def test_odd_size_is_kept_where_the_codec_can_code_it(make_test_clip, tmp_path, planes_of,
                                                    caplog):
    clip = make_test_clip("odd.mkv", n_frames=3, size=(67, 45), codec="ffv1", pix_fmt="yuv420p")
    out = tmp_path / "out.mkv"
    with caplog.at_level("WARNING"):
        info, frames = read_all(clip.path)
        with VideoWriter(out, info, codec="ffv1") as writer:
            assert not writer.padded and (writer.width, writer.height) == (67, 45)
            writer.write(frames[0])  # passed through
            writer.write(frames[1].with_image(frames[1].image))  # converted from RGB
    assert not [r for r in caplog.records if "padded" in r.getMessage()]
    assert (probe(out).width, probe(out).height) == (67, 45)
    source, back = planes_of(clip.path), planes_of(out)
    for a, b in zip(source[0], back[0], strict=True):
        np.testing.assert_array_equal(b, a)
    _, decoded = read_all(out)
    diff = np.abs(decoded[1].image.astype(int) - frames[1].image.astype(int))
    assert diff.mean() < 0.5 and diff[:, -1].mean() < 1.0  # the odd column is not lost


@pytest.mark.parametrize("source_format", ["bgr0", "yuv420p"])
def test_odd_size_is_padded_once_where_the_codec_needs_it(make_test_clip, tmp_path, planes_of,
                                                         caplog, source_format):
    clip = make_test_clip("odd.mkv", n_frames=3, size=(97, 65), codec="ffv1",
                          pix_fmt=source_format)
    out = tmp_path / "out.mkv"
    info, frames = read_all(clip.path)
    with caplog.at_level("WARNING"), VideoWriter(out, info, codec="libx264", pix_fmt="yuv420p",
                                                 crf=0, preset="ultrafast") as writer:
        assert writer.padded and (writer.width, writer.height) == (98, 66)
        for frame in frames:
            writer.write(frame)
    padded = [r.getMessage() for r in caplog.records if "padded" in r.getMessage()]
    assert len(padded) == 1 and "cropping" in padded[0]
    luma = planes_of(out)[0][0]
    assert luma.shape == (66, 98)
    np.testing.assert_array_equal(luma[:, 97], luma[:, 96])
    np.testing.assert_array_equal(luma[65], luma[64])
    if source_format == "yuv420p":  # passed through: the input's samples, then the padding
        for a, b in zip(planes_of(clip.path)[0], planes_of(out)[0], strict=True):
            np.testing.assert_array_equal(b[: a.shape[0], : a.shape[1]], a)


@pytest.mark.parametrize(
    ("codec", "source", "expected"),
    [
        ("libx264", "yuv420p10le", "yuv420p10le"),
        ("libx264", "yuv420p", "yuv420p"),
        ("libvpx-vp9", "yuv420p10le", "yuv420p"),
        ("libx264", "bgr0", "yuv444p"),
        ("ffv1", "bgr0", "bgr0"),
        ("libx264rgb", "gbrp", "bgr0"),
    ],
)
def test_default_pixel_format_keeps_chroma_and_depth(codec, source, expected):
    assert choose_pix_fmt(codec, source) == expected


# -- user errors ---------------------------------------------------------------------------------


def test_bad_codec_container_and_pixel_format_are_user_errors(small_clip, tmp_path):
    info = probe(small_clip.path)
    with pytest.raises(UserError, match="unknown video encoder"):
        VideoWriter(tmp_path / "a.mp4", info, codec="no-such-codec")
    with pytest.raises(UserError, match=re.escape("'h265': did you mean libx265?")):
        VideoWriter(tmp_path / "a.mp4", info, codec="h265")
    with pytest.raises(UserError, match=re.escape("'HEVC': did you mean hevc?")):
        VideoWriter(tmp_path / "a.mp4", info, codec="HEVC")
    with pytest.raises(UserError, match="cannot hold libx264 video; name the output .mp4 or "
                       r"\.m4v or \.mkv or \.mov"):
        VideoWriter(tmp_path / "b.webm", info, codec="libx264", audio=False)
    with pytest.raises(UserError, match="cannot hold huffyuv video; no output .* ffv1"):
        VideoWriter(tmp_path / "b.mkv", info, codec="huffyuv", audio=False)
    # MPEG-TS's muxer takes any stream, but one it has no stream type for no player decodes
    with pytest.raises(UserError, match="mpegts container cannot hold libvpx-vp9 video; name "
                       r"the output \.mp4 or \.m4v or \.mkv or \.mov or \.webm"):
        VideoWriter(tmp_path / "b.ts", info, codec="libvpx-vp9", audio=False)
    with pytest.raises(UserError, match="container"):
        VideoWriter(tmp_path / "c.avi", info)
    with pytest.raises(UserError, match="pixel format"):
        VideoWriter(tmp_path / "d.mp4", info, pix_fmt="bgr0")
    with pytest.raises(UserError, match="not a video encoder"):
        VideoWriter(tmp_path / "e.mp4", info, codec="aac")
    with pytest.raises(UserError, match="beyond libx264's range"):
        VideoWriter(tmp_path / "f.mp4", info, crf=52)
    with pytest.raises(UserError, match="beyond libvpx-vp9's range"):
        VideoWriter(tmp_path / "g.webm", info, crf=64, audio=False)
    VideoWriter(tmp_path / "h.webm", info, crf=63, audio=False).close()  # its worst, allowed
    assert not [p.name for p in tmp_path.iterdir() if p.name[0] in "fg"]  # nothing left


def test_sound_mpeg_ts_has_no_stream_type_for_is_refused_not_hidden_as_data(tmp_path):
    from fractions import Fraction

    with av.open(str(tmp_path / "pcm.mov"), "w") as out:  # a camera's MOV with PCM sound
        video, sound = out.add_stream("libx264", rate=25), out.add_stream("pcm_s16le", 48000)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8), "rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            out.mux(video.encode(frame))
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 3840), np.int16), format="s16",
                                                 layout="stereo")
            samples.sample_rate, samples.pts = 48000, 1920 * i
            out.mux(sound.encode(samples))
        out.mux(video.encode())
        out.mux(sound.encode())
    info = probe(tmp_path / "pcm.mov")
    with pytest.raises(UserError, match=r"cannot hold the input's pcm_s16le audio \(mpegts "
                       r"holds pcm_s16le only as data no player reads\)"):
        VideoWriter(tmp_path / "out.ts", info)
    VideoWriter(tmp_path / "out.mkv", info).close()


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        probe(tmp_path / "nope.mp4")
    with pytest.raises(UserError, match="not found"):
        open_reader(tmp_path / "nope.mp4")


def test_folder_and_non_media_file_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="folder"):
        probe(tmp_path)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video at all\n" * 40)
    with pytest.raises(UserError, match="not a readable video"):
        probe(junk)


def test_file_without_video_stream_is_a_user_error(tmp_path):
    srt = tmp_path / "subs.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    with pytest.raises(UserError, match="no video stream"):
        open_reader(srt)


def test_a_recording_cut_short_is_one_clear_error_wherever_it_stops(make_test_clip, tmp_path):
    """An MP4 writes its index last: cut before it, the file is no video, and where what is
    left of the index still parses into a stream without video or audio, the error says
    the file may be cut short."""
    data = make_test_clip("rec.mp4", n_frames=20, audio=True).path.read_bytes()
    cut = tmp_path / "cut.mp4"
    said = set()
    for lost in range(100, 4000, 100):
        cut.write_bytes(data[:-lost])
        try:
            probe(cut)
        except UserError as error:
            said.add(str(error).partition(" ")[2].split(":")[0])
    assert "holds no video or audio" in said, said


def test_video_stream_without_decodable_frames_is_a_user_error(tmp_path):
    broken = tmp_path / "garbage.mkv"
    with av.open(str(broken), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "bgr0"
        for i in range(3):  # packets of garbage where FFV1 frames should be
            packet = av.Packet(bytes(range(256)) * 2)
            packet.stream, packet.time_base = stream, Fraction(1, 25)
            packet.pts = packet.dts = i
            out.mux(packet)
    with open_reader(broken) as reader, pytest.raises(UserError, match="no decodable"):
        list(reader)


def test_a_stream_whose_every_frame_is_concealed_is_a_user_error(noise_video):
    noise = noise_video("noise.mp4")
    with av.open(str(noise)) as container:  # it passes for video, and every frame decodes
        decoded = list(container.decode(video=0))
        assert container.format.name == "h263"
        assert len(decoded) == 4 and all(f.is_corrupt for f in decoded)
    with open_reader(noise) as reader, pytest.raises(UserError, match="every one of its 4"):
        list(reader)


@pytest.mark.parametrize(
    ("name", "muxer_options"), [("long.mkv", None), ("long.mp4", {"movflags": "faststart"})]
)
def test_truncated_file_is_salvaged_with_one_warning(make_test_clip, tmp_path, name, muxer_options):
    clip = make_test_clip(name, n_frames=24, container_options=muxer_options)
    cut = tmp_path / f"cut_{name}"
    data = clip.path.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with open_reader(cut) as reader:
            frames = list(reader)
    corrupt = [w for w in caught if issubclass(w.category, CorruptVideoWarning)]
    assert len(corrupt) == 1
    assert "salvaged" in str(corrupt[0].message)
    assert 0 < len(frames) < 24
    # the salvaged frames are the first ones, with their original timestamps
    _, full = read_all(clip.path)
    assert [f.pts for f in frames] == [f.pts for f in full[: len(frames)]]


def test_intact_file_gives_no_warning(small_clip):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_all(small_clip.path)


def _matroska_starting_at(path: Path, start_ms: int, n_frames: int = 25) -> Path:
    """An MKV whose video starts ``start_ms`` in (after its audio, or cut), 25 fps."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 8 * i, np.uint8), "rgb24")
            frame.pts, frame.time_base = start_ms + 40 * i, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize("start_ms", [40, 480])
def test_a_matroska_video_that_starts_late_is_whole_and_keeps_its_length(tmp_path, start_ms):
    """Matroska's DURATION tag is where the stream ends, not how long it lasts: read as a
    length, a late start made an intact file look truncated, or its last frame longer."""
    clip = _matroska_starting_at(tmp_path / "late.mkv", start_ms)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        info, frames = read_all(clip)
    assert len(frames) == 25
    assert info.duration_s == pytest.approx(1.0, abs=1e-3)
    assert frames[-1].duration * frames[-1].time_base == Fraction(40, 1000)
    out = tmp_path / "out.mkv"
    transcode(clip, out)
    with av.open(str(clip)) as source, av.open(str(out)) as result:
        tags = [c.streams.video[0].metadata.get("DURATION") for c in (source, result)]
    assert tags[0] == tags[1]


def _clip_with_alpha(path: Path, pix_fmt: str, n_frames: int = 6) -> list[np.ndarray]:
    """An FFV1 clip of ``pix_fmt`` with a transparency that varies across the frame;
    returns each frame's alpha as read back (RGBA, the sample size of the format)."""
    ys, xs = np.mgrid[0:48, 0:64]
    deep = "10" in pix_fmt
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        for i in range(n_frames):
            rgba = np.dstack([(xs * 4 + 9 * i) % 256, (ys * 5) % 256, xs + ys,
                              (xs // 16) * 61 + 7 + i]).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(rgba, "rgba").reformat(format=pix_fmt)
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgba64le" if deep else "rgba")[..., 3]
                for f in container.decode(video=0)]


@pytest.mark.parametrize("pix_fmt", ["yuva420p", "bgra", "yuva444p10le"])
def test_transparency_is_kept_on_untouched_and_restored_frames(tmp_path, pix_fmt, planes_of):
    source = tmp_path / "alpha.mkv"
    alphas = _clip_with_alpha(source, pix_fmt)
    info, frames = read_all(source)
    out = tmp_path / "out.mkv"
    with VideoWriter(out, info) as writer:
        for frame in frames:  # every other frame "restored": a new image, the same alpha
            writer.write(frame.with_image(frame.image[::-1].copy()) if frame.index % 2 else frame)
    with av.open(str(out)) as container:
        written = list(container.decode(video=0))
    assert written[0].format.name == pix_fmt
    deep = "10" in pix_fmt
    for alpha, frame in zip(alphas, written, strict=True):
        np.testing.assert_array_equal(
            frame.to_ndarray(format="rgba64le" if deep else "rgba")[..., 3], alpha)
    if pix_fmt != "bgra":  # planar: an untouched frame comes back sample for sample
        for before, after in list(zip(planes_of(source), planes_of(out), strict=True))[::2]:
            for a, b in zip(before, after, strict=True):
                np.testing.assert_array_equal(a, b)


def test_an_output_that_cannot_hold_transparency_says_so(tmp_path, caplog):
    source = tmp_path / "alpha.mkv"
    _clip_with_alpha(source, "yuva420p", n_frames=2)
    with caplog.at_level("WARNING"):
        transcode(source, tmp_path / "out.mp4")
    assert sum("transparency" in r.getMessage() for r in caplog.records) == 1


def test_an_opaque_clip_with_an_alpha_format_loses_nothing_and_hears_nothing(tmp_path, caplog):
    """A GIF decodes with alpha (bgra) whether or not a pixel is transparent: where none
    is, the output loses nothing, and is not warned about."""
    with av.open(str(tmp_path / "opaque.gif"), "w") as container:
        stream = container.add_stream("gif", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "rgb8"
        for i in range(3):
            image = np.zeros((48, 64, 3), np.uint8)
            image[:, 10 * i: 10 * i + 20] = (200, 40, 90)
            frame = av.VideoFrame.from_ndarray(image, "rgb24").reformat(format="rgb8")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    assert probe(tmp_path / "opaque.gif").pix_fmt == "bgra"
    with caplog.at_level("WARNING"):
        transcode(tmp_path / "opaque.gif", tmp_path / "out.mp4")
    assert not any("transparency" in r.getMessage() for r in caplog.records)


def _grey_ramp_clip(path: Path, pix_fmt: str, codec: str, n_frames: int = 3) -> None:
    ys, xs = np.mgrid[0:48, 0:64]
    grey = (20 + (xs * 3 + ys) % 221).astype(np.uint8)  # 20..240
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(np.dstack([grey] * 3), "rgb24")
            frame = frame.reformat(format=pix_fmt)
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.mark.parametrize(("source_fmt", "source_codec", "out_name", "options"), [
    ("gray", "ffv1", "out.mp4", {}),  # an untagged grey source into H.264 4:0:0
    ("yuv420p", "libx264", "out.mkv", {"pix_fmt": "gray", "codec": "libx264"}),
])
def test_grey_output_is_tagged_full_range_and_keeps_its_contrast(
        tmp_path, source_fmt, source_codec, out_name, options):
    """Grey samples are full range; a 4:0:0 stream that does not say so is read as limited
    range, and its contrast is stretched on playback."""
    source = tmp_path / ("src.mkv" if source_codec == "ffv1" else "src.mp4")
    _grey_ramp_clip(source, source_fmt, source_codec)
    out = tmp_path / out_name
    transcode(source, out, crf=0, **options)
    with av.open(str(source)) as a, av.open(str(out)) as b:
        shown = [next(c.decode(video=0)).to_ndarray(format="rgb24").astype(int) for c in (a, b)]
        assert b.streams.video[0].codec_context.color_range == 2
    assert np.abs(shown[1] - shown[0]).max() <= 2
    assert abs(shown[1].mean() - shown[0].mean()) < 0.5


def test_an_avi_with_b_frames_keeps_a_steady_timeline(tmp_path):
    """AVI stores decode order only: its frames come out of the decoder carrying their
    packets' counts, shuffled by the B-frames."""
    path = tmp_path / "b_frames.avi"
    ys, xs = np.mgrid[0:48, 0:64]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"x264-params": "bframes=3:b-adapt=0"}
        for i in range(12):
            image = np.dstack([(xs * 5 + 3 * i) % 256, (ys * 7 - 2 * i) % 256, xs + ys])
            frame = av.VideoFrame.from_ndarray(image.astype(np.uint8), "rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with av.open(str(path)) as container:  # the shuffle this is about
        shuffled = [f.pts for f in container.decode(video=0)]
    assert shuffled != sorted(shuffled)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, frames = read_all(path)
    assert len(frames) == 12
    steps = {b.pts - a.pts for a, b in zip(frames, frames[1:], strict=False)}
    assert steps == {1}


@pytest.mark.parametrize(("first", "order"), [("tff", 2), ("bff", 3)])
def test_an_interlaced_input_is_named_once_and_stays_interlaced(tmp_path, caplog, first,
                                                                  order):
    """Its fields are restored together as one picture, and the output is coded interlaced
    in the same field order: the user is told, once however often the file is read."""
    path = tmp_path / "interlaced.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"x264-params": f"interlaced=1:{first}=1", "flags": "+ilme+ildct"}
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 60 * i, np.uint8), "rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with caplog.at_level("WARNING"):
        read_all(path)
        read_all(path)
    said = [r.getMessage() for r in caplog.records if "interlaced" in r.getMessage()]
    assert len(said) == 1 and "two fields are restored together" in said[0]
    assert probe(path).field_order == order
    for suffix in (".mp4", ".mkv"):
        out = tmp_path / f"out{suffix}"
        transcode(path, out)
        with av.open(str(out)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.field_order == order
            assert all(frame.interlaced_frame for frame in container.decode(stream))


def _mpeg2_clip(path: Path, interlaced: bool) -> list[np.ndarray]:
    """A DVB-like MPEG-2 recording in MPEG-TS, its frames coded as fields or not."""
    shown = [render_frame(i, (96, 64)) for i in range(8)]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg2video", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.options = {"flags": "+qscale+ildct+ilme" if interlaced else "+qscale",
                          "global_quality": str(2 * 118)}
        for i, image in enumerate(shown):
            frame = av.VideoFrame.from_ndarray(image, "rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return shown


def test_mpeg2_stays_mpeg2_in_mpeg_ts_unless_its_fields_would_be_lost(tmp_path, caplog):
    """A DVB recording played where it came from; before, it became H.264 without a word,
    and --codec mpeg2video coded it at FFmpeg's default 200 kb/s (about 25 dB)."""
    _mpeg2_clip(tmp_path / "dvb.ts", interlaced=False)
    frames = transcode(tmp_path / "dvb.ts", tmp_path / "out.ts")
    with av.open(str(tmp_path / "out.ts")) as container:
        assert container.streams.video[0].codec_context.name == "mpeg2video"
        again = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert min(psnr(a, b.image) for a, b in zip(again, frames, strict=True)) > 30
    # interlaced: PyAV cannot mark a frame's field order for the MPEG-2 encoder, x264 codes it
    _mpeg2_clip(tmp_path / "576i.ts", interlaced=True)
    order = probe(tmp_path / "576i.ts").field_order
    assert order in (2, 3, 4, 5)
    transcode(tmp_path / "576i.ts", tmp_path / "out_i.ts")
    with av.open(str(tmp_path / "out_i.ts")) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.field_order) == ("h264", order)
    with caplog.at_level("WARNING"):  # asked for: coded as progressive, and said so
        transcode(tmp_path / "576i.ts", tmp_path / "out_m2.ts", codec="mpeg2video")
    assert any("does not keep the input's field order (mpeg2video codes the frames as "
               "progressive" in r.getMessage() for r in caplog.records)


# -- optional decord backend ---------------------------------------------------------------------


def test_unknown_backend_is_a_user_error(small_clip):
    with pytest.raises(UserError, match="backend"):
        open_reader(small_clip.path, backend="opencv")


@pytest.mark.parametrize(
    ("name", "kwargs"), [("d.mp4", {"vfr": True}), ("r.mp4", {"rotation": 90})]
)
def test_decord_gives_the_same_frames_as_pyav(make_test_clip, name, kwargs):
    pytest.importorskip("decord")
    clip = make_test_clip(name, n_frames=10, **kwargs)
    _, pyav_frames = read_all(clip.path)
    with open_reader(clip.path, backend="decord") as reader:
        decord_frames = list(reader)
    assert [f.pts for f in decord_frames] == [f.pts for f in pyav_frames]
    for a, b in zip(pyav_frames, decord_frames, strict=True):
        assert a.image.shape == b.image.shape  # coded orientation, like PyAV
        # decord takes swscale's fast path (chroma repeated, BT.601, truncated), which the
        # texture's 2x2 colour blocks favour; ours interpolates chroma (closer on photos)
        assert np.abs(a.image.astype(int) - b.image.astype(int)).mean() < 6


@pytest.mark.parametrize("error", [RuntimeError("model failed"), KeyboardInterrupt()])
def test_interrupted_write_inside_atomic_output_leaves_nothing(small_clip, tmp_path, error):
    info, frames = read_all(small_clip.path)
    folder = tmp_path / "out"
    folder.mkdir()
    with (
        pytest.raises(type(error)),
        atomic_output(folder / "o.mp4") as tmp,
        VideoWriter(tmp, info) as writer,
    ):
        writer.write(frames[0])
        raise error
    assert list(folder.iterdir()) == []


def test_frames_from_nowhere_can_be_written(tmp_path):
    info = VideoInfo.for_frames(64, 48, fps=30)
    image = np.zeros((48, 64, 3), np.uint8)
    with VideoWriter(tmp_path / "gen.mkv", info, codec="ffv1") as writer:
        for i in range(3):
            writer.write(Frame(i, i, info.time_base, image + 40 * i))
    out, back = read_all(tmp_path / "gen.mkv")
    assert out.fps == 30 and len(back) == 3
    assert [f.time_s for f in back] == pytest.approx([0, 1 / 30, 2 / 30], abs=1e-3)
    assert int(back[2].image.mean()) in (79, 80, 81)


# -- synthetic clips and demo sample ------------------------------------------------------------


def test_render_frame_gives_the_sharp_ground_truth_of_clip_frames(lossless_clip):
    for i, frame in enumerate(lossless_clip.frames):
        truth = render_frame(i, (96, 64))
        if i in lossless_clip.blurry:
            assert not np.array_equal(frame, truth)
            np.testing.assert_array_equal(frame, render_frame(i, (96, 64), blurry=True))
        else:
            np.testing.assert_array_equal(frame, truth)


def test_demo_clip_has_audio_and_every_third_frame_blurry(tmp_path: Path):
    frames = make_demo_clip(tmp_path / "demo.mp4")
    info = probe(tmp_path / "demo.mp4")
    assert (info.width, info.height, info.frame_count, info.has_audio) == (320, 180, 48, True)
    assert info.fps == Fraction(25)
    assert len(frames) == 48
    decisions = plan_references([sharpness(f) for f in frames])
    assert {d.index for d in decisions if d.blurry} == set(range(1, 48, 3))


def test_a_header_that_counts_samples_an_edit_list_hides_announces_no_frame_count():
    """A stream-copied cut keeps the samples before its first keyframe (122 here, as
    ``ffmpeg -ss 2 -t 2 -c copy`` left them) but its edit list shows 2.1 s: 62 frames
    decode, and a count of 122 would call the file truncated."""
    from types import SimpleNamespace

    fps = Fraction(30000, 1001)
    assert _announced_frames(SimpleNamespace(frames=122), 2.105, fps) is None
    assert _announced_frames(SimpleNamespace(frames=63), 2.105, fps) == 63
    assert _announced_frames(SimpleNamespace(frames=0), 2.105, fps) is None
    assert _announced_frames(SimpleNamespace(frames=122), None, fps) == 122


def test_a_short_trim_by_stream_copy_is_no_corrupt_video(make_test_clip, tmp_path):
    """A cut by stream copy half a second into a 2-second GOP: 13 samples before the cut
    stay in the file behind an edit list (a tenth of them, as phone gallery trims leave)."""
    clip = make_test_clip("full.mp4", n_frames=150, options={"g": "50", "preset": "ultrafast"})
    trimmed = tmp_path / "trimmed.mp4"
    with av.open(str(clip.path)) as source, av.open(str(trimmed), "w") as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        cut = int(Fraction(1, 2) / source.streams.video[0].time_base)
        for packet in source.demux(video=0):
            if packet.size:
                packet.pts, packet.dts, packet.stream = packet.pts - cut, packet.dts - cut, stream
                out.mux(packet)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorruptVideoWarning)
        info, frames = read_all(trimmed)
    assert len(frames) == 137 and info.frame_count is None


def test_mjpeg_keeps_the_video_range_at_a_fixed_good_quality(make_test_clip, tmp_path):
    clip = make_test_clip("in.mp4", n_frames=3, size=(640, 480))
    out = tmp_path / "out.mkv"
    transcode(clip.path, out, codec="mjpeg")  # FFmpeg refuses limited range unless told
    assert probe(out).pix_fmt == "yuv420p"  # not converted to JPEG's full range
    _, source = read_all(clip.path)
    _, back = read_all(out)
    assert len(back) == 3
    for a, b in zip(source, back, strict=True):
        # a noise texture: about 34 dB at the default quality, 25 at FFmpeg's 200 kb/s
        assert psnr(b.image, a.image) > 32


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_non_square_samples_keep_their_shape(make_test_clip, tmp_path, suffix):
    clip = make_test_clip("in.mp4", n_frames=2)
    info, frames = read_all(clip.path)
    assert info.sample_aspect_ratio is None  # square
    dv = tmp_path / f"dv{suffix}"  # 4:3 samples: shown 16:9 wide, not as coded
    with VideoWriter(dv, dataclasses.replace(info, sample_aspect_ratio=Fraction(4, 3))) as out:
        for frame in frames:
            out.write(frame)
    again = tmp_path / f"again{suffix}"
    transcode(dv, again)  # as the tool rewrites a real file
    for path in (dv, again):
        assert probe(path).sample_aspect_ratio == Fraction(4, 3)
        with av.open(str(path)) as container:
            assert container.streams.video[0].display_aspect_ratio == Fraction(2, 1)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_chapters_are_kept(make_test_clip, tmp_path, suffix):
    clip = make_test_clip(f"in{suffix}", n_frames=10)
    chapters = [{"id": 1, "start": 0, "end": 200, "time_base": Fraction(1, 1000),
                 "metadata": {"title": "Intro"}},
                {"id": 2, "start": 200, "end": 400, "time_base": Fraction(1, 1000),
                 "metadata": {"title": "Main"}}]
    info, frames = read_all(clip.path)
    with VideoWriter(tmp_path / f"chaptered{suffix}", dataclasses.replace(
            info, chapters=tuple(chapters))) as out:
        for frame in frames:
            out.write(frame)
    again = tmp_path / f"again{suffix}"
    with warnings.catch_warnings():  # MP4 keeps chapters in a text track: no data lost
        warnings.simplefilter("error")
        transcode(tmp_path / f"chaptered{suffix}", again)  # as the tool rewrites a real file

    def kept(path):
        with av.open(str(path)) as container:
            return [(c["start"] * c["time_base"], c["end"] * c["time_base"],
                     c["metadata"].get("title")) for c in container.chapters()]

    assert kept(again) == [(0, Fraction(1, 5), "Intro"), (Fraction(1, 5), Fraction(2, 5), "Main")]


@pytest.mark.parametrize("sound_first", [0, 3])
def test_a_transport_stream_whose_clock_wraps_keeps_every_frame_and_its_sound(tmp_path,
                                                                             sound_first):
    source = tmp_path / "capture.ts"
    start = 2**33 - 10 * 3600  # 10 frames before the 33-bit clock wraps to 0
    with av.open(str(source), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 96, 64, "yuv420p"
        video.time_base = Fraction(1, 90000)
        sound = out.add_stream("mp2", rate=48000)
        sound.time_base = Fraction(1, 90000)
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(render_frame(i, (96, 64)), format="rgb24")
            frame.pts, frame.time_base = start + i * 3600, Fraction(1, 90000)
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        for i in range(19):  # 0.76 s of tone in frames of 1152 samples
            samples = np.sin(np.arange(1152) / 10 + i).astype(np.float32)[None].repeat(2, 0)
            chunk = av.AudioFrame.from_ndarray((samples * 8000).astype(np.int16).reshape(1, -1),
                                               format="s16", layout="stereo")
            chunk.sample_rate, chunk.time_base = 48000, Fraction(1, 90000)
            chunk.pts = start - sound_first * 3600 + i * 2160  # may start before the video
            for packet in sound.encode(chunk):
                out.mux(packet)
        for packet in sound.encode():
            out.mux(packet)

    def starts(path) -> tuple[int, float, float]:
        with av.open(str(path)) as container:
            audio = next(p for p in container.demux(audio=0) if p.pts is not None)
        with av.open(str(path)) as container:
            frames = list(container.decode(video=0))
            first = float(frames[0].pts * frames[0].time_base)
            return len(frames), float(frames[-1].pts * frames[-1].time_base) - first, \
                float(audio.pts * audio.time_base) - first

    count, span, lead = starts(source)
    assert count == 20 and span == pytest.approx(0.76)
    for suffix in (".mp4", ".mkv"):
        transcode(source, tmp_path / f"out{suffix}")
        got = starts(tmp_path / f"out{suffix}")
        assert got[0] == 20 and got[1] == pytest.approx(span, abs=0.002)
        assert got[2] == pytest.approx(lead, abs=0.002), suffix  # sound still in step
        with av.open(str(tmp_path / f"out{suffix}")) as container:  # nothing before 0
            assert min(p.pts for p in container.demux() if p.pts is not None) >= 0



def test_a_clip_that_starts_late_plays_its_own_length_in_matroska(tmp_path):
    """Matroska writes the end time as the duration: a recording that starts at 10 s is
    moved to start at 0, its sound alike, or it would claim to last 10 s more."""
    source = tmp_path / "late.ts"
    make_clip(source, n_frames=20, audio=True, container_options={"output_ts_offset": "10"})
    with av.open(str(source)) as container:
        length, starts = container.duration, {s.type: float(s.start_time * s.time_base)
                                               for s in container.streams}
    assert starts["video"] == pytest.approx(10.0, abs=0.01)
    out = tmp_path / "out.mkv"
    transcode(source, out)
    with av.open(str(out)) as container:
        moved = {s.type: float(s.start_time * s.time_base) for s in container.streams}
        assert container.duration == pytest.approx(length, abs=0.02 * av.time_base)
    assert min(moved.values()) == pytest.approx(0.0, abs=0.002)
    assert moved["video"] - moved["audio"] == pytest.approx(
        starts["video"] - starts["audio"], abs=0.002)  # the sound still in step

def test_a_cover_picture_is_not_taken_for_the_video():
    from types import SimpleNamespace

    from refdeblur_video.video.metadata import main_video_stream

    cover = SimpleNamespace(disposition=av.stream.Disposition.attached_pic)
    video = SimpleNamespace(disposition=av.stream.Disposition.default)
    assert main_video_stream(SimpleNamespace(streams=SimpleNamespace(
        video=[cover, video]))) is video
    assert main_video_stream(SimpleNamespace(streams=SimpleNamespace(video=[cover]))) is cover


def test_hdr_asked_into_8_bits_is_warned_of_banding(make_test_clip, tmp_path, caplog):
    """--pix-fmt yuv420p on a PQ video is the user's choice, but 8 bits band visibly under
    PQ, which few know: one warning, naming a 10-bit format; 10 bits asked get none."""
    clip = make_test_clip("pq.mkv", n_frames=3, codec="libx265", pix_fmt="yuv420p10le",
                          color=PQ_BT2020, options={"preset": "ultrafast",
                                                    "x265-params": "log-level=error"})
    with caplog.at_level("WARNING"):
        transcode(clip.path, tmp_path / "eight.mkv", preset="ultrafast", pix_fmt="yuv420p")
        transcode(clip.path, tmp_path / "ten.mkv", preset="ultrafast", pix_fmt="yuv420p10le")
    said = [r.getMessage() for r in caplog.records if "band" in r.getMessage()]
    assert len(said) == 1 and "HDR (PQ)" in said[0] and "--pix-fmt yuv420p10le" in said[0]
    assert probe(tmp_path / "eight.mkv").pix_fmt == "yuv420p"  # the choice is kept
    caplog.clear()
    with caplog.at_level("WARNING"):  # an encoder with no 10-bit format: another codec
        transcode(clip.path, tmp_path / "m.mkv", codec="mpeg4", pix_fmt="yuv420p")
    said = [r.getMessage() for r in caplog.records if "band" in r.getMessage()]
    assert len(said) == 1 and "a codec with 10-bit samples" in said[0]


def test_decord_on_a_video_with_alpha_says_it_reads_none(make_test_clip, caplog):
    """decord gives RGB only: a video with transparency comes back opaque, which the writer
    cannot see (its frames carry no alpha to check), so the reader says so as it opens."""
    pytest.importorskip("decord")
    clip = make_test_clip("a.mkv", n_frames=3, codec="ffv1", pix_fmt="yuva420p")
    plain = make_test_clip("p.mkv", n_frames=3, codec="ffv1", pix_fmt="yuv420p")
    with caplog.at_level("WARNING"):
        for path in (clip.path, plain.path):
            with open_reader(path, backend="decord"):
                pass
    said = [r.getMessage() for r in caplog.records if "transparency" in r.getMessage()]
    assert len(said) == 1 and "a.mkv's yuva420p frames" in said[0]


@pytest.mark.parametrize(("name", "bits", "subsampling", "rgb", "alpha", "gray"), [
    ("yuv420p", 8, (1, 1), False, False, False),
    ("yuv422p10le", 10, (1, 0), False, False, False),
    ("yuv411p", 8, (2, 0), False, False, False),  # DV NTSC
    ("yuv410p", 8, (2, 2), False, False, False),
    ("yuva444p", 8, (0, 0), False, True, False),
    ("rgba", 8, (0, 0), True, True, False),
    ("gbrp12le", 12, (0, 0), True, False, False),
    ("gray16le", 16, (0, 0), False, False, True),
])
def test_pixel_format_traits_follow_the_format_s_definition(name, bits, subsampling, rgb,
                                                             alpha, gray):
    from refdeblur_video.video.pixel_formats import format_traits, has_alpha

    traits = format_traits(name)
    assert (traits.bits, (traits.sub_w, traits.sub_h), traits.rgb, traits.alpha,
            traits.gray) == (bits, subsampling, rgb, alpha, gray)
    assert has_alpha(name) is alpha


def test_an_unknown_or_missing_pixel_format_has_no_alpha():
    from refdeblur_video.video.pixel_formats import has_alpha

    assert has_alpha(None) is False and has_alpha("no_such_format") is False


def test_what_an_mpeg_ts_output_cannot_hold_is_named_once(small_clip, caplog):
    import dataclasses

    from refdeblur_video.video.tracks import say_what_mpegts_drops

    info = dataclasses.replace(probe(small_clip.path), rotation=0, chapters=({"id": 1},) * 3)
    with caplog.at_level("WARNING"):
        say_what_mpegts_drops(info, {"title": "Holiday", "service_name": "S1"},
                              {"language": "eng", "timecode": "00:00:01:00"})
        say_what_mpegts_drops(dataclasses.replace(info, chapters=()), {"service_name": "S1"},
                              {"language": "eng"})
    assert [r.getMessage() for r in caplog.records] == [
        "an MPEG-TS output does not keep the input's chapters (3), tags (timecode, title): "
        ".mkv, .mp4 and .mov do"]


def _ts_recording(path: Path, sound: str) -> None:
    """A camera's or a receiver's recording: H.264 and ``sound`` (pcm_bluray: an AVCHD
    camera's LPCM, in BDAV) or MP2 with a DVB subtitle track (in plain MPEG-TS)."""
    bdav = sound == "pcm_bluray"
    with av.open(str(path), "w", format="mpegts",
                 options={"mpegts_m2ts_mode": "1" if bdav else "0"}) as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 96, 64, "yuv420p"
        audio = container.add_stream(sound, rate=48000)
        audio.layout, audio.format = "stereo", "s16"
        subtitles = None if bdav else container.add_stream("dvbsub")
        video.time_base = Fraction(1, 90000)  # a clock started a second before
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(render_frame(i, (96, 64)), "rgb24")
            frame.pts, frame.time_base = 90000 + 3600 * i, Fraction(1, 90000)
            container.mux(video.encode(frame))
        container.mux(video.encode())
        step = audio.codec_context.frame_size or 1920
        for i in range(10):
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 2 * step), np.int16),
                                                 format="s16", layout="stereo")
            samples.sample_rate, samples.pts = 48000, 48000 + step * i
            container.mux(audio.encode(samples))
        container.mux(audio.encode())
        if subtitles is not None:  # a page composition (no regions), an end of display set
            packet = av.Packet(bytes([0x0F, 0x10, 0x00, 0x01, 0x00, 0x02, 5, 0x04,
                                      0x0F, 0x80, 0x00, 0x01, 0x00, 0x00]))
            packet.stream, packet.time_base = subtitles, Fraction(1, 90000)
            packet.pts = packet.dts = 99000
            container.mux(packet)


def test_a_recording_s_tracks_are_kept_in_its_own_container_and_refused_by_name_elsewhere(
        tmp_path):
    """Before, the decoders' names (dvbsub, dca) were looked up where the formats' names
    (dvb_subtitle, dts) are listed: DVB subtitles were dropped from TS into TS; and LPCM
    was refused by every output, Matroska's refusal saying that .mkv holds any."""
    _ts_recording(tmp_path / "dvb.ts", "mp2")
    transcode(tmp_path / "dvb.ts", tmp_path / "out.ts")
    with av.open(str(tmp_path / "out.ts")) as container:
        kept = [(s.type, s.codec_context.name) for s in container.streams]
    assert kept == [("video", "h264"), ("audio", "mp2"), ("subtitle", "dvbsub")]
    assert packets(tmp_path / "out.ts", "subtitle") == packets(tmp_path / "dvb.ts", "subtitle")
    _ts_recording(tmp_path / "cam.MTS", "pcm_bluray")
    transcode(tmp_path / "cam.MTS", tmp_path / "out.m2ts")
    assert packets(tmp_path / "out.m2ts", "audio") == packets(tmp_path / "cam.MTS", "audio")
    with pytest.raises(UserError, match=r"matroska container cannot hold the input's "
                       r"pcm_bluray audio.*; name the output \.mts or \.m2ts, or give "
                       "--no-audio"):
        transcode(tmp_path / "cam.MTS", tmp_path / "out.mkv")


def test_a_default_sound_track_not_first_is_named_for_mpeg_ts(tmp_path, caplog):
    with av.open(str(tmp_path / "two.mkv"), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        tracks = [container.add_stream("aac", rate=48000) for _ in range(2)]
        for track, language in zip(tracks, ("eng", "fra"), strict=True):
            track.layout, track.metadata["language"] = "stereo", language
        tracks[0].disposition = av.stream.Disposition(0)
        tracks[1].disposition = av.stream.Disposition.default
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 50 * i, np.uint8),
                                               "rgb24")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode())
        for track in tracks:
            for i in range(5):
                samples = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32),
                                                     format="fltp", layout="stereo")
                samples.sample_rate, samples.pts = 48000, 1024 * i
                container.mux(track.encode(samples))
            container.mux(track.encode())
    with caplog.at_level("WARNING"):
        transcode(tmp_path / "two.mkv", tmp_path / "out.ts")
        transcode(tmp_path / "two.mkv", tmp_path / "out.mkv")
    said = [r.getMessage() for r in caplog.records if "default" in r.getMessage()]
    assert said == ["the input's default audio track (fra) is not marked so in MPEG-TS, which "
                    "has no such mark: players start with the first; .mkv, .mp4 and .mov "
                    "keep the mark"]

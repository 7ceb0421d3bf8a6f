"""Small deterministic synthetic clips and images for tests and the bundled demo.

The scene is a camera pan over a high-frequency texture (2x2-pixel random blocks over a soft
colour gradient) with a striped disk moving faster than the background. Frames listed in
``blurry`` are the average of the scene over a stretch of the motion (a temporal box filter,
i.e. real motion blur), so their variance-of-Laplacian is far below the sharp frames'.

The clip is encoded with plain PyAV here, independently of :mod:`refdeblur_video.video.writer`,
so the writer's tests compare against files it did not produce itself. (The training
material's blur is synthesised elsewhere, on real frames: :mod:`refdeblur_video.data.shake`.)
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

__all__ = ["add_tone_stream", "make_clip", "make_demo_clip", "make_image", "render_frame",
           "render_frames", "vfr_pts", "write_tone"]

_PAN_PX = 2  # background pan per frame, pixels
_OBJ_PX = 3  # object speed per frame, pixels
_BLUR_SAMPLES = 13  # sub-positions averaged for a blurry frame
_BLUR_SPAN = 4.0  # frames of motion covered by a blurry frame's "exposure"

_DEFAULT_CODEC = {".webm": "libvpx-vp9", ".mkv": "libx264", ".mp4": "libx264", ".mov": "libx264"}
_AUDIO_CODEC = {".webm": "libopus"}
_AUDIO_RATE = 48000


def _texture(width: int, height: int, seed: int) -> np.ndarray:
    """A float32 RGB texture in [0, 1] big enough for the whole pan."""
    rng = np.random.default_rng(seed)
    # drawn column by column, so a wider texture starts with the same columns
    coarse = rng.random(((width + 1) // 2, (height + 1) // 2, 3), dtype=np.float32)
    coarse = coarse.transpose(1, 0, 2)
    blocks = np.kron(coarse, np.ones((2, 2, 1), np.float32))[:height, :width]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    gradient = np.stack(
        [0.5 + 0.5 * np.sin(xx / 37.0), yy / max(height - 1, 1), 0.5 + 0.5 * np.sin(xx / 23.0)],
        axis=-1,
    )
    return 0.65 * blocks + 0.35 * gradient


class _Scene:
    def __init__(self, width: int, height: int, n_frames: int, seed: int) -> None:
        self.width, self.height = width, height
        self.margin = int(_BLUR_SPAN * _PAN_PX) + 2
        span = width + _PAN_PX * (n_frames + 1) + 2 * self.margin
        self.texture = _texture(span, height, seed)
        self.radius = max(4, min(width, height) // 5)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        self.yy, self.xx = yy, xx

    def render(self, t: float) -> np.ndarray:
        """Float32 RGB frame at (possibly fractional) time ``t`` in frames."""
        x0 = self.margin + int(round(t * _PAN_PX))
        img = self.texture[:, x0 : x0 + self.width].copy()
        cx = (self.width * 0.2 + t * _OBJ_PX) % (self.width + 2 * self.radius) - self.radius
        cy = self.height / 2.0
        inside = (self.xx - cx) ** 2 + (self.yy - cy) ** 2 <= self.radius**2
        stripes = ((self.xx - cx) // 2 % 2).astype(np.float32)
        disk = np.stack([stripes, 0.2 + 0.6 * stripes, 1.0 - stripes], axis=-1)
        img[inside] = disk[inside]
        return img


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def render_frame(
    index: int,
    size: tuple[int, int] = (96, 64),
    *,
    blurry: bool = False,
    seed: int = 0,
) -> np.ndarray:
    """Frame ``index`` (``H x W x 3`` uint8 RGB) of the synthetic scene, sharp or blurred.

    Equals ``make_clip(..., size=size, seed=seed)``'s frame ``index`` before encoding, so
    ``render_frame(i, size, seed=s)`` is the sharp ground truth of a blurry clip frame.
    """
    scene = _Scene(size[0], size[1], index + 1, seed)
    return _render(scene, index, blurry)


def _render(scene: _Scene, index: int, blurry: bool) -> np.ndarray:
    if blurry:
        times = np.linspace(index - _BLUR_SPAN / 2, index + _BLUR_SPAN / 2, _BLUR_SAMPLES)
        img = np.mean([scene.render(float(t)) for t in times], axis=0)
    else:
        img = scene.render(float(index))
    return _to_uint8(img)


def render_frames(
    size: tuple[int, int], n_frames: int, blurry: Iterable[int] = (), seed: int = 0,
    cut_at: int | None = None,
) -> list[np.ndarray]:
    """The frames :func:`make_clip` encodes (same arguments), as ``H x W x 3`` uint8 RGB."""
    if cut_at is not None and not 0 < cut_at < n_frames:
        raise ValueError(f"cut_at must be in 1..{n_frames - 1}, got {cut_at}")
    scene = _Scene(size[0], size[1], n_frames, seed)
    blurry = set(blurry)
    frames = [_render(scene, i, i in blurry) for i in range(n_frames if cut_at is None else cut_at)]
    if cut_at is not None:  # another shot: the next seed's scene, in negative so that it
        # differs at every scale (the layout of each scene is the same)
        shot = _Scene(size[0], size[1], n_frames, seed + 1)
        frames += [255 - _render(shot, i, i in blurry) for i in range(cut_at, n_frames)]
    return frames


def vfr_pts(n_frames: int, fps: float, seed: int = 0) -> tuple[list[int], Fraction]:
    """Strictly increasing, irregular pts (milliseconds) averaging roughly ``fps``."""
    rng = np.random.default_rng(seed + 1)
    base = 1000.0 / fps
    steps = np.maximum(1, np.rint(base * rng.choice([0.5, 1.0, 1.0, 2.0], size=n_frames)))
    pts = np.concatenate([[0], np.cumsum(steps[:-1])]).astype(int)
    return [int(p) for p in pts], Fraction(1, 1000)


def _default_pix_fmt(codec: av.Codec) -> str:
    names = [f.name for f in codec.video_formats or []]
    for cand in ("yuv420p", "bgr0", "gbrp", "rgb24", "yuv444p"):
        if cand in names:
            return cand
    if not names:
        raise ValueError(f"codec {codec.name} lists no pixel formats")
    return names[0]


def make_clip(
    path: str | os.PathLike,
    n_frames: int = 12,
    size: tuple[int, int] = (96, 64),
    fps: int | Fraction = 25,
    blurry: Iterable[int] = (),
    vfr: bool = False,
    audio: bool = False,
    rotation: int = 0,
    codec: str | None = None,
    pix_fmt: str | None = None,
    seed: int = 0,
    *,
    cut_at: int | None = None,
    subtitles: bool = False,
    color: dict[str, int] | None = None,
    container_format: str | None = None,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> list[np.ndarray]:
    """Write a synthetic clip and return the RGB uint8 frames that were encoded.

    ``size`` is ``(width, height)``. ``blurry`` lists frame indices rendered with strong motion
    blur; ``cut_at`` starts another shot (``seed + 1``'s scene in negative) at that frame.
    ``vfr=True`` gives irregular pts in a 1/1000 time base; otherwise pts are
    ``0, 1, 2, ...`` in ``1/fps`` (the muxer may rescale, e.g. MP4 to 1/12800).
    ``rotation`` (degrees counter-clockwise) is stored as a display matrix. ``color`` may set
    ``color_range``, ``color_primaries``, ``color_trc`` and ``colorspace`` (FFmpeg enum ints);
    they tag the stream and steer the RGB->YUV matrix. ``audio`` adds a 48 kHz stereo tone
    (AAC, or Opus in WebM) as long as the video; ``subtitles`` adds two text cues (.mkv and
    .webm only). ``options`` are encoder options (default x264 ``ultrafast``, CRF 18),
    ``container_options`` muxer options (e.g. ``{"movflags": "faststart"}``).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    codec_name = codec or _DEFAULT_CODEC.get(suffix, "libx264")
    pix_fmt = pix_fmt or _default_pix_fmt(av.Codec(codec_name, "w"))
    fps = Fraction(fps).limit_denominator(1001 * 1000)
    frames = render_frames(size, n_frames, blurry, seed, cut_at)
    if vfr:
        pts_list, time_base = vfr_pts(n_frames, float(fps), seed)
    else:
        pts_list, time_base = list(range(n_frames)), 1 / fps
    color = dict(color or {})

    with av.open(str(path), "w", format=container_format, options=container_options or {}) as out:
        video = _add_video_stream(out, codec_name, size, fps, pix_fmt, time_base, color,
                                  rotation, options)
        tone = add_tone_stream(out, suffix) if audio else None
        cues = _add_subtitle_stream(out, suffix) if subtitles else None
        _encode_video(out, video, frames, pts_list, time_base, pix_fmt, color)
        if tone is not None:
            write_tone(out, tone, float(pts_list[-1] * time_base + 1 / fps), seed)
        if cues is not None:
            _write_subtitles(out, cues, float(pts_list[-1] * time_base + 1 / fps), suffix)
    return frames


def _add_video_stream(out: av.container.OutputContainer, codec_name: str,
                      size: tuple[int, int], fps: Fraction, pix_fmt: str, time_base,
                      color: dict[str, int], rotation: int, options: dict[str, str] | None):
    """The video stream: size, timing, encoder options (fast defaults per codec), colour tags
    and display rotation."""
    stream = out.add_stream(codec_name, rate=fps)
    stream.width, stream.height = size
    stream.pix_fmt = pix_fmt
    stream.time_base = time_base
    stream.codec_context.time_base = time_base
    opts = {"preset": "ultrafast", "crf": "18"} if codec_name.startswith("libx26") else {}
    if codec_name == "libx265":
        opts["x265-params"] = "log-level=error"  # its statistics are not the caller's business
    if codec_name == "libvpx-vp9":
        opts = {"deadline": "realtime", "cpu-used": "8", "crf": "30", "b": "0"}
    opts.update(options or {})
    stream.codec_context.options = opts
    for key, value in color.items():
        setattr(stream.codec_context, key, value)
    if rotation:
        stream.set_display_rotation(rotation)
    return stream


def _encode_video(out: av.container.OutputContainer, stream, frames: list[np.ndarray],
                  pts_list: list[int], time_base, pix_fmt: str, color: dict[str, int]) -> None:
    """Encode the RGB ``frames`` at ``pts_list``, converted with the tagged colour matrix and
    range."""
    src_cs = color.get("colorspace")
    src_range = color.get("color_range")
    for img, pts in zip(frames, pts_list, strict=True):
        vf = av.VideoFrame.from_ndarray(img, format="rgb24")
        vf = vf.reformat(format=pix_fmt, dst_colorspace=src_cs, dst_color_range=src_range)
        for key, value in color.items():
            setattr(vf, key, value)
        vf.pts = pts
        vf.time_base = time_base
        out.mux(stream.encode(vf))
    out.mux(stream.encode(None))


def add_tone_stream(out: av.container.OutputContainer, suffix: str):
    """A 48 kHz stereo audio stream in ``out``, in the codec its container (``suffix``) takes."""
    stream = out.add_stream(_AUDIO_CODEC.get(suffix, "aac"), rate=_AUDIO_RATE)
    stream.layout = "stereo"
    return stream


def write_tone(out: av.container.OutputContainer, stream, seconds: float, seed: int) -> None:
    """``seconds`` of a 440 Hz tone with a little noise into ``stream``, flushed."""
    rng = np.random.default_rng(seed + 2)
    n = int(round(seconds * _AUDIO_RATE))
    t = np.arange(n, dtype=np.float32) / _AUDIO_RATE
    mono = 0.3 * np.sin(2 * np.pi * 440.0 * t) + 0.02 * rng.standard_normal(n).astype(np.float32)
    samples = np.stack([mono, np.roll(mono, 7)]).astype(np.float32)
    chunk = 1024
    for start in range(0, n, chunk):
        part = np.ascontiguousarray(samples[:, start : start + chunk])
        af = av.AudioFrame.from_ndarray(part, format="fltp", layout="stereo")
        af.sample_rate = _AUDIO_RATE
        af.pts = start
        af.time_base = Fraction(1, _AUDIO_RATE)
        out.mux(stream.encode(af))
    out.mux(stream.encode(None))


def _add_subtitle_stream(out, suffix: str):
    if suffix not in (".mkv", ".webm"):
        raise ValueError("synthetic subtitles are only available in .mkv and .webm")
    with tempfile.TemporaryDirectory() as tmp:
        name = "t.vtt" if suffix == ".webm" else "t.srt"
        header = "WEBVTT\n\n" if suffix == ".webm" else "1\n"
        stamp = (
            "00:00:00.000 --> 00:00:01.000"
            if suffix == ".webm"
            else ("00:00:00,000 --> 00:00:01,000")
        )
        Path(tmp, name).write_text(f"{header}{stamp}\nx\n")
        with av.open(str(Path(tmp, name))) as src:
            return out.add_stream_from_template(src.streams[0])


def _write_subtitles(out, stream, seconds: float, suffix: str) -> None:
    """Copy two cues from a temporary SRT/WebVTT file (FFmpeg's text subtitle *encoders*
    need an ASS header PyAV cannot set, but demuxed packets can be muxed directly)."""
    half = seconds / 2

    def stamp(t: float, sep: str) -> str:
        ms = int(round(t * 1000))
        return f"00:{ms // 60000:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"

    sep = "." if suffix == ".webm" else ","
    cues = [(0.0, half, "first cue"), (half, seconds, "second cue")]
    body = "".join(
        f"{i + 1}\n{stamp(a, sep)} --> {stamp(b, sep)}\n{text}\n\n"
        for i, (a, b, text) in enumerate(cues)
    )
    with tempfile.TemporaryDirectory() as tmp:
        if suffix == ".webm":
            sub_path = Path(tmp, "cues.vtt")
            sub_path.write_text("WEBVTT\n\n" + re.sub(r"^\d+\n", "", body, flags=re.M))
        else:
            sub_path = Path(tmp, "cues.srt")
            sub_path.write_text(body)
        with av.open(str(sub_path)) as src:
            for pkt in src.demux(src.streams[0]):
                if pkt.dts is None:
                    continue
                pkt.stream = stream
                out.mux(pkt)


def make_demo_clip(path: str | os.PathLike, seed: int = 0) -> list[np.ndarray]:
    """The bundled demo sample: 320x180, 48 frames at 25 fps, every third frame blurry, audio."""
    return make_clip(
        path,
        n_frames=48,
        size=(320, 180),
        fps=25,
        blurry=set(range(1, 48, 3)),
        audio=True,
        seed=seed,
    )


def make_image(
    path: str | os.PathLike | None = None,
    size: tuple[int, int] = (96, 64),
    *,
    blurry: bool = False,
    index: int = 0,
    seed: int = 0,
) -> np.ndarray:
    """A still of the synthetic scene (uint8 RGB); written with OpenCV when ``path`` is given."""
    img = render_frame(index, size, blurry=blurry, seed=seed)
    if path is not None:
        import cv2

        if not cv2.imwrite(str(path), np.ascontiguousarray(img[..., ::-1])):
            raise OSError(f"could not write image {path}")
    return img


def main(argv: list[str] | None = None) -> int:
    """``python -m refdeblur_video.video.synthetic OUT.mp4``: write the demo sample clip."""
    import argparse

    parser = argparse.ArgumentParser(description="Write the synthetic demo sample clip.")
    parser.add_argument("output", help="where to write the clip (.mp4, .mkv, ...)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    make_demo_clip(args.output, seed=args.seed)
    print(f"wrote {args.output}: 48 frames 320x180 at 25 fps, every third frame blurred, audio")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

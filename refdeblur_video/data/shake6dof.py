"""The ``rs6dof`` blur generator: a hand-held rolling-shutter camera filming a planar scene.

Written separately from the training blur (:mod:`refdeblur_video.data.shake`) and never used
for training, so that validation on it measures how far the network generalises. The model:

**Camera.** A pinhole with square pixels, principal point at the image centre and focal
length ``f = (W / 2) / tan(fov / 2)`` from a horizontal field of view (55-75 degrees).
Axes: x right, y down, z forward (OpenCV). The scene is a plane fronto-parallel to the camera
at the middle of each frame, at ``depth_m`` (1-8 m): every pose maps to a homography
``H = K (R + t n^T / d) K^-1`` between two views, with ``R, t`` the relative rotation and
translation, ``n`` the plane's normal and ``d`` its distance, both in the first view.

**Shake.** A 6-DoF trajectory (camera-to-world rotation ``R = Ry(yaw) Rx(pitch) Rz(roll)``
and camera centre) sampled at ``rate_hz`` (1-2 kHz), each degree of freedom a sum of
band-limited Gaussian processes: hand tremor (energy in 5-15 Hz) and drift (0.2-2 Hz), each
scaled to an RMS speed drawn per axis, log-uniform (rotation 3-20 and 5-60 deg/s: tremor of
about 0.05-0.3 degrees, drift of a few degrees at about 1 Hz, as in casual hand-held filming;
roll alike, so a long exposure can turn by a few degrees about the optical axis;
translation 5-30 mm/s and 1-15 cm/s). A share of clips (``walk_probability``) also walks:
forward speed 0.4-1.4 m/s (a zoom-like blur), a vertical bob and a pitch nod at the step rate
(1.6-2.2 Hz), a lateral sway and a roll at half of it.

**Exposure and rolling shutter.** Row ``r`` of frame ``k`` integrates light over
``[k / fps + r / H * readout, ... + exposure]``; ``readout`` (10-30 ms) is the time between
the first and the last row starting. Exposures are chosen per frame by the caller (e.g.
1/200-1/15 s for blurry frames, shorter for sharp neighbours). The ground truth of a frame is
what the same camera records with zero exposure: row ``r`` at the middle of its window. So
each row's blur is the motion *relative to its own mid-exposure pose*, which differs from row
to row (the rolling shutter makes the blur vary down the frame), and a zero exposure returns
the source exactly (a real frame already carries its own rolling-shutter skew, so none is
added). Rows read out within one trajectory sample share one window (bands). Light is
integrated in linear light: sRGB is decoded, the views are averaged, the sum is encoded again.

**Sensor.** Shot noise (Poisson, ``photons_at_white`` electrons for a white pixel: 1,000 to
8,000, drawn per clip, since auto exposure gives bright scenes short exposures and dim ones
gain) plus Gaussian read noise (1-5 electrons), independent per channel.

**Codec.** The clip is encoded with libx264 (CRF 20-28, yuv420p, preset medium) through PyAV
and decoded back, as a phone would store it.

**Limits.** One plane (no parallax between near and far objects); only the camera moves
during the exposure (people in a video frame are not blurred by their own motion); no lens
blur, demosaicing or in-camera denoising.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import cv2
import numpy as np

from refdeblur_video.errors import UserError


@dataclass(frozen=True)
class Rs6DofSettings:
    """Ranges the camera's parameters are drawn from (uniform, or log-uniform where noted)."""

    fov_deg: tuple[float, float] = (55.0, 75.0)
    rate_hz: tuple[float, float] = (1000.0, 2000.0)
    readout_s: tuple[float, float] = (0.010, 0.030)
    depth_m: tuple[float, float] = (1.0, 8.0)  # log-uniform
    tremor_hz: tuple[float, float] = (5.0, 15.0)
    drift_hz: tuple[float, float] = (0.2, 2.0)
    # RMS speeds, log-uniform, drawn per axis
    tremor_deg_s: tuple[float, float] = (3.0, 20.0)
    drift_deg_s: tuple[float, float] = (5.0, 60.0)
    roll_tremor_deg_s: tuple[float, float] = (3.0, 20.0)
    roll_drift_deg_s: tuple[float, float] = (5.0, 60.0)
    tremor_m_s: tuple[float, float] = (0.005, 0.03)
    drift_m_s: tuple[float, float] = (0.01, 0.15)
    walk_probability: float = 0.35
    walk_step_hz: tuple[float, float] = (1.6, 2.2)
    walk_speed_m_s: tuple[float, float] = (0.4, 1.4)
    walk_bob_m: tuple[float, float] = (0.01, 0.03)
    walk_sway_m: tuple[float, float] = (0.01, 0.03)
    walk_pitch_deg: tuple[float, float] = (0.3, 1.5)
    walk_roll_deg: tuple[float, float] = (0.5, 2.0)
    photons_at_white: tuple[float, float] = (1000.0, 8000.0)  # log-uniform
    read_noise_e: tuple[float, float] = (1.0, 5.0)
    crf: tuple[int, int] = (20, 28)


DEFAULT_SETTINGS = Rs6DofSettings()


@dataclass(frozen=True)
class Camera:
    """One clip's camera: optics, timing, scene depth, sensor and codec."""

    fov_deg: float
    fps: float
    rate_hz: float
    readout_s: float
    depth_m: float
    photons_at_white: float
    read_noise_e: float
    crf: int
    walking: bool = False

    def intrinsics(self, width: int, height: int) -> np.ndarray:
        """``K`` for an image of ``width x height`` pixels (pixel centres at integers)."""
        f = (width / 2) / math.tan(math.radians(self.fov_deg) / 2)
        return np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]])


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(math.exp(rng.uniform(math.log(bounds[0]), math.log(bounds[1]))))


def draw_camera(
    rng: np.random.Generator, fps: float = 30.0, settings: Rs6DofSettings = DEFAULT_SETTINGS
) -> Camera:
    """A camera with every parameter drawn from ``settings``."""
    return Camera(
        fov_deg=float(rng.uniform(*settings.fov_deg)),
        fps=float(fps),
        rate_hz=float(rng.uniform(*settings.rate_hz)),
        readout_s=float(rng.uniform(*settings.readout_s)),
        depth_m=_log_uniform(rng, settings.depth_m),
        photons_at_white=_log_uniform(rng, settings.photons_at_white),
        read_noise_e=float(rng.uniform(*settings.read_noise_e)),
        crf=int(rng.integers(settings.crf[0], settings.crf[1] + 1)),
        walking=bool(rng.random() < settings.walk_probability),
    )


# --- trajectory -------------------------------------------------------------------------


@dataclass(frozen=True)
class Trajectory:
    """Camera poses sampled every ``1 / rate_hz`` s from time 0: ``angles`` (N x 3: pitch
    about x, yaw about y, roll about z, radians) and ``centres`` (N x 3, metres)."""

    rate_hz: float
    angles: np.ndarray
    centres: np.ndarray

    @property
    def duration_s(self) -> float:
        return (len(self.angles) - 1) / self.rate_hz

    def at(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rotations (M x 3 x 3, camera to world) and centres (M x 3) at ``times``, linearly
        interpolated between samples."""
        times = np.atleast_1d(np.asarray(times, dtype=np.float64))
        grid = np.arange(len(self.angles)) / self.rate_hz
        angles = np.stack([np.interp(times, grid, self.angles[:, i]) for i in range(3)], 1)
        centres = np.stack([np.interp(times, grid, self.centres[:, i]) for i in range(3)], 1)
        return rotations(angles), centres


def rotations(angles: np.ndarray) -> np.ndarray:
    """``Ry(yaw) @ Rx(pitch) @ Rz(roll)`` for each row ``(pitch, yaw, roll)`` of ``angles``."""
    angles = np.atleast_2d(angles)
    cx, cy, cz = np.cos(angles).T
    sx, sy, sz = np.sin(angles).T
    one, zero = np.ones_like(cx), np.zeros_like(cx)

    def stack(rows):
        return np.stack([np.stack(r, -1) for r in rows], -2)

    rx = stack([(one, zero, zero), (zero, cx, -sx), (zero, sx, cx)])
    ry = stack([(cy, zero, sy), (zero, one, zero), (-sy, zero, cy)])
    rz = stack([(cz, -sz, zero), (sz, cz, zero), (zero, zero, one)])
    return ry @ rx @ rz


def band_process(
    rng: np.random.Generator, n: int, rate_hz: float, band_hz: tuple[float, float]
) -> np.ndarray:
    """``n`` samples of a Gaussian process with its energy in ``band_hz``, scaled to an RMS
    speed (first difference times the rate) of 1 per second.

    The process is drawn over at least four periods of the band's lowest frequency (the
    spectrum needs that resolution) and a random stretch of ``n`` samples is kept.
    """
    low, high = band_hz
    length = max(n, math.ceil(4 * rate_hz / low))
    spectrum = np.fft.rfft(rng.standard_normal(length))
    frequencies = np.fft.rfftfreq(length, 1 / rate_hz)
    spectrum[(frequencies < low) | (frequencies > high)] = 0
    signal = np.fft.irfft(spectrum, length)
    speed = math.sqrt(float(np.mean(np.diff(signal) ** 2))) * rate_hz
    start = int(rng.integers(0, length - n + 1))
    return signal[start:start + n] / max(speed, 1e-12)


def sample_trajectory(
    rng: np.random.Generator,
    camera: Camera,
    duration_s: float,
    settings: Rs6DofSettings = DEFAULT_SETTINGS,
) -> Trajectory:
    """A hand-held 6-DoF path of ``duration_s`` seconds at ``camera.rate_hz``."""
    rate = camera.rate_hz
    n = math.ceil(duration_s * rate) + 2
    t = np.arange(n) / rate
    angles = np.zeros((n, 3))
    centres = np.zeros((n, 3))
    for axis in range(3):
        is_roll = axis == 2
        tremor = settings.roll_tremor_deg_s if is_roll else settings.tremor_deg_s
        drift = settings.roll_drift_deg_s if is_roll else settings.drift_deg_s
        for band, speeds in ((settings.tremor_hz, tremor), (settings.drift_hz, drift)):
            speed = math.radians(_log_uniform(rng, speeds))
            angles[:, axis] += speed * band_process(rng, n, rate, band)
        for band, speeds in ((settings.tremor_hz, settings.tremor_m_s),
                             (settings.drift_hz, settings.drift_m_s)):
            centres[:, axis] += _log_uniform(rng, speeds) * band_process(rng, n, rate, band)
    if camera.walking:
        step = 2 * math.pi * rng.uniform(*settings.walk_step_hz) * t
        phases = rng.uniform(0, 2 * math.pi, 4)
        centres[:, 2] += rng.uniform(*settings.walk_speed_m_s) * t
        centres[:, 1] += rng.uniform(*settings.walk_bob_m) * np.sin(step + phases[0])
        centres[:, 0] += rng.uniform(*settings.walk_sway_m) * np.sin(step / 2 + phases[1])
        angles[:, 0] += math.radians(rng.uniform(*settings.walk_pitch_deg)) * np.sin(
            step + phases[2])
        angles[:, 2] += math.radians(rng.uniform(*settings.walk_roll_deg)) * np.sin(
            step / 2 + phases[3])
    return Trajectory(rate, angles, centres)


# --- views ------------------------------------------------------------------------------


def plane_homographies(
    K: np.ndarray,
    rotation_from: np.ndarray,
    centre_from: np.ndarray,
    rotations_to: np.ndarray,
    centres_to: np.ndarray,
    normal: np.ndarray,
    distance: float,
) -> np.ndarray:
    """Homographies (M x 3 x 3) taking pixels of the view ``from`` to the views ``to`` of the
    world plane ``normal . X = distance`` (poses: camera-to-world rotation and centre)."""
    r_rel = np.swapaxes(rotations_to, 1, 2) @ rotation_from  # X_to = R_rel X_from + t_rel
    t_rel = np.einsum("mji,mj->mi", rotations_to, centre_from[None] - centres_to)
    n_from = rotation_from.T @ normal
    d_from = distance - float(normal @ centre_from)
    if d_from <= 0:
        raise UserError("the scene plane must lie in front of the camera")
    middle = r_rel + t_rel[:, :, None] * n_from[None, None, :] / d_from
    return K @ middle @ np.linalg.inv(K)


def window_weights(
    start_s: float, exposure_s: float, rate_hz: float
) -> tuple[np.ndarray, np.ndarray]:
    """Trajectory sample times in an exposure window and their weights (each sample stands
    for the ``1 / rate_hz`` around it; weights are the overlaps, summing to 1). A zero
    exposure is the single instant ``start_s``."""
    if exposure_s <= 0:
        return np.array([start_s]), np.array([1.0])
    dt = 1 / rate_hz
    first = math.floor(start_s * rate_hz)
    last = math.ceil((start_s + exposure_s) * rate_hz)
    times = np.arange(first, last + 1) / rate_hz
    overlap = (np.minimum(times + dt / 2, start_s + exposure_s)
               - np.maximum(times - dt / 2, start_s)).clip(0)
    keep = overlap > 0
    return times[keep], overlap[keep] / overlap[keep].sum()


def band_height(height: int, camera: Camera) -> int:
    """Rows read out within one trajectory sample (the whole frame without rolling shutter)."""
    if camera.readout_s <= 0:
        return height
    return max(1, min(height, math.ceil(height / (camera.readout_s * camera.rate_hz))))


# --- light --------------------------------------------------------------------------------

_DECODE = np.where(
    (np.arange(256) / 255) <= 0.04045,
    np.arange(256) / 255 / 12.92,
    ((np.arange(256) / 255 + 0.055) / 1.055) ** 2.4,
).astype(np.float32)


def srgb_to_linear(image: np.ndarray) -> np.ndarray:
    """8-bit sRGB to linear light in [0, 1] (float32)."""
    if image.dtype != np.uint8:
        raise UserError("the rs6dof generator takes 8-bit frames")
    return _DECODE[image]


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear light (clipped to [0, 1]) to 8-bit sRGB, rounded."""
    x = np.clip(linear, 0, 1).astype(np.float64)
    encoded = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.round(encoded * 255).astype(np.uint8)


def expose(
    source: np.ndarray,
    base: np.ndarray,
    size: tuple[int, int],
    camera: Camera,
    path: Trajectory,
    start_s: float,
    exposure_s: float,
) -> tuple[np.ndarray, dict]:
    """One frame in linear light (``size`` = height, width; float32) and its blur extent.

    ``source`` is linear light, ``base`` maps its pixels to the frame's zero-exposure view
    (identity, a crop's translation, or where a photo lies in the picture). The frame starts
    exposing its first row at ``start_s``. ``extent`` gives the longest image path of a row's
    left, centre or right pixel over its window, mean and max over bands (pixels).
    """
    height, width = size
    K = camera.intrinsics(width, height)
    rows = band_height(height, camera)
    # the scene plane: fronto-parallel to the camera in the middle of the frame
    centre_rotation, centre_position = path.at(
        start_s + camera.readout_s / 2 + exposure_s / 2)
    normal = centre_rotation[0][:, 2]
    distance = camera.depth_m + float(normal @ centre_position[0])
    frame = np.empty((height, width, 3), np.float32)
    extents = []
    for y0 in range(0, height, rows):
        y1 = min(height, y0 + rows)
        row_start = start_s + camera.readout_s * ((y0 + y1 - 1) / 2) / height
        times, weights = window_weights(row_start, exposure_s, camera.rate_hz)
        r_mid, c_mid = path.at(row_start + max(exposure_s, 0) / 2)
        r_to, c_to = path.at(times)
        homographies = plane_homographies(K, r_mid[0], c_mid[0], r_to, c_to, normal, distance)
        shift = np.array([[1.0, 0, 0], [0, 1, -y0], [0, 0, 1]])
        band = np.zeros((y1 - y0, width, 3), np.float32)
        for h, w in zip(homographies, weights, strict=True):
            band += np.float32(w) * cv2.warpPerspective(
                source, shift @ h @ base, (width, y1 - y0), flags=cv2.INTER_CUBIC,
                borderMode=cv2.BORDER_REFLECT101)
        frame[y0:y1] = band
        extents.append(_path_length(homographies, width, (y0 + y1 - 1) / 2))
    return frame, {"extent_mean_px": float(np.mean(extents)),
                   "extent_max_px": float(np.max(extents))}


def _path_length(homographies: np.ndarray, width: int, row: float) -> float:
    """Longest image path of the points (0, row), (width/2, row), (width-1, row)."""
    points = np.array([[0, row, 1], [width / 2, row, 1], [width - 1, row, 1]]).T
    mapped = homographies @ points  # M x 3 x 3
    xy = mapped[:, :2] / mapped[:, 2:]
    if len(xy) < 2:
        return 0.0
    return float(np.linalg.norm(np.diff(xy, axis=0), axis=1).sum(axis=0).max())


def sensor_noise(
    linear: np.ndarray, rng: np.random.Generator, photons_at_white: float, read_noise_e: float
) -> np.ndarray:
    """Shot noise (Poisson electrons) plus Gaussian read noise, back on the [0, 1] scale."""
    electrons = rng.poisson(np.clip(linear, 0, 1) * photons_at_white).astype(np.float32)
    electrons += rng.normal(0, read_noise_e, linear.shape).astype(np.float32)
    return electrons / np.float32(photons_at_white)


# --- codec ------------------------------------------------------------------------------


def h264_roundtrip(frames: Sequence[np.ndarray], crf: int, fps: float) -> tuple[list, bytes]:
    """Encode RGB uint8 frames (even sizes) with libx264 at ``crf`` into MP4 and decode them;
    returns the decoded frames and the file's bytes."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        # one thread: the same bytes on every machine
        stream.options = {"crf": str(crf), "preset": "medium", "threads": "1"}
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    data = buffer.getvalue()
    with av.open(io.BytesIO(data)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    if len(decoded) != len(frames):
        raise RuntimeError(f"H.264 round trip gave {len(decoded)} of {len(frames)} frames")
    return decoded, data


# --- clips ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipFrame:
    """One frame to film: its source image (RGB uint8), the map of source pixels to the
    frame's zero-exposure view, and its exposure time."""

    source: np.ndarray
    base: np.ndarray
    exposure_s: float


@dataclass
class RenderedClip:
    """What the camera delivered (``frames``), the zero-exposure ground truth (``truth``),
    the encoded clip (``video``, MP4; empty without compression), per-frame facts and the
    camera."""

    frames: list[np.ndarray]
    truth: list[np.ndarray]
    video: bytes
    meta: list[dict]
    camera: Camera
    path: Trajectory = field(repr=False)


def render_clip(
    clip: Sequence[ClipFrame],
    size: tuple[int, int],
    rng: np.random.Generator,
    *,
    fps: float = 30.0,
    settings: Rs6DofSettings = DEFAULT_SETTINGS,
    camera: Camera | None = None,
    path: Trajectory | None = None,
    noise: bool = True,
    compress: bool = True,
) -> RenderedClip:
    """Film ``clip`` (frame ``k`` starts exposing at ``k / fps``) with one continuous shake.

    ``camera`` and ``path`` are drawn from ``rng`` and ``settings`` unless given. ``size``
    is (height, width); with ``compress`` both must be even.
    """
    if not clip:
        raise UserError("a clip needs at least one frame")
    if any(frame.exposure_s < 0 or frame.exposure_s > 1 / fps for frame in clip):
        raise UserError(f"exposures must lie in [0, 1/fps] ({1 / fps:.4f} s)")
    camera = camera or draw_camera(rng, fps, settings)
    duration = (len(clip) - 1) / fps + camera.readout_s + max(f.exposure_s for f in clip)
    path = path or sample_trajectory(rng, camera, duration + 2 / camera.rate_hz, settings)
    delivered, truth, meta = [], [], []
    for k, item in enumerate(clip):
        linear = srgb_to_linear(item.source)
        start = k / fps
        image, extent = expose(linear, item.base, size, camera, path, start, item.exposure_s)
        sharp, _ = expose(linear, item.base, size, camera, path, start, 0.0)
        if noise:
            image = sensor_noise(image, rng, camera.photons_at_white, camera.read_noise_e)
        delivered.append(linear_to_srgb(image))
        truth.append(linear_to_srgb(sharp))
        meta.append({"frame": k, "exposure_s": item.exposure_s, **extent})
    video = b""
    if compress:
        delivered, video = h264_roundtrip(delivered, camera.crf, fps)
    return RenderedClip(delivered, truth, video, meta, camera, path)


def crop_base(margin_x: int, margin_y: int) -> np.ndarray:
    """The base map of a centred crop: source pixel ``(x, y)`` -> ``(x - mx, y - my)``."""
    return np.array([[1.0, 0, -margin_x], [0, 1, -margin_y], [0, 0, 1]])


def photo_bases(
    photo_shape: tuple[int, int],
    size: tuple[int, int],
    n_frames: int,
    rng: np.random.Generator,
    camera: Camera,
    *,
    pan_px: tuple[float, float] = (3.0, 12.0),
    roll_deg: float = 0.15,
    zoom: float = 0.004,
) -> list[np.ndarray]:
    """Base maps of ``n_frames`` views of a photo lying on the scene plane, filmed by a camera
    panning slowly across it (``pan_px`` pixels per frame at the image centre, up to
    ``roll_deg`` of roll and ``zoom`` of forward motion per frame, relative to the depth).

    The photo (``photo_shape`` = height, width) is centred on the middle frame at its own
    pixel scale: resize it first (:func:`fit_photo`) so it covers more than the frame.
    """
    height, width = size
    K = camera.intrinsics(width, height)
    f = K[0, 0]
    direction = rng.uniform(0, 2 * math.pi)
    speed = rng.uniform(*pan_px) / f  # radians per frame
    per_frame = np.array([speed * math.sin(direction), speed * math.cos(direction),
                          math.radians(rng.uniform(-roll_deg, roll_deg))])
    forward = rng.uniform(-zoom, zoom) * camera.depth_m
    steps = np.arange(n_frames) - (n_frames - 1) / 2
    rot = rotations(steps[:, None] * per_frame[None])
    centres = np.zeros((n_frames, 3))
    centres[:, 2] = steps * forward
    centre = np.array([[1.0, 0, (width - photo_shape[1]) / 2],
                       [0, 1, (height - photo_shape[0]) / 2], [0, 0, 1]])
    views = plane_homographies(K, np.eye(3), np.zeros(3), rot, centres,
                               np.array([0.0, 0, 1]), camera.depth_m)
    return [h @ centre for h in views]


def fit_photo(photo: np.ndarray, size: tuple[int, int], cover: float = 1.4) -> np.ndarray:
    """The photo resized (area interpolation when shrinking) so the frame (``size`` = height,
    width) covers ``1 / cover`` of it along the tighter side."""
    scale = cover * max(size[0] / photo.shape[0], size[1] / photo.shape[1])
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    shape = (round(photo.shape[1] * scale), round(photo.shape[0] * scale))
    return cv2.resize(photo, shape, interpolation=interpolation)

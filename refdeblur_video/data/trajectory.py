"""Random-trajectory blur kernels: a training generator of irregular shake.

The camera-shake generator (:mod:`refdeblur_video.data.shake`) moves along smooth curves, so
its kernels are smooth arcs. Real hand-held blur is often jagged: the sensor jitters, stops
and turns sharply within one exposure. This generator follows the random-trajectory model of
Boracchi and Foi ("Modeling the performance of image restoration from motion blur", IEEE TIP
2012): a particle whose velocity keeps a constant speed while it receives Gaussian kicks, a
pull back towards its start and, now and then, an abrupt reversal ("anxiety" scales all of
it). A random share of the trajectory is the exposure; it is splatted onto a pixel grid and
centred on its centroid, so the sharp target is the mean camera position.

To let the blur vary across the picture as rotation and rolling shutter make it vary, a
sample may blend two kernels through a linear ramp across the region it blurs (a crop sees
part of that ramp; :func:`trajectory_blur`).
"""

from __future__ import annotations

import cv2
import numpy as np

from refdeblur_video.data.shake import from_linear, to_linear

SAMPLES = 1000  # points along a trajectory
ANXIETY = (1e-4, 0.03)


def sample_trajectory(length: float, rng: np.random.Generator, anxiety: float | None = None,
                      samples: int = SAMPLES) -> np.ndarray:
    """Points (``samples`` x 2, x/y in pixels) of a random trajectory ``length`` pixels
    long; ``anxiety`` sets how erratic it is: drawn log-uniform in :data:`ANXIETY` when
    None, from nearly straight (1e-4) to a tangle about a sixth as wide as it is long (0.03)."""
    if anxiety is None:
        anxiety = float(np.exp(rng.uniform(*np.log(ANXIETY))))
    step = length / (samples - 1)
    pull = 0.7 * rng.uniform()  # towards the start
    kick = 10.0 * rng.uniform()  # Gaussian kicks
    jolts = 0.2 * rng.uniform()  # chance per sample of an abrupt reversal, times anxiety
    angle = rng.uniform(0, 2 * np.pi)
    velocity = complex(np.cos(angle), np.sin(angle)) * step
    position = 0j
    points = np.empty(samples, np.complex128)
    points[0] = position
    normals = rng.normal(size=(samples, 2))
    uniforms = rng.uniform(size=(samples, 2))
    for t in range(1, samples):
        jolt = 0j
        if uniforms[t, 0] < jolts * anxiety:
            jolt = 2 * velocity * np.exp(1j * (np.pi + (uniforms[t, 1] - 0.5)))
        change = jolt + anxiety * (kick * complex(*normals[t]) - pull * position) * step
        velocity += change
        speed = abs(velocity)
        velocity = velocity / speed * step if speed > 0 else velocity
        position += velocity
        points[t] = position
    return np.stack([points.real, points.imag], axis=1)


def kernel_from_points(points: np.ndarray) -> np.ndarray:
    """The points splatted bilinearly onto an odd square grid centred on their centroid
    (float32, sums to 1)."""
    centred = points - points.mean(axis=0)
    radius = int(np.ceil(np.abs(centred).max())) + 1
    size = 2 * radius + 1
    kernel = np.zeros((size, size), np.float64)
    coords = centred + radius
    base = np.floor(coords).astype(int)
    frac = coords - base
    for dy in (0, 1):
        for dx in (0, 1):
            weight = (frac[:, 0] if dx else 1 - frac[:, 0]) * (frac[:, 1] if dy else 1 - frac[:, 1])
            np.add.at(kernel, (base[:, 1] + dy, base[:, 0] + dx), weight)
    return (kernel / kernel.sum()).astype(np.float32)


def random_kernel(length: float, rng: np.random.Generator) -> np.ndarray:
    """A kernel of a random trajectory about ``length`` px long, of which a random share
    (1/4 to all of it) is exposed."""
    points = sample_trajectory(max(length, 1e-3), rng)
    exposed = int(np.ceil(rng.uniform(0.25, 1.0) * len(points)))
    first = int(rng.integers(0, len(points) - exposed + 1))
    return kernel_from_points(points[first : first + exposed])


def _ramp(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A linear 0..1 ramp across ``shape`` in a random direction (float32, H x W x 1)."""
    h, w = shape
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (xx - w / 2) * np.cos(angle) + (yy - h / 2) * np.sin(angle)
    span = max(float(t.max() - t.min()), 1e-6)
    return ((t - t.min()) / span)[..., None]


def trajectory_blur(region: np.ndarray, length: float, rng: np.random.Generator,
                    vary_prob: float = 0.5) -> np.ndarray:
    """``region`` (uint8 RGB) blurred, in linear light, by a random-trajectory kernel about
    ``length`` px long; with chance ``vary_prob`` two kernels are blended across it."""
    linear = to_linear(region)
    kernel = random_kernel(length, rng)
    blurred = cv2.filter2D(linear, -1, kernel, borderType=cv2.BORDER_REFLECT101)
    if rng.uniform() < vary_prob:
        other = random_kernel(length * float(rng.uniform(0.5, 1.5)), rng)
        second = cv2.filter2D(linear, -1, other, borderType=cv2.BORDER_REFLECT101)
        weight = _ramp(region.shape[:2], rng)
        blurred = blurred * (1 - weight) + second * weight
    return from_linear(blurred, region.dtype)

"""Training blur beyond camera shake: frame averaging, moving objects, defocus.

The network must deblur blur that its training code did not write, so training draws each
sample from several generators (see :class:`BlurMix`):

- ``shake``: the hand-held camera path of :mod:`refdeblur_video.data.shake`;
- ``average``: the mean, in linear light, of ``k`` consecutive real frames (GoPro-style); the
  middle frame is the sharp target, so real scene motion and real parallax are in the blur;
- ``object``: a patch of another image moves across the crop during the exposure (a moving
  object over a static or slightly shaken background), so the network also sees blur that
  differs from region to region;
- ``trajectory``: jagged random-trajectory kernels (:mod:`refdeblur_video.data.trajectory`),
  sometimes two blended across the crop, so the network does not learn only smooth paths.

On top of any of them, ``defocus`` mixes in a disk blur, and noise and JPEG compression are
drawn at random strengths.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from refdeblur_video.data.shake import CameraShake, from_linear, to_linear
from refdeblur_video.frames.sharpness import grey_thumbnail
from refdeblur_video.refine.transfer import PREALIGNERS


@dataclass(frozen=True)
class BlurMix:
    """Which generators draw a training sample, and the extras mixed in.

    ``generators``: relative weights of ``shake``, ``average``, ``object`` and
    ``trajectory``;
    ``average_frames``: (fewest, most) frames averaged (odd counts);
    ``object_travel``: (shortest, longest) travel of a moving object over the exposure, as a
    fraction of the crop side; ``trajectory_length``: (shortest, longest) random trajectory,
    pixels at 720p (log-uniform); ``defocus_prob`` / ``defocus_radius``: chance and largest
    radius (pixels) of an extra disk blur, which the network learns to remove;
    ``scene_defocus_prob`` / ``scene_defocus_radius``: chance and largest radius of a disk
    blur of the scene itself (target, blurry frame and reference alike: an out-of-focus
    background), which it learns to keep rather than sharpen; ``ref_degrade_prob``: chance
    that a real reference gets noise and JPEG of its own, drawn independently of the blurry
    frame's (in a video the reference comes from the same camera, so its detail carries
    noise and codec artefacts that the clean target does not); ``self_ref_prob``: chance
    that the sample has no reference (the blurry frame stands in for it, as in the pipeline
    when no sharper neighbour exists); ``aligned_ref_prob``: chance that the reference is
    pre-aligned onto the blurry frame by the reference transfer's flow
    (:func:`refdeblur_video.refine.transfer.flow_align`), computed on a region
    ``align_context`` pixels wider than the crop on each side, as far as the frame reaches
    (blur and reference rendered on all of it), so that the network learns what a
    pre-aligned reference holds where the flow fails; ``aligned_ref_by``: ``flow`` (the
    dense flow, as above) or ``homography`` (the homography fitted to it,
    :func:`~refdeblur_video.refine.transfer.homography_align`, as a model with ``prealign:
    homography`` gets it at inference); ``aligned_ref_jitter``: the largest displacement
    (pixels) of a smooth random warp given to each placed reference
    (:func:`jitter_placement`): a homography places a real camera's frame only up to its
    rolling shutter, lens and parallax, while the training blur's camera is exactly
    homographic, so a network trained on perfect placements copies misplaced detail as
    readily as placed detail (0: off); ``aligned_ref_gate``: place a drawn reference only
    where the pipeline's gate would (:func:`refdeblur_video.refine.prealign.placed_reference`,
    by the homography), else give it as it came, and mark each sample's ``in_place``, so that
    a model that searches unplaced references (``match_mode: local`` with ``prealign:
    homography``) trains on the mix of placed and searched references it gets at inference;
    ``aligned_ref_in_place``: mark ``in_place`` without the gate, so that such a model
    matches every placed reference in place (as at inference) and searches the others, in
    the shares ``aligned_ref_prob`` sets (the gate passes few training crops: their
    references move less than a whole frame's); ``textured_crop_prob``: chance that
    the crop is the most detailed of ``textured_candidates`` random positions (by
    :func:`detail_score` of the sharp frame) instead of one random position: flat sky and
    walls teach a deblurring network little, and dense fine texture (foliage, rock, water) is
    where it fails on footage it was not tuned on; ``shake_centre``: where the camera
    shake's target sits on its path (:class:`~refdeblur_video.data.shake.CameraShake`
    ``centre``: ``middle`` of the exposure, or ``centroid``, as the trajectory kernels have
    it), so that all generators can agree on one convention; ``response_prob`` /
    ``response_gamma``: chance that a sample's blur integrates light through a power-law
    camera response of a gamma drawn in (lowest, highest) instead of sRGB's curve
    (:func:`~refdeblur_video.data.shake.camera_response`; gamma 1 is blur averaged on the
    coded values, as when decoded frames are averaged), so that the network does not learn
    one response's brightening of blurred highlights as a constant.
    """

    generators: dict[str, float] = field(
        default_factory=lambda: {"shake": 0.6, "average": 0.25, "object": 0.15})
    average_frames: tuple[int, int] = (3, 11)
    object_travel: tuple[float, float] = (0.05, 0.4)
    trajectory_length: tuple[float, float] = (6.0, 96.0)
    defocus_prob: float = 0.15
    defocus_radius: float = 4.0
    scene_defocus_prob: float = 0.0
    scene_defocus_radius: float = 8.0
    self_ref_prob: float = 0.2
    ref_degrade_prob: float = 0.0
    aligned_ref_prob: float = 0.0
    align_context: int = 96
    aligned_ref_by: str = "flow"
    aligned_ref_gate: bool = False
    aligned_ref_in_place: bool = False
    aligned_ref_jitter: float = 0.0
    textured_crop_prob: float = 0.0
    textured_candidates: int = 4
    shake_centre: str = "middle"
    response_prob: float = 0.0
    response_gamma: tuple[float, float] = (1.0, 2.2)

    @property
    def marks_in_place(self) -> bool:
        """Whether every sample says if its reference was placed (the gate implies it)."""
        return self.aligned_ref_gate or self.aligned_ref_in_place

    def __post_init__(self) -> None:
        unknown = set(self.generators) - {"shake", "average", "object", "trajectory"}
        if unknown:
            raise ValueError(f"unknown blur generators: {', '.join(sorted(unknown))}")
        if sum(self.generators.values()) <= 0:
            raise ValueError("blur generator weights must not all be zero")
        CameraShake(centre=self.shake_centre)  # its own check of the convention's name
        if self.aligned_ref_by not in PREALIGNERS:
            raise ValueError(f"aligned_ref_by must be one of {', '.join(PREALIGNERS)}")
        if self.aligned_ref_gate and self.aligned_ref_by != "homography":
            raise ValueError("aligned_ref_gate places by the homography: set aligned_ref_by "
                             "to homography")
        if self.textured_candidates < 1:
            raise ValueError("textured_candidates must be at least 1")
        if not 0 <= self.response_prob <= 1:
            raise ValueError("response_prob must lie in 0..1")
        gamma = self.response_gamma
        if not (isinstance(gamma, tuple) and len(gamma) == 2
                and all(isinstance(g, int | float) for g in gamma) and 0 < gamma[0] <= gamma[1]):
            raise ValueError("response_gamma must be (lowest, highest) with 0 < lowest <= "
                             "highest")
        low, high = self.trajectory_length
        if not 0 < low <= high:
            raise ValueError("trajectory_length must be (shortest, longest) with 0 < shortest "
                             "<= longest")

    def draw_response(self, rng: np.random.Generator) -> float | None:
        """A sample's camera response gamma, or None for sRGB's curve (no draw at all when
        ``response_prob`` is 0, so that mixes without it keep their samples)."""
        if self.response_prob <= 0 or rng.random() >= self.response_prob:
            return None
        return float(rng.uniform(*self.response_gamma))

    def draw(self, rng: np.random.Generator) -> str:
        """One generator name, drawn by weight."""
        names = sorted(self.generators)
        weights = np.array([self.generators[n] for n in names], dtype=np.float64)
        return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def detail_score(image: np.ndarray) -> float:
    """How much fine detail an RGB uint8 image holds: the mean absolute Laplacian of its
    grey levels (0..255) at half resolution (the sharpness score's grey copy; cheap enough
    to rank a few crops per sample)."""
    half = grey_thumbnail(image, max(image.shape[:2]) // 2)
    return 255.0 * float(np.abs(cv2.Laplacian(half, cv2.CV_32F)).mean())


def average_window(index: int, length: int, frames: int) -> tuple[int, int]:
    """Inclusive range of ``frames`` consecutive indices centred on ``index`` as far as the
    sequence allows (shifted inward at its ends, shrunk when it is too short)."""
    frames = max(1, min(frames, length))
    first = min(max(0, index - frames // 2), length - frames)
    return first, first + frames - 1


def average_frames(frames: Sequence[np.ndarray], box: tuple[int, int, int, int]) -> np.ndarray:
    """Mean of the ``box`` (y, x, h, w) region of ``frames`` in linear light."""
    y, x, h, w = box
    total = np.zeros((h, w, 3), dtype=np.float64)
    for frame in frames:
        total += to_linear(frame[y : y + h, x : x + w])
    return from_linear(total / len(frames), frames[0].dtype)


def _blob_mask(size: int, rng: np.random.Generator) -> np.ndarray:
    """A soft random ellipse (float32 in [0, 1]) of a ``size`` x ``size`` patch."""
    mask = np.zeros((size, size), np.float32)
    axes = (int(rng.uniform(0.25, 0.48) * size), int(rng.uniform(0.25, 0.48) * size))
    angle = float(rng.uniform(0, 180))
    cv2.ellipse(mask, (size // 2, size // 2), axes, angle, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(mask, (0, 0), 1.0)


def moving_object(
    background: np.ndarray,
    patch: np.ndarray,
    rng: np.random.Generator,
    travel: tuple[float, float] = (0.05, 0.4),
    steps: int = 24,
) -> tuple[np.ndarray, np.ndarray]:
    """Blurry and sharp images of ``patch`` (a square object) moving over ``background``.

    The object's centre moves in a straight line through a random point of the crop during
    the exposure; the sharp image shows it at mid-exposure. Both images are formed in linear
    light; the background stays as given (blur it beforehand for a shaken camera).
    """
    h, w = background.shape[:2]
    size = patch.shape[0]
    mask = _blob_mask(size, rng)[..., None]
    length = float(rng.uniform(*travel)) * min(h, w)
    angle = float(rng.uniform(0, 2 * np.pi))
    direction = np.array([np.sin(angle), np.cos(angle)]) * length
    centre = np.array([rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w])
    back = to_linear(background)
    obj = to_linear(patch)

    def composite(t: float) -> np.ndarray:
        cy, cx = centre + (t - 0.5) * direction
        matrix = np.float32([[1, 0, cx - size / 2], [0, 1, cy - size / 2]])
        alpha = cv2.warpAffine(mask, matrix, (w, h), flags=cv2.INTER_LINEAR)[..., None]
        layer = cv2.warpAffine(obj, matrix, (w, h), flags=cv2.INTER_LINEAR)
        return back * (1 - alpha) + layer * alpha

    blurry = np.mean([composite(t) for t in np.linspace(0, 1, steps)], axis=0)
    return from_linear(blurry, background.dtype), from_linear(composite(0.5), background.dtype)


def jitter_placement(image: np.ndarray, amplitude: float, rng: np.random.Generator,
                     knots: int = 3) -> np.ndarray:
    """``image`` warped by a smooth random displacement field: each of ``knots`` x
    ``knots`` control points moves by up to ``amplitude`` pixels in x and y, and the field
    between them is their bicubic interpolation (a misplacement that varies across the
    frame, as rolling shutter and parallax leave it). Same shape and type as ``image``."""
    if amplitude <= 0:
        return image
    h, w = image.shape[:2]
    coarse = rng.uniform(-amplitude, amplitude, (knots, knots, 2)).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, xs + field[..., 0], ys + field[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)


def defocus(image: np.ndarray, radius: float) -> np.ndarray:
    """Disk (out-of-focus) blur of ``radius`` pixels, in linear light."""
    if radius < 0.5:
        return image
    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    kernel = np.clip(radius + 0.5 - np.hypot(yy, xx), 0, 1).astype(np.float32)
    kernel /= kernel.sum()
    linear = cv2.filter2D(to_linear(image), -1, kernel, borderType=cv2.BORDER_REFLECT101)
    return from_linear(linear, image.dtype)

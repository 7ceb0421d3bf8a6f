"""Flow-guided reference transfer: a classical step after the network.

The network's reference matching is local and coarse (1/4 resolution), so it borrows only part
of what a sharp neighbouring frame holds. This step aligns the reference to the network's
output by dense optical flow (OpenCV's DIS, computed both ways; by default through the
homography that best explains it, below) and copies the aligned reference into the output
wherever it is trustworthy. The confidence of a pixel is the
product of three terms:

- agreement: the low-passed difference between the aligned reference and the output is small
  (the output is right about the coarse content, the reference adds the fine detail);
- consistency: the alignment and the flows agree (no occlusion, no flow failure);
- sharpness: the aligned reference has at least as much fine detail as the output there (a
  blurry reference never makes the output blurrier).

The whole frame's confidence is then scaled by one more check: the aligned reference must
share the output's structure between a fine scale and the agreement's (``shared_structure``),
which another scene of fine texture, flat grey once low-passed, does not.

By default (``alignment="homography"``) the reference is not warped by the dense flow itself
but by the one homography that best explains it (RANSAC over a grid of its vectors): on a
blurry output the dense flow drifts by a pixel or more wherever blur hides the texture, and
a camera's motion between nearby frames is close to a homography, which the many flow
vectors pin down far better than any one of them. The homography's alignment goes through
the same three cues, its consistency the distance of the dense flow from the homography
with a looser extent (``homography_consistency_px``), so the scene that does not follow the
camera (a person walking, strong parallax) and a reference that does not match stay out as
before. ``alignment="flow"`` warps by the dense flow itself, checked against a backward flow
(the round trip); where no homography fits, so does the default. A prior homography (the
camera's motion between the sharp frames on both sides) places the reference instead where
it is near the fit, unless the output is sharp and shows the prior misplacing it.

The smoothing and consistency extents are given for a 720-pixel-high frame and scale with
the frame's short side; the flow's patch size and stride are pixels at any size.
It aligns once by default (a DIS patch of 96 pixels, which matches through blur, with a
stride of half the patch), at full resolution up to 1080 lines, and smooths the trust a
little before blending. More patch sizes (``patch_sizes``: small ones follow small motions)
align once each, and per pixel the most trusted alignment is kept, at a flow's cost each. A
model may ask for each to align a second time, on its output low-passed
(``align_smoothing_px``). What it gains and costs is measured in docs/RESULTS.md, and what
was tried before these settings is in docs/EXPERIMENTS.md.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from functools import cached_property

import cv2
import numpy as np

from ..image_files import to_float
from .global_shift import initial_flow
from .lowpass import DIRECT_UP_TO_PX, gaussian_low_pass
from .motion import homography_distance

# level_shift: the block size, the least share of the blocks that must agree, and luma
ANCHOR_BLOCK_PX = 8
MIN_ANCHOR_SHARE = 0.25
# OpenCV's RGB -> grey, as torch_ops.GREY_WEIGHTS (that module loads PyTorch)
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class TransferSettings:
    """Parameters of :func:`transfer_reference` (tuned on training clips, not on validation)."""

    smoothing_px: float = 8.0  # Gaussian sigma of the agreement low-pass, at 720p
    tolerance: float = 16.0 / 255.0  # low-passed difference at which agreement falls to 1/e
    consistency_px: float = 1.4  # forward-backward flow error at which it falls to 1/e, at 720p
    sharpness_margin: float = 0.25  # full trust when reference detail >= output detail; none
    # when it is below (1 - margin) times the output's
    # one flow per DIS patch size (pixels; large patches match through blur, small ones follow
    # small motions); per pixel the most trusted one wins. One large patch keeps nearly all
    # that three sizes gave, at a fraction of their cost (docs/EXPERIMENTS.md)
    patch_sizes: tuple[int, ...] = (96,)
    # DIS patch stride of the forward flows, as a share of the patch: the number of patches
    # DIS fits (its cost) falls with the square of the stride; half the patch aligns as well
    # as a quarter
    forward_stride: float = 0.5
    # DIS variational refinement iterations per scale of the forward flows: at 720p most of
    # a forward flow's time, but without it small frames align too coarsely to transfer
    # (docs/TRAINING.md, session 27)
    refinement_iterations: int = 5
    # the backward flow only serves the consistency check: half resolution (DIS finest
    # scale 1) and a stride of half the patch are as good
    backward_stride: float = 0.5
    backward_refinement_iterations: int = 5
    # 0: each alignment checks its consistency against a backward flow of its own patch
    # size; else one backward flow with this patch size serves every alignment
    backward_patch: int = 0
    reference_height: int = 720
    # Gaussian sigma (at 720p) on the final confidence: a pixel's trust is its
    # neighbourhood's, which removes speckle where the cues are noisy (0: off)
    confidence_blur_px: float = 4.0
    # forward flows at full resolution (DIS finest scale 0: at half resolution the fine
    # detail the transfer copies is misaligned; docs/EXPERIMENTS.md), or on larger frames at
    # the first pyramid level whose short side is at most this (cost: a 4K frame's flows run
    # at 1080 lines)
    flow_max_lines: int = 1080
    # Gaussian sigma (at 720p) of a low-pass on the network's output: besides the output as
    # it is, the reference is also aligned to the low-passed output (and their agreement
    # measured there), and per pixel the more trusted alignment wins; the sharpness cue and
    # the blend always use the unfiltered output (0: off). The model's setting
    # (InferenceSettings.transfer_smoothing): a network that copies reference detail in
    # 4 x 4 blocks would have a flow on its output follow them, while moving people need
    # the unfiltered output's finer flow
    align_smoothing_px: float = 0.0
    # how the reference is warped: by the homography fitted to the dense flow
    # ("homography"; where none fits, by the flow) or by the dense flow itself ("flow")
    alignment: str = "homography"
    # spacing of the flow vectors the homography is fitted to, pixels at 720p (about 14,000)
    homography_grid_px: int = 8
    homography_ransac_px: float = 1.0  # RANSAC's inlier distance, pixels at 720p
    # a homography that explains fewer of the flow's vectors than this is no camera motion
    # (an unrelated reference, a scene mostly on the move): the dense flow aligns instead
    homography_min_inliers: float = 0.25
    # the consistency extent for a homography's alignment (consistency_px is the dense
    # flow's): the dense flow on a blurry output strays from the camera's motion by more
    # than the homography fitted to many of its vectors does; 2.5 times the flow's
    # extent still keeps an object moving against the camera and the unrelated half of a
    # reference out (tests/test_transfer.py; a wholly unrelated one fits no homography)
    homography_consistency_px: float = 3.5
    # what a homography's alignment is checked against: "forward", the distance of the
    # dense forward flow it was fitted to from it (a scene that does not follow the camera,
    # or a reference that does not match, pulls the flow away from the fit), or
    # "round_trip", the backward flow as for the dense flow's alignment (at the same
    # extent). The forward check saves the backward flow's time, and the two keep the same
    # references out (docs/EXPERIMENTS.md)
    homography_consistency: str = "forward"
    # a prior homography (the camera's motion between the two sharp frames around the
    # blurry one, interpolated to its time: refine/motion.py) warps the reference instead
    # of the fit to the output's flow where the two are at most this far apart (pixels at
    # 720p, at the frame's corners): the output's flow cannot place the frame more exactly
    # than that, the sharp pair can (0: no prior is used)
    prior_max_px: float = 4.0
    # the prior's placement is kept unless the reference so placed shares this much less of
    # the output's structure (the correlation of shared_structure, below) than placed by
    # the fit: on a blurry output the fit follows the blur, and the prior, right there, may
    # read lower by a few hundredths or, rarely, more than a tenth; a camera that did not
    # move evenly between the sharp frames misplaces it by more, which a sharp output shows
    prior_structure_margin: float = 0.2  # 2 or more: the prior never gives way
    # ... and only where the output holds at least this share of the reference's fine
    # detail: a blurry output cannot place its reference better than the prior (a blur
    # that lingers at one end of its path leaves the output off its true place, and the
    # fit follows it), a sharp one can
    prior_sharp_output: float = 0.45
    # a frame-wide check that the aligned reference shares the output's structure: their
    # normalised correlation between a fine scale (structure_fine_px, at 720p) and the
    # agreement's low-pass, where the reference lands inside the frame. The agreement cue
    # compares low-passed images, which a wrong reference of fine texture (noise, gravel,
    # distant foliage) passes as two flat greys; at this band another scene shares nothing
    # with the frame, while the right one, even under long blur, shares its coarser part.
    # No trust at or below the first value, full trust from the second ((0, 0): off)
    structure_fine_px: float = 1.0
    shared_structure: tuple[float, float] = (0.1, 0.3)
    # a --ref image noisier than the frame by more than this (noise std, in [0, 1] units:
    # 2.5 levels of 255) is not transferred from (refine/noise.py), since the sharpness
    # cue takes noise for detail (0: off). A clean photo reads well under a level
    noise_allowance: float = 0.01
    # where the reference is not blended in, the output is moved per channel by the mean
    # difference of the aligned reference's 8 px block means from the output's, over the
    # blocks inside the reference whose luma differs by under ``tolerance`` (at least a
    # quarter of them; times the frame-wide structure trust), by at most this ([0, 1]
    # units: 4 levels of 255; 0: off) per reference transferred from (a second one measures
    # what the first left). The network undoes the brightening that blur in
    # linear light gives an sRGB frame; a blur that brightened less (one averaged in sRGB)
    # would come out darker than the sharp frames around it, a flicker. Block means leave
    # detail out; the cap keeps a real change of exposure
    level_anchor: float = 4.0 / 255.0

    def __post_init__(self) -> None:
        if self.alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {', '.join(ALIGNMENTS)}")
        if self.homography_consistency not in HOMOGRAPHY_CONSISTENCY:
            raise ValueError("homography_consistency must be one of "
                             + ", ".join(HOMOGRAPHY_CONSISTENCY))

    def checks_by_round_trip(self, fitted: bool) -> bool:
        """Whether an alignment (by a homography where ``fitted``, else by the dense flow)
        is checked against a backward flow. With ``align_smoothing_px`` always: on an
        output with copied reference detail the forward flow and a homography fitted to it
        both follow the copies, and only a backward flow on the low-passed output tells
        them apart."""
        return (not fitted or self.homography_consistency == "round_trip"
                or self.align_smoothing_px > 0)


ALIGNMENTS = ("homography", "flow")
HOMOGRAPHY_CONSISTENCY = ("forward", "round_trip")
SHARP_PAIR_HALF_FROM = 480  # short side from which fitted_homography's flow runs at half size
DEFAULT_TRANSFER = TransferSettings()


def _gray8(image: np.ndarray) -> np.ndarray:
    """8-bit grey of an RGB image: float32 in [0, 1], uint8 or uint16."""
    if image.dtype != np.float32:
        image = to_float(image)
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return np.clip(gray * 255.0 + 0.5, 0, 255).astype(np.uint8)


def dis_coarsest_scale(height: int, width: int, patch: int) -> int:
    """The coarsest pyramid level OpenCV's DIS uses for a frame and patch size (as in its
    dis_flow.cpp); a finest scale above it corrupts DIS's memory."""
    return min(int(math.log2(max(height, width) / (4.0 * patch)) + 0.5),
               int(math.log2(min(height, width) / patch)))


def usable_patch_sizes(sizes: tuple[int, ...], height: int, width: int) -> list[int]:
    """The DIS patch sizes that fit a frame, shrunk (to multiples of 4) where needed.

    OpenCV's DIS corrupts its memory when its coarsest pyramid level
    (:func:`dis_coarsest_scale`) is finer than its finest scale. Each size shrinks until
    that level is at half resolution or below, which the backward flows (finest scale 1)
    need; the forward flows' finest scale (0 up to ``flow_max_lines``, more above) is capped
    at it in :func:`_forward_flow`. Frames too small for an 8-pixel patch get none (no
    transfer).
    """
    usable = set()
    for size in sizes:
        while size >= 8 and dis_coarsest_scale(height, width, size) < 1:
            size = (size - 1) // 4 * 4
        if size >= 8:
            usable.add(size)
    return sorted(usable)


def forward_finest_scale(short_side: int, max_lines: int) -> int:
    """DIS's finest pyramid level for the forward flow: 0 (full resolution) unless the
    frame's short side is longer than ``max_lines``, else the first level at or below it."""
    level = 0
    while short_side / 2**level > max_lines:
        level += 1
    return level


def _flow(target: np.ndarray, source: np.ndarray, patch: int, stride: int,
          refinement: int, finest: int = 1) -> np.ndarray:
    """Dense flow f with target(p) ~ source(p + f(p)); (H, W, 2) float32. Started from
    the frames' global shift where that is beyond DIS's reach (:mod:`.global_shift`)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    dis.setPatchSize(patch)
    dis.setPatchStride(stride)
    dis.setFinestScale(finest)
    dis.setVariationalRefinementIterations(refinement)
    start = initial_flow(target, source, dis_coarsest_scale(*target.shape[:2], patch))
    return dis.calc(target, source, start)


def _pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))


def _remap(source: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    return cv2.remap(source, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _channel_mean(image: np.ndarray) -> np.ndarray:
    """The mean over the last axis of H x W x 3 float32 (OpenCV's is ten times numpy's)."""
    return cv2.transform(image, np.full((1, 3), 1.0 / 3.0, np.float32))


def _detail(image: np.ndarray, scale: float) -> np.ndarray:
    """Local amount of fine detail: low-passed magnitude of the high-pass of the luma."""
    luma = _channel_mean(image)
    high = np.abs(luma - gaussian_low_pass(luma, 1.5 * scale))
    return gaussian_low_pass(high, 4.0 * scale)


@dataclass
class TransferCues:
    """The reference aligned to the network's output, and the confidence cues, (H, W) each."""

    aligned: np.ndarray  # H x W x 3 float32
    agreement: np.ndarray
    consistency: np.ndarray
    sharpness: np.ndarray
    inside: np.ndarray  # 1 where the flow samples inside the reference
    structure: float = 1.0  # the frame-wide trust of :func:`structure_trust`
    # the reference's band of shared_structure, placed as ``aligned`` (None: not checked)
    aligned_band: np.ndarray | None = None

    @property
    def confidence(self) -> np.ndarray:
        """The hand-made confidence: the product of the cues."""
        return self.agreement * self.consistency * self.sharpness * self.inside


def shared_structure(aligned: np.ndarray, restored: np.ndarray, inside: np.ndarray,
                     settings: TransferSettings) -> float:
    """The normalised correlation (-1 .. 1) of the aligned reference with the output in
    the band between ``structure_fine_px`` and ``smoothing_px``, over the pixels the
    reference covers; 1 where the band is empty in either (flat onto flat is harmless)."""
    scale = _scale(restored, settings)
    return _correlation(_band(_channel_mean(aligned), scale, settings) * inside,
                        _band(_channel_mean(restored), scale, settings) * inside)


def _band(luma: np.ndarray, scale: float, settings: TransferSettings,
          direct_up_to: float = DIRECT_UP_TO_PX) -> np.ndarray:
    """``luma`` (H x W float32) between ``structure_fine_px`` and ``smoothing_px``; the
    coarse low-pass computed at a smaller size above ``direct_up_to`` pixels."""
    return (gaussian_low_pass(luma, settings.structure_fine_px * scale)
            - gaussian_low_pass(luma, settings.smoothing_px * scale, direct_up_to))


def _correlation(theirs: np.ndarray, mine: np.ndarray) -> float:
    """Normalised correlation of two bands; 1 where either is empty."""
    energy = math.sqrt(float(np.dot(theirs.ravel(), theirs.ravel())) *
                       float(np.dot(mine.ravel(), mine.ravel())))
    return float(np.dot(theirs.ravel(), mine.ravel())) / energy if energy > 0 else 1.0


def structure_trust(correlation: float, settings: TransferSettings) -> float:
    """The factor on the whole frame's trust for the correlation of
    :func:`shared_structure`: 0 up to ``shared_structure[0]``, 1 from its second value."""
    low, high = settings.shared_structure
    if high <= 0:
        return 1.0
    return float(np.clip((correlation - low) / max(high - low, 1e-6), 0.0, 1.0))


def _scale(image: np.ndarray, settings: TransferSettings) -> float:
    """Extents given for a ``reference_height`` frame, scaled to ``image``'s short side."""
    return max(min(image.shape[:2]) / settings.reference_height, 0.25)


@dataclass
class _Pair:
    """What every alignment of one (output, reference) pair shares, computed once."""

    restored: np.ndarray  # what the reference is aligned to and agrees with
    reference: np.ndarray
    settings: TransferSettings

    def __post_init__(self) -> None:
        h, w = self.restored.shape[:2]
        self.scale = _scale(self.restored, self.settings)
        self.grey = _gray8(self.restored), _gray8(self.reference)
        self.grid = _pixel_grid(h, w)
        self.detail = _detail(self.restored, self.scale)  # the output's fine detail
        self.backward: dict[int, np.ndarray] = {}  # backward flows by patch size
        self.backward_grey = self.grey  # the greys the backward flows are computed on
        # shared with the low-passed pair (a shallow copy): measured on the output as it is
        self.structure = _Structure(self.restored, self.reference, self.scale, self.settings)


# the coarse low-pass of the structure bands at a smaller size from this sigma (pixels of
# the frame; gaussian_low_pass shrinks from 8 px at the least, so at 720p and up): a
# frame-wide statistic needs no more, and it was the checks' largest cost
STRUCTURE_DIRECT_UP_TO_PX = 4.0


@dataclass
class _Structure:
    """The structure checks' images of one (output, reference) pair, each computed once
    and only where a check asks for it: the band of :func:`shared_structure` of both lumas
    and the reference's mean fine detail. An alignment's correlation warps the
    reference's band, which low-passing and a near-identity warp let commute: one remap
    per alignment in place of two low-passes, and the reference's own content (not the
    border) just inside its edge."""

    restored: np.ndarray
    reference: np.ndarray
    scale: float
    settings: TransferSettings
    # (maps, (band, inside)) of the last two placements (a prior's and the fit's)
    _placed: list = field(default_factory=list, init=False, repr=False)

    def _band_of(self, image: np.ndarray) -> np.ndarray:
        return _band(_channel_mean(image), self.scale, self.settings,
                     STRUCTURE_DIRECT_UP_TO_PX)

    @cached_property
    def output_band(self) -> np.ndarray:
        return self._band_of(self.restored)

    @cached_property
    def reference_band(self) -> np.ndarray:
        return self._band_of(self.reference)

    @cached_property
    def reference_detail(self) -> float:
        return float(_detail(self.reference, self.scale).mean())

    def placed(self, maps: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The reference's band as ``maps`` place it on the output, and where they sample
        inside it (:func:`_inside`); the same maps twice: the same arrays, which the caller
        must not change."""
        for known, found in self._placed:
            if known[0] is maps[0] and known[1] is maps[1]:
                return found
        found = _remap(self.reference_band, *maps), _inside(maps)
        self._placed = [*self._placed[-1:], (maps, found)]
        return found

    def correlation(self, aligned_band: np.ndarray, inside: np.ndarray) -> float:
        """:func:`shared_structure`'s correlation of a placed band, where ``inside``."""
        return _correlation(aligned_band * inside, self.output_band * inside)


def _pairs(restored: np.ndarray, reference: np.ndarray,
           settings: TransferSettings) -> list[_Pair]:
    """The pairs the reference is aligned with: the output as it is and, with
    ``align_smoothing_px``, the output low-passed. The low-passed pair shares the output's
    unfiltered detail (the sharpness cue) and the backward flows, and both pairs compute
    those flows on the low-passed output: on an output with copied reference detail a
    backward flow follows the copies, and would vouch for a forward flow that does too."""
    pair = _Pair(restored, reference, settings)
    if settings.align_smoothing_px <= 0:
        return [pair]
    low = copy.copy(pair)
    low.restored = gaussian_low_pass(restored, settings.align_smoothing_px * pair.scale)
    low.grey = _gray8(low.restored), pair.grey[1]
    pair.backward_grey = low.backward_grey = low.grey
    return [pair, low]


def _stride(patch: int, share: float) -> int:
    return max(1, min(patch, round(patch * share)))


def _backward_flow(pair: _Pair, patch: int) -> np.ndarray:
    """The backward flow (output -> reference direction reversed) for the consistency
    check, at half resolution; computed once per patch size."""
    settings, (a, b) = pair.settings, pair.backward_grey
    if settings.backward_patch:
        patch = usable_patch_sizes((settings.backward_patch,), *a.shape)[0]
    if patch not in pair.backward:
        pair.backward[patch] = _flow(b, a, patch, _stride(patch, settings.backward_stride),
                                     settings.backward_refinement_iterations)
    return pair.backward[patch]


def _forward_flow(grey: tuple[np.ndarray, np.ndarray], patch: int,
                  settings: TransferSettings) -> np.ndarray:
    """The dense forward flow of one patch size (target -> reference greys)."""
    a, b = grey
    finest = min(forward_finest_scale(min(a.shape), settings.flow_max_lines),
                 dis_coarsest_scale(*a.shape, patch))
    return _flow(a, b, patch, _stride(patch, settings.forward_stride),
                 settings.refinement_iterations, finest)


def _forward_warp(grey: tuple[np.ndarray, np.ndarray], reference: np.ndarray,
                  grid: tuple[np.ndarray, np.ndarray], patch: int,
                  settings: TransferSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                       np.ndarray]:
    """The forward flow of one patch size (target -> reference greys), its sampling maps
    and ``reference`` warped by them: (flow, map_x, map_y, aligned)."""
    forward = _forward_flow(grey, patch, settings)
    map_x, map_y = grid[0] + forward[..., 0], grid[1] + forward[..., 1]
    return forward, map_x, map_y, _remap(reference, map_x, map_y)


def homography_of_flow(flow: np.ndarray, spacing: int, ransac_px: float,
                       min_inliers: float = 0.0) -> np.ndarray | None:
    """The 3 x 3 homography H (target pixel -> reference pixel) that best explains ``flow``
    (H x W x 2, target(p) ~ reference(p + flow(p))), fitted by RANSAC to its vectors on a
    grid ``spacing`` pixels apart; None where no homography fits (too few vectors, a
    degenerate fit, or one that explains under ``min_inliers`` of them)."""
    start = spacing // 2
    return homography_of_grid(flow[start::spacing, start::spacing], spacing, ransac_px,
                              min_inliers)


def homography_of_grid(vectors: np.ndarray, spacing: int, ransac_px: float,
                       min_inliers: float = 0.0) -> np.ndarray | None:
    """:func:`homography_of_flow` from the flow's vectors on its grid already (rows x
    columns x 2: ``flow[spacing // 2::spacing, spacing // 2::spacing]``), ``ransac_px``
    RANSAC's inlier distance."""
    rows, columns = vectors.shape[:2]
    ys, xs = np.mgrid[0:rows, 0:columns] * spacing + spacing // 2
    source = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
    if len(source) < 8:
        return None
    target = source + vectors.reshape(-1, 2).astype(np.float32)
    homography, inliers = cv2.findHomography(source, target, cv2.RANSAC, ransac_px)
    if homography is None or not np.isfinite(homography).all():
        return None
    if inliers is None or inliers.mean() < min_inliers:
        return None
    return homography


def homography_spacing(settings: TransferSettings, scale: float) -> int:
    """The grid spacing (pixels) of the flow vectors a homography is fitted to."""
    return max(1, round(settings.homography_grid_px * scale))


def project(homography: np.ndarray, xs, ys):
    """Where ``homography`` sends the pixels at ``xs``, ``ys`` (NumPy arrays or PyTorch
    tensors that broadcast together; float64 keeps a large frame's coordinates exact):
    (x, y), or None where the frame reaches the homography's line at infinity (a degenerate
    fit, which folds part of the frame behind the camera)."""
    m = [[float(v) for v in row] for row in homography]
    depth = m[2][0] * xs + m[2][1] * ys + m[2][2]
    if not (float(depth.min()) > 1e-6 or float(depth.max()) < -1e-6):
        return None
    return ((m[0][0] * xs + m[0][1] * ys + m[0][2]) / depth,
            (m[1][0] * xs + m[1][1] * ys + m[1][2]) / depth)


def homography_maps(homography: np.ndarray, grid: tuple[np.ndarray, np.ndarray]
                    ) -> tuple[np.ndarray, np.ndarray] | None:
    """The sampling maps (map_x, map_y) of ``homography`` over ``grid`` (float32), or None
    (:func:`project`)."""
    found = project(homography, *(g.astype(np.float64) for g in grid))
    return None if found is None else (found[0].astype(np.float32), found[1].astype(np.float32))


def camera_homography(flow: np.ndarray, settings: TransferSettings, scale: float,
                      on_grid: bool = False) -> np.ndarray | None:
    """The homography fitted to ``flow`` with the transfer's ``homography_*`` settings at
    ``scale`` (:func:`homography_of_flow`; ``on_grid``: ``flow`` is already its vectors on
    the fitting grid, :func:`homography_of_grid`)."""
    fit = homography_of_grid if on_grid else homography_of_flow
    return fit(flow, homography_spacing(settings, scale),
               settings.homography_ransac_px * scale, settings.homography_min_inliers)


def guided_homography(fitted: np.ndarray, prior: np.ndarray | None,
                      settings: TransferSettings, scale: float,
                      shape: tuple[int, int]) -> np.ndarray:
    """The homography that warps the reference onto a frame of ``shape`` (h, w):
    ``prior`` where it is within ``prior_max_px`` (times ``scale``) of the one ``fitted``
    to the output's flow, else ``fitted``."""
    if prior is None or settings.prior_max_px <= 0:
        return fitted
    near = homography_distance(fitted, prior, *shape) <= settings.prior_max_px * scale
    return prior if near else fitted


def _alignment(pair: _Pair, forward: np.ndarray, prior: np.ndarray | None
               ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray],
                          tuple[np.ndarray, np.ndarray], float]:
    """How the reference is aligned by the dense ``forward`` flow: (the alignment's flow,
    its sampling maps, the maps that warp the reference, its consistency extent). The
    homography fitted to the flow, or (``alignment="flow"``, no fit) ``forward`` itself (the
    same array, which tells the caller that nothing was fitted); the
    warp may come from ``prior`` near the fit, while the consistency stays the fit's (how
    well the output's own flows follow one rigid motion there)."""
    settings, grid = pair.settings, pair.grid
    fitted = (camera_homography(forward, settings, pair.scale)
              if settings.alignment == "homography" else None)
    maps = None if fitted is None else homography_maps(fitted, grid)
    if maps is None:
        maps = grid[0] + forward[..., 0], grid[1] + forward[..., 1]
        return forward, maps, maps, settings.consistency_px
    guided = guided_homography(fitted, prior, settings, pair.scale, grid[0].shape)
    warp = maps if guided is fitted else homography_maps(guided, grid) or maps
    if warp is not maps and _placed_worse(pair, warp, maps):
        warp = maps
    flow = np.dstack((maps[0] - grid[0], maps[1] - grid[1]))
    return flow, maps, warp, settings.homography_consistency_px


def _inside(maps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """1 where ``maps`` sample inside the image they warp, else 0 (float32)."""
    h, w = maps[0].shape
    return ((maps[0] >= 0) & (maps[0] <= w - 1) & (maps[1] >= 0)
            & (maps[1] <= h - 1)).astype(np.float32)


def _placed_worse(pair: _Pair, warp: tuple[np.ndarray, np.ndarray],
                  fitted: tuple[np.ndarray, np.ndarray]) -> bool:
    """Whether the reference warped by ``warp`` (the prior's) shares clearly less of a
    sharp output's structure than warped by the fit to the output's own flow
    (:func:`shared_structure`): where the camera did not move evenly between the two sharp
    frames, the prior misplaces it, which a sharp output shows."""
    settings, structure = pair.settings, pair.structure
    if float(pair.detail.mean()) < settings.prior_sharp_output * structure.reference_detail:
        return False  # blurry: the output cannot place its reference better than the prior
    found = [structure.correlation(*structure.placed(maps)) for maps in (warp, fitted)]
    return found[0] < found[1] - settings.prior_structure_margin


def _cues_for_patch(pair: _Pair, patch: int, prior: np.ndarray | None = None) -> TransferCues:
    settings, scale = pair.settings, pair.scale
    dense = _forward_flow(pair.grey, patch, settings)
    forward, (map_x, map_y), warp, extent = _alignment(pair, dense, prior)
    aligned = _remap(pair.reference, *warp)
    if settings.checks_by_round_trip(fitted=forward is not dense):
        error = forward + _remap(_backward_flow(pair, patch), map_x, map_y)
    else:  # how far the dense flow strays from the homography fitted to it
        error = dense - forward
    distance = gaussian_low_pass(cv2.magnitude(*cv2.split(error)), 2.0 * scale)
    consistency = np.exp(-(distance / (extent * scale)) ** 2)

    difference = gaussian_low_pass(aligned - pair.restored, settings.smoothing_px * scale)
    agreement = np.exp(-(_channel_mean(np.abs(difference)) / settings.tolerance) ** 2)
    mine, theirs = pair.detail, _detail(aligned, scale)
    sharpness = np.clip((theirs - mine) / (settings.sharpness_margin * mine + 1e-5) + 1.0, 0, 1)

    # the structure check's placement, where it runs, holds the inside mask already
    band, inside = (pair.structure.placed(warp) if settings.shared_structure[1] > 0
                    else (None, _inside(warp)))
    return TransferCues(aligned, *(x.astype(np.float32) for x in
                                   (agreement, consistency, sharpness)), inside.copy(),
                        aligned_band=band)


def _keep_better(best: TransferCues, best_confidence: np.ndarray,
                 other: TransferCues) -> np.ndarray:
    """Take ``other``'s cues into ``best`` where its confidence is higher (ties keep
    ``best``); returns the updated confidence."""
    confidence = other.confidence
    better = confidence > best_confidence
    for name in ("agreement", "consistency", "sharpness", "inside"):
        np.copyto(getattr(best, name), getattr(other, name), where=better)
    np.copyto(best.aligned, other.aligned, where=better[..., None])
    if best.aligned_band is not None and other.aligned_band is not None:
        best.aligned_band = np.where(better, other.aligned_band, best.aligned_band)
    return np.maximum(best_confidence, confidence)


def transfer_cues(
    restored: np.ndarray, reference: np.ndarray, settings: TransferSettings = DEFAULT_TRANSFER,
    prior: np.ndarray | None = None,
) -> TransferCues:
    """Align ``reference`` to ``restored`` and measure how far to trust it, per pixel: one
    flow per patch size, on ``restored`` and (with ``align_smoothing_px``) also on
    ``restored`` low-passed, and per pixel the alignment with the highest confidence (the
    first one on ties). The sharpness cue always compares with ``restored`` as it is, so
    that a blurrier reference stays out.

    Both images are H x W x 3 float32 RGB in [0, 1]. ``prior``: a homography (output
    pixel -> reference pixel) known from elsewhere, which warps the reference where it is
    near the one fitted to the output's flow (``prior_max_px``).
    """
    h, w = restored.shape[:2]
    sizes = usable_patch_sizes(settings.patch_sizes, h, w)
    if not sizes:  # too small to align: nothing is trusted
        zero = np.zeros((h, w), np.float32)
        return TransferCues(reference.astype(np.float32), zero, zero, zero, zero)
    pairs = _pairs(restored, reference, settings)
    alignments = ((pair, size) for size in sizes for pair in pairs)
    best = _cues_for_patch(*next(alignments), prior)
    confidence = best.confidence
    for pair, size in alignments:
        confidence = _keep_better(best, confidence, _cues_for_patch(pair, size, prior))
    if best.aligned_band is not None:  # shared_structure, from the bands placed above
        best.structure = structure_trust(
            pairs[0].structure.correlation(best.aligned_band, best.inside), settings)
    return best


def fitted_homography(target: np.ndarray, reference: np.ndarray,
                      settings: TransferSettings = DEFAULT_TRANSFER) -> np.ndarray | None:
    """The homography (``target`` pixel -> ``reference`` pixel) between two *sharp* images,
    fitted as the transfer's (``homography_*``) to a DIS flow of its first usable patch size
    computed with two refinement iterations at half resolution (from
    ``SHARP_PAIR_HALF_FROM`` lines): between sharp images that places the camera as exactly
    as the full-resolution flow, at a sixth of its time (docs/EXPERIMENTS.md). None where no
    homography fits. Both H x W x 3, float32 in [0, 1], uint8 or uint16."""
    h, w = target.shape[:2]
    sizes = usable_patch_sizes(settings.patch_sizes, h, w)
    if not sizes:
        return None
    patch = sizes[0]
    # small frames keep full resolution: at half their texture is too coarse for the flow
    finest = 1 if min(h, w) >= SHARP_PAIR_HALF_FROM else 0
    flow = _flow(_gray8(target), _gray8(reference), patch,
                 _stride(patch, settings.forward_stride), 2, finest)
    return camera_homography(flow, settings, _scale(target, settings))


def homography_align(target: np.ndarray, reference: np.ndarray,
                     settings: TransferSettings = DEFAULT_TRANSFER) -> np.ndarray:
    """``reference`` warped onto ``target`` by the homography of :func:`fitted_homography`
    (the camera's motion between them): the pre-alignment of a reference before a network
    that matches in place (``match_mode: identity``). A dense flow from a blurry frame drifts
    where blur hides the texture; the many vectors pin one homography down far better.
    Unchanged where no homography fits (another scene): the network's confidence then
    keeps it out. Both H x W x 3 RGB, float32 in [0, 1], uint8 or uint16; returns
    ``reference``'s type."""
    h, w = target.shape[:2]
    fitted = fitted_homography(target, reference, settings)
    maps = None if fitted is None else homography_maps(fitted, _pixel_grid(h, w))
    return reference if maps is None else _remap(reference, *maps)


def flow_align(target: np.ndarray, reference: np.ndarray,
               settings: TransferSettings = DEFAULT_TRANSFER) -> np.ndarray:
    """``reference`` warped onto ``target`` by the transfer's forward flow (its first usable
    patch size; no consistency check): the pre-alignment of a reference before the network.
    Always the dense flow, whatever ``settings.alignment`` says: the network was trained on
    references pre-aligned so, and must see them so at inference.
    Both H x W x 3 RGB, float32 in [0, 1], uint8 or uint16; returns ``reference``'s type."""
    h, w = target.shape[:2]
    sizes = usable_patch_sizes(settings.patch_sizes, h, w)
    if not sizes:  # too small to align
        return reference
    grey = _gray8(target), _gray8(reference)
    return _forward_warp(grey, reference, _pixel_grid(h, w), sizes[0], settings)[3]


# how a reference may be warped onto its frame before the network, by name (a model's
# ``prealign``, the training mix's ``aligned_ref_by``)
PREALIGNERS = {"flow": flow_align, "homography": homography_align}


def blend_weight(confidence: np.ndarray, cues: TransferCues,
                 settings: TransferSettings = DEFAULT_TRANSFER) -> np.ndarray:
    """The per-pixel weight the blend uses: ``confidence`` smoothed by
    ``confidence_blur_px``, kept at 0 where the flow leaves the reference, and times the
    frame-wide trust in the reference's structure (:attr:`TransferCues.structure`)."""
    if settings.confidence_blur_px <= 0:
        return confidence * (cues.inside * cues.structure)
    sigma = settings.confidence_blur_px * _scale(confidence, settings)
    return gaussian_low_pass(confidence, sigma) * (cues.inside * cues.structure)


def transfer_confidence(
    restored: np.ndarray, reference: np.ndarray, settings: TransferSettings = DEFAULT_TRANSFER,
    prior: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The reference aligned to ``restored`` and the weight (H, W) in [0, 1] with which
    :func:`transfer_reference` blends it in (the hand-made confidence, smoothed); ``prior``
    as in :func:`transfer_cues`."""
    cues = transfer_cues(restored, reference, settings, prior)
    return cues.aligned, blend_weight(cues.confidence, cues, settings)


def transfer_reference(
    restored: np.ndarray, reference: np.ndarray, settings: TransferSettings = DEFAULT_TRANSFER,
    prior: np.ndarray | None = None,
) -> np.ndarray:
    """``restored`` with the flow-aligned ``reference`` blended in where it is trustworthy
    (H x W x 3 float32 RGB in [0, 1] in and out), weighted by :func:`blend_weight`;
    ``prior`` as in :func:`transfer_cues`."""
    cues = transfer_cues(restored, reference, settings, prior)
    weight = blend_weight(cues.confidence, cues, settings)[..., None]
    shift = level_shift(restored, cues.aligned, cues.inside, cues.structure, settings)
    base = restored + shift if shift.any() else restored  # the shift where not blended in
    fused = base + weight * (cues.aligned - base)
    return np.clip(fused, 0.0, 1.0)


def block_means(image: np.ndarray, block: int) -> np.ndarray:
    """The means of ``image``'s whole ``block`` x ``block`` squares (INTER_AREA at a whole
    factor), a partial last row or column of them left out."""
    h, w = image.shape[0] // block, image.shape[1] // block
    return cv2.resize(image[:h * block, :w * block], (w, h), interpolation=cv2.INTER_AREA)


def level_shift(restored: np.ndarray, aligned: np.ndarray, inside: np.ndarray, trust: float,
                settings: TransferSettings) -> np.ndarray:
    """Per channel (3,), how far ``restored``'s brightness sits under the ``aligned``
    reference's (``settings.level_anchor``'s comment), times ``trust``; 0 where too few
    blocks agree."""
    limit, block = settings.level_anchor, ANCHOR_BLOCK_PX
    h, w = restored.shape[0] // block, restored.shape[1] // block
    if limit <= 0 or trust <= 0 or not h or not w:
        return np.zeros(3, np.float32)

    difference = (block_means(aligned, block) - block_means(restored, block)).reshape(
        -1, 3).astype(np.float64)
    whole = block_means((inside > 0.5).astype(np.float32), block).reshape(-1) > 1.0 - 1e-4
    agree = whole & (np.abs(difference @ LUMA_WEIGHTS) < settings.tolerance)
    if agree.mean() < MIN_ANCHOR_SHARE:
        return np.zeros(3, np.float32)
    return (np.clip(difference[agree].mean(0), -limit, limit) * trust).astype(np.float32)


__all__ = [
    "DEFAULT_TRANSFER",
    "TransferCues",
    "TransferSettings",
    "blend_weight",
    "block_means",
    "camera_homography",
    "fitted_homography",
    "guided_homography",
    "flow_align",
    "dis_coarsest_scale",
    "homography_maps",
    "homography_of_flow",
    "homography_of_grid",
    "homography_spacing",
    "level_shift",
    "project",
    "shared_structure",
    "structure_trust",
    "forward_finest_scale",
    "transfer_cues",
    "transfer_confidence",
    "transfer_reference",
    "usable_patch_sizes",
]

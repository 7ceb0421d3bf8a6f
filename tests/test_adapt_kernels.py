"""The video's own blur for ``--adapt``: kernels estimated from a blurry frame and its sharp
reference, the probes the reading pass keeps for them (and the frames of the end-to-end
check), and crops blurred with them."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from refdeblur_video.adapt import AdaptSettings
from refdeblur_video.adapt.fit import StrengthFit
from refdeblur_video.adapt.kernels import (
    BlurKernel,
    apply_kernel,
    estimate_kernel,
    frame_kernels,
    kernel_bank,
    reblur_to_match,
    to_working_grey,
)
from refdeblur_video.adapt.reservoir import Probe, Region, scan_video
from refdeblur_video.adapt.samples import make_sample
from refdeblur_video.video.reader import open_reader
from refdeblur_video.video.synthetic import make_image


def textured(h: int, w: int, seed: int) -> np.ndarray:
    """A uint8 RGB picture with detail at every scale (edges, blobs and fine grain)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((h, w, 3), np.float32)
    for sigma, weight in ((12.0, 90.0), (4.0, 50.0), (1.2, 25.0)):
        layer = cv2.GaussianBlur(rng.normal(0, 1, (h, w, 3)).astype(np.float32), (0, 0), sigma)
        out += weight * layer / layer.std()
    return np.clip(out + 128, 0, 255).astype(np.uint8)


def line_kernel(length: float, angle: float, size: int = 41) -> np.ndarray:
    """A straight motion path of ``length`` pixels at ``angle`` radians, summing to 1."""
    kernel = np.zeros((size, size), np.float32)
    c = size // 2
    for t in np.linspace(-0.5, 0.5, 400):
        kernel[round(c + t * length * np.sin(angle)), round(c + t * length * np.cos(angle))] += 1
    return kernel / kernel.sum()


@pytest.mark.parametrize("length", [4.0, 12.0, 24.0])
def test_the_kernel_of_a_blurry_tile_is_found_from_its_moved_sharp_neighbour(length):
    sharp = textured(320, 320, seed=1)
    truth = line_kernel(length, 0.6)
    rng = np.random.default_rng(0)
    blurry = apply_kernel(sharp, truth).astype(np.float32) + rng.normal(0, 1.5, sharp.shape)
    blurry = np.clip(blurry, 0, 255).astype(np.uint8)
    # the neighbour was taken a little later: the scene moved by (5, -9) pixels
    tile, margin, dy, dx = 128, 24, 5, -9
    y = x = 96
    found = estimate_kernel(blurry[y:y + tile, x:x + tile],
                            sharp[y - margin + dy:y + tile + margin + dy,
                                  x - margin + dx:x + tile + margin + dx], 41)
    assert found is not None and found.explained > 0.7
    assert found.extent_px == pytest.approx(BlurKernel(truth, 1.0).extent_px, rel=0.15)
    assert found.weights.sum() == pytest.approx(1.0, abs=1e-5)
    # centred on its centre of mass, so applying it moves nothing
    ys, xs = np.mgrid[0:41, 0:41]
    assert abs((found.weights * ys).sum() - 20) < 1 and abs((found.weights * xs).sum() - 20) < 1
    # the same direction as the truth: their main axes agree
    assert np.corrcoef(cv2.GaussianBlur(found.weights, (0, 0), 1.5).ravel(),
                       cv2.GaussianBlur(truth, (0, 0), 1.5).ravel())[0, 1] > 0.8


def test_an_unrelated_reference_gives_no_kernel():
    blurry = apply_kernel(textured(200, 200, seed=1), line_kernel(10.0, 0.3))
    other = textured(200, 200, seed=2)
    assert estimate_kernel(blurry[36:164, 36:164], other[12:188, 12:188], 41) is None


def test_a_point_kernel_changes_nothing_and_kernels_keep_the_sample_type():
    image = textured(40, 50, seed=3)
    point = np.zeros((5, 5), np.float32)
    point[2, 2] = 1
    assert np.array_equal(apply_kernel(image, point), image)
    deep = image.astype(np.uint16) * 257
    assert apply_kernel(deep, line_kernel(6.0, 1.0, 9)).dtype == np.uint16


def test_reblurring_matches_a_blurrier_view_but_never_sharpens():
    """What lets the end-to-end check compare with a neighbour that is blurred itself: a
    sharp image is brought to the neighbour's blur; a blurred one cannot be brought back."""
    def psnr(a: np.ndarray, b: np.ndarray) -> float:
        return float(10 * np.log10(1 / max(float(np.mean((a - b) ** 2)), 1e-12)))  # equal: 120

    sharp = textured(360, 480, seed=6).astype(np.float32) / 255
    blurred = apply_kernel(sharp, line_kernel(14.0, 0.5))
    assert psnr(reblur_to_match(sharp, blurred), blurred) > psnr(sharp, blurred) + 15
    assert psnr(reblur_to_match(blurred, sharp), sharp) <= psnr(blurred, sharp) + 0.5
    # against a sharp view, a sharp image stays itself (nearly: the kernel is a point)
    assert psnr(reblur_to_match(sharp, sharp), sharp) > 40
    # a sharp image now agrees better with a blurred neighbour than a half-blurred one does
    half = apply_kernel(sharp, line_kernel(7.0, 0.5 + np.pi / 2))
    assert psnr(reblur_to_match(sharp, blurred), blurred) > \
        psnr(reblur_to_match(half, blurred), blurred) + 3


def test_kernels_are_estimated_small_and_applied_at_the_frames_size():
    """A 720p pair is compared at 360 lines; the kernels come back twice as long."""
    sharp = textured(720, 1280, seed=4)
    blurry = apply_kernel(sharp, line_kernel(30.0, 0.2, 61))
    moved = np.roll(sharp, (6, 10), axis=(0, 1))
    probe = Probe(1, to_working_grey(blurry), to_working_grey(moved))
    assert probe.blurry.shape == (360, 640)
    small = frame_kernels(probe.blurry, probe.reference)
    assert len(small) > 10
    bank = kernel_bank([probe], (720, 1280))
    assert len(bank) == len(small)
    assert bank[0].weights.shape[0] > 2 * small[0].weights.shape[0] - 2
    extents = [k.extent_px for k in bank]
    assert np.median(extents) == pytest.approx(30.0, rel=0.2)


def test_the_reading_pass_keeps_blurry_frames_with_their_references(make_test_clip):
    clip = make_test_clip("probes.mp4", n_frames=30, size=(96, 64), blurry={7, 21})
    with open_reader(clip.path) as reader:
        sample = scan_video(reader, window=5, max_offset=5, threshold=0.8, cuts=True, crop=32,
                            capacity=6, held_capacity=3, held_every=4, frame_count=30,
                            deadline=None, seed=0)
    assert sorted(p.index for p in sample.probes) == [7, 21]
    for probe in sample.probes:
        assert probe.blurry.shape == probe.reference.shape == (64, 96)
        assert probe.blurry.dtype == np.float32
        # the reference is the sharper frame
        assert cv2.Laplacian(probe.reference, cv2.CV_32F).var() > \
            cv2.Laplacian(probe.blurry, cv2.CV_32F).var()
    # and, at full size, with a sharp neighbour on each side for the end-to-end check
    assert sorted(c.index for c in sample.crosschecks) == [7, 21]
    for check in sample.crosschecks:
        assert check.blurry.shape == check.reference.shape == check.other.shape == (64, 96, 3)
        assert not np.array_equal(check.reference, check.other)


def test_own_blur_is_the_regions_crop_under_a_kept_kernel():
    frame = make_image(size=(160, 120), seed=5)
    margin, crop = 20, 48
    region = Region(3, frame[10:10 + crop + 2 * margin, 20:20 + crop + 2 * margin].copy(),
                    margin, (10, 20), (120, 160))
    kernel = line_kernel(9.0, 0.4, 15)
    fit = StrengthFit((0.5,), (), (), kernels=(kernel,))
    settings = dataclasses.replace(AdaptSettings(), generators={"own": 1.0},
                                   self_ref_prob=0.0, defocus_prob=0.0)
    expected = apply_kernel(region.sharp, kernel)[margin:margin + crop, margin:margin + crop]
    rng = np.random.default_rng(0)
    for _ in range(4):
        blur, sharp, _ref = make_sample(region, [region], fit, settings, rng)
        # the sample may be flipped or turned: undo it by finding how the target was moved
        moves = [lambda a, k=k, f=f: np.rot90(a[:, ::-1] if f else a, k)
                 for k in range(4) for f in (False, True)]
        move = next(m for m in moves if np.array_equal(m(region.target), sharp))
        assert np.array_equal(move(expected), blur)
    # without kernels the camera shake stands in: still blurred, never the sharp crop
    blur, sharp, _ref = make_sample(region, [region], StrengthFit((0.8,), (), ()), settings,
                                    rng)
    assert not np.array_equal(blur, sharp)


def test_trajectory_blur_draws_its_fitted_lengths():
    frame = make_image(size=(160, 120), seed=6)
    margin, crop = 20, 48
    region = Region(3, frame[10:10 + crop + 2 * margin, 20:20 + crop + 2 * margin].copy(),
                    margin, (10, 20), (120, 160))
    settings = dataclasses.replace(AdaptSettings(), generators={"trajectory": 1.0},
                                   self_ref_prob=0.0, defocus_prob=0.0)

    def mean_change(lengths: tuple[float, ...]) -> float:
        rng = np.random.default_rng(1)
        fit = StrengthFit((0.5,), (), (), lengths=lengths)
        changes = []
        for _ in range(6):
            blur, sharp, _ref = make_sample(region, [region], fit, settings, rng)
            assert blur.shape == sharp.shape == (crop, crop, 3)
            changes.append(np.abs(blur.astype(float) - sharp.astype(float)).mean())
        return float(np.mean(changes))

    # longer fitted trajectories blur more
    assert mean_change((2.0,)) < mean_change((16.0,))
    # without lengths the camera shake stands in: the same crops as the shake alone draws
    shake = dataclasses.replace(settings, generators={"shake": 1.0})
    unfitted = StrengthFit((0.5,), (), ())
    for seed in range(3):
        alone = make_sample(region, [region], unfitted, shake, np.random.default_rng(seed))
        stand_in = make_sample(region, [region], unfitted, settings,
                               np.random.default_rng(seed))
        assert all(np.array_equal(a, b) for a, b in zip(alone, stand_in, strict=True))

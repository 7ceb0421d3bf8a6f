"""The camera's motion interpolated between two sharp frames (refdeblur_video/refine/motion.py)
and its use as the reference transfer's prior."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from refdeblur_video.refine.motion import (
    homography_distance,
    homography_power,
    interpolated_priors,
)

H, W = 144, 192


def _turn(degrees: float, zoom: float, shift: tuple[float, float]) -> np.ndarray:
    """A camera turned about the frame's centre, zoomed and moved (pixel -> pixel), by
    OpenCV's own rotation matrix."""
    matrix = np.eye(3)
    matrix[:2] = cv2.getRotationMatrix2D(((W - 1) / 2, (H - 1) / 2), degrees, 1.0 + zoom)
    matrix[:2, 2] += shift
    return matrix


def _same_motion(a: np.ndarray, b: np.ndarray, tolerance: float = 1e-3) -> None:
    assert homography_distance(a, b, H, W) < tolerance


def test_fractions_of_a_translation_and_of_a_turn_are_the_closed_forms():
    shift = np.array([[1.0, 0, 12.0], [0, 1, -7.0], [0, 0, 1]])
    half = homography_power(shift, 0.5, H, W)
    _same_motion(half, np.array([[1.0, 0, 6.0], [0, 1, -3.5], [0, 0, 1]]))
    _same_motion(homography_power(shift, -1.0, H, W), np.linalg.inv(shift))
    # a turn of 3 degrees about the centre: a third of it turns by 1 degree
    _same_motion(homography_power(_turn(3.0, 0.0, (0, 0)), 1 / 3, H, W), _turn(1.0, 0, (0, 0)))


def test_powers_compose_and_keep_perspective():
    motion = _turn(2.0, 0.03, (9.0, -4.0))
    motion[2, :2] = (2e-5, -1e-5)  # a little perspective
    _same_motion(homography_power(motion, 1.0, H, W), motion / motion[2, 2])
    _same_motion(homography_power(motion, 0.0, H, W), np.eye(3))
    third = homography_power(motion, 1 / 3, H, W)
    _same_motion(third @ third @ third, motion)
    _same_motion(homography_power(motion, 0.4, H, W) @ homography_power(motion, 0.6, H, W),
                 motion)


def test_a_motion_too_large_to_interpolate_is_refused():
    assert homography_power(np.array([[1.0, 0, 2 * W], [0, 1, 0], [0, 0, 1]]), 0.5, H, W) is None
    assert homography_power(np.zeros((3, 3)), 0.5, H, W) is None


def test_the_distance_of_two_homographies_is_at_the_farthest_corner():
    shift = np.array([[1.0, 0, 3.0], [0, 1, 4.0], [0, 0, 1]])
    assert homography_distance(shift, np.eye(3), H, W) == pytest.approx(5.0)
    # a turn about the centre moves the corners most: by the half diagonal times the angle
    turn = _turn(1.0, 0.0, (0, 0))
    corner = np.hypot(W - 1, H - 1) / 2 * 2 * np.sin(np.deg2rad(0.5))
    assert homography_distance(turn, np.eye(3), H, W) == pytest.approx(corner, rel=1e-6)


def test_priors_place_a_frame_between_its_references():
    # reference -> second: the camera moved 10 px right and turned 2 degrees at constant
    # velocity; a frame a quarter of the way sees the reference a quarter back
    motion = _turn(2.0, 0.0, (10.0, 0.0))
    to_reference, to_second = interpolated_priors(motion, 0.25, H, W)
    _same_motion(np.linalg.inv(to_reference), homography_power(motion, 0.25, H, W))
    _same_motion(to_second, homography_power(motion, 0.75, H, W))
    _same_motion(to_second @ np.linalg.inv(to_reference), motion)
    assert interpolated_priors(np.array([[1.0, 0, 3 * W], [0, 1, 0], [0, 0, 1]]),
                               0.5, H, W) is None


def _scene(seed: int, size: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.random((*size, 3), dtype=np.float32), (0, 0), 1.0) * 0.6
    image += cv2.resize(rng.random((size[0] // 12, size[1] // 12, 3), dtype=np.float32),
                        size[::-1], interpolation=cv2.INTER_CUBIC) * 0.4
    return np.clip(image, 0, 1)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    from refdeblur_video.evaluate.metrics import psnr

    return psnr(np.round(a * 255).astype(np.uint8), np.round(b * 255).astype(np.uint8))


@pytest.fixture(scope="module")
def lopsided():
    """A frame whose network output sits off its true place, as a blur whose exposure
    lingers at one end leaves it: (sharp frame, output, reference, the true homography
    frame -> reference). The output is the sharp frame smeared over 0-6 px to the right,
    most of its weight at 5-6 px."""
    h, w, margin = 240, 320, 24
    big = _scene(5, (h + 2 * margin, w + 2 * margin))
    sharp = big[margin:margin + h, margin:margin + w]
    weights = np.array([1, 1, 1, 1, 1, 4, 4], np.float32)
    smear = sum(weight * big[margin:margin + h, margin - k:margin - k + w]
                for k, weight in enumerate(weights)) / weights.sum()
    output = cv2.GaussianBlur(smear, (0, 0), 1.0)
    dy, dx = 5, -7  # the reference: the scene moved by (dy, dx)
    reference = big[margin - dy:margin - dy + h, margin - dx:margin - dx + w]
    truth = np.array([[1.0, 0, dx], [0, 1, dy], [0, 0, 1]])
    return sharp, output, reference, truth


def test_a_prior_near_the_fit_aligns_the_reference_where_the_output_cannot(lopsided):
    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER, transfer_cues, transfer_reference

    sharp, output, reference, truth = lopsided
    inner = (slice(16, -16), slice(16, -16))
    settings = replace(DEFAULT_TRANSFER, prior_max_px=20.0)  # 6.7 px at 240 lines
    plain = transfer_cues(output, reference, settings).aligned
    guided = transfer_cues(output, reference, settings, truth).aligned
    # the output's own flow places the reference where the smear's weight is
    assert _psnr(plain[inner], sharp[inner]) < 30
    assert _psnr(guided[inner], sharp[inner]) > 40
    fused = {name: transfer_reference(output, reference, settings, prior)
             for name, prior in (("plain", None), ("guided", truth))}
    assert _psnr(fused["guided"], sharp) > _psnr(fused["plain"], sharp) + 2


def test_a_prior_far_from_the_fit_or_switched_off_changes_nothing(lopsided):
    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER, transfer_reference

    _, output, reference, truth = lopsided
    wide = replace(DEFAULT_TRANSFER, prior_max_px=20.0)  # 6.7 px here: the truth is taken
    plain = transfer_reference(output, reference, wide)
    assert not np.array_equal(transfer_reference(output, reference, wide, truth), plain)
    far = truth.copy()
    far[0, 2] += 30.0  # a camera that did not move smoothly: the prior is 30 px off
    np.testing.assert_array_equal(transfer_reference(output, reference, wide, far), plain)
    off = replace(DEFAULT_TRANSFER, prior_max_px=0.0)
    np.testing.assert_array_equal(transfer_reference(output, reference, off, truth), plain)
    # the dense flow's alignment takes no prior
    flow = replace(DEFAULT_TRANSFER, alignment="flow")
    np.testing.assert_array_equal(transfer_reference(output, reference, flow, truth),
                                  transfer_reference(output, reference, flow))



def test_a_prior_that_misplaces_a_sharp_output_s_reference_gives_way_to_the_fit(lopsided):
    """A camera that did not move evenly between the two sharp frames: the prior is 1.5 px
    off, and the output, sharp, shows it; the reference is placed by the fit instead."""
    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER, transfer_reference

    sharp, _, reference, truth = lopsided
    wide = replace(DEFAULT_TRANSFER, prior_max_px=20.0)  # 6.7 px here: near enough to try
    off = truth.copy()
    off[1, 2] += 1.5
    plain = transfer_reference(sharp, reference, wide)
    np.testing.assert_array_equal(transfer_reference(sharp, reference, wide, off), plain)
    always = replace(wide, prior_structure_margin=2.0)  # the prior kept whatever it shows
    misplaced = transfer_reference(sharp, reference, always, off)
    assert _psnr(plain, sharp) > _psnr(misplaced, sharp) + 5

def test_the_motion_between_two_sharp_frames_is_fitted(lopsided):
    from refdeblur_video.refine.transfer import fitted_homography

    sharp, _, reference, truth = lopsided
    found = fitted_homography(sharp, reference)
    assert found is not None
    assert homography_distance(found, truth, *sharp.shape[:2]) < 0.3


def test_the_torch_transfer_warps_by_a_prior_as_the_opencv_one_does(lopsided):
    import torch

    from refdeblur_video.refine.torch_transfer import _backward, _cues, fine_detail
    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER, transfer_cues

    sharp, output, reference, truth = lopsided
    # the torch flow's fit on this output errs by more than the OpenCV one's: a wide
    # margin, so that both take the prior
    settings = replace(DEFAULT_TRANSFER, prior_max_px=60.0)
    target, source = (torch.from_numpy(image).permute(2, 0, 1)[None]
                      for image in (output, reference))
    backward = _backward(target, source, 96)

    def aligned(priors) -> np.ndarray:
        found = _cues(target, source, 96, settings, fine_detail(target, 1 / 3), lambda: backward,
                       priors)
        return found[0][0].permute(1, 2, 0).numpy()

    inner = (slice(16, -16), slice(16, -16))
    cpu = transfer_cues(output, reference, settings, truth).aligned
    assert _psnr(cpu[inner], sharp[inner]) > 40
    assert _psnr(aligned([truth])[inner], sharp[inner]) > 40
    assert _psnr(aligned([None])[inner], sharp[inner]) < 30


def test_the_refine_step_guides_both_references_by_the_motion_between_them():
    from refdeblur_video.image_files import from_float
    from refdeblur_video.refine import Refiner
    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER

    # a camera panning at constant velocity: the reference 6 px one way, the second 6 px
    # the other; the network's output sits 1 px off the frame's true place (3 px at 720p)
    h, w, margin = 240, 320, 24
    big = _scene(7, (h + 2 * margin, w + 2 * margin))

    def at(dx: int) -> np.ndarray:
        return big[margin:margin + h, margin + dx:margin + dx + w]

    sharp, reference, second = at(0), at(-6), at(6)
    output = cv2.GaussianBlur(at(-1), (0, 0), 1.0)
    blurry = from_float(output, np.uint8)
    refine = Refiner(DEFAULT_TRANSFER)
    references = [from_float(image, np.uint8) for image in (reference, second)]
    guided = refine(output, blurry, *references, 0.5)
    plain = refine(output, blurry, *references)
    truth = from_float(sharp, np.uint8)
    assert _psnr(guided / 255.0, truth / 255.0) > _psnr(plain / 255.0, truth / 255.0) + 2
    # an unrelated second reference: whatever motion its pair gives, the output's own fit
    # vouches for none of it
    unrelated = from_float(_scene(9, (h, w)), np.uint8)
    first = refine(output, blurry, references[0])
    for fraction in (None, 0.5):
        fused = refine(output, blurry, references[0], unrelated, fraction)
        assert _psnr(fused / 255.0, truth / 255.0) > _psnr(first / 255.0, truth / 255.0) - 0.3
    # only the first reference transferred from (--one-reference): the pair still places it
    single = Refiner(DEFAULT_TRANSFER, both_sides=False)
    guided_one = single(output, blurry, *references, 0.5)
    assert _psnr(guided_one / 255.0, truth / 255.0) > _psnr(
        single(output, blurry, *references) / 255.0, truth / 255.0) + 2
    # with no prior in the settings the time changes nothing
    off = Refiner(replace(DEFAULT_TRANSFER, prior_max_px=0.0))
    np.testing.assert_array_equal(off(output, blurry, *references, 0.5),
                                  off(output, blurry, *references))


def test_the_motion_prior_is_an_option_of_the_command_and_the_library():
    from refdeblur_video.cli import build_parser
    from refdeblur_video.pipeline.options import DeblurOptions
    from refdeblur_video.refine import transfer_for
    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER

    assert DEFAULT_TRANSFER.prior_max_px > 0
    for argv, limit in (([], DEFAULT_TRANSFER.prior_max_px), (["--no-motion-prior"], 0.0)):
        args = vars(build_parser().parse_args(["in.mp4", "out.mp4", *argv]))
        args.pop("input"), args.pop("output")
        options = DeblurOptions.from_kwargs(**args)
        assert transfer_for(object(), motion_prior=options.motion_prior).prior_max_px == limit


def _write_lossless(path, frames: list[np.ndarray]) -> None:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "bgr0"
        for image in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())


def test_a_video_panning_steadily_gets_its_blurry_frame_placed_by_the_motion(tmp_path):
    """The whole command on a real file: a camera panning 4 px a frame, frame 3 smeared
    toward where the camera came from (its blur's centroid 0.8 px behind its time). With
    the network an identity (an untrained one), what the transfer places decides."""
    import torch

    from refdeblur_video.image_files import from_float
    from refdeblur_video.model import InferenceSettings, ModelConfig, RefDeblurNet
    from refdeblur_video.model.restorer import Restorer
    from refdeblur_video.pipeline import deblur_video
    from refdeblur_video.video.reader import open_reader

    h, w, step = 240, 320, 4
    big = _scene(11, (h, w + 8 * step))

    def at(x: int) -> np.ndarray:
        return big[:, x:x + w]

    frames = [from_float(at(step * i), np.uint8) for i in range(7)]
    truth = frames[3]
    frames[3] = from_float((2 * at(3 * step) + 2 * at(3 * step - 1) + at(3 * step - 2)) / 5,
                           np.uint8)
    source = tmp_path / "pan.mkv"
    _write_lossless(source, frames)
    config = ModelConfig(name="tiny", channels=(8, 8, 8), n_resblocks=1,
                         ref_channels=(4, 4, 4), phi_channels=(4, 4, 4), sffm_hidden=(4, 4))
    network = RefDeblurNet(config, InferenceSettings(match_radius=2).matching).eval()
    restorer = Restorer(network, torch.device("cpu"), trained=True)
    scores = {}
    for prior in (True, False):
        out = tmp_path / f"out_{prior}.mkv"
        summary = deblur_video(source, out, restorer, codec="ffv1", quiet=True,
                               motion_prior=prior)
        assert [r.index for r in summary.records if r.blurry] == [3]
        assert summary.records[3].second_reference >= 0
        with open_reader(out) as reader:
            restored = [f.image for f in reader]
        scores[prior] = _psnr(restored[3] / 255.0, truth / 255.0)
    assert scores[True] > scores[False] + 1.0


def test_a_frame_a_third_of_the_way_is_placed_a_third_of_the_way():
    from refdeblur_video.image_files import from_float
    from refdeblur_video.refine import Refiner
    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER

    # the reference 4 px back, the second 8 px ahead: the frame is a third of the way; the
    # time taken the wrong way round (two thirds) would place both references 4 px off
    h, w, margin = 240, 320, 24
    big = _scene(8, (h + 2 * margin, w + 2 * margin))

    def at(dx: int) -> np.ndarray:
        return big[margin:margin + h, margin + dx:margin + dx + w]

    output = cv2.GaussianBlur(at(-1), (0, 0), 1.0)  # 1 px off, as a lopsided blur leaves it
    blurry = from_float(output, np.uint8)
    references = [from_float(at(dx), np.uint8) for dx in (-4, 8)]
    truth = from_float(at(0), np.uint8)
    refine = Refiner(DEFAULT_TRANSFER)
    scores = {fraction: _psnr(refine(output, blurry, *references, fraction) / 255.0,
                              truth / 255.0) for fraction in (None, 1 / 3, 2 / 3)}
    assert scores[1 / 3] > scores[None] + 2
    assert scores[1 / 3] > scores[2 / 3] + 2


def test_frames_between_the_same_sharp_pair_fit_its_motion_once(monkeypatch):
    import refdeblur_video.refine.step as step
    from refdeblur_video.image_files import from_float
    from refdeblur_video.refine import Refiner

    big = _scene(12, (96, 160))
    first, second = (from_float(big[:, dx:dx + 128], np.uint8) for dx in (0, 8))
    calls = []
    original = step.fitted_homography

    def counting(a, b, settings):
        calls.append((a is first, b is second))
        return original(a, b, settings)

    monkeypatch.setattr(step, "fitted_homography", counting)
    refine = Refiner()
    output = big[:, 2:130].copy()
    for fraction in (0.25, 0.5, 0.75):  # three blurry frames between one sharp pair
        refine(output, from_float(output, np.uint8), first, second, fraction)
    assert calls == [(True, True)]
    refine(output, from_float(output, np.uint8), second, first, 0.5)  # another pair
    assert len(calls) == 2


def test_the_torch_transfer_lets_a_misplacing_prior_give_way_on_a_sharp_output(lopsided):
    import torch

    from refdeblur_video.refine.torch_transfer import transfer_reference_torch
    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER

    sharp, output, reference, truth = lopsided
    wide = replace(DEFAULT_TRANSFER, prior_max_px=60.0)
    off = truth.copy()
    off[1, 2] += 1.5

    def fused(image, prior, settings=wide) -> np.ndarray:
        tensors = (torch.from_numpy(x).permute(2, 0, 1)[None] for x in (image, reference))
        return transfer_reference_torch(*tensors, settings, [prior])[0].permute(1, 2, 0).numpy()

    plain = fused(sharp, None)
    np.testing.assert_allclose(fused(sharp, off), plain, atol=1e-6)  # the fit, as the CPU's
    misplaced = fused(sharp, off, replace(wide, prior_structure_margin=2.0))
    assert _psnr(plain, sharp) > _psnr(misplaced, sharp) + 5
    # a blurry (smeared) output keeps the prior: it cannot place the reference itself
    assert not np.allclose(fused(output, truth), fused(output, None), atol=1e-3)

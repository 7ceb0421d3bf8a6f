"""The flow-guided reference transfer after the network (refdeblur_video/refine/transfer.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from refdeblur_video.evaluate.metrics import psnr
from refdeblur_video.refine.transfer import (
    flow_align,
    transfer_confidence,
    transfer_reference,
)

H, W = 144, 192
SHIFT = (3, -4)  # (dy, dx) of the scene between the reference and the frame


def _scene(seed: int, size: tuple[int, int] = (H + 16, W + 16)) -> np.ndarray:
    """A textured RGB image in [0, 1]: smooth noise at two scales plus hard-edged boxes."""
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.random((*size, 3), dtype=np.float32), (0, 0), 1.2) * 0.6
    image += cv2.resize(rng.random((size[0] // 16, size[1] // 16, 3), dtype=np.float32),
                        size[::-1], interpolation=cv2.INTER_CUBIC) * 0.4
    for _ in range(12):
        y, x = rng.integers(0, size[0] - 20), rng.integers(0, size[1] - 20)
        image[y:y + rng.integers(6, 20), x:x + rng.integers(6, 20)] = rng.random(3)
    return np.clip(image, 0, 1)


@pytest.fixture(scope="module")
def frames() -> dict[str, np.ndarray]:
    big = _scene(0)
    sharp = big[8:8 + H, 8:8 + W]
    dy, dx = SHIFT
    reference = big[8 - dy:8 - dy + H, 8 - dx:8 - dx + W]  # the scene moved by SHIFT
    soft = cv2.GaussianBlur(sharp, (0, 0), 1.5)  # what a network that half-deblurred gives
    return {"sharp": sharp, "reference": reference, "soft": soft,
            "blurrier": cv2.GaussianBlur(reference, (0, 0), 3.0),
            "unrelated": _scene(1)[8:8 + H, 8:8 + W]}


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return psnr(np.round(a * 255).astype(np.uint8), np.round(b * 255).astype(np.uint8))


def test_aligned_reference_restores_the_detail(frames):
    aligned, confidence = transfer_confidence(frames["soft"], frames["reference"])
    inner = (slice(12, -12), slice(12, -12))
    # the flow undoes the shift: the aligned reference is the sharp frame
    assert _psnr(aligned[inner], frames["sharp"][inner]) > 35
    assert confidence[inner].mean() > 0.8
    fused = transfer_reference(frames["soft"], frames["reference"])
    assert _psnr(fused, frames["sharp"]) > _psnr(frames["soft"], frames["sharp"]) + 6


@pytest.mark.parametrize("smoothing", [0.0, 8.0])
def test_blurrier_or_unrelated_reference_changes_little(frames, smoothing):
    from dataclasses import replace

    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER

    # aligned on the low-passed output too: the sharpness cue still compares the
    # reference with the output as it is
    settings = replace(DEFAULT_TRANSFER, align_smoothing_px=smoothing)
    soft, sharp = frames["soft"], frames["sharp"]
    before = _psnr(soft, sharp)
    for name in ("blurrier", "unrelated"):
        aligned, confidence = transfer_confidence(soft, frames[name], settings)
        assert confidence.mean() < 0.1, name
        fused = transfer_reference(soft, frames[name], settings)
        assert _psnr(fused, sharp) > before - 0.3, name


def test_blurred_confidence_stays_local_and_inside_the_reference(frames):
    from dataclasses import replace

    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER, transfer_cues

    soft, sharp = frames["soft"], frames["sharp"]
    half = W // 2
    reference = frames["reference"].copy()
    reference[:, half:] = frames["unrelated"][:, half:]  # the right half matches nothing
    assert DEFAULT_TRANSFER.confidence_blur_px > 0
    fused = transfer_reference(soft, reference)
    unblurred = transfer_reference(soft, reference,
                                   replace(DEFAULT_TRANSFER, confidence_blur_px=0))
    left, right = (slice(12, -12), slice(12, half - 40)), (slice(12, -12), slice(half + 40, -12))
    assert _psnr(fused[left], sharp[left]) > _psnr(soft[left], sharp[left]) + 5
    assert _psnr(fused[right], sharp[right]) > _psnr(soft[right], sharp[right]) - 0.3
    assert not np.array_equal(fused, unblurred)  # the blur is applied
    # ... and stays local: well inside either half it changes next to nothing
    assert np.abs(fused[left] - unblurred[left]).mean() < 0.01
    assert np.abs(fused[right] - unblurred[right]).mean() < 0.01
    outside = transfer_cues(soft, reference).inside == 0
    assert outside.any()  # the shift moves some pixels out of the reference
    unanchored = transfer_reference(soft, reference, replace(DEFAULT_TRANSFER, level_anchor=0))
    assert np.array_equal(unanchored[outside], soft[outside])
    # the brightness anchor moves them by one shift, at most level_anchor
    moved = fused[outside] - soft[outside]
    assert np.abs(moved).max() <= DEFAULT_TRANSFER.level_anchor + 1e-6


def _copied_in_the_wrong_place(frames: dict[str, np.ndarray]) -> np.ndarray:
    """The soft output with reference detail copied 2 px off (as a network whose match moves
    whole 4 x 4 blocks leaves it)."""
    big = _scene(0)
    wrong = big[10:10 + H, 6:6 + W]
    return np.clip(frames["soft"] + wrong - cv2.GaussianBlur(wrong, (0, 0), 1.5), 0, 1)


def moving_object_scene() -> dict[str, np.ndarray]:
    """The scene of :func:`frames` with a textured square that moves 8 px each way against
    the camera between the reference and the frame: ``sharp``, ``soft`` (the output),
    ``reference``, ``object`` (the square's pixels in the frame) and ``rest`` (the frame
    away from the square and the borders)."""
    big, square = _scene(0), _scene(3)[20:76, 20:76]
    dy, dx = SHIFT
    sharp = big[8:8 + H, 8:8 + W].copy()
    reference = big[8 - dy:8 - dy + H, 8 - dx:8 - dx + W].copy()
    y, x, size = 40, 100, len(square)
    sharp[y:y + size, x:x + size] = square
    reference[y - dy + 8:y - dy + 8 + size, x - dx - 8:x - dx - 8 + size] = square
    inside = np.zeros((H, W), bool)
    inside[y:y + size, x:x + size] = True
    rest = np.zeros((H, W), bool)
    rest[12:-12, 12:-12] = True
    rest[y - 16:y + size + 16, x - 16:x + size + 16] = False
    return {"sharp": sharp, "soft": cv2.GaussianBlur(sharp, (0, 0), 1.5),
            "reference": reference, "object": inside, "rest": rest}


@pytest.mark.parametrize("checked_by", ["forward", "round_trip"])
def test_a_homography_alignment_keeps_an_object_moving_against_the_camera_out(
        checked_by, monkeypatch):
    """The homography follows the camera; where the scene does not, the dense flow strays
    from it (``forward``: no backward flow is computed) and the round trip does not return
    (``round_trip``): the object keeps the output, the rest gets the reference."""
    from dataclasses import replace

    import refdeblur_video.refine.transfer as transfer

    scene = moving_object_scene()
    soft, sharp, reference = scene["soft"], scene["sharp"], scene["reference"]
    settings = replace(transfer.DEFAULT_TRANSFER, homography_consistency=checked_by)
    flows = []
    real = transfer._flow
    monkeypatch.setattr(transfer, "_flow", lambda *args: flows.append(1) or real(*args))
    cues = transfer.transfer_cues(soft, reference, settings)
    assert len(flows) == (1 if checked_by == "forward" else 2)
    assert cues.consistency[scene["object"]].mean() < 0.3
    assert cues.consistency[scene["rest"]].mean() > 0.8
    fused = transfer.transfer_reference(soft, reference, settings)
    on, rest = scene["object"], scene["rest"]
    assert _psnr(fused[on], sharp[on]) > _psnr(soft[on], sharp[on]) - 0.3
    assert _psnr(fused[rest], sharp[rest]) > _psnr(soft[rest], sharp[rest]) + 8


def test_the_dense_flow_alignment_is_still_checked_by_the_round_trip(frames, monkeypatch):
    from dataclasses import replace

    import refdeblur_video.refine.transfer as transfer

    flows = []
    real = transfer._flow
    monkeypatch.setattr(transfer, "_flow", lambda *args: flows.append(1) or real(*args))
    by_flow = replace(transfer.DEFAULT_TRANSFER, alignment="flow")
    cues = transfer.transfer_cues(frames["soft"], frames["reference"], by_flow)
    assert len(flows) == 2  # forward and backward
    inner = (slice(12, -12), slice(12, -12))
    assert cues.consistency[inner].mean() > 0.8
    # an unrelated reference fits no homography: the dense flow aligns, and its round trip
    # (not its distance from itself, which is nil) keeps it out
    flows.clear()
    cues = transfer.transfer_cues(frames["soft"], frames["unrelated"])
    assert len(flows) == 2
    assert cues.consistency[inner].mean() < 0.5


def test_aligning_on_the_low_passed_output_too_ignores_copied_detail(frames):
    from dataclasses import replace

    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER, transfer_cues

    copied, sharp, reference = _copied_in_the_wrong_place(frames), frames["sharp"], \
        frames["reference"]
    # 8 px at 720p: 2 px on this 144-line frame; the flows on an output with copies follow
    # them, and so does the homography fitted to them: a backward flow on the low-passed
    # output checks both alignments (as the refine step sets it for such a model)
    round_trip = replace(DEFAULT_TRANSFER, homography_consistency="round_trip")
    smoothed = replace(round_trip, align_smoothing_px=8.0)
    as_is = transfer_reference(copied, reference)
    assert _psnr(as_is, sharp) < _psnr(copied, sharp) + 1  # the flow follows the copies
    inner = (slice(12, -12), slice(12, -12))
    # on the low-passed output the flow finds the scene: the reference aligned there is the
    # sharp frame, not the copies
    low = cv2.GaussianBlur(copied, (0, 0), 8.0 * 0.25)  # sigma scaled to the frame's lines
    plain, on_low = (transfer_cues(image, reference, round_trip) for image in (copied, low))
    assert _psnr(on_low.aligned[inner], sharp[inner]) > \
        _psnr(plain.aligned[inner], sharp[inner]) + 4
    # both alignments are made, and per pixel the more trusted one is kept: each pixel's
    # aligned reference is one of the two, and the low-passed one wins over much of the frame
    ours = transfer_cues(copied, reference, smoothed)
    from_plain = np.isclose(ours.aligned, plain.aligned, atol=1e-6).all(axis=-1)
    from_low = np.isclose(ours.aligned, on_low.aligned, atol=1e-6).all(axis=-1)
    assert (from_plain | from_low).all()
    assert (from_low & ~from_plain).mean() > 0.2
    # where the low-passed alignment wins, its flow, agreement and consistency (one backward
    # flow on the low-passed output serves both alignments) are those of the low-passed output
    only_low = from_low & ~from_plain
    for name in ("agreement", "consistency", "inside"):
        assert np.allclose(getattr(ours, name)[only_low], getattr(on_low, name)[only_low],
                           atol=1e-6), name
    assert _psnr(ours.aligned[inner], sharp[inner]) > \
        _psnr(plain.aligned[inner], sharp[inner]) + 2
    assert _psnr(transfer_reference(copied, reference, smoothed), sharp) > \
        _psnr(as_is, sharp) + 0.5
    # where the unfiltered alignment wins, its consistency is checked against the one
    # backward flow, computed on the low-passed output (on the output as it is, the
    # backward flow follows the copies too)
    from refdeblur_video.refine.transfer import (
        _cues_for_patch,
        _gray8,
        _Pair,
        usable_patch_sizes,
    )

    only_plain = from_plain & ~from_low
    checked = _Pair(copied, reference, round_trip)
    checked.backward_grey = _gray8(low), checked.grey[1]
    expected = _cues_for_patch(checked, usable_patch_sizes(DEFAULT_TRANSFER.patch_sizes, H, W)[0])
    assert np.allclose(ours.consistency[only_plain], expected.consistency[only_plain],
                       atol=1e-6)
    assert not np.allclose(ours.consistency[only_plain], plain.consistency[only_plain],
                           atol=1e-3)
    # the sharpness cue compares with the output as it is, not the low-passed one
    assert np.allclose(ours.sharpness[from_plain & ~from_low],
                       plain.sharpness[from_plain & ~from_low], atol=1e-6)
    assert not np.allclose(ours.sharpness[from_low], on_low.sharpness[from_low], atol=1e-3)
    # on a clean output it still finds the detail
    assert _psnr(transfer_reference(frames["soft"], reference, smoothed), sharp) > \
        _psnr(frames["soft"], sharp) + 6
    weight = cv2.GaussianBlur(ours.confidence, (0, 0), 4.0 * 0.25) * ours.inside
    weight = weight[..., None] * ours.structure
    expected = np.clip(copied + weight * (ours.aligned - copied), 0, 1)
    unanchored = replace(smoothed, level_anchor=0.0)
    assert np.allclose(transfer_reference(copied, reference, unanchored), expected, atol=1e-5)


def test_the_second_alignment_costs_one_forward_flow(frames, monkeypatch):
    from dataclasses import replace

    import refdeblur_video.refine.transfer as transfer

    calls = []

    def counted(target, source, *args):
        calls.append(target)
        return real(target, source, *args)

    real = transfer._flow
    monkeypatch.setattr(transfer, "_flow", counted)
    round_trip = replace(transfer.DEFAULT_TRANSFER, homography_consistency="round_trip")
    transfer.transfer_cues(frames["soft"], frames["reference"], round_trip)
    assert len(calls) == 2  # forward and backward
    calls.clear()
    smoothed = replace(round_trip, align_smoothing_px=8.0)
    transfer.transfer_cues(frames["soft"], frames["reference"], smoothed)
    assert len(calls) == 3  # two forward flows, one backward flow


def test_identical_images_are_a_fixed_point(frames):
    fused = transfer_reference(frames["sharp"], frames["sharp"])
    assert np.abs(fused - frames["sharp"]).max() < 1e-3


def test_the_refine_step_transfers_only_from_a_real_reference(frames):
    from refdeblur_video.image_files import from_float
    from refdeblur_video.model import load_model
    from refdeblur_video.refine import Refiner

    network = load_model("default", "cpu", amp=False)
    blurry = from_float(cv2.GaussianBlur(frames["sharp"], (0, 0), 2.0), np.uint8)
    reference = from_float(frames["reference"], np.uint8)
    (out,), (used,) = network.restore_floats([blurry], [reference])
    assert used
    plain = from_float(out, np.uint8)
    refine, rounding_only = Refiner(), Refiner(None)
    assert np.array_equal(rounding_only(out, blurry, reference), plain)
    # no reference, or the frame as its own: nothing to transfer, the network's output is kept
    assert np.array_equal(refine(out, blurry, None), plain)
    assert np.array_equal(refine(out, blurry, blurry.copy()), plain)
    sharp = frames["sharp"]
    refined = refine(out, blurry, reference).astype(np.float32) / 255
    assert _psnr(refined, sharp) > _psnr(plain.astype(np.float32) / 255, sharp) + 3


def test_cli_transfers_by_default_and_no_transfer_leaves_it_out(frames, tmp_path):
    from refdeblur_video.cli import main
    from refdeblur_video.image_files import read_image, write_image

    def save(name: str, image: np.ndarray):
        write_image(tmp_path / name, np.round(image * 255).astype(np.uint8))
        return str(tmp_path / name)

    blurry = save("blurry.png", cv2.GaussianBlur(frames["sharp"], (0, 0), 2.0))
    reference = save("reference.png", frames["reference"])
    truth = np.round(frames["sharp"] * 255).astype(np.uint8)
    scores = {}
    for name, extra in (("with", []), ("without", ["--no-transfer"])):
        out = tmp_path / f"{name}.png"
        assert main([blurry, str(out), "--ref", reference, "--quiet", "--fp32", *extra]) == 0
        scores[name] = psnr(read_image(out), truth)
    assert scores["with"] > scores["without"] + 3


def test_one_reference_is_an_option_of_the_command_and_the_library():
    from refdeblur_video.cli import build_parser
    from refdeblur_video.pipeline.options import DeblurOptions

    for argv, both_sides in (([], True), (["--one-reference"], False)):
        args = vars(build_parser().parse_args(["in.mp4", "out.mp4", *argv]))
        args.pop("input"), args.pop("output")
        assert DeblurOptions.from_kwargs(**args).both_sides is both_sides


def _camera_turned(h: int, w: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sharp frame, reference, a 3 x 3 homography between them, reference pixel -> frame
    pixel): the reference is the scene seen by a camera turned by 1.5 degrees, zoomed by
    2 % and moved, with a little perspective."""
    margin = 32
    big = _scene(seed, (h + 2 * margin, w + 2 * margin))
    centre = np.array([[1, 0, -(w / 2 + margin)], [0, 1, -(h / 2 + margin)], [0, 0, 1]])
    a = np.deg2rad(1.5)
    turn = np.array([[1.02 * np.cos(a), -1.02 * np.sin(a), 5.0],
                     [1.02 * np.sin(a), 1.02 * np.cos(a), -3.0], [1e-5, 0.0, 1.0]])
    move = np.linalg.inv(centre) @ turn @ centre  # frame pixel -> reference pixel
    reference = cv2.warpPerspective(big, move, big.shape[1::-1], flags=cv2.INTER_CUBIC,
                                    borderMode=cv2.BORDER_REFLECT)
    inner = (slice(margin, margin + h), slice(margin, margin + w))
    shift = np.array([[1, 0, margin], [0, 1, margin], [0, 0, 1]], np.float64)
    to_frame = np.linalg.inv(shift) @ np.linalg.inv(move) @ shift
    return big[inner], reference[inner], to_frame


def _flow_of(homography: np.ndarray, h: int, w: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pixel xs, pixel ys, the flow p -> homography(p) - p) over an h x w frame, by
    OpenCV's own projection."""
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    points = np.stack([xs, ys], -1).reshape(-1, 1, 2)
    moved = cv2.perspectiveTransform(points, homography).reshape(h, w, 2)
    return xs, ys, moved - np.stack([xs, ys], -1)


def test_the_homography_of_a_flow_is_found_despite_outliers():
    from refdeblur_video.refine.transfer import homography_maps, homography_of_flow

    h, w = 120, 160
    _, _, truth = _camera_turned(h, w, 3)
    xs, ys, flow = _flow_of(truth, h, w)
    target = flow + np.stack([xs, ys], -1)
    rng = np.random.default_rng(0)
    spoiled = rng.random((h, w)) < 0.3  # a third of the vectors point anywhere
    flow[spoiled] = rng.uniform(-12, 12, (int(spoiled.sum()), 2))
    found = homography_of_flow(flow, spacing=4, ransac_px=0.5)
    assert found is not None
    map_x, map_y = homography_maps(found, (xs, ys))
    error = np.hypot(map_x - target[..., 0], map_y - target[..., 1])
    assert error.max() < 0.05
    assert homography_of_flow(flow[:10, :10], spacing=8, ransac_px=0.5) is None  # too few
    # a flow that no homography explains (every vector random) is refused at a quarter
    noise = rng.uniform(-12, 12, flow.shape).astype(np.float32)
    assert homography_of_flow(noise, spacing=4, ransac_px=0.5) is not None
    assert homography_of_flow(noise, spacing=4, ransac_px=0.5, min_inliers=0.25) is None


def test_a_homography_that_folds_the_frame_is_refused():
    from refdeblur_video.refine.transfer import homography_maps

    xs, ys = np.meshgrid(np.arange(64, dtype=np.float32), np.arange(48, dtype=np.float32))
    assert homography_maps(np.eye(3), (xs, ys)) is not None
    horizon = np.array([[1.0, 0, 0], [0, 1, 0], [-1 / 32, 0, 1]])  # infinity at x = 32
    assert homography_maps(horizon, (xs, ys)) is None


def test_the_torch_homography_flow_is_the_opencv_one():
    import torch

    from refdeblur_video.refine.torch_transfer import _fitted_homography, _flow_of_homography
    from refdeblur_video.refine.transfer import (
        DEFAULT_TRANSFER,
        homography_maps,
        homography_of_flow,
    )

    h, w = 120, 160
    _, _, known = _camera_turned(h, w, 3)
    xs, ys, flow = _flow_of(known, h, w)
    def _homography_flow(forward, settings, scale):
        return _flow_of_homography(_fitted_homography(forward, settings, scale), forward)

    found = _homography_flow(torch.from_numpy(flow).permute(2, 0, 1), DEFAULT_TRANSFER, 1.0)
    assert found is not None
    np.testing.assert_allclose(found.permute(1, 2, 0).numpy(), flow, atol=0.01)
    fitted = homography_of_flow(flow, DEFAULT_TRANSFER.homography_grid_px, 1.0)
    map_x, _ = homography_maps(fitted, (xs, ys))
    np.testing.assert_allclose(map_x - xs, flow[..., 0], atol=0.01)
    # a random flow fits no camera motion: the torch path refuses it as the OpenCV one does
    noise = torch.from_numpy(np.random.default_rng(1).uniform(-9, 9, (2, h, w)).astype(np.float32))
    assert _homography_flow(noise, DEFAULT_TRANSFER, 1.0) is None


def test_the_homography_aligns_a_turned_camera_through_blur_better_than_the_flow():
    from dataclasses import replace

    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER, transfer_cues

    assert DEFAULT_TRANSFER.alignment == "homography"
    sharp, reference, _ = _camera_turned(240, 320, 3)
    soft = cv2.GaussianBlur(sharp, (0, 0), 3.0)  # a badly blurred network output
    inner = (slice(20, -20), slice(20, -20))
    scores = {}
    for alignment in ("flow", "homography"):
        settings = replace(DEFAULT_TRANSFER, alignment=alignment)
        aligned = transfer_cues(soft, reference, settings).aligned
        fused = transfer_reference(soft, reference, settings)
        scores[alignment] = _psnr(aligned[inner], sharp[inner]), _psnr(fused, sharp)
    assert scores["homography"][0] > scores["flow"][0] + 0.3
    assert scores["homography"][1] > scores["flow"][1] + 0.8
    assert scores["homography"][1] > _psnr(soft, sharp) + 1.5


def test_an_unknown_alignment_is_refused():
    from refdeblur_video.refine.transfer import TransferSettings

    with pytest.raises(ValueError, match="alignment"):
        TransferSettings(alignment="optical")


def test_flow_alignment_is_an_option_of_the_command_and_the_library():
    from refdeblur_video.cli import build_parser
    from refdeblur_video.pipeline.options import DeblurOptions
    from refdeblur_video.refine import transfer_for

    for argv, alignment in (([], "homography"), (["--flow-alignment"], "flow")):
        args = vars(build_parser().parse_args(["in.mp4", "out.mp4", *argv]))
        args.pop("input"), args.pop("output")
        options = DeblurOptions.from_kwargs(**args)
        assert transfer_for(object(), options.flow_alignment).alignment == alignment


def _dis_coarsest_scale(height: int, width: int, patch: int) -> int:
    """OpenCV DIS's own choice of its coarsest pyramid level (dis_flow.cpp)."""
    import math

    return min(int(math.log2(max(height, width) / (4.0 * patch)) + 0.5),
               int(math.log2(min(height, width) / patch)))


@pytest.mark.parametrize("height,width", [(720, 1280), (272, 408), (400, 600), (144, 192),
                                          (64, 96), (30, 200), (20, 20)])
def test_patch_sizes_fit_the_flow_pyramid_of_any_frame(height, width):
    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER, usable_patch_sizes

    sizes = usable_patch_sizes(DEFAULT_TRANSFER.patch_sizes, height, width)
    assert all(size % 4 == 0 and size >= 8 for size in sizes)
    # DIS (finest scale 1) must have a level at or below half resolution for each of them
    assert all(_dis_coarsest_scale(height, width, size) >= 1 for size in sizes)
    if (height, width) == (720, 1280):
        assert sizes == sorted(DEFAULT_TRANSFER.patch_sizes)
    rng = np.random.default_rng(0)
    restored, reference = rng.random((2, height, width, 3), dtype=np.float32)
    fused = transfer_reference(restored, reference)  # no crash, no memory corruption
    assert fused.shape == restored.shape
    if not sizes:  # too small to align: the output is kept
        assert np.array_equal(fused, restored)


@pytest.mark.parametrize("height,width,level", [(720, 1280, 0), (1080, 1920, 0),
                                                (1440, 2560, 1), (2160, 3840, 1),
                                                (4320, 7680, 2), (272, 640, 0)])
def test_forward_flows_run_at_full_resolution_up_to_1080_lines(height, width, level):
    from refdeblur_video.refine.transfer import (
        DEFAULT_TRANSFER,
        forward_finest_scale,
        usable_patch_sizes,
    )

    finest = forward_finest_scale(min(height, width), DEFAULT_TRANSFER.flow_max_lines)
    assert finest == level
    assert min(height, width) / 2**finest <= DEFAULT_TRANSFER.flow_max_lines
    # DIS needs a pyramid level at or below its finest scale for every patch size
    for size in usable_patch_sizes(DEFAULT_TRANSFER.patch_sizes, height, width):
        assert _dis_coarsest_scale(height, width, size) >= finest


def test_forward_finest_scale_is_capped_by_the_pyramid_of_large_square_frames():
    """1081 x 1081 with flows at most 540 lines: finest scale 2 would be past DIS's
    coarsest level for patch 96 (1), which crashes OpenCV; the transfer caps it."""
    from dataclasses import replace

    from refdeblur_video.refine.transfer import (
        DEFAULT_TRANSFER,
        dis_coarsest_scale,
        forward_finest_scale,
    )

    settings = replace(DEFAULT_TRANSFER, flow_max_lines=540, patch_sizes=(96,))
    assert forward_finest_scale(1081, 540) == 2
    assert dis_coarsest_scale(1081, 1081, 96) == _dis_coarsest_scale(1081, 1081, 96) == 1
    big = cv2.resize(_scene(3), (1081, 1081), interpolation=cv2.INTER_CUBIC)
    moved = np.roll(big, (2, -3), axis=(0, 1))
    fused = transfer_reference(big, moved, settings)  # no crash, no memory corruption
    assert fused.shape == big.shape


def test_one_backward_flow_can_serve_every_alignment(frames):
    """``backward_patch``: one backward flow for the consistency check of all alignments;
    on a plain shift it finds the detail as well as one backward flow per alignment."""
    from dataclasses import replace

    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER

    soft, sharp, reference = frames["soft"], frames["sharp"], frames["reference"]
    own = replace(DEFAULT_TRANSFER, patch_sizes=(32, 64), backward_patch=0)
    shared = replace(own, backward_patch=48)
    gains = [_psnr(transfer_reference(soft, reference, s), sharp) - _psnr(soft, sharp)
             for s in (own, shared)]
    assert gains[1] > 6 and abs(gains[1] - gains[0]) < 1.0


@pytest.mark.parametrize("stride", [0.25, 0.5, 1.0])
def test_forward_stride_is_a_share_of_the_patch(frames, stride):
    from dataclasses import replace

    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER

    settings = replace(DEFAULT_TRANSFER, forward_stride=stride)
    fused = transfer_reference(frames["soft"], frames["reference"], settings)
    assert _psnr(fused, frames["sharp"]) > _psnr(frames["soft"], frames["sharp"]) + 6


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.uint16])
def test_flow_align_moves_the_reference_onto_its_frame(frames, dtype):
    def typed(image: np.ndarray) -> np.ndarray:
        if dtype == np.float32:
            return image.astype(np.float32)
        return np.round(image * np.iinfo(dtype).max).astype(dtype)

    aligned = flow_align(typed(frames["soft"]), typed(frames["reference"]))
    assert aligned.dtype == dtype and aligned.shape == frames["reference"].shape
    as_float = aligned.astype(np.float32) / (1 if dtype == np.float32 else np.iinfo(dtype).max)
    inner = (slice(12, -12), slice(12, -12))
    assert _psnr(as_float[inner], frames["sharp"][inner]) > 35
    assert _psnr(frames["reference"][inner], frames["sharp"][inner]) < 25


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_homography_align_moves_the_reference_onto_its_frame_and_leaves_another_scene(
        frames, dtype):
    from refdeblur_video.refine.transfer import homography_align

    def typed(image: np.ndarray) -> np.ndarray:
        return image.astype(np.float32) if dtype == np.float32 else np.round(
            image * 255).astype(np.uint8)

    aligned = homography_align(typed(frames["soft"]), typed(frames["reference"]))
    assert aligned.dtype == dtype and aligned.shape == frames["reference"].shape
    as_float = aligned.astype(np.float32) / (1 if dtype == np.float32 else 255)
    inner = (slice(12, -12), slice(12, -12))
    assert _psnr(as_float[inner], frames["sharp"][inner]) > 35
    assert _psnr(frames["reference"][inner], frames["sharp"][inner]) < 25
    other = typed(frames["unrelated"])
    assert np.array_equal(homography_align(typed(frames["soft"]), other), other)


def test_a_reference_is_placed_only_where_the_homography_brings_it_closer(frames):
    from refdeblur_video.refine.prealign import agreement_gain_db, placed_reference

    soft, reference = frames["soft"], frames["reference"]
    placed, ok = placed_reference(soft, reference)
    assert ok and agreement_gain_db(soft, reference, placed) > 3
    # already in place: warping it again brings nothing, so it is given as it came
    unmoved = frames["sharp"]
    again, ok = placed_reference(soft, unmoved)
    assert not ok and again is unmoved
    other = frames["unrelated"]  # another scene: no homography, nothing placed
    assert placed_reference(soft, other) == (other, False)


def test_a_second_reference_fills_in_what_the_first_does_not_show(frames):
    from refdeblur_video.image_files import from_float
    from refdeblur_video.refine import Refiner

    big, half = _scene(0), W // 2
    dy, dx = SHIFT
    first = frames["reference"].copy()
    first[:, half:] = frames["unrelated"][:, half:]  # hidden in one neighbour ...
    second = big[8 + dy:8 + dy + H, 8 + dx:8 + dx + W]  # ... seen in the one on the other side
    soft, sharp = frames["soft"], frames["sharp"]
    blurry = from_float(soft, np.uint8)
    first8, second8 = from_float(first, np.uint8), from_float(second, np.uint8)
    both = Refiner()(soft, blurry, first8, second8).astype(np.float32) / 255
    one = Refiner()(soft, blurry, first8).astype(np.float32) / 255
    assert np.array_equal(Refiner(both_sides=False)(soft, blurry, first8, second8),
                          Refiner()(soft, blurry, first8))
    left, right = (slice(12, -12), slice(12, half - 40)), (slice(12, -12), slice(half + 40, -12))
    assert _psnr(both[right], sharp[right]) > _psnr(one[right], sharp[right]) + 5
    assert _psnr(both[left], sharp[left]) > _psnr(one[left], sharp[left]) - 0.3
    # the second reference is only ever added to a transfer from the first
    plain = from_float(soft, np.uint8)
    assert np.array_equal(Refiner()(soft, blurry, None, second8), plain)
    assert np.array_equal(Refiner()(soft, blurry, blurry.copy(), second8), plain)
    assert np.array_equal(Refiner(None)(soft, blurry, first8, second8), plain)


def test_a_blurrier_or_unrelated_second_reference_changes_the_first_result_little(frames):
    from refdeblur_video.image_files import from_float
    from refdeblur_video.refine import Refiner

    soft, sharp = frames["soft"], frames["sharp"]
    blurry, first = from_float(soft, np.uint8), from_float(frames["reference"], np.uint8)
    one = Refiner()(soft, blurry, first).astype(np.float32) / 255
    assert _psnr(one, sharp) > 40  # the first reference restored the frame
    for name in ("blurrier", "unrelated"):
        second = from_float(frames[name], np.uint8)
        both = Refiner()(soft, blurry, first, second).astype(np.float32) / 255
        # not put through the network's reference check: the transfer's own cues keep
        # it out (a few hundredths of a level on average, under a dB at 43 dB). Inside a
        # flat box next to an edge the blurrier reference's smeared edge reads as detail
        # the result lacks (the sharpness cue's blind spot); the homography lines that
        # edge up with the result's more exactly than the dense flow did (0.9-1.0 dB here,
        # whichever consistency check, against 0.5), an unrelated reference it keeps out
        # as before
        assert np.abs(both - one).mean() < 0.25 / 255, name
        assert _psnr(both, sharp) > _psnr(one, sharp) - (1.1 if name == "blurrier" else 0.6), name


def _noise_pan() -> dict[str, np.ndarray]:
    """Fine random texture (softened colour noise): a frame blurred along x, the same
    texture moved 3 px as the right reference, and other noise as a wrong one."""
    rng = np.random.default_rng(5)
    world = cv2.GaussianBlur(rng.random((H, W + 8, 3), dtype=np.float32), (0, 0), 1.2)
    world = (world - world.min()) / (world.max() - world.min())
    sharp, right = world[:, :W], world[:, 3:3 + W]
    return {"sharp": sharp, "blurry": cv2.blur(sharp, (9, 1)), "right": right,
            "wrong": rng.random((H, W, 3), dtype=np.float32)}


def test_a_wrong_reference_of_fine_texture_is_kept_out_and_the_right_one_transferred():
    """Low-passed, fine noise is flat grey, so that the agreement cue alone would pass
    other noise: the frame-wide structure check keeps it out."""
    scene = _noise_pan()
    blurry, sharp = scene["blurry"], scene["sharp"]
    wrong = transfer_reference(blurry, scene["wrong"])
    assert np.abs(wrong - blurry).max() < 1e-6
    right = transfer_reference(blurry, scene["right"])
    assert _psnr(right, sharp) > _psnr(blurry, sharp) + 10.0
    from dataclasses import replace

    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER

    unchecked = replace(DEFAULT_TRANSFER, shared_structure=(0.0, 0.0))  # the check off
    assert _psnr(transfer_reference(blurry, scene["wrong"], unchecked), sharp) < \
        _psnr(blurry, sharp) - 0.5


def test_shared_structure_is_a_normalised_correlation_of_the_band():
    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER, shared_structure

    scene, everywhere = _noise_pan(), np.ones((H, W), np.float32)
    image = scene["sharp"]
    assert shared_structure(image, image, everywhere, DEFAULT_TRANSFER) == pytest.approx(1.0)
    assert shared_structure(1.0 - image, image, everywhere, DEFAULT_TRANSFER) == \
        pytest.approx(-1.0, abs=1e-5)
    flat = np.full_like(image, 0.5)
    assert shared_structure(flat, image, everywhere, DEFAULT_TRANSFER) == 1.0  # nothing to tell
    # against numpy's correlation coefficient of the same band (its mean is close to 0)
    band = [cv2.GaussianBlur(x.mean(-1), (0, 0), 0.25) - cv2.GaussianBlur(x.mean(-1), (0, 0), 2)
            for x in (scene["right"], image)]
    assert shared_structure(scene["right"], image, everywhere, DEFAULT_TRANSFER) == \
        pytest.approx(np.corrcoef(band[0].ravel(), band[1].ravel())[0, 1], abs=0.02)


@pytest.mark.parametrize("other", ["right", "unrelated"])
def test_the_structure_checks_fast_path_reads_as_shared_structure(other):
    """The transfer filters each image's band once and warps the reference's band per
    placement, its coarse part low-passed at half size (720p): the correlation it decides
    by stays that of :func:`shared_structure` (warped first, then filtered at full size)."""
    from refdeblur_video.refine.transfer import (
        DEFAULT_TRANSFER,
        _inside,
        _Pair,
        _pixel_grid,
        _remap,
        shared_structure,
    )

    h, w = 720, 960
    big = _scene(4, (h + 16, w + 16))
    sharp = big[8:8 + h, 8:8 + w]
    dy, dx = SHIFT
    reference = (big[8 - dy:8 - dy + h, 8 - dx:8 - dx + w] if other == "right"
                 else _scene(5, (h, w)))
    soft = cv2.GaussianBlur(sharp, (0, 0), 2.0)
    xs, ys = _pixel_grid(h, w)
    maps = (xs + dx, ys + dy)  # places the right reference onto the frame
    inside = _inside(maps)
    structure = _Pair(soft, np.ascontiguousarray(reference), DEFAULT_TRANSFER).structure
    band, placed_inside = structure.placed(maps)
    assert np.array_equal(placed_inside, inside)
    fast = structure.correlation(band, inside)
    plain = shared_structure(_remap(np.ascontiguousarray(reference), *maps), soft, inside,
                             DEFAULT_TRANSFER)
    assert fast == pytest.approx(plain, abs=0.02)
    assert (plain > 0.5) if other == "right" else (abs(plain) < 0.1)


def test_the_output_is_brought_to_its_references_brightness_within_the_cap(frames):
    """A network output darker than the sharp frames around it (blur averaged in sRGB
    brightens less than the linear-light blur the network learnt to undo) is moved to the
    aligned reference's brightness where the reference is not blended in too; a reference
    whose brightness is far off (another exposure) moves nothing."""
    from dataclasses import replace

    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER, level_shift, transfer_cues

    soft, reference = frames["soft"], frames["reference"]
    inner = (slice(16, -16), slice(16, -16))
    off = replace(DEFAULT_TRANSFER, level_anchor=0.0)
    for levels in (-2.0, 2.5):
        shifted = np.clip(soft + levels / 255, 0, 1)
        cues = transfer_cues(shifted, reference)
        shift = level_shift(shifted, cues.aligned, cues.inside, cues.structure,
                            DEFAULT_TRANSFER)
        assert np.allclose(shift * 255, -levels, atol=0.3), shift * 255
        anchored, plain = (transfer_reference(shifted, reference, s)
                           for s in (DEFAULT_TRANSFER, off))
        gap = [abs(float((image[inner] - soft[inner]).mean()) * 255)
               for image in (anchored, plain)]
        assert gap[0] < 0.1 < gap[1], gap  # where no detail is copied the shift stayed
    brighter = np.clip(reference + 30 / 255, 0, 1)
    cues = transfer_cues(soft, brighter)
    assert not level_shift(soft, cues.aligned, cues.inside, cues.structure,
                           DEFAULT_TRANSFER).any()
    capped = replace(DEFAULT_TRANSFER, level_anchor=1 / 255)
    shifted = np.clip(soft - 3 / 255, 0, 1)
    cues = transfer_cues(shifted, reference)
    assert np.allclose(level_shift(shifted, cues.aligned, cues.inside, cues.structure,
                                   capped) * 255, 1.0, atol=1e-4)

"""The reference transfer in PyTorch (refine/torch_*.py), the GPU's step after the network,
checked on the CPU against OpenCV and against the OpenCV transfer it stands in for."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
import torch
from test_transfer import (  # the scenes of the OpenCV transfer's tests
    _scene,
    moving_object_scene,
)

from refdeblur_video.evaluate.metrics import psnr
from refdeblur_video.image_files import from_float
from refdeblur_video.refine import Refiner, restore_step
from refdeblur_video.refine.torch_flow import dense_flow
from refdeblur_video.refine.torch_ops import box_filter, gaussian_blur, grey, remap
from refdeblur_video.refine.torch_transfer import transfer_reference_torch
from refdeblur_video.refine.transfer import transfer_reference

H, W = 160, 224


def _t(image: np.ndarray) -> torch.Tensor:
    """H x W (x C) array -> (1, C, H, W) tensor."""
    if image.ndim == 2:
        image = image[..., None]
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]


def _u8(image: np.ndarray) -> np.ndarray:
    return from_float(image, np.uint8)


def _a(tensor: torch.Tensor) -> np.ndarray:
    return tensor[0].permute(1, 2, 0).numpy().squeeze()


@pytest.fixture(scope="module")
def warped() -> dict[str, np.ndarray]:
    """A frame, the scene seen from a slightly rotated and shifted camera, and the true
    flow between them (target(p) = source(p + flow(p)))."""
    target = _scene(0, (H, W))
    angle, (tx, ty) = 0.03, (4.5, -3.0)
    homography = np.array([[np.cos(angle), -np.sin(angle), tx],
                           [np.sin(angle), np.cos(angle), ty], [0, 0, 1]])
    source = cv2.warpPerspective(target, homography, (W, H), flags=cv2.INTER_CUBIC,
                                 borderMode=cv2.BORDER_REFLECT)
    xs, ys = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    moved = np.stack((xs, ys, np.ones_like(xs)), -1) @ homography.T
    flow = (moved[..., :2] / moved[..., 2:] - np.stack((xs, ys), -1)).astype(np.float32)
    return {"target": target, "source": source, "flow": flow}


def test_blurs_and_remap_match_opencv():
    rng = np.random.default_rng(1)
    image = rng.random((37, 53, 3), dtype=np.float32)
    for sigma in (0.5, 1.5, 4.0):
        ours = _a(gaussian_blur(_t(image), sigma))
        assert np.abs(ours - cv2.GaussianBlur(image, (0, 0), sigma)).max() < 1e-5, sigma
    for radius in (1, 5, 20):
        ours = _a(box_filter(_t(image), radius))
        theirs = cv2.blur(image, (2 * radius + 1,) * 2, borderType=cv2.BORDER_REPLICATE)
        assert np.abs(ours - theirs).max() < 1e-5, radius
    flow = rng.normal(0, 3, (37, 53, 2)).astype(np.float32)
    xs, ys = np.meshgrid(np.arange(53, dtype=np.float32), np.arange(37, dtype=np.float32))
    theirs = cv2.remap(image, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    ours = _a(remap(_t(image), _t(flow)))
    assert np.abs(ours - theirs).max() < 1e-4
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    assert np.abs(_a(grey(_t(image))) - image @ weights).max() < 1e-6


@pytest.mark.parametrize("blur", [0.0, 2.0])
def test_flow_recovers_a_known_camera_motion(warped, blur):
    target = warped["target"]
    if blur:  # a blurry frame matched against a sharp reference, as the transfer does
        target = cv2.GaussianBlur(target, (0, 0), blur)
    flow = _a(dense_flow(grey(_t(target)), grey(_t(warped["source"])), levels=2))
    error = np.linalg.norm(flow - warped["flow"], axis=-1)[12:-12, 12:-12]
    assert np.median(error) < (0.15 if not blur else 0.5)
    assert np.mean(error) < (0.4 if not blur else 1.0)


def test_torch_transfer_restores_detail_as_the_opencv_one_does(warped):
    sharp, reference = warped["target"], warped["source"]
    soft = cv2.GaussianBlur(sharp, (0, 0), 1.5)  # what a network that half-deblurred gives
    ours = _a(transfer_reference_torch(_t(soft), _t(reference)))
    theirs = transfer_reference(soft, reference)
    before = psnr(_u8(soft), _u8(sharp))
    assert psnr(_u8(theirs), _u8(sharp)) > before + 2.5  # what OpenCV's gains here
    assert psnr(_u8(ours), _u8(sharp)) > psnr(_u8(theirs), _u8(sharp)) - 0.5
    # an unrelated reference is not trusted
    unrelated = _scene(5, (H, W))
    kept = _a(transfer_reference_torch(_t(soft), _t(unrelated)))
    assert np.abs(kept - soft).mean() < 0.01


def test_torch_transfer_keeps_an_object_moving_against_the_camera_out():
    # by default (the forward flow's distance from the homography); the round trip through
    # this module's coarser backward flow lets part of the object in here (0.5 dB lost)
    scene = moving_object_scene()
    soft, sharp = scene["soft"], scene["sharp"]
    fused = _a(transfer_reference_torch(_t(soft), _t(scene["reference"])))
    on, rest = scene["object"], scene["rest"]
    assert psnr(_u8(fused[on]), _u8(sharp[on])) > psnr(_u8(soft[on]), _u8(sharp[on])) - 0.3
    assert psnr(_u8(fused[rest]), _u8(sharp[rest])) > \
        psnr(_u8(soft[rest]), _u8(sharp[rest])) + 5


def test_a_batch_checks_each_frame_as_alone(warped, monkeypatch):
    """One frame whose reference fits a homography (the forward check) and one whose
    reference is unrelated (no fit: the dense flow, checked by the round trip) in one
    batch: each comes out as it does alone."""
    import refdeblur_video.refine.torch_transfer as torch_transfer

    backward = []
    real = torch_transfer._backward
    monkeypatch.setattr(torch_transfer, "_backward",
                        lambda *args: backward.append(1) or real(*args))
    soft = cv2.GaussianBlur(warped["target"], (0, 0), 1.5)
    references = [warped["source"], _scene(5, (H, W))]
    together = transfer_reference_torch(torch.cat([_t(soft)] * 2),
                                        torch.cat([_t(r) for r in references]))
    assert len(backward) == 1  # for the unrelated reference's round trip
    for k, reference in enumerate(references):
        backward.clear()
        alone = transfer_reference_torch(_t(soft), _t(reference))
        assert len(backward) == k  # none where the homography fits
        assert torch.allclose(together[k:k + 1], alone, atol=1e-5), k
    assert psnr(_u8(_a(together[:1])), _u8(warped["target"])) > \
        psnr(_u8(soft), _u8(warped["target"])) + 2.5
    assert np.abs(_a(together[1:]) - soft).mean() < 0.01


def test_torch_transfer_aligns_on_the_low_passed_output_too_as_the_opencv_one_does(warped):
    from dataclasses import replace

    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER

    sharp, reference = warped["target"], warped["source"]
    soft = cv2.GaussianBlur(sharp, (0, 0), 1.5)
    smoothed = replace(DEFAULT_TRANSFER, align_smoothing_px=8.0)
    ours = _a(transfer_reference_torch(_t(soft), _t(reference), smoothed))
    theirs = transfer_reference(soft, reference, smoothed)
    before = psnr(_u8(soft), _u8(sharp))
    assert psnr(_u8(theirs), _u8(sharp)) > before + 1.0  # what OpenCV's gains here
    assert psnr(_u8(ours), _u8(sharp)) > psnr(_u8(theirs), _u8(sharp)) - 0.5
    # the low-pass changes the result (it is applied)
    plain = _a(transfer_reference_torch(_t(soft), _t(reference)))
    assert np.abs(plain - ours).max() > 1e-3
    # a blurrier or unrelated reference leaves the output as it is (the sharpness cue and
    # the blend use the unfiltered output), as in the OpenCV transfer
    for other in (cv2.GaussianBlur(reference, (0, 0), 3.0), _scene(5, (H, W))):
        kept = _a(transfer_reference_torch(_t(soft), _t(other), smoothed))
        assert np.abs(kept - soft).mean() < 0.01
        assert np.abs(transfer_reference(soft, other, smoothed) - soft).mean() < 0.01


def test_torch_transfer_aligns_twice_with_one_backward_flow_on_the_low_passed_output(
        warped, monkeypatch):
    from dataclasses import replace

    import refdeblur_video.refine.torch_transfer as torch_transfer
    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER

    seen: dict[str, list[torch.Tensor]] = {"forward": [], "backward": []}

    def recording(name, real):
        def call(target, *args):
            seen[name].append(target.clone())
            return real(target, *args)
        return call

    monkeypatch.setattr(torch_transfer, "_cues", recording("forward", torch_transfer._cues))
    monkeypatch.setattr(torch_transfer, "_backward",
                        recording("backward", torch_transfer._backward))
    soft = _t(cv2.GaussianBlur(warped["target"], (0, 0), 1.5))
    reference = _t(warped["source"])
    round_trip = replace(DEFAULT_TRANSFER, homography_consistency="round_trip")
    smoothed = replace(round_trip, align_smoothing_px=8.0)
    transfer_reference_torch(soft, reference, smoothed)
    low = gaussian_blur(soft, 8.0 * 0.25)  # sigma scaled to the 160 lines (at least 1/4)
    assert [target.shape for target in seen["forward"]] == [soft.shape] * 2
    assert torch.equal(seen["forward"][0], soft)
    assert torch.allclose(seen["forward"][1], low, atol=1e-6)
    assert len(seen["backward"]) == 1
    assert torch.allclose(seen["backward"][0], low, atol=1e-6)
    # without the setting: one alignment, checked against a backward flow on the output
    seen["forward"].clear(), seen["backward"].clear()
    transfer_reference_torch(soft, reference, round_trip)
    assert len(seen["forward"]) == len(seen["backward"]) == 1
    assert torch.equal(seen["forward"][0], soft) and torch.equal(seen["backward"][0], soft)
    # by default a homography's alignment is checked against the forward flow alone
    seen["forward"].clear(), seen["backward"].clear()
    transfer_reference_torch(soft, reference)
    assert len(seen["forward"]) == 1 and not seen["backward"]


def test_the_refine_step_finishes_outputs_left_on_the_device(warped):
    from refdeblur_video.model import DeviceOutput

    rng = np.random.default_rng(2)
    blurry = from_float(cv2.GaussianBlur(warped["target"], (0, 0), 1.5), np.uint8)
    reference = from_float(warped["source"], np.uint8)
    for dtype in (np.uint8, np.uint16):
        restored = rng.random((H, W, 3), dtype=np.float32)
        restored[:4] = [0.0, 1.0, 0.5]  # exact levels and a tie
        frame = blurry.astype(dtype) * (257 if dtype == np.uint16 else 1)
        on_device = DeviceOutput(_t(restored)[0], _t(reference.astype(np.float32) / 255)[0])
        # rounding alone: bit-exact with the array path, in the frame's own type
        finished = Refiner(None)(on_device, frame, None)
        assert finished.dtype == dtype
        assert np.array_equal(finished, from_float(restored, dtype))
        # no reference, or the frame as its own: nothing is transferred
        assert np.array_equal(Refiner()(on_device, frame, frame.copy()),
                              from_float(restored, dtype))
    soft = cv2.GaussianBlur(warped["target"], (0, 0), 1.5)
    on_device = DeviceOutput(_t(soft)[0], _t(warped["source"])[0])
    refined = Refiner()(on_device, blurry, reference)
    sharp = from_float(warped["target"], np.uint8)
    assert psnr(refined, sharp) > psnr(from_float(soft, np.uint8), sharp) + 2.5


def test_restoring_on_the_device_gives_the_array_path_outputs(warped):
    from refdeblur_video.model import images_to_tensor, load_model

    network = load_model("default", "cpu", amp=False)
    blurry = from_float(cv2.GaussianBlur(warped["target"], (0, 0), 2.0), np.uint8)
    reference = from_float(warped["source"], np.uint8)
    frames, refs = [blurry, blurry], [reference, blurry]
    arrays, used = network.restore_floats(frames, refs)
    on_device, used_there = network.restore_on_device(frames, refs)
    assert used_there == used
    for array, kept in zip(arrays, on_device, strict=True):
        assert np.array_equal(_a(kept.restored[None]), array)
    assert np.array_equal(from_float(_a(on_device[0].reference[None]), np.uint8), reference)
    assert restore_step(network) == network.restore_floats  # the CPU keeps OpenCV's transfer
    rng = np.random.default_rng(3)
    for dtype in (np.uint8, np.uint16):  # samples sent as they are, converted on the device
        images = [rng.integers(0, np.iinfo(dtype).max + 1, (5, 7, 3)).astype(dtype)
                  for _ in range(2)]
        assert torch.equal(images_to_tensor(images, torch.device("cpu")),
                           images_to_tensor(images))

    class OnAGpu:
        device = torch.device("cuda")
        restore_floats = restore_on_device = None

    gpu = OnAGpu()
    gpu.restore_floats, gpu.restore_on_device = "arrays", "on device"
    assert restore_step(gpu) == "on device"
    assert restore_step(gpu, on_device=False) == "arrays"  # --cpu-transfer


def test_a_video_finished_on_the_device_keeps_its_sharp_frames_and_gets_the_transfer(
        lossless_clip, tmp_path, monkeypatch):
    """The whole main job with the network's outputs left on the device (what a GPU does),
    here on the CPU: untouched frames stay bit-exact, restored ones get the transfer and
    come no further from the truth than the network alone leaves them. (Which transfer is
    closer to the truth is measured on real triplets, docs/RESULTS.md: on this clip's
    rendered shapes the PyTorch flow trails DIS by 0.2-2 dB depending on the weights and
    the size, on real frames it does as well or better.)"""
    import refdeblur_video.pipeline.run as run
    from refdeblur_video.model import load_model
    from refdeblur_video.pipeline import deblur_video
    from refdeblur_video.video.synthetic import render_frame

    network = load_model("default", "cpu", amp=False)
    options = dict(quiet=True, codec="ffv1", pix_fmt="bgr0")
    deblur_video(lossless_clip.path, tmp_path / "cpu.mkv", network, **options)
    monkeypatch.setattr(run, "restore_step", lambda restorer, _: restorer.restore_on_device)
    deblur_video(lossless_clip.path, tmp_path / "device.mkv", network, **options)
    deblur_video(lossless_clip.path, tmp_path / "alone.mkv", network, transfer=False,
                 **options)

    def frames(path):
        with av.open(str(path)) as container:
            return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]

    source, cpu, device, alone = (frames(tmp_path / name) for name in (
        lossless_clip.path, "cpu.mkv", "device.mkv", "alone.mkv"))
    assert len(source) == len(cpu) == len(device) == len(alone)
    scores = []
    for index, (a, b, c, d) in enumerate(zip(source, cpu, device, alone, strict=True)):
        if index in lossless_clip.blurry:
            truth = render_frame(index, (96, 64))
            assert not np.array_equal(a, c) and not np.array_equal(c, d)
            scores.append((psnr(c, truth), psnr(d, truth)))
        else:
            assert np.array_equal(a, c) and np.array_equal(a, b) and np.array_equal(a, d)
    on_device, network_alone = np.mean(scores, axis=0)
    assert on_device > network_alone


def test_cpu_transfer_is_an_option_of_the_command_and_the_library():
    from refdeblur_video.cli import build_parser
    from refdeblur_video.pipeline.options import DeblurOptions

    args = vars(build_parser().parse_args(["in.mp4", "out.mp4", "--cpu-transfer"]))
    args.pop("input"), args.pop("output")
    assert DeblurOptions.from_kwargs(**args).cpu_transfer
    assert not DeblurOptions().cpu_transfer  # a GPU finishes frames on the GPU by default


def test_the_device_path_transfers_from_a_second_reference_too(warped):
    from refdeblur_video.model import DeviceOutput

    half = W // 2
    soft = cv2.GaussianBlur(warped["target"], (0, 0), 1.5)
    first = warped["source"].copy()
    first[:, half:] = _scene(5, (H, W))[:, half:]  # the right half is not in the first
    blurry = from_float(soft, np.uint8)
    first8, second8 = from_float(first, np.uint8), from_float(warped["source"], np.uint8)
    on_device = DeviceOutput(_t(soft)[0], _t(first8.astype(np.float32) / 255)[0])
    one = Refiner()(on_device, blurry, first8)
    both = Refiner()(on_device, blurry, first8, second8)
    assert np.array_equal(Refiner(both_sides=False)(on_device, blurry, first8, second8), one)
    sharp = from_float(warped["target"], np.uint8)
    right = (slice(12, -12), slice(half + 40, -12))
    assert psnr(both[right], sharp[right]) > psnr(one[right], sharp[right]) + 2.5


def test_device_outputs_finished_together_match_the_one_by_one_frames(warped, monkeypatch):
    """``Refiner.many``: one batched transfer per side for the outputs on the device, the
    frames as one call each gives them; arrays and frames with nothing to transfer from
    are finished as alone."""
    import refdeblur_video.refine.torch_transfer as torch_transfer
    from refdeblur_video.model import DeviceOutput

    soft = cv2.GaussianBlur(warped["target"], (0, 0), 1.5)
    blurry = from_float(soft, np.uint8)
    first8, second8 = (from_float(warped[k], np.uint8) for k in ("source", "target"))
    shifted = np.roll(first8, 3, axis=1)

    def output(image):
        return DeviceOutput(_t(soft)[0], _t(image.astype(np.float32) / 255)[0])

    requests = [(output(first8), blurry, first8, second8, 0.5),  # both sides, and its time
                (output(shifted), blurry, shifted, None),  # one side
                (output(blurry), blurry, None, second8),  # its own reference: nothing
                (soft.copy(), blurry, first8, None),  # an array: the OpenCV path
                (output(first8), blurry, first8, shifted)]
    alone = [Refiner()(*request) for request in requests]
    calls = []
    original = torch_transfer.transfer_reference_torch

    def counting(restored, reference, settings, priors):
        calls.append(len(restored))
        return original(restored, reference, settings, priors)

    monkeypatch.setattr(torch_transfer, "transfer_reference_torch", counting)
    together = Refiner().many(requests)
    assert calls == [3, 2]  # the first references of three frames, then two second ones
    for one, both in zip(alone, together, strict=True):
        assert both.dtype == np.uint8
        assert np.abs(one.astype(int) - both.astype(int)).max() <= 1
        assert np.mean(one == both) > 0.999
    assert np.array_equal(together[2], from_float(soft, np.uint8))
    # frames of another sample type are finished apart, each in its own type
    blurry16 = blurry.astype(np.uint16) * 257
    mixed = Refiner().many([(output(blurry), blurry, None, None),
                            (output(blurry), blurry16, None, None)])
    assert [m.dtype for m in mixed] == [np.uint8, np.uint16]
    assert np.array_equal(mixed[1], from_float(soft, np.uint16))


def test_torch_transfer_keeps_a_wrong_reference_of_fine_texture_out_as_the_opencv_one():
    from dataclasses import replace

    from test_transfer import _noise_pan

    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER

    scene = _noise_pan()
    blurry, sharp = scene["blurry"], scene["sharp"]
    unchecked = replace(DEFAULT_TRANSFER, shared_structure=(0.0, 0.0))  # the check off
    wrong = _a(transfer_reference_torch(_t(blurry), _t(scene["wrong"])))
    assert np.abs(wrong - blurry).max() < 1e-6
    assert psnr(_u8(_a(transfer_reference_torch(_t(blurry), _t(scene["wrong"]), unchecked))),
                _u8(sharp)) < psnr(_u8(blurry), _u8(sharp)) - 0.5
    right = _a(transfer_reference_torch(_t(blurry), _t(scene["right"])))  # trusted in full
    assert np.abs(right - _a(transfer_reference_torch(_t(blurry), _t(scene["right"]),
                                                      unchecked))).max() < 1e-6
    assert psnr(_u8(right), _u8(sharp)) > psnr(_u8(blurry), _u8(sharp)) + 3.0


def test_torch_level_shift_matches_the_opencv_one(warped):
    from refdeblur_video.refine.torch_transfer import _level_shift
    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER, level_shift, transfer_cues

    restored = cv2.GaussianBlur(warped["target"], (0, 0), 1.5)
    reference = warped["source"]
    darker = np.clip(restored - 2 / 255, 0, 1).astype(np.float32)
    cues = transfer_cues(darker, reference)
    expected = level_shift(darker, cues.aligned, cues.inside, 0.5, DEFAULT_TRANSFER)
    assert np.abs(expected * 255 - 1.0).max() < 0.3  # half of the 2 levels, at trust 0.5

    found = _level_shift(_t(darker), _t(cues.aligned),
                         torch.from_numpy(cues.inside)[None, None].float(),
                         torch.full((1, 1, 1, 1), 0.5), DEFAULT_TRANSFER)
    assert np.allclose(found.view(3).numpy(), expected, atol=2e-6)


def test_torch_level_shift_batches_frames_alone_and_skips_a_nan_block():
    """Per frame of a batch (its own trust, the quarter rule, the cap) as the OpenCV
    function gives it; a NaN pixel leaves its block out in both."""
    from dataclasses import replace

    from refdeblur_video.refine.torch_transfer import _level_shift
    from refdeblur_video.refine.transfer import DEFAULT_TRANSFER, level_shift

    rng = np.random.default_rng(3)
    settings = replace(DEFAULT_TRANSFER, level_anchor=3 / 255)
    restored = rng.random((4, 37, 61, 3), dtype=np.float32)
    aligned = np.clip(restored + np.array([2, 6, 1, 0], np.float32)[:, None, None, None] / 255
                      + rng.normal(0, 0.01, restored.shape).astype(np.float32), 0, 1)
    inside = np.ones((4, 37, 61), np.float32)
    inside[2, :, 12:] = 0  # under a quarter of its blocks inside: no shift
    restored[0, 5, 5, 0] = np.nan
    trusts = np.array([1.0, 0.5, 1.0, 0.0], np.float32)
    expected = np.stack([level_shift(restored[k], aligned[k], inside[k], float(trusts[k]),
                                     settings) for k in range(4)])
    found = _level_shift(torch.from_numpy(restored).permute(0, 3, 1, 2),
                         torch.from_numpy(aligned).permute(0, 3, 1, 2),
                         torch.from_numpy(inside)[:, None],
                         torch.from_numpy(trusts).view(4, 1, 1, 1), settings)
    found = found.view(4, 3).numpy()
    assert np.isfinite(found).all()
    assert np.allclose(found, expected, atol=1e-6)
    assert np.allclose(expected[0] * 255, 2.0, atol=0.3)  # the shift itself
    assert np.allclose(expected[1] * 255, 1.5, atol=1e-3)  # capped at 3, times trust 0.5
    assert not expected[2].any() and not expected[3].any()

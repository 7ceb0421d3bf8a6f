"""Training blur generators beyond camera shake (refdeblur_video/data/mixed_blur.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from refdeblur_video.data.dataset import OnlineVideoTriplets
from refdeblur_video.data.mixed_blur import (
    BlurMix,
    average_frames,
    average_window,
    defocus,
    detail_score,
    moving_object,
)
from refdeblur_video.data.shake import from_linear, to_linear
from refdeblur_video.data.trajectory import (
    kernel_from_points,
    random_kernel,
    sample_trajectory,
    trajectory_blur,
)
from refdeblur_video.errors import UserError
from refdeblur_video.training.config import train_config_from_dict
from refdeblur_video.training.loop import blur_mix


def _textured(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_average_window_is_centred_and_stays_inside_the_sequence():
    assert average_window(10, 30, 5) == (8, 12)
    assert average_window(0, 30, 5) == (0, 4)
    assert average_window(29, 30, 7) == (23, 29)
    assert average_window(1, 3, 9) == (0, 2)


def test_average_of_frames_is_their_mean_in_linear_light():
    a, b = _textured(16, 16, 1), _textured(16, 16, 2)
    expected = from_linear((to_linear(a).astype(np.float64) + to_linear(b)) / 2)
    out = average_frames([a, b], (2, 3, 10, 12))
    assert out.shape == (10, 12, 3)
    np.testing.assert_array_equal(out, expected[2:12, 3:15])
    np.testing.assert_array_equal(average_frames([a, a, a], (0, 0, 16, 16)), a)


def test_a_still_object_is_not_blurred_and_a_moving_one_is():
    background = _textured(64, 64, 3)
    patch = _textured(24, 24, 4)
    still, still_sharp = moving_object(background, patch, np.random.default_rng(0), (0.0, 0.0))
    assert np.abs(still.astype(int) - still_sharp.astype(int)).max() <= 1
    blurry, sharp = moving_object(background, patch, np.random.default_rng(0), (0.4, 0.4))
    assert np.abs(blurry.astype(int) - sharp.astype(int)).mean() > 2
    # the object sits on the background: far from the path the image is the background
    assert (sharp == background).mean() > 0.5


def test_defocus_removes_detail_and_zero_radius_changes_nothing():
    image = _textured(48, 48, 5)
    np.testing.assert_array_equal(defocus(image, 0.0), image)
    soft = defocus(image, 3.0)
    detail = lambda x: np.abs(np.diff(x.astype(float), axis=1)).mean()  # noqa: E731
    assert detail(soft) < 0.5 * detail(image)


def _clip(n: int = 12, shift: int = 3) -> list[np.ndarray]:
    base = _textured(120, 400, 6)
    return [np.ascontiguousarray(np.roll(base, k * shift, axis=1)[:, :300]) for k in range(n)]


def test_self_reference_samples_get_the_blurry_frame_as_reference():
    data = OnlineVideoTriplets([_clip()], crop=64, mix=BlurMix(self_ref_prob=1.0), seed=0,
                               augment=False, unrelated_ref_prob=0.0)
    for i in range(6):
        item = data[i]
        assert item["blur"].shape == item["ref"].shape == (3, 64, 64)
        assert bool((item["ref"] == item["blur"]).all())


def test_degraded_references_carry_noise_of_their_own():
    # flat frames: a clean reference is exactly flat, a degraded one is not
    frames = [np.full((96, 128, 3), 100 + 2 * k, np.uint8) for k in range(12)]
    common = dict(crop=64, seed=2, augment=False, unrelated_ref_prob=0.0, noise_sigma=8.0)
    for prob, noisy in ((0.0, False), (1.0, True)):
        mix = BlurMix(generators={"shake": 1.0}, self_ref_prob=0.0, defocus_prob=0.0,
                      ref_degrade_prob=prob)
        data = OnlineVideoTriplets([frames], mix=mix, **common)
        spreads = [float(data[i]["ref"].std()) * 255 for i in range(6)]
        if noisy:
            assert np.mean(spreads) > 1.0
        else:
            assert max(spreads) < 0.01  # flat, to float precision


def test_averaged_samples_take_their_reference_from_outside_the_averaged_frames():
    # flat frames whose grey level names them: 20, 24, 28, ...
    frames = [np.full((96, 128, 3), 20 + 4 * k, np.uint8) for k in range(20)]
    mix = BlurMix(generators={"average": 1.0}, average_frames=(5, 5), self_ref_prob=0.0,
                  defocus_prob=0.0)
    data = OnlineVideoTriplets([frames], crop=64, mix=mix, seed=1, augment=False,
                               unrelated_ref_prob=0.0, dmin=1, dmax=2)
    for i in range(8):
        item = data[i]
        sharp = round(float(item["sharp"].mean()) * 255)
        ref = round(float(item["ref"].mean()) * 255)
        k, j = (sharp - 20) // 4, (ref - 20) // 4
        first, last = average_window(k, len(frames), 5)
        assert (first + last) // 2 == k  # the sharp frame is the middle of the window
        assert not first <= j <= last and abs(j - k) <= 2 + 2
        expected = average_frames(frames[first : last + 1], (0, 0, 64, 64))
        blur = np.rint(item["blur"].numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
        np.testing.assert_array_equal(blur, expected)


def test_blur_mix_from_the_config_checks_its_keys():
    cfg = train_config_from_dict({"data": {"train_videos": ["a.mp4"],
                                           "mix": {"generators": {"shake": 1.0}}}})
    mix = blur_mix(cfg.data.mix)
    assert mix is not None and mix.generators == {"shake": 1.0}
    assert blur_mix(None) is None
    with pytest.raises(UserError, match="data.mix"):
        blur_mix({"genrators": {"shake": 1.0}})
    with pytest.raises(UserError, match="unknown blur generators"):
        blur_mix({"generators": {"warp": 1.0}})
    with pytest.raises(UserError, match="trajectory_length"):
        blur_mix({"trajectory_length": [0.0, 10.0]})


def test_trajectory_kernels_are_normalised_centred_and_as_long_as_asked():
    rng = np.random.default_rng(3)
    straight = sample_trajectory(40.0, rng, anxiety=0.0)
    steps = np.hypot(*np.diff(straight, axis=0).T)
    assert steps.sum() == pytest.approx(40.0, rel=1e-6)
    kernel = kernel_from_points(straight)
    assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
    assert kernel.min() >= 0 and kernel.sum() == pytest.approx(1.0, abs=1e-5)
    yy, xx = np.mgrid[: kernel.shape[0], : kernel.shape[1]] - kernel.shape[0] // 2
    assert abs((kernel * yy).sum()) < 0.05 and abs((kernel * xx).sum()) < 0.05  # centroid
    support = np.argwhere(kernel > 1e-4)
    assert np.hypot(*(support.max(0) - support.min(0))) == pytest.approx(40.0, abs=3.0)
    # an erratic trajectory of the same length tangles up into a smaller kernel
    tangled = kernel_from_points(sample_trajectory(40.0, rng, anxiety=0.05))
    assert tangled.shape[0] < kernel.shape[0]
    assert random_kernel(20.0, np.random.default_rng(1)).sum() == pytest.approx(1.0, abs=1e-5)


def test_trajectory_blur_keeps_flat_light_and_removes_detail_reproducibly():
    flat = np.full((80, 80, 3), 117, np.uint8)
    out = trajectory_blur(flat, 30.0, np.random.default_rng(0), vary_prob=1.0)
    assert np.abs(out.astype(int) - 117).max() <= 1
    image = _textured(96, 96, 8)
    soft = trajectory_blur(image, 30.0, np.random.default_rng(5))
    detail = lambda x: np.abs(np.diff(x.astype(float), axis=1)).mean()  # noqa: E731
    assert soft.dtype == np.uint8 and soft.shape == image.shape
    assert detail(soft) < 0.6 * detail(image)
    np.testing.assert_array_equal(soft, trajectory_blur(image, 30.0, np.random.default_rng(5)))


def test_trajectory_samples_blur_the_crop_and_keep_the_frame_as_the_target():
    clip = _clip()
    mix = BlurMix(generators={"trajectory": 1.0}, trajectory_length=(30.0, 30.0),
                  self_ref_prob=0.0, defocus_prob=0.0)
    data = OnlineVideoTriplets([clip], crop=64, mix=mix, seed=2, augment=False,
                               unrelated_ref_prob=0.0)
    detail = lambda x: float(np.abs(np.diff(x, axis=2)).mean())  # noqa: E731
    for i in range(4):
        item = data[i]
        sharp = np.rint(item["sharp"].numpy() * 255).astype(np.uint8).transpose(1, 2, 0)
        assert any(np.array_equal(frame[y : y + 64, x : x + 64], sharp)  # an untouched crop
                   for frame in clip for y, x in np.argwhere((frame == sharp[0, 0]).all(-1)))
        assert detail(item["blur"].numpy()) < 0.8 * detail(item["sharp"].numpy())


def test_trajectory_crops_line_up_with_their_targets(monkeypatch):
    # a delta kernel must give back the target exactly, a one-pixel shift the shifted target
    import refdeblur_video.data.trajectory as trajectory

    mix = BlurMix(generators={"trajectory": 1.0}, trajectory_length=(20.0, 20.0),
                  self_ref_prob=0.0, defocus_prob=0.0)
    frames = [_textured(240, 320, 20 + k) for k in range(4)]
    delta = np.zeros((3, 3), np.float32)
    delta[1, 1] = 1.0
    monkeypatch.setattr(trajectory, "random_kernel", lambda length, rng: delta)
    data = OnlineVideoTriplets([frames], crop=64, mix=mix, seed=4, augment=False,
                               unrelated_ref_prob=0.0)
    for i in range(3):
        item = data[i]
        assert bool((item["blur"] == item["sharp"]).all())
    shift = np.zeros((3, 3), np.float32)
    shift[1, 0] = 1.0  # output(x) = input(x - 1): the picture moves one pixel right
    monkeypatch.setattr(trajectory, "random_kernel", lambda length, rng: shift)
    item = data[5]
    blur, sharp = item["blur"].numpy(), item["sharp"].numpy()
    np.testing.assert_allclose(blur[:, :, 1:], sharp[:, :, :-1], atol=1.5 / 255)


def test_scene_defocus_softens_target_blurry_frame_and_reference_alike(monkeypatch):
    # with a delta kernel the motion blur is nothing: what is left is the scene's defocus,
    # which must reach the target too (the network learns to keep it, not to sharpen it)
    import refdeblur_video.data.trajectory as trajectory

    delta = np.zeros((3, 3), np.float32)
    delta[1, 1] = 1.0
    monkeypatch.setattr(trajectory, "random_kernel", lambda length, rng: delta)
    frames = [_textured(240, 320, 30 + k) for k in range(6)]
    detail = lambda x: float(np.abs(np.diff(x, axis=2)).mean())  # noqa: E731
    frame_detail = detail(frames[0].transpose(2, 0, 1) / 255.0)

    def items(scene_prob: float) -> list[dict]:
        mix = BlurMix(generators={"trajectory": 1.0}, trajectory_length=(20.0, 20.0),
                      self_ref_prob=0.0, defocus_prob=0.0, scene_defocus_prob=scene_prob,
                      scene_defocus_radius=6.0)
        data = OnlineVideoTriplets([frames], crop=64, mix=mix, seed=7, augment=False,
                                   unrelated_ref_prob=0.0)
        return [data[i] for i in range(4)]

    for item in items(1.0):
        assert bool((item["blur"] == item["sharp"]).all())
        for key in ("sharp", "ref"):
            assert detail(item[key].numpy()) < 0.8 * frame_detail
    for item in items(0.0):  # without it the target keeps the frame's full detail
        assert detail(item["sharp"].numpy()) > 0.9 * frame_detail
        assert detail(item["ref"].numpy()) > 0.9 * frame_detail


def _smooth_pan(n: int = 8, step: int = 5) -> list[np.ndarray]:
    """A smooth texture panning ``step`` pixels right per frame (optical flow can follow it)."""
    import cv2

    rng = np.random.default_rng(11)
    base = cv2.resize(rng.random((30, 60, 3), dtype=np.float32), (480, 240),
                      interpolation=cv2.INTER_CUBIC)
    base = np.clip(base * 255, 0, 255).astype(np.uint8)
    return [np.ascontiguousarray(base[:, 100 - k * step : 100 - k * step + 300])
            for k in range(n)]


def _u8(t) -> np.ndarray:
    return np.rint(t.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)


@pytest.mark.parametrize("by", ["flow", "homography"])
@pytest.mark.parametrize("generator", ["shake", "object", "trajectory", "average"])
def test_pre_aligned_references_land_on_the_frame(generator, by, monkeypatch):
    from refdeblur_video.evaluate.metrics import psnr
    from refdeblur_video.refine import transfer

    calls = {"flow": 0, "homography": 0}
    for name, function in list(transfer.PREALIGNERS.items()):
        def counted(*args, _name=name, _function=function):
            calls[_name] += 1
            return _function(*args)
        monkeypatch.setitem(transfer.PREALIGNERS, name, counted)

    common = dict(crop=64, seed=4, augment=False, unrelated_ref_prob=0.0, dmin=2, dmax=2,
                  strength=0.0)
    scores = {}
    for prob in (0.0, 1.0):
        # no blur at all for the shake (strength 0); the other generators blur mildly
        mix = BlurMix(generators={generator: 1.0}, self_ref_prob=0.0, defocus_prob=0.0,
                      aligned_ref_prob=prob, align_context=64, trajectory_length=(2, 3),
                      average_frames=(3, 3), object_travel=(0.05, 0.05), aligned_ref_by=by)
        data = OnlineVideoTriplets([_smooth_pan()], mix=mix, **common)
        items = [data[i] for i in range(6)]
        assert all(item["ref"].shape == item["sharp"].shape == (3, 64, 64) for item in items)
        scores[prob] = np.mean([psnr(_u8(it["ref"]), _u8(it["sharp"])) for it in items])
    # two frames of a 5-pixel pan apart, the plain reference is 10 pixels off; aligned by
    # the flow, or by the homography fitted to it, it lands on the frame
    assert scores[1.0] > scores[0.0] + 8, scores
    assert calls[by] > 0 and calls["flow" if by == "homography" else "homography"] == 0
    with pytest.raises(ValueError, match="aligned_ref_by"):
        BlurMix(aligned_ref_by="sideways")


def test_textured_crops_prefer_detail_and_are_off_by_default():
    """Half of each frame is flat grey, half noise: random crops land on detail about half
    the time, textured ones nearly always; the detail score itself ranks them the same."""
    frames = []
    for k in range(4):
        frame = np.full((128, 256, 3), 128, np.uint8)
        frame[:, 128:] = _textured(128, 128, k)
        frames.append(frame)
    assert detail_score(frames[0][:, 128:]) > 10 * detail_score(frames[0][:, :128]) + 1.0

    def share_on_detail(prob: float) -> float:
        mix = BlurMix(generators={"trajectory": 1.0}, trajectory_length=(6.0, 6.0),
                      self_ref_prob=0.0, defocus_prob=0.0, textured_crop_prob=prob,
                      textured_candidates=6)
        data = OnlineVideoTriplets([frames], crop=32, mix=mix, seed=3, augment=False,
                                   unrelated_ref_prob=0.0)
        on_detail = [float(data[i]["sharp"].std()) > 0.1 for i in range(60)]
        return float(np.mean(on_detail))

    assert share_on_detail(1.0) > 0.9
    assert share_on_detail(0.0) < 0.75
    with pytest.raises(ValueError, match="textured_candidates"):
        BlurMix(textured_candidates=0)


def test_gated_pre_alignment_flags_each_sample_as_the_pipeline_would():
    """With ``aligned_ref_gate`` a reference is placed only where the pipeline's gate passes
    it, and every sample says whether it was: a panned neighbour is placed and lands on
    the frame, the frame as its own reference is not."""
    from refdeblur_video.evaluate.metrics import psnr

    common = dict(crop=64, seed=4, augment=False, unrelated_ref_prob=0.0, dmin=2, dmax=2,
                  strength=0.0)
    flags = {}
    for self_ref in (0.0, 1.0):
        mix = BlurMix(generators={"shake": 1.0}, self_ref_prob=self_ref, defocus_prob=0.0,
                      aligned_ref_prob=1.0, align_context=64, aligned_ref_by="homography",
                      aligned_ref_gate=True)
        data = OnlineVideoTriplets([_smooth_pan()], mix=mix, **common)
        items = [data[i] for i in range(4)]
        flags[self_ref] = [bool(it["in_place"]) for it in items]
        if self_ref == 0.0:
            assert min(psnr(_u8(it["ref"]), _u8(it["sharp"])) for it in items) > 30
    assert flags == {0.0: [True] * 4, 1.0: [False] * 4}
    plain = OnlineVideoTriplets([_smooth_pan()], mix=BlurMix(aligned_ref_prob=1.0), **common)
    assert "in_place" not in plain[0]
    with pytest.raises(ValueError, match="aligned_ref_gate"):
        BlurMix(aligned_ref_gate=True, aligned_ref_by="flow")


def test_placed_references_are_flagged_in_place_without_the_gate(monkeypatch):
    """``aligned_ref_in_place`` flags every placed reference (and only those) without the
    gate, so that a searching model matches them in place, as it would at inference."""
    from refdeblur_video.refine import transfer

    common = dict(crop=64, seed=4, augment=False, unrelated_ref_prob=0.0, dmin=2, dmax=2,
                  strength=0.0)

    def flags(prob: float, self_ref: float) -> list[bool]:
        mix = BlurMix(generators={"shake": 1.0}, self_ref_prob=self_ref, defocus_prob=0.0,
                      aligned_ref_prob=prob, align_context=64, aligned_ref_by="homography",
                      aligned_ref_in_place=True)
        data = OnlineVideoTriplets([_smooth_pan()], mix=mix, **common)
        return [bool(data[i]["in_place"]) for i in range(4)]

    assert flags(1.0, 0.0) == [True] * 4
    assert flags(0.0, 0.0) == [False] * 4  # never placed, yet flagged so batches collate
    assert flags(1.0, 1.0) == [False] * 4  # the frame as its own reference is not placed
    # a placement that finds no homography hands the reference back as it came: not placed
    monkeypatch.setitem(transfer.PREALIGNERS, "homography", lambda frame, ref: ref)
    assert flags(1.0, 0.0) == [False] * 4


def test_a_jittered_placement_moves_smoothly_by_at_most_its_amplitude():
    """The warp moves a fine pattern (so the image changes) by a field no larger than the
    amplitude: a sub-pixel shift of the image itself explains it, a 3-pixel one does not."""
    from refdeblur_video.data.mixed_blur import jitter_placement

    rng = np.random.default_rng(1)
    ys, xs = np.mgrid[0:96, 0:96].astype(np.float32)
    image = (127 + 100 * np.sin(xs / 3.0) * np.cos(ys / 4.0)).astype(np.float32)
    assert jitter_placement(image, 0.0, rng) is image
    moved = jitter_placement(image, 1.5, rng)
    assert moved.shape == image.shape and moved.dtype == image.dtype
    inner = (slice(8, -8), slice(8, -8))
    assert np.abs(moved - image)[inner].mean() > 5  # it did move
    # every pixel's new value is found within 1.5 px of its place in the original
    best = np.full(image.shape, np.inf, np.float32)
    for dy in np.linspace(-1.5, 1.5, 13, dtype=np.float32):
        for dx in np.linspace(-1.5, 1.5, 13, dtype=np.float32):
            shifted = cv2.remap(image, xs + dx, ys + dy, cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT)
            best = np.minimum(best, np.abs(shifted - moved))
    assert np.percentile(best[inner], 99) < 5.0  # the search grid is 0.25 px
    far = cv2.remap(image, xs + 3, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    assert np.abs(far - moved)[inner].mean() > 5


def test_placed_references_are_jittered_only_when_asked():
    from refdeblur_video.evaluate.metrics import psnr

    common = dict(crop=64, seed=4, augment=False, unrelated_ref_prob=0.0, dmin=2, dmax=2,
                  strength=0.0)
    refs = {}
    for jitter in (0.0, 2.0):
        mix = BlurMix(generators={"shake": 1.0}, self_ref_prob=0.0, defocus_prob=0.0,
                      aligned_ref_prob=1.0, align_context=64, aligned_ref_by="homography",
                      aligned_ref_jitter=jitter)
        data = OnlineVideoTriplets([_smooth_pan()], mix=mix, **common)
        refs[jitter] = [(_u8(data[i]["ref"]), _u8(data[i]["sharp"])) for i in range(3)]
    for (plain, sharp), (jittered, _) in zip(refs[0.0], refs[2.0], strict=True):
        assert psnr(plain, sharp) > 30  # placed exactly
        assert psnr(jittered, sharp) < psnr(plain, sharp) - 3  # placed with an error


def test_a_drawn_camera_response_sets_how_blur_brightens():
    """Flat frames 10, 40, 70, ... averaged five at a time: in sRGB's linear light the mean
    is brighter than the middle frame (the brightening a network learns to undo); with a
    response of gamma 1 (decoded frames averaged) it is the middle frame's level exactly,
    as the plain arithmetic mean says; gamma 2.2 brightens by its own power mean."""
    frames = [np.full((96, 128, 3), 10 + 30 * k, np.uint8) for k in range(9)]

    def brightening(**response) -> float:
        mix = BlurMix(generators={"average": 1.0}, average_frames=(5, 5), self_ref_prob=0.0,
                      defocus_prob=0.0, **response)
        data = OnlineVideoTriplets([frames], crop=64, mix=mix, seed=1, augment=False,
                                   unrelated_ref_prob=0.0)
        items = [data[i] for i in range(6)]
        return {round(float(it["sharp"].mean()) * 255): float(it["blur"].mean()) * 255
                for it in items}

    srgb = brightening()
    plain = brightening(response_prob=1.0, response_gamma=(1.0, 1.0))
    power = brightening(response_prob=1.0, response_gamma=(2.2, 2.2))
    for middle, blur in plain.items():
        assert blur == pytest.approx(middle, abs=0.01)
    for middle, blur in power.items():  # the power law's own mean of the five levels
        levels = [middle + 30 * d for d in range(-2, 3)]
        expected = np.mean(np.array(levels, float) ** 2.2) ** (1 / 2.2)
        assert blur == pytest.approx(expected, abs=0.6) and blur > middle + 5
    for middle, blur in srgb.items():
        assert blur > middle + 5
    with pytest.raises(ValueError, match="response_gamma"):
        BlurMix(response_gamma=(2.0, 1.0))
    with pytest.raises(UserError, match="data.mix: response_gamma"):  # one line, no TypeError
        blur_mix({"response_gamma": 2.2})
    with pytest.raises(UserError, match="data.mix: response_prob must lie in 0..1"):
        blur_mix({"response_prob": 1.5})

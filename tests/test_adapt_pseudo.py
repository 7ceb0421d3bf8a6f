"""``--adapt``'s pseudo targets: the video's blurry frames kept with their reference, the
reference aligned to the frame as its target under the transfer's trust, crops from trusted
places, the weighted loss, and the adaptation that uses them."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest
import torch
from test_adapt import FAST, tiny_restorer
from test_transfer import _scene

from refdeblur_video.adapt import adapt_restorer
from refdeblur_video.adapt.pseudo import (
    BlurryPair,
    PseudoTarget,
    pseudo_batch,
    pseudo_targets,
    weighted_l1,
)
from refdeblur_video.adapt.reservoir import PAIRS, scan_video
from refdeblur_video.evaluate.metrics import psnr
from refdeblur_video.image_files import from_float, to_float
from refdeblur_video.pipeline import DeblurOptions
from refdeblur_video.video.reader import open_reader
from refdeblur_video.video.synthetic import make_image


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class _Perfect:
    """A stand-in restorer whose network returns the true sharp frame (or refuses the
    reference): what the alignment is then left to do is the module's own work."""

    def __init__(self, sharp: np.ndarray, accepts: bool = True) -> None:
        self.sharp, self.accepts = to_float(sharp), accepts

    def restore_floats(self, blurry, references):
        return [self.sharp.copy() for _ in blurry], [self.accepts] * len(blurry)


def _shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    h, w = image.shape[:2]
    move = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, move, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT101)


def _scanned(make_test_clip):
    """(the decoded frames, the reading pass's sample) of a 40-frame clip whose frames 7,
    21 and 30 are blurry."""
    clip = make_test_clip("pairs.mp4", n_frames=40, size=(96, 64), blurry={7, 21, 30})
    with open_reader(clip.path) as reader:
        frames = [f.image for f in reader]
    with open_reader(clip.path) as reader:
        sample = scan_video(reader, window=5, max_offset=5, threshold=0.8, cuts=True, crop=32,
                            capacity=6, held_capacity=3, held_every=4, frame_count=40,
                            deadline=None, seed=0)
    return frames, sample


def test_the_reading_pass_keeps_blurry_frames_with_their_reference_at_full_size(
        make_test_clip):
    frames, sample = _scanned(make_test_clip)
    assert sorted(p.index for p in sample.pairs) == [7, 21, 30]
    assert len(sample.pairs) <= PAIRS
    for pair in sample.pairs:
        assert np.array_equal(pair.blurry, frames[pair.index])
        # the reference is a sharp frame of the same stretch, kept whole
        near = [k for k in range(pair.index - 5, pair.index + 6)
                if k != pair.index and np.array_equal(pair.reference, frames[k])]
        assert near and not {*near} & {7, 21, 30}


def test_the_target_is_the_reference_aligned_to_the_frame_where_it_is_trusted():
    sharp = make_image(size=(256, 192), seed=3)
    blurry = cv2.blur(sharp, (9, 1))
    reference = _shifted(sharp, 3.0, -2.0)  # the same scene a frame away
    [target] = pseudo_targets(_Perfect(sharp), [BlurryPair(4, blurry, reference)])
    assert target.index == 4 and target.target.shape == (192, 256, 3)
    assert target.weight.shape == (192, 256) and target.weight.min() >= 0
    assert target.weight.max() <= 1 and target.trust > 0.5
    inner = (slice(16, -16), slice(16, -16))  # away from the reflected border
    trusted = target.weight[inner] > 0.5
    aligned = from_float(target.target, np.uint8)[inner][trusted]
    assert psnr(aligned, sharp[inner][trusted]) > psnr(reference[inner][trusted],
                                                       sharp[inner][trusted]) + 6


def test_the_camera_motion_between_two_sharp_frames_places_the_target():
    # the network's output sits 0.75 px (2.8 px at 720p) off the frame's time, as a
    # lopsided blur leaves it; the sharp frames on both sides, 2 px each way, place the
    # target where the frame truly is, as they place the pipeline's transfer
    sharp = from_float(_scene(3, (192, 256)), np.uint8)  # the transfer tests' texture
    reference, second = _shifted(sharp, -2.0, 0.0), _shifted(sharp, 2.0, 0.0)
    output = _shifted(sharp, 0.75, 0.0)
    blurry = cv2.blur(sharp, (5, 1))
    inner = (slice(16, -16), slice(16, -16))
    scores = {}
    for name, pair in (("one", BlurryPair(4, blurry, reference)),
                       ("both", BlurryPair(4, blurry, reference, second, 0.5))):
        [target] = pseudo_targets(_Perfect(output), [pair])
        scores[name] = psnr(from_float(target.target, np.uint8)[inner], sharp[inner])
    assert scores["both"] > scores["one"] + 6


def test_the_reading_pass_keeps_the_other_side_and_the_frame_time(make_test_clip):
    frames, sample = _scanned(make_test_clip)
    assert sample.pairs
    for pair in sample.pairs:
        assert pair.second is not None and pair.fraction is not None
        first = next(k for k, f in enumerate(frames) if np.array_equal(pair.reference, f))
        other = next(k for k, f in enumerate(frames) if np.array_equal(pair.second, f))
        assert (first - pair.index) * (other - pair.index) < 0  # one on each side
        assert pair.fraction == pytest.approx((pair.index - first) / (other - first))


def test_a_reference_the_network_refuses_gives_no_target():
    sharp = make_image(size=(128, 96), seed=4)
    pair = BlurryPair(1, cv2.blur(sharp, (7, 7)), make_image(size=(128, 96), seed=5))
    assert pseudo_targets(_Perfect(sharp, accepts=False), [pair]) == []


def test_pseudo_crops_come_from_trusted_places_and_are_cut_alike():
    rng = np.random.default_rng(0)
    blurry = make_image(size=(128, 128), seed=6)
    weight = np.zeros((128, 128), np.float32)
    weight[:, :56] = 1.0  # only the left part is trusted
    # a target equal to the blurry frame: any crop or turn that differs between them shows
    target = PseudoTarget(0, blurry, blurry[::-1].copy(), to_float(blurry), weight)
    batch = pseudo_batch([target], crop=32, count=24, rng=rng)
    assert batch["blur"].shape == (24, 3, 32, 32) and batch["weight"].shape == (24, 1, 32, 32)
    assert torch.allclose(batch["sharp"], batch["blur"], atol=1e-6)
    assert (batch["weight"].mean(dim=(1, 2, 3)) > 0.5).all()
    # frames smaller than the crop are cut at their size
    small = PseudoTarget(0, blurry[:20, :24], blurry[:20, :24], to_float(blurry[:20, :24]),
                         weight[:20, :24])
    assert pseudo_batch([small], crop=32, count=2, rng=rng)["blur"].shape == (2, 3, 20, 20)


def test_the_weighted_loss_counts_only_trusted_pixels():
    rng = np.random.default_rng(1)
    out, tgt = rng.random((2, 3, 8, 8)), rng.random((2, 3, 8, 8))
    w = rng.random((2, 1, 8, 8))
    expected = float(np.sum(np.abs(out - tgt) * w) / (np.sum(w) * 3))
    got = float(weighted_l1(*(torch.from_numpy(a) for a in (out, tgt, w))))
    assert got == pytest.approx(expected, rel=1e-5)
    # an error where the weight is zero costs nothing
    w[:, :, :4] = 0
    spoiled = out.copy()
    spoiled[:, :, :4] += 0.5
    a = float(weighted_l1(*(torch.from_numpy(x) for x in (out, tgt, w))))
    b = float(weighted_l1(*(torch.from_numpy(x) for x in (spoiled, tgt, w))))
    assert a == pytest.approx(b)


def _adapt(path, monkeypatch, **changes) -> dict:
    chosen = dataclasses.replace(FAST, **changes)
    monkeypatch.setattr("refdeblur_video.adapt.entry.settings_for",
                        lambda *a, **k: chosen)
    made = []
    real = pseudo_targets

    def spy(*args, **kwargs):
        made.extend(real(*args, **kwargs))
        return made

    monkeypatch.setattr("refdeblur_video.adapt.entry.pseudo_targets", spy)
    outcome = adapt_restorer(tiny_restorer(), path, DeblurOptions(adapt=True, quiet=True))
    details = json.loads(outcome.metadata["adapt_settings"])
    return {"details": details, "made": made}


def test_adaptation_learns_the_videos_blurry_frames_and_says_which(make_test_clip,
                                                                   monkeypatch):
    clip = make_test_clip("in.mp4", n_frames=40, size=(96, 64), blurry={5, 12, 19, 26, 33})
    # a budget that a busy machine's reading pass fits in; the steps capped to stay short
    used = _adapt(clip.path, monkeypatch, pseudo_share=1.0, seconds=60.0, max_steps=20)
    frames = [t["frame"] for t in used["details"]["pseudo_targets"]]
    assert frames and frames == [t.index for t in used["made"]]
    assert set(frames) <= {5, 12, 19, 26, 33, 34}
    assert all(0 <= t["trust"] <= 1 for t in used["details"]["pseudo_targets"])
    assert used["details"]["steps"] > 0
    # with no share of the steps, none are made
    off = _adapt(clip.path, monkeypatch, pseudo_share=0.0, seconds=60.0, max_steps=20)
    assert off["details"]["pseudo_targets"] == [] and off["made"] == []


def test_steps_on_pseudo_targets_bring_the_copy_to_them():
    from test_adapt import tiny_net

    from refdeblur_video.adapt.tune import make_optimizer, train_step

    rng = np.random.default_rng(2)
    sharp = make_image(size=(64, 64), seed=7)
    weight = np.ones((64, 64), np.float32)
    target = PseudoTarget(0, cv2.blur(sharp, (5, 5)), sharp, to_float(sharp), weight)
    net = tiny_net()
    optimizer = make_optimizer(net, 1e-2)
    batch = pseudo_batch([target], crop=32, count=4, rng=np.random.default_rng(3))

    def loss() -> float:
        with torch.no_grad():
            return float(weighted_l1(net(batch["blur"], batch["ref"]), batch["sharp"],
                                     batch["weight"]))

    before = loss()
    # where nothing is trusted, nothing is learnt
    untrusted = dataclasses.replace(target, weight=np.zeros_like(weight))
    train_step(net, optimizer, pseudo_batch([untrusted], 32, 4, rng), 1e-2, None)
    assert loss() == before
    for _ in range(60):
        train_step(net, optimizer, pseudo_batch([target], 32, 4, rng), 1e-2, None)
    assert loss() < 0.85 * before

"""The end-to-end check of an adapted copy on the video's own blurry frames: a better
finished frame scores higher against the frame's other sharp neighbour, and a copy that
finishes real frames worse is not used, whatever the held-back crops say."""

from __future__ import annotations

import numpy as np
import torch

from refdeblur_video.adapt import AdaptSettings
from refdeblur_video.adapt.crosscheck import Crosscheck, score, score_original
from refdeblur_video.adapt.entry import _decide
from refdeblur_video.adapt.kernels import apply_kernel
from refdeblur_video.adapt.tune import TuneResult
from refdeblur_video.image_files import to_float
from refdeblur_video.refine import DEFAULT_TRANSFER, Refiner
from refdeblur_video.video.synthetic import render_frame

SIZE = (320, 192)


class _Fixed:
    """A stand-in restorer that returns a given image for the frame, whatever it is shown."""

    def __init__(self, image: np.ndarray) -> None:
        self.image = to_float(image)

    def restore_floats(self, blurry, references):
        return [self.image.copy() for _ in blurry], [True for _ in blurry]


def _check() -> tuple[Crosscheck, np.ndarray]:
    frames = [render_frame(i, SIZE) for i in (9, 10, 11)]
    blurry = render_frame(10, SIZE, blurry=True)
    return Crosscheck(10, blurry, frames[0], frames[2]), frames[1]


def test_the_sharp_truth_scores_higher_than_a_blurry_or_shifted_frame():
    check, truth = _check()
    for refiner in (Refiner(None), Refiner(DEFAULT_TRANSFER)):
        baseline = score_original(_Fixed(check.blurry), refiner, [check])
        assert baseline.seconds > 0
        assert score(_Fixed(truth), refiner, [check]) > baseline.psnr + 1.0
        # a wrong sharp frame (the scene shifted by 3 pixels) scores below the truth too
        shifted = np.roll(truth, 3, axis=1)
        assert score(_Fixed(truth), refiner, [check]) > \
            score(_Fixed(shifted), refiner, [check]) + 1.0


def test_a_copy_worse_on_real_frames_is_not_used_even_if_better_on_held_back_crops():
    result = TuneResult(torch.nn.Identity(), steps=20, seconds=30.0, psnr_before=25.0,
                        psnr_after=27.0, loss=0.1)

    class _Restorer:
        model = torch.nn.Identity()

    restorer = _Restorer()
    settings = AdaptSettings()
    refused = _decide(restorer, result, settings, 30.0, cross_gain=-0.3)
    assert not refused.adopted and refused.restorer is restorer
    assert "not better on the video's blurry frames (-0.30 dB" in refused.message
    taken = _decide(restorer, result, settings, 30.0, cross_gain=0.2)
    assert taken.adopted and taken.restorer is not restorer
    assert "+0.20 dB on real blurry frames" in taken.message
    unchecked = _decide(restorer, result, settings, 30.0, cross_gain=None)
    assert unchecked.adopted and "real blurry" not in unchecked.message


def test_a_budget_too_short_for_one_step_says_so_and_how_long_the_rest_took():
    result = TuneResult(torch.nn.Identity(), steps=0, seconds=2.0, psnr_before=25.0,
                        psnr_after=25.0, loss=float("nan"))

    class _Restorer:
        model = torch.nn.Identity()

    restorer = _Restorer()
    outcome = _decide(restorer, result, AdaptSettings(seconds=20.0), 23.4)
    assert not outcome.adopted and outcome.restorer is restorer
    assert "no training step fitted in --adapt-seconds 20 " in outcome.message
    assert "other work took 23 s); give it more time" in outcome.message


def test_a_blurred_neighbour_does_not_reward_a_finished_frame_for_being_blurred_alike():
    """A video with no truly sharp frame: the neighbour the check compares with is blurred
    too. Compared as they are, an output blurred the same way would beat the sharp truth
    by over 20 dB here; brought to the neighbour's blur, the truth is about as good, and
    still far better than the blurry frame."""
    check, truth = _check()
    kernel = np.zeros((15, 15), np.float32)
    kernel[7, 1:14] = 1 / 13
    blurred_other = apply_kernel(check.other, kernel)
    blurry_check = Crosscheck(check.index, check.blurry, check.reference, blurred_other)
    blurred_alike = apply_kernel(truth, kernel)
    refiner = Refiner(None)
    sharp_score = score(_Fixed(truth), refiner, [blurry_check])
    assert sharp_score > score(_Fixed(blurred_alike), refiner, [blurry_check]) - 1.0
    assert sharp_score > score(_Fixed(check.blurry), refiner, [blurry_check]) + 3.0

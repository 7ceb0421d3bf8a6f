"""Sharpness scores and the choice of blurry frames and their references."""

from __future__ import annotations

import random

import numpy as np
import pytest
from skimage.color import rgb2lab

from refdeblur_video.frames.references import (
    TIE_RATIO,
    FrameDecision,
    ReferencePlanner,
    plan_references,
)
from refdeblur_video.frames.sharpness import grey_thumbnail, sharpness
from refdeblur_video.frames.shots import layout_change, layout_thumbnail, shot_ids
from refdeblur_video.video.reader import open_reader
from refdeblur_video.video.synthetic import make_image, render_frames

# -- sharpness -----------------------------------------------------------------------------------


def test_blurred_frame_scores_below_its_sharp_original():
    sharp = make_image(size=(96, 64), index=5)
    blurred = make_image(size=(96, 64), index=5, blurry=True)
    assert sharpness(blurred) < 0.5 * sharpness(sharp)


def test_uint16_and_uint8_of_the_same_picture_score_the_same():
    img = make_image(size=(96, 64))
    deep = img.astype(np.uint16) * 257
    assert sharpness(deep) == pytest.approx(sharpness(img), rel=1e-3)


def test_thumbnail_respects_max_side_and_flat_frames_score_zero():
    big = np.zeros((720, 1280, 3), np.uint8)
    assert max(grey_thumbnail(big, max_side=320).shape) == 320
    assert max(grey_thumbnail(big[:100, :200], max_side=320).shape) == 200
    assert sharpness(big) == 0.0
    with pytest.raises(ValueError):
        sharpness(np.zeros((4, 4, 4), np.uint8))


# -- shot cuts -----------------------------------------------------------------------------------


def test_layout_thumbnail_is_the_cielab_of_cell_means():
    image = np.random.default_rng(0).integers(0, 256, (90, 160, 3), np.uint8)
    cells = np.round(image.reshape(9, 10, 16, 10, 3).mean(axis=(1, 3))) / 255.0
    # OpenCV's float CIELAB is table-interpolated: within a few tenths of the exact one
    assert np.allclose(layout_thumbnail(image), rgb2lab(cells), atol=0.5)
    deep = image.astype(np.uint16) * 257
    # the same up to uint8 rounding of the cell means, far below the cut threshold (5)
    assert layout_change(layout_thumbnail(deep), layout_thumbnail(image)) < 0.3
    assert layout_thumbnail(image.transpose(1, 0, 2)).shape == (16, 9, 3)  # portrait
    assert layout_change(layout_thumbnail(image), layout_thumbnail(image[:80])) > 0
    assert layout_change(layout_thumbnail(image),
                         layout_thumbnail(image.transpose(1, 0, 2))) == float("inf")


def test_cuts_are_found_where_the_shot_changes_and_not_at_blurry_frames():
    # at 96x64 the synthetic texture changes by more than the threshold (5) at every frame:
    # the ratio rule keeps the shot whole
    for size in [(96, 64), (320, 180)]:
        frames = render_frames(size, 14, {3, 6, 7, 12}, seed=0, cut_at=7)
        assert shot_ids(frames) == [0] * 7 + [1] * 7, size
        assert shot_ids(render_frames(size, 14, {3, 6, 7, 12}, seed=0)) == [0] * 14, size
    # the first change has nothing to compare with; a second cut is found again
    frames = render_frames((96, 64), 6, (), seed=0, cut_at=1)
    assert shot_ids(frames) == [0] * 6
    later = render_frames((96, 64), 6, (), seed=5)  # back from the negative shot
    assert shot_ids(frames[:4] + later[4:]) == [0, 0, 0, 0, 1, 1]


# -- decisions on a clip -------------------------------------------------------------------------


def test_known_blur_pattern_gives_expected_decisions(make_test_clip):
    blurry = {3, 4, 9, 14}
    clip = make_test_clip("pattern.mp4", n_frames=16, blurry=blurry)
    with open_reader(clip.path) as reader:
        scores = [sharpness(f.image) for f in reader]
    decisions = plan_references(scores)
    assert {d.index for d in decisions if d.blurry} == blurry
    for d in decisions:
        if not d.blurry:
            assert d.reference == -1 and d.normalised >= 0.8
            continue
        assert d.reference not in blurry
        assert abs(d.reference - d.index) <= 5
        window = [j for j in range(max(0, d.index - 5), min(16, d.index + 6)) if j != d.index]
        top = max(scores[j] for j in window)
        ties = [j for j in window if scores[j] >= TIE_RATIO * top and scores[j] > d.score]
        assert d.reference == min(ties, key=lambda j: (abs(j - d.index), j))
        other = [j for j in window if (j - d.index) * (d.reference - d.index) < 0]
        top = max((scores[j] for j in other), default=0.0)
        ties = [j for j in other if scores[j] >= TIE_RATIO * top and scores[j] > d.score]
        assert d.second == min(ties, key=lambda j: (abs(j - d.index), j), default=-1)


# -- rules ---------------------------------------------------------------------------------------


def test_normalisation_and_threshold():
    decisions = plan_references([1.0, 0.79, 0.8, 0.0], window=1, threshold=0.8)
    assert [d.normalised for d in decisions] == pytest.approx([1.0, 0.79, 1.0, 0.0])
    assert [d.blurry for d in decisions] == [False, True, False, True]
    assert [d.reference for d in decisions] == [-1, 0, -1, 0]  # sharpest within +-5


def test_flat_frames_are_sharp():
    assert [d.blurry for d in plan_references([0.0, 0.0, 0.0])] == [False, False, False]


def test_ties_prefer_the_nearer_frame_then_the_earlier():
    # frame 2 is blurry; frames 0 and 3 tie on score, 3 is nearer
    d = plan_references([1.0, 0.2, 0.1, 1.0, 0.2])[2]
    assert d.blurry and d.reference == 3
    # frames 1 and 3 tie on score and distance: the earlier wins
    d = plan_references([0.2, 1.0, 0.1, 1.0, 0.2])[2]
    assert d.reference == 1


def test_reference_is_the_sharpest_within_max_offset_not_the_nearest():
    scores = [0.5, 0.6, 0.1, 0.6, 0.9, 0.3]
    assert plan_references(scores, max_offset=2)[2].reference == 4
    assert plan_references(scores, max_offset=1)[2].reference == 1


def test_second_choice_is_the_best_frame_on_the_other_side():
    # frame 2 is blurry; 1 and 3 tie (3 is within 90 % of 1), 1 is earlier: first choice 1,
    # second choice the best after frame 2, where 4 is sharper but 3 ties with it and is nearer
    d = plan_references([0.5, 1.0, 0.1, 0.95, 1.0])[2]
    assert (d.reference, d.second) == (1, 3)
    # the first choice after the frame: the second is looked for before it
    d = plan_references([0.5, 0.6, 0.1, 1.0])[2]
    assert (d.reference, d.second) == (3, 1)
    # nothing on the other side is sharper than the blurry frame itself
    d = plan_references([1.0, 0.1, 0.05])[1]
    assert (d.reference, d.second) == (0, -1)
    # no first choice, no second; sharp frames have neither
    decisions = plan_references([1.0, 0.5, 0.6], all_frames=True)
    assert [(d.reference, d.second) for d in decisions] == [(-1, -1), (0, 2), (0, -1)]
    assert plan_references([1.0, 1.0])[0].second == -1


def test_fallback_when_no_neighbour_is_sharper():
    # all_frames: the locally sharpest frame has nothing better to borrow from
    decisions = plan_references([1.0, 0.5, 0.5], all_frames=True)
    assert all(d.blurry for d in decisions)
    assert [d.reference for d in decisions] == [-1, 0, 0]
    # a single frame has no neighbour at all
    assert plan_references([0.3], all_frames=True)[0].reference == -1
    # max_offset < window: blurry relative to a distant frame, no sharper frame close by
    d = plan_references([1.0, 0.5, 0.5, 0.5, 0.3], window=5, max_offset=1)[3]
    assert d.blurry and d.reference == -1


def test_nothing_is_compared_or_borrowed_across_a_cut():
    # frames 0-3 one shot (less texture), 4-7 another; frame 4 is blurry within its shot
    scores = [0.3, 0.3, 0.3, 0.3, 0.5, 1.0, 1.0, 1.0]
    one_shot = plan_references(scores)
    assert [d.blurry for d in one_shot[:4]] == [True] * 4  # measured against the other shot
    assert one_shot[4].reference == 5 and one_shot[3].reference == 5
    shots = [0, 0, 0, 0, 1, 1, 1, 1]
    decisions = plan_references(scores, shots=shots)
    assert [d.shot for d in decisions] == shots
    assert [d.blurry for d in decisions] == [False] * 4 + [True] + [False] * 3
    assert (decisions[4].reference, decisions[4].second) == (5, -1)  # nothing before the cut
    # a blurry frame alone in its shot has no reference
    d = plan_references([1.0, 0.2, 1.0], shots=[0, 1, 2], all_frames=True)[1]
    assert (d.blurry, d.reference, d.normalised) == (True, -1, 1.0)
    with pytest.raises(ValueError):
        plan_references(scores, shots=[0, 1])
    with pytest.raises(ValueError):
        plan_references([1.0, 1.0], shots=[1, 0])


def test_invalid_parameters_and_scores_are_refused():
    with pytest.raises(ValueError):
        plan_references([1.0], threshold=0.0)
    with pytest.raises(ValueError):
        plan_references([1.0], max_offset=0)
    with pytest.raises(ValueError):
        plan_references([1.0, float("nan")])
    with pytest.raises(ValueError):
        ReferencePlanner(window=-1)


# -- streaming -----------------------------------------------------------------------------------


def _stream(scores, cuts=(), **kwargs) -> tuple[list[FrameDecision], ReferencePlanner]:
    planner = ReferencePlanner(**kwargs)
    out: list[FrameDecision] = []
    for t, score in enumerate(scores):
        released = planner.push(score, new_shot=t in cuts)
        # released as soon as the look-ahead allows, never later
        assert [d.index for d in released] == (
            [t - planner.lookahead] if t >= planner.lookahead else []
        )
        assert len(planner._scores) <= 2 * planner.lookahead + 1  # bounded memory
        out.extend(released)
    out.extend(planner.finish())
    return out, planner


def test_streaming_equals_offline_on_random_scores():
    rng = random.Random(1234)
    for _ in range(300):
        n = rng.randint(0, 40)
        levels = rng.choice([3, 10, 1000])  # few levels: many ties
        scores = [rng.randint(0, levels) / levels for _ in range(n)]
        kwargs = dict(
            window=rng.randint(0, 7),
            max_offset=rng.randint(1, 7),
            threshold=rng.choice([0.5, 0.8, 1.0]),
            all_frames=rng.random() < 0.2,
        )
        cuts = {t for t in range(1, n) if rng.random() < 0.1}
        shots = [sum(c <= t for c in cuts) for t in range(n)]
        streamed, _ = _stream(scores, cuts, **kwargs)
        assert streamed == plan_references(scores, shots=shots, **kwargs), (scores, kwargs)


def test_streaming_releases_every_frame_once_and_refuses_push_after_finish():
    streamed, planner = _stream([0.5, 1.0, 0.2] * 7)
    assert [d.index for d in streamed] == list(range(21))
    with pytest.raises(RuntimeError):
        planner.push(1.0)


def test_all_frames_marks_everything_blurry():
    decisions = plan_references([1.0, 0.9, 0.95, 0.2], all_frames=True)
    assert all(d.blurry for d in decisions)
    # which of them would have passed as sharp is kept: the pipeline copies no detail there
    assert [d.sharp for d in decisions] == [True, True, True, False]
    assert [d.sharp for d in plan_references([1.0, 0.9, 0.95, 0.2])] == [
        not d.blurry for d in plan_references([1.0, 0.9, 0.95, 0.2])]
    # frame 3: 0, 1 and 2 are all within 10 % of the best, so the nearest (2) wins
    assert [d.reference for d in decisions] == [-1, 0, 0, 2]

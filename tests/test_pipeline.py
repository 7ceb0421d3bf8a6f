"""The main job end to end on small synthetic clips: timing, streams, references, safety."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import threading
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
import torch

import refdeblur_video.pipeline.run as run_module
from refdeblur_video.cli import main as cli_main
from refdeblur_video.errors import UserError
from refdeblur_video.evaluate.metrics import psnr
from refdeblur_video.frames.references import FrameDecision, ReferencePlanner, plan_references
from refdeblur_video.frames.sharpness import sharpness
from refdeblur_video.model import InferenceSettings, ModelConfig, RefDeblurNet
from refdeblur_video.model.restorer import Restorer
from refdeblur_video.pipeline import deblur, deblur_image, deblur_many, deblur_video
from refdeblur_video.pipeline.forced_reference import fit_reference
from refdeblur_video.pipeline.preflight import expand_inputs
from refdeblur_video.pipeline.stream import WorkItem, queue_size_for, run_stream
from refdeblur_video.video.metadata import probe
from refdeblur_video.video.reader import CorruptVideoWarning, Frame, open_reader
from refdeblur_video.video.synthetic import make_image, render_frames

TINY = ModelConfig(name="tiny", channels=(8, 8, 8), n_resblocks=1, ref_channels=(4, 4, 4),
                   phi_channels=(4, 4, 4), sffm_hidden=(4, 4))
TINY_MATCH = InferenceSettings(match_radius=2).matching


@pytest.fixture(scope="module")
def restorer() -> Restorer:
    """A small network with random weights: it changes every frame it touches."""
    torch.manual_seed(0)
    net = RefDeblurNet(TINY, TINY_MATCH)
    for p in net.parameters():
        p.data.normal_(0, 0.05)
    return Restorer(net, torch.device("cpu"), trained=True)


@pytest.fixture()
def network_sharpens(monkeypatch):
    """Every restored photo or frame counts as sharper than it came, so that it is written
    as the network made it: tests of what a restored output keeps need one."""
    monkeypatch.setattr("refdeblur_video.pipeline.run.sharpened", lambda *args: True)


def _makes_files(folder: str) -> bool:
    """Whether a file can be made in ``folder`` (as whoever runs the tests)."""
    import tempfile

    try:
        handle, name = tempfile.mkstemp(dir=folder)
    except OSError:
        return False
    os.close(handle)
    os.unlink(name)
    return True


def decoded(path):
    with open_reader(path) as reader:
        return [(f.pts, f.image) for f in reader]


def read_log(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def packets(path, kind):
    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type == kind]
        if not streams:
            return []
        return [(p.pts, bytes(p)) for p in container.demux(streams[0]) if p.size]


@pytest.mark.parametrize("vfr", [False, True])
def test_pts_identical_in_and_out(make_test_clip, restorer, tmp_path, vfr):
    clip = make_test_clip("in.mp4", n_frames=14, blurry={4, 9}, vfr=vfr)
    out = tmp_path / "out.mp4"
    summary = deblur_video(clip.path, out, restorer, quiet=True)
    assert summary.frames == 14
    assert [p for p, _ in decoded(out)] == [p for p, _ in decoded(clip.path)]


def test_audio_packets_copied_bit_exactly(make_test_clip, restorer, tmp_path):
    clip = make_test_clip("in.mp4", n_frames=12, blurry={5}, audio=True)
    out = tmp_path / "out.mp4"
    deblur_video(clip.path, out, restorer, quiet=True)
    source_audio = packets(clip.path, "audio")
    assert source_audio and packets(out, "audio") == source_audio
    dropped = tmp_path / "silent.mp4"
    deblur_video(clip.path, dropped, restorer, quiet=True, audio=False)
    assert packets(dropped, "audio") == []


def test_rotation_kept(make_test_clip, restorer, tmp_path):
    clip = make_test_clip("in.mp4", rotation=90, blurry={2})
    out = tmp_path / "out.mp4"
    deblur_video(clip.path, out, restorer, quiet=True)
    with open_reader(out) as reader:
        assert reader.info.rotation == open_reader(clip.path).info.rotation != 0


def test_sharp_frames_pass_through_bit_exactly_and_blurry_ones_change(
        lossless_clip, restorer, tmp_path):
    out = tmp_path / "out.mkv"
    log = tmp_path / "frames.csv"
    deblur_video(lossless_clip.path, out, restorer, quiet=True, codec="ffv1", pix_fmt="bgr0",
                 log=str(log))
    rows = read_log(log)
    blurry = {int(r["index"]) for r in rows if r["blurry"] == "1"}
    assert blurry == set(lossless_clip.blurry)
    for index, ((_, before), (_, after)) in enumerate(
            zip(decoded(lossless_clip.path), decoded(out), strict=True)):
        if index in blurry:
            assert not np.array_equal(before, after)
        else:
            assert np.array_equal(before, after)


@pytest.mark.parametrize(
    ("codec", "pix_fmt", "size"),
    [
        ("ffv1", "yuv420p", (96, 64)),
        ("ffv1", "yuv420p", (67, 45)),  # odd: kept, not padded
        ("ffv1", "yuv422p10le", (96, 64)),
        ("ffv1", "yuv444p", (96, 64)),
        ("libx264", "yuv420p", (96, 64)),
        ("libx264", "yuv444p10le", (96, 64)),
    ],
)
def test_untouched_yuv_frames_pass_through_bit_exactly(make_test_clip, restorer, tmp_path,
                                                       planes_of, codec, pix_fmt, size):
    clip = make_test_clip("in.mkv", size=size, blurry={3, 7}, codec=codec, pix_fmt=pix_fmt)
    out = tmp_path / "out.mkv"
    log = tmp_path / "frames.csv"
    deblur_video(clip.path, out, restorer, quiet=True, codec=codec, crf=0, preset="ultrafast",
                 log=str(log))
    blurry = {int(r["index"]) for r in read_log(log) if r["blurry"] == "1"}
    assert blurry == set(clip.blurry)
    before, after = planes_of(clip.path), planes_of(out)
    assert after[0][0].shape == (size[1], size[0])
    for index, (a, b) in enumerate(zip(before, after, strict=True)):
        unchanged = all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
        assert unchanged == (index not in blurry), index



def test_full_range_yuvj_frames_pass_through_bit_exactly_into_ffv1(make_test_clip, restorer,
                                                                    tmp_path, planes_of):
    """FFV1 takes no yuvj format: the plain one carries the same samples, tagged full range
    (phone footage and MJPEG are yuvj)."""
    clip = make_test_clip("in.mkv", blurry={3, 7}, codec="mjpeg", pix_fmt="yuvj420p")
    out, log = tmp_path / "out.mkv", tmp_path / "frames.csv"
    deblur_video(clip.path, out, restorer, quiet=True, codec="ffv1", log=str(log))
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.pix_fmt, stream.codec_context.color_range) == \
            ("yuv420p", 2)  # AVCOL_RANGE_JPEG
    rows = read_log(log)
    restored = {int(r["index"]) for r in rows if r["restored"] == "1"}
    assert {3, 7} <= restored and len(restored) < len(clip.frames) - 4
    # a frame restored no sharper than it came is written as it came
    restored -= {int(r["index"]) for r in rows if r["unchanged"] == "1"}
    for index, (a, b) in enumerate(zip(planes_of(clip.path), planes_of(out), strict=True)):
        unchanged = all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
        assert unchanged == (index not in restored), index

def test_expected_reference_on_known_blur_pattern(make_test_clip, restorer, tmp_path):
    # frames 5, 6 and 7 blurry: 6's nearest sharp neighbours are 4 and 8 (2 away)
    clip = make_test_clip("in.mp4", n_frames=14, blurry={5, 6, 7})
    log = tmp_path / "frames.json"
    deblur_video(clip.path, tmp_path / "out.mp4", restorer, quiet=True, log=str(log))
    rows = {r["index"]: r for r in json.loads(log.read_text())["frames"]}
    assert {i for i, r in rows.items() if r["blurry"]} == {5, 6, 7}
    assert rows[5]["reference"] == 4 and rows[7]["reference"] == 8
    assert rows[6]["reference"] in (4, 8)
    assert all(r["reference"] == -1 for i, r in rows.items() if i not in (5, 6, 7))


def test_the_transfer_borrows_from_both_sides_unless_one_reference(make_test_clip, restorer,
                                                                   tmp_path):
    clip = make_test_clip("in.mkv", n_frames=14, blurry={5, 6, 7}, size=(256, 160),
                          codec="ffv1", pix_fmt="bgr0")
    rows, frames = {}, {}
    for name, options in (("both", {}), ("one", {"both_sides": False}),
                          ("none", {"transfer": False})):
        out, log = tmp_path / f"{name}.mkv", tmp_path / f"{name}.json"
        deblur_video(clip.path, out, restorer, quiet=True, codec="ffv1", pix_fmt="bgr0",
                     log=str(log), **options)
        rows[name] = {r["index"]: r for r in json.loads(log.read_text())["frames"]}
        frames[name] = [image for _, image in decoded(out)]
    both = rows["both"]
    assert both[5]["second_reference"] == 8 and both[7]["second_reference"] == 4
    assert {both[6]["reference"], both[6]["second_reference"]} == {4, 8}
    assert all(r["second_reference"] == -1 for i, r in both.items() if i not in (5, 6, 7))
    for name in ("one", "none"):
        assert all(r["second_reference"] == -1 for r in rows[name].values()), name
    for index, (a, b) in enumerate(zip(frames["both"], frames["one"], strict=True)):
        if index not in (6, 7):
            assert np.array_equal(a, b), index
    # frame 5's other side (8, three frames on) shares too little with this random
    # network's output after the first transfer: the structure check keeps it out
    assert not np.array_equal(frames["both"][6], frames["one"][6])
    assert not np.array_equal(frames["both"][7], frames["one"][7])


def test_the_other_reference_is_only_offered_after_the_first_was_used():

    first, second = np.zeros((4, 4, 3), np.uint8), np.ones((4, 4, 3), np.uint8)
    decision = FrameDecision(index=1, score=0.1, normalised=0.1, blurry=True, reference=0,
                             second=2)
    item = WorkItem(Frame(1, 1, Fraction(1, 25), first + 2), decision, first, second)
    assert item.other_reference is None  # not restored yet
    item.reference_used = True
    assert item.other_reference is second  # the first was used: the other side follows
    item.second_used = True
    assert item.other_reference is None  # the first was rejected: the second is the one used
    item.reference_used, item.second_used = False, False
    assert item.other_reference is None  # both rejected: the frame is its own


def test_a_frame_knows_where_it_sits_between_its_two_references():
    image = np.zeros((4, 4, 3), np.uint8)
    decision = FrameDecision(index=5, score=0.1, normalised=0.1, blurry=True, reference=7,
                             second=4)
    item = WorkItem(Frame(5, 5, Fraction(1, 25), image), decision, image + 1, image + 2)
    assert item.fraction is None  # not restored yet: no other reference
    item.reference_used = True
    assert item.fraction == pytest.approx(2 / 3)  # frame 5 is 2/3 of the way from 7 to 4
    # with timestamps (a variable frame rate), time decides: frame 5 at 0.2 s lies a third
    # of the way from frame 7 at 0.3 s to frame 4 at 0.0 s
    item.reference_time, item.second_time = 0.3, 0.0
    item.frame = Frame(5, 5, Fraction(1, 25), image)
    assert item.fraction == pytest.approx(1 / 3)
    item.second_used = True
    assert item.fraction is None  # restored against the second: nothing on the other side


def test_all_frames_mode_restores_every_frame(make_test_clip, restorer, tmp_path):
    clip = make_test_clip("in.mp4", n_frames=6, blurry={2})
    log = tmp_path / "frames.csv"
    summary = deblur_video(clip.path, tmp_path / "out.mp4", restorer, quiet=True,
                           all_frames=True, log=str(log))
    # this random network hardly changes a frame: those it does not sharpen stay as they came
    assert summary.restored + summary.unchanged == 6
    rows = read_log(log)
    # the log still says which frame was blurry, apart from which went through the network
    assert [r["index"] for r in rows if r["blurry"] == "1"] == ["2"]
    assert {r["restored"] for r in rows} == {"1"}


def test_all_frames_copies_no_neighbour_detail_into_sharp_frames(make_test_clip, restorer,
                                                                  tmp_path):
    """A sharp frame sent to the network by --all-frames gets the network's output alone (a
    neighbour no sharper has nothing to add, and would swap the frame's own detail for its
    own); the blurry frame gets the transfer, exactly as without --all-frames."""
    clip = make_test_clip("in.mkv", n_frames=6, blurry={2}, codec="ffv1", pix_fmt="bgr0")
    runs = {}
    for name, options in (("all", {"all_frames": True}),
                          ("all_network", {"all_frames": True, "transfer": False}),
                          ("default", {})):
        out = tmp_path / f"{name}.mkv"
        deblur_video(clip.path, out, restorer, quiet=True, codec="ffv1", **options)
        runs[name] = [image for _, image in decoded(out)]
    for i in (0, 1, 3, 4, 5):
        np.testing.assert_array_equal(runs["all"][i], runs["all_network"][i])
    np.testing.assert_array_equal(runs["all"][2], runs["default"][2])
    assert not np.array_equal(runs["all"][2], runs["all_network"][2])  # the transfer ran


def test_forced_reference_image_is_used(make_test_clip, restorer, tmp_path):
    clip = make_test_clip("in.mp4", n_frames=8, blurry={3})
    ref = tmp_path / "ref.png"
    make_image(ref, size=(96, 64))
    log = tmp_path / "frames.csv"
    deblur_video(clip.path, tmp_path / "out.mp4", restorer, quiet=True, ref=str(ref),
                 log=str(log))
    assert [r["reference"] for r in read_log(log) if r["blurry"] == "1"] == ["-2"]


def test_log_and_summary_say_when_the_reference_check_dropped_a_reference(
        make_test_clip, tmp_path, caplog, pooled_phi, monkeypatch):
    import refdeblur_video.pipeline.run as run

    monkeypatch.setattr(run, "sharpened", lambda *_: True)  # the reference check alone
    torch.manual_seed(0)
    net = RefDeblurNet(TINY, TINY_MATCH)
    net.phi = pooled_phi
    checking = Restorer(net, torch.device("cpu"), trained=True, amp=False,
                        reference_check=0.55)
    clip = make_test_clip("in.mp4", n_frames=8, blurry={3})
    log = tmp_path / "frames.csv"
    summary = deblur_video(clip.path, tmp_path / "a.mp4", checking, quiet=True, log=str(log))
    rows = read_log(log)
    [restored] = [r for r in rows if r["blurry"] == "1"]
    assert restored["reference"] in ("2", "4") and restored["reference_used"] == "1"
    assert {r["reference_used"] for r in rows if r["blurry"] == "0"} == {""}
    assert summary.references_dropped == 0
    noise = tmp_path / "other.png"  # another scene (clean: a noisy one is set aside first)
    cv2.imwrite(str(noise), 255 - make_image(size=(96, 64), seed=3))
    summary = deblur_video(clip.path, tmp_path / "b.mp4", checking, quiet=True,
                           ref=str(noise), log=str(log), overwrite=True)
    # the wrong --ref is dropped for the frame's own nearest sharp frame, as without --ref
    [row] = [r for r in read_log(log) if r["blurry"] == "1"]
    assert row["reference"] == restored["reference"] and row["reference_used"] == "1"
    assert summary.restored == 1 and summary.references_dropped == 0
    for (_, wrong), (_, none) in zip(decoded(tmp_path / "b.mp4"), decoded(tmp_path / "a.mp4"),
                                     strict=True):
        np.testing.assert_array_equal(wrong, none)
    with caplog.at_level("WARNING"):  # sharp frames too: the sharpest has none sharper
        deblur_video(clip.path, tmp_path / "c.mp4", checking, quiet=True, ref=str(noise),
                     all_frames=True)
    assert "in 8 of 8 restored frames: 7 were restored against a nearby sharp frame " \
        "instead, 1 against themselves" in caplog.text
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), cv2.cvtColor(clip.frames[3], cv2.COLOR_RGB2BGR))
    summary = deblur_image(photo, tmp_path / "out.png", checking, ref=str(noise))
    assert summary.references_dropped == 1
    assert "does not show the photo's scene" in caplog.text


def test_a_reference_from_another_shot_is_replaced_by_one_from_the_same_shot(
        make_test_clip, tmp_path, pooled_phi, monkeypatch):
    import refdeblur_video.pipeline.run as run

    monkeypatch.setattr(run, "sharpened", lambda *_: True)  # the reference check alone
    torch.manual_seed(0)
    net = RefDeblurNet(TINY, TINY_MATCH)
    for p in net.parameters():  # so that the reference changes the output
        p.data.normal_(0, 0.05)
    net.phi = pooled_phi
    checking = Restorer(net, torch.device("cpu"), trained=True, amp=False,
                        reference_check=0.55)
    # a cut before frame 5, which is blurry: the nearest sharp frames are 4 (the other shot,
    # first choice on ties) and 6 (this shot)
    clip = make_test_clip("cut.mkv", n_frames=10, blurry={5}, cut_at=5, codec="ffv1",
                          pix_fmt="bgr0")  # lossless
    with open_reader(clip.path) as reader:
        scores = [sharpness(f.image) for f in reader]
    decision = plan_references(scores)[5]
    assert (decision.blurry, decision.reference, decision.second) == (True, 4, 6)
    log = tmp_path / "frames.csv"
    summary = deblur_video(clip.path, tmp_path / "out.mkv", checking, quiet=True, log=str(log),
                           codec="ffv1", pix_fmt="bgr0", cuts=False,  # the check alone
                           transfer=False)
    [row] = [r for r in read_log(log) if r["blurry"] == "1"]
    assert (row["index"], row["reference"], row["reference_used"]) == ("5", "6", "1")
    assert summary.references_dropped == 0 and summary.shots == 1
    # the output is the network's with frame 6 as reference
    with_6, without = checking.restore_images([clip.frames[5]] * 2, clip.frames[6:4:-1])
    out5 = decoded(tmp_path / "out.mkv")[5][1]
    assert np.array_equal(out5, with_6) and not np.array_equal(out5, without)


def test_when_both_choices_fail_the_check_the_first_is_logged_as_unused():
    images = render_frames((96, 64), 9, {4})
    frames = [Frame(i, i, Fraction(1, 25), image) for i, image in enumerate(images)]
    calls = []

    def reject_all(batch, references):
        calls.append([next(i for i, im in enumerate(images) if im is r) for r in references])
        return [b.copy() for b in batch], [False] * len(batch)

    written: list = []
    run_stream(frames, ReferencePlanner(), reject_all, lambda output, frame, *references: output,
               written.append, batch=2, queue_size=8)
    [item] = [w for w in written if w.decision.blurry]
    first, second = item.decision.reference, item.decision.second
    assert {first, second} == {3, 5} and calls == [[first], [second]]
    assert item.reference_index == first and item.reference_used is False
    assert item.seconds > 0 and not item.second_used


def test_the_queues_hold_fewer_frames_the_larger_the_frames():
    """Eight 4K 10-bit frames a queue came to some 4 GB in flight (docs/RESULTS.md)."""
    assert queue_size_for(1280, 720, 8, batch=2) == 8
    assert queue_size_for(3840, 2160, 10, batch=2) == 2
    assert queue_size_for(3840, 2160, 8, batch=4) == 4  # a whole batch still gathers
    sizes = [queue_size_for(w, w * 9 // 16, depth, 1) for w in (640, 1920, 2560, 3840, 7680)
             for depth in (8, 10)]
    assert sizes == sorted(sizes, reverse=True) and min(sizes) == 2


def test_shot_cuts_are_found_and_not_crossed(make_test_clip, restorer, tmp_path, capsys):
    # shot 1: frames 0-5, shot 2: frames 6-11; 5, 6 and 7 blurry. Frame 6's sharp
    # neighbours 4 and 8 are equally near: the earlier one, 4, belongs to the other shot
    clip = make_test_clip("cut.mkv", n_frames=12, blurry={5, 6, 7}, cut_at=6)
    log = tmp_path / "frames.json"
    summary = deblur_video(clip.path, tmp_path / "out.mp4", restorer, quiet=True, log=str(log))
    rows = json.loads(log.read_text())["frames"]
    assert [r["shot"] for r in rows] == [0] * 6 + [1] * 6 and summary.shots == 2
    assert {r["index"]: r["reference"] for r in rows if r["blurry"]} == {5: 4, 6: 8, 7: 8}
    code = cli_main([str(clip.path), str(tmp_path / "cli.mp4"), "--model", "lite"])
    assert code == 0 and "12 frames in 2 shots, 3 restored" in capsys.readouterr().out
    # --no-cuts: one shot, and frame 6 borrows from the other shot
    one_log = tmp_path / "one.json"
    code = cli_main([str(clip.path), str(tmp_path / "one.mp4"), "--no-cuts", "--log",
                     str(one_log), "--model", "lite", "--reference-check", "0"])
    rows = json.loads(one_log.read_text())["frames"]
    assert code == 0 and {r["shot"] for r in rows} == {0}
    assert [r["index"] for r in rows if r["blurry"]] == [5, 6, 7] and rows[6]["reference"] == 4
    assert "12 frames, 3 restored" in capsys.readouterr().out


def test_image_mode(tmp_path, restorer):
    blurry, sharp = tmp_path / "blurry.png", tmp_path / "sharp.png"
    make_image(blurry, blurry=True)
    make_image(sharp, index=1)
    out = tmp_path / "out.png"
    deblur_image(blurry, out, restorer, ref=str(sharp))
    assert cv2.imread(str(out)).shape == cv2.imread(str(blurry)).shape


def test_a_photo_keeps_its_transparency_and_a_grey_photo_stays_grey(tmp_path, restorer,
                                                                     caplog, monkeypatch):
    rgb = make_image(blurry=True)
    alpha = np.tile(np.linspace(0, 255, rgb.shape[1]).astype(np.uint8), (rgb.shape[0], 1))
    cv2.imwrite(str(tmp_path / "rgba.png"), np.dstack((rgb[..., ::-1], alpha)))
    deblur_image(tmp_path / "rgba.png", tmp_path / "out.png", restorer)
    written = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert written.shape == (*rgb.shape[:2], 4)
    np.testing.assert_array_equal(written[..., 3], alpha)
    network = run_module._restore_photo

    def said_then_restored(*args, **kwargs):
        run_module.log.warning("the network starts")
        return network(*args, **kwargs)

    monkeypatch.setattr(run_module, "_restore_photo", said_then_restored)
    with caplog.at_level("WARNING"):
        deblur_image(tmp_path / "rgba.png", tmp_path / "out.jpg", restorer)
    said = [r.getMessage() for r in caplog.records]
    # said before the network's minutes, not after them
    assert [m for m in said if "transparency is not kept" in m or m == "the network starts"
            ] == [
        next(m for m in said if "transparency is not kept" in m), "the network starts"]
    cv2.imwrite(str(tmp_path / "grey.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    deblur_image(tmp_path / "grey.png", tmp_path / "grey_out.png", restorer)
    assert cv2.imread(str(tmp_path / "grey_out.png"), cv2.IMREAD_UNCHANGED).ndim == 2
    from PIL import Image  # OpenCV writes no grey with alpha (PNG's LA)

    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    Image.fromarray(np.dstack((grey, alpha)), "LA").save(tmp_path / "grey_alpha.png")
    deblur_image(tmp_path / "grey_alpha.png", tmp_path / "grey_alpha_out.png", restorer)
    written = cv2.imread(str(tmp_path / "grey_alpha_out.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(written[..., 3], alpha)
    assert (written[..., 0] == written[..., 1]).all() and (written[..., 1] == written[..., 2]).all()


def test_a_photo_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, restorer,
                                                                 monkeypatch):
    import errno
    import os
    from pathlib import Path

    blurry, sharp = tmp_path / "blurry.png", tmp_path / "sharp.png"
    make_image(blurry, blurry=True)
    make_image(sharp, index=1)

    def full(self, data):
        self.touch()  # as a full disk does: the file is made, its bytes are not written
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(UserError) as error:
        deblur_image(blurry, tmp_path / "out.png", restorer, ref=str(sharp))
    assert str(error.value) == (f"cannot write {tmp_path / 'out.png'} (No space left on "
                                "device): no output was written")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blurry.png", "sharp.png"]


def test_many_files_skip_finished_outputs(make_test_clip, tmp_path, monkeypatch, restorer):
    a = make_test_clip("a.mp4", n_frames=6, blurry={2})
    make_test_clip("b.mp4", n_frames=6, blurry={2})
    make_test_clip("c.mp4", n_frames=6, blurry={2})
    make_test_clip("d.mp4", n_frames=6, blurry={2})
    outdir = tmp_path / "done"
    outdir.mkdir()
    finished = make_test_clip("done/a.mp4", n_frames=6).path.read_bytes()
    (outdir / "c.mp4").write_bytes(b"not a video")  # someone else's file: left alone
    # another video of the same name (phones repeat IMG_0001.MOV): not this input's output
    other = make_test_clip("done/d.mp4", n_frames=3).path.read_bytes()
    monkeypatch.setattr("refdeblur_video.pipeline.run.make_restorer", lambda opts: restorer)
    results = deblur_many(str(a.path.parent / "*.mp4"), outdir, quiet=True)
    assert [r.skipped for r in results] == [True, False, False, False]
    assert [bool(r.error) for r in results] == [False, False, True, True]
    assert "exists but is no readable video" in results[2].error
    assert results[3].error == (f"output {outdir / 'd.mp4'} exists but is not made from "
                                f"{a.path.parent / 'd.mp4'} (frames 3 in it, 6 in the "
                                "input): remove it, or use --overwrite")
    assert (outdir / "a.mp4").read_bytes() == finished
    assert (outdir / "c.mp4").read_bytes() == b"not a video"
    assert (outdir / "d.mp4").read_bytes() == other
    assert len(decoded(outdir / "b.mp4")) == 6



def test_a_file_another_run_is_making_is_skipped_not_an_error(make_test_clip, tmp_path,
                                                              monkeypatch, restorer):
    """Two runs over one folder of inputs share the work: the file the other holds is
    skipped, and this run ends well."""
    import fcntl

    from refdeblur_video.pipeline.resume import state_dir

    (tmp_path / "in").mkdir()
    make_test_clip("in/a.mp4", n_frames=6, blurry={2})
    make_test_clip("in/b.mp4", n_frames=6, blurry={2})
    outdir = tmp_path / "out"
    state = state_dir(outdir / "a.mp4")
    state.mkdir(parents=True)
    monkeypatch.setattr("refdeblur_video.pipeline.run.make_restorer", lambda opts: restorer)
    with open(state / "lock", "w") as held:  # the other run, making a.mp4
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        results = deblur_many(str(tmp_path / "in"), outdir, quiet=True)
    assert [(r.skipped, r.error) for r in results] == [(True, None), (False, None)]
    assert results[0].closing_line().endswith("a.mp4: another run is making it, skipped")
    assert len(decoded(outdir / "b.mp4")) == 6

def test_one_bad_file_of_many_is_reported_and_the_others_are_made(make_test_clip, tmp_path):
    (tmp_path / "batch").mkdir()
    make_test_clip("batch/b.mp4", n_frames=6, blurry={2})
    (tmp_path / "batch" / "a.mp4").write_bytes(b"")  # sorts first: an empty file
    (tmp_path / "batch" / "c.mp4").write_text("not a video")
    outdir = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "refdeblur_video.cli", "batch", "out", "-q"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert len(decoded(outdir / "b.mp4")) == 6
    assert sorted(p.name for p in outdir.iterdir()) == ["b.mp4"]  # nothing half-written
    errors = done.stderr.splitlines()
    assert len(errors) == 2, done.stderr
    assert errors[0].startswith("error: batch/a.mp4 ") and errors[1].startswith(
        "error: batch/c.mp4 "), done.stderr


def test_many_files_in_a_container_the_tool_cannot_write_become_matroska(
        make_test_clip, tmp_path, monkeypatch, restorer):
    (tmp_path / "in").mkdir()
    for name in ("a.avi", "b.ts", "c.m4v"):
        make_test_clip(f"in/{name}", n_frames=4, blurry={2})
    monkeypatch.setattr("refdeblur_video.pipeline.run.make_restorer", lambda opts: restorer)
    results = deblur_many(str(tmp_path / "in"), tmp_path / "out", quiet=True)
    assert [r.error for r in results] == [None, None, None]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.mkv", "b.ts", "c.m4v"]
    for name in ("a.mkv", "b.ts", "c.m4v"):
        assert len(decoded(tmp_path / "out" / name)) == 4


def test_inputs_that_would_be_written_under_one_name_are_refused(make_test_clip, tmp_path):
    (tmp_path / "in").mkdir()
    make_test_clip("in/a.avi", n_frames=2)
    make_test_clip("in/a.mkv", n_frames=2)
    make_test_clip("in/b.avi", n_frames=2)
    make_test_clip("in/b.mkv", n_frames=2)
    with pytest.raises(UserError) as refused:  # every clash in one message
        deblur_many(str(tmp_path / "in"), tmp_path / "out", quiet=True)
    assert "would both be written as a.mkv; " in str(refused.value)
    assert "would both be written as b.mkv; give them different names" in str(refused.value)
    assert not (tmp_path / "out").exists()


def test_many_files_shard_by_torchrun_rank(make_test_clip, tmp_path, monkeypatch, restorer):
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        make_test_clip(name, n_frames=4, blurry={1})
    monkeypatch.setattr("refdeblur_video.pipeline.run.make_restorer", lambda opts: restorer)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    results = deblur_many(str(tmp_path), tmp_path / "out", quiet=True)
    assert [r.output for r in results] == [str(tmp_path / "out" / "b.mp4")]


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("error", [Boom, KeyboardInterrupt])
def test_no_partial_output_after_failure(make_test_clip, tmp_path, restorer, error):
    clip = make_test_clip("in.mp4", n_frames=12, blurry={2, 8})
    calls = []

    class Failing:
        trained = True

        def restore_floats(self, blurry, refs):
            calls.append(1)
            if len(calls) > 1:
                raise error()
            return restorer.restore_floats(blurry, refs)

    out = tmp_path / "out.mp4"
    with pytest.raises(error):
        deblur_video(clip.path, out, Failing(), quiet=True, batch=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_existing_output_refused_unless_overwrite(make_test_clip, tmp_path, restorer):
    clip = make_test_clip("in.mp4", n_frames=4, blurry={1})
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep me")
    with pytest.raises(UserError, match="already exists"):
        deblur_video(clip.path, out, restorer, quiet=True)
    assert out.read_bytes() == b"keep me"
    deblur_video(clip.path, out, restorer, quiet=True, overwrite=True)
    assert len(decoded(out)) == 4


def test_output_same_as_input_refused(make_test_clip, restorer):
    clip = make_test_clip("in.mp4", n_frames=4)
    with pytest.raises(UserError):
        deblur_video(clip.path, clip.path, restorer, quiet=True, overwrite=True)


def run_cli(args, capsys):
    code = cli_main([*args, "--model", "lite", "-q"])
    return code, capsys.readouterr().err.strip().splitlines()


def test_cli_says_when_the_shipped_models_check_drops_a_wrong_ref(tmp_path, capsys, caplog,
                                                                   make_test_clip):
    clip = make_test_clip("in.mp4", n_frames=8, blurry={2, 5})
    noise = tmp_path / "other.png"  # another scene (clean: a noisy one is set aside first)
    stripes = (np.arange(96) // 4 % 2 * 255).astype(np.uint8)
    cv2.imwrite(str(noise), np.tile(stripes[None, :, None], (64, 1, 3)))
    code = cli_main([str(clip.path), str(tmp_path / "out.mp4"), "--ref", str(noise)])
    captured = capsys.readouterr()
    assert code == 0
    assert "2 restored," in captured.out
    assert "--ref image does not show the video's scene (reference check) in 2 of 2 " \
        "restored frames: they were restored against a nearby sharp frame instead" in caplog.text
    code = cli_main([str(clip.path), str(tmp_path / "out2.mp4")])  # its own neighbours
    captured = capsys.readouterr()
    assert code == 0 and "2 restored," in captured.out and "without" not in captured.out


def test_cli_bad_inputs_give_one_line_and_exit_2(tmp_path, capsys, make_test_clip):
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("this is not a video")
    audio_only = tmp_path / "audio.m4a"
    with av.open(str(audio_only), "w") as out:
        stream = out.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                           layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    song = tmp_path / "song.mp3"  # sound with album art: its one "video" stream a cover
    with av.open(str(song), "w") as out:
        sound = out.add_stream("libmp3lame", rate=44100, layout="mono")
        cover = out.add_stream("png")
        cover.width, cover.height, cover.pix_fmt = 16, 16, "rgb24"
        cover.disposition = av.stream.Disposition.attached_pic
        out.mux(cover.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8),
                                                        "rgb24")))
        out.mux(cover.encode())
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1152), np.float32), format="fltp",
                                           layout="mono")
        frame.sample_rate = 44100
        out.mux(sound.encode(frame))
        out.mux(sound.encode())
    clip = make_test_clip("ok.mp4", n_frames=4)
    cases = [
        [str(tmp_path / "missing.mp4"), str(tmp_path / "o1.mp4")],
        [str(not_video), str(tmp_path / "o2.mp4")],
        [str(audio_only), str(tmp_path / "o3.mp4")],
        [str(song), str(tmp_path / "o3b.mp4")],
        [str(clip.path), str(tmp_path / "no" / "such" / "dir" / "o4.mp4")],
        [str(clip.path), str(tmp_path / "o5.webm"), "--codec", "prores_ks"],
        [str(clip.path), str(tmp_path / "o6.mp4"), "--codec", "not-a-codec"],
        [str(clip.path), str(tmp_path / "o7.mp4"), "--reference-check", "1.5"],
    ]
    for args in cases:
        code, err = run_cli(args, capsys)
        errors = [line for line in err if not line.startswith("warning:")]
        assert code == 2, args
        assert len(errors) == 1 and errors[0].startswith("error: "), (args, err)
    leftovers = {p.name for p in tmp_path.iterdir()}
    assert leftovers == {"audio.m4a", "notes.mp4", "ok.mp4", "song.mp3"}, leftovers


def test_zero_frame_video_is_refused(tmp_path, restorer):
    empty = tmp_path / "empty.mp4"
    # A fragmented MP4 writes its track at the start: a video stream with no frame at all
    # (a plain MP4 without samples keeps no track, and PyAV writes nothing unless asked).
    with av.open(str(empty), "w", options={"movflags": "frag_keyframe+empty_moov"}) as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()
    with av.open(str(empty)) as container:
        video = container.streams.video[0]
        assert (video.width, video.height) == (64, 48)
        assert not [p for p in container.demux(video) if p.size]
    with pytest.raises(UserError, match="no decodable video frames"):
        deblur_video(empty, tmp_path / "out.mp4", restorer, quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.mp4"]


def test_many_files_into_their_own_folder_are_refused(make_test_clip, tmp_path, restorer,
                                                       monkeypatch):
    make_test_clip("a.mp4", n_frames=4)
    monkeypatch.setattr("refdeblur_video.pipeline.run.make_restorer", lambda opts: restorer)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for pattern, outdir in [(str(tmp_path / "*.mp4"), tmp_path), (str(tmp_path), tmp_path),
                            (str(tmp_path / "*.mp4"), tmp_path / ".." / tmp_path.name)]:
        for overwrite in (False, True):
            with pytest.raises(UserError, match="holds the input videos"):
                deblur_many(pattern, outdir, quiet=True, overwrite=overwrite)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_non_finite_restored_photo_is_not_written(tmp_path):
    net = RefDeblurNet(TINY, TINY_MATCH)
    with torch.no_grad():
        net.tail.bias.fill_(float("inf"))
    broken = Restorer(net, torch.device("cpu"), trained=True)
    make_image(tmp_path / "b.png", blurry=True)
    with pytest.raises(UserError, match="NaN or infinite"):
        deblur_image(tmp_path / "b.png", tmp_path / "o.png", broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.png"]


def test_truncated_video_is_salvaged_with_a_warning(make_test_clip, tmp_path, restorer):
    clip = make_test_clip("in.mkv", n_frames=30, blurry={3}, codec="ffv1", pix_fmt="bgr0")
    data = clip.path.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.warns(UserWarning, match="truncated or corrupt"):
        summary = deblur_video(cut, tmp_path / "out.mkv", restorer, quiet=True, codec="ffv1")
    assert 0 < summary.frames < 30


def test_odd_frame_size_is_padded_for_420(make_test_clip, tmp_path, restorer):
    clip = make_test_clip("in.mkv", size=(67, 45), n_frames=4, blurry={1}, codec="ffv1",
                          pix_fmt="bgr0")
    out = tmp_path / "out.mp4"
    deblur_video(clip.path, out, restorer, quiet=True, pix_fmt="yuv420p")
    with open_reader(out) as reader:
        assert (reader.info.width, reader.info.height) == (68, 46)


def test_dispatch_picks_image_mode(tmp_path, restorer, monkeypatch):
    make_image(tmp_path / "b.png", blurry=True)
    monkeypatch.setattr("refdeblur_video.pipeline.run.make_restorer", lambda opts: restorer)
    [summary] = deblur(str(tmp_path / "b.png"), str(tmp_path / "o.png"))
    assert summary.sent_to_network == 1 and (tmp_path / "o.png").is_file()


def test_a_photo_the_network_does_not_sharpen_comes_back_as_it_came(tmp_path, restorer,
                                                                    monkeypatch):
    """Video frames the network made no sharper are written as they came; a photo was
    written softer (a new user's sharp photo came back 3 dB worse). The same gate now."""
    monkeypatch.setattr("refdeblur_video.pipeline.run.make_restorer", lambda opts: restorer)
    make_image(tmp_path / "sharp.png")
    softened = lambda image: cv2.GaussianBlur(image, (0, 0), 2.0)  # noqa: E731
    monkeypatch.setattr("refdeblur_video.pipeline.run._restore_photo",
                        lambda restorer, blurry, reference, opts, name: (softened(blurry), True))
    [summary] = deblur(str(tmp_path / "sharp.png"), str(tmp_path / "o.png"))
    assert (summary.restored, summary.unchanged) == (0, 1)
    assert "1 kept as they came" in summary.closing_line()
    assert np.array_equal(cv2.imread(str(tmp_path / "o.png")),
                          cv2.imread(str(tmp_path / "sharp.png")))
    sharpened = lambda image: cv2.addWeighted(image, 2.0, softened(image), -1.0, 0)  # noqa: E731
    monkeypatch.setattr("refdeblur_video.pipeline.run._restore_photo",
                        lambda restorer, blurry, reference, opts, name: (sharpened(blurry), True))
    [summary] = deblur(str(tmp_path / "sharp.png"), str(tmp_path / "p.png"), overwrite=True)
    assert (summary.restored, summary.unchanged) == (1, 0)


def _first_times(path) -> dict[str, float]:
    """Each stream's first presentation time in seconds, by its type."""
    with av.open(str(path)) as container:
        firsts: dict[str, float] = {}
        for packet in container.demux():
            if packet.size and packet.pts is not None:
                kind = packet.stream.type
                time = float(packet.pts * packet.stream.time_base)
                firsts[kind] = min(firsts.get(kind, time), time)
    return firsts


@pytest.mark.parametrize(("suffix", "packet_bytes"), [(".ts", 188), (".mts", 192),
                                                      (".m2ts", 192)])
def test_an_mpeg_ts_output_keeps_sound_in_step_and_names_what_it_cannot_hold(
        make_test_clip, restorer, tmp_path, caplog, suffix, packet_bytes):
    """A camcorder's .MTS, a broadcast's .ts: the output may keep the input's container.
    Before, such names were refused."""
    clip = make_test_clip("phone.mp4", n_frames=12, blurry={5}, audio=True, rotation=90)
    out = tmp_path / f"out{suffix}"
    with caplog.at_level("WARNING"):
        summary = deblur_video(clip.path, out, restorer, quiet=True)
    assert summary.restored == 1
    data = out.read_bytes()  # BDAV packets carry a 4-byte arrival time before each
    assert len(data) % packet_bytes == 0
    assert data[packet_bytes - 188] == 0x47 and data[2 * packet_bytes - 188] == 0x47
    with av.open(str(out)) as container:
        assert container.format.name == "mpegts"
        assert [s.type for s in container.streams] == ["video", "audio"]
    before, after = _first_times(clip.path), _first_times(out)
    assert after["audio"] - after["video"] == pytest.approx(before["audio"] - before["video"],
                                                            abs=1e-4)
    assert len(decoded(out)) == 12
    said = [r.getMessage() for r in caplog.records if "MPEG-TS" in r.getMessage()]
    assert said == ["an MPEG-TS output does not keep the input's rotation (90 degrees: it "
                    "plays unturned): .mkv, .mp4 and .mov do"]


def test_a_photo_kept_as_it_came_is_the_file_itself_where_the_format_allows(
        tmp_path, restorer, monkeypatch, caplog):
    """A photo the network did not sharpen was encoded again: a JPEG came back a little
    worse, and its XMP was dropped as if the samples had changed."""
    from PIL import Image

    monkeypatch.setattr("refdeblur_video.pipeline.run.make_restorer", lambda opts: restorer)
    monkeypatch.setattr("refdeblur_video.pipeline.run.sharpened", lambda *args: False)
    _camera_photo(tmp_path / "camera.jpg")  # turned by its EXIF, with a colour profile
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/'
           b'1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>')
    with Image.open(tmp_path / "camera.jpg") as photo:
        photo.save(tmp_path / "xmp.jpg", xmp=xmp, exif=photo.getexif(), quality=90)
    with caplog.at_level("WARNING"):
        for name in ("camera.jpg", "xmp.jpg"):
            [summary] = deblur(str(tmp_path / name), str(tmp_path / f"out_{name}"))
            assert summary.unchanged == 1
            assert (tmp_path / f"out_{name}").read_bytes() == (tmp_path / name).read_bytes()
    assert not [r for r in caplog.records if "left out" in r.getMessage()]
    # another format, or an encoding asked for, is written from the samples (upright)
    deblur(str(tmp_path / "camera.jpg"), str(tmp_path / "out.png"))
    deblur(str(tmp_path / "camera.jpg"), str(tmp_path / "q.jpg"), quality=60)
    for name in ("out.png", "q.jpg"):
        with Image.open(tmp_path / name) as written:
            assert written.size == (64, 96) and written.getexif().get(0x0112, 1) == 1
    # a file whose name says JPEG but which holds a PNG: the output named .jpg is a JPEG
    (tmp_path / "named.jpg").write_bytes(cv2.imencode(".png", make_image(size=(96, 64)))[1])
    deblur(str(tmp_path / "named.jpg"), str(tmp_path / "named_out.jpg"))
    assert (tmp_path / "named_out.jpg").read_bytes()[:3] == b"\xff\xd8\xff"


def test_decord_reader_gives_the_same_result(make_test_clip, restorer, tmp_path):
    pytest.importorskip("decord")
    clip = make_test_clip("in.mkv", n_frames=10, blurry={4}, codec="ffv1", pix_fmt="bgr0")
    outputs = {}
    for reader in ("pyav", "decord"):
        out = tmp_path / f"{reader}.mkv"
        deblur_video(clip.path, out, restorer, quiet=True, reader=reader, codec="ffv1",
                     pix_fmt="bgr0", log=str(tmp_path / f"{reader}.csv"))
        outputs[reader] = decoded(out)
    def decisions(name):
        return [{k: v for k, v in row.items() if k != "seconds"}
                for row in read_log(tmp_path / name)]

    assert decisions("pyav.csv") == decisions("decord.csv")
    for (pts_a, a), (pts_b, b) in zip(outputs["pyav"], outputs["decord"], strict=True):
        assert pts_a == pts_b and np.array_equal(a, b)


class _Grouping:
    """A refine step with ``many``: records the frame indices of each call; outputs are
    torch tensors, standing in for outputs left on a GPU."""

    def __init__(self, images):
        self.images, self.groups = images, []
        self.called = threading.Event()

    def __call__(self, output, frame, *references):
        raise AssertionError("outputs on the device are finished in groups")

    def many(self, requests):
        self.groups.append([next(i for i, im in enumerate(self.images) if im is r[1])
                            for r in requests])
        self.called.set()
        return [output.numpy() + 1 for output, *_ in requests]


def _on_device(batch, references):
    return [torch.from_numpy(b.astype(np.int16)) for b in batch], [True] * len(batch)


def test_outputs_on_the_device_are_finished_a_network_batch_at_a_time():
    """The refine step's ``many`` gets each network batch's restored frames in one call:
    the same groups in a run from the start and in one resumed mid-video (batches never
    span a multiple of ``segment``)."""
    blurry = [1, 2, 3, 5, 6, 9, 10, 11, 12]
    images = render_frames((96, 64), 14, set(blurry))
    frames = [Frame(i, i, Fraction(1, 25), image) for i, image in enumerate(images)]

    def runs(start):
        refine, written = _Grouping(images), []
        run_stream(frames, ReferencePlanner(), _on_device, refine, written.append, batch=4,
                   queue_size=8, start=start, segment=6)
        return refine.groups, written

    groups, written = runs(0)
    # network batches: frames 0-5 (four blurry), 6-11 (segment start; four blurry), 12-13
    assert groups == [[1, 2, 3, 5], [6, 9, 10, 11], [12]]
    assert [w.frame.index for w in written] == list(range(14))
    for item in written:  # each restored frame went through the refine step once
        if item.frame.index in blurry:
            assert np.array_equal(item.output, item.frame.image.astype(np.int16) + 1)
    resumed, _ = runs(6)
    assert resumed == [[6, 9, 10, 11], [12]]


def test_after_an_upstream_error_the_restored_batches_are_still_finished_and_written():
    images = render_frames((96, 64), 12, {1, 2, 3, 5, 9})
    refine = _Grouping(images)

    def frames():
        for i, image in enumerate(images):
            yield Frame(i, i, Fraction(1, 25), image)
        assert refine.called.wait(30)  # the first network batch is through
        raise OSError("the disk went away")

    written: list = []
    with pytest.raises(OSError, match="disk went away"):
        run_stream(frames(), ReferencePlanner(), _on_device, refine, written.append,
                   batch=4, queue_size=8)
    assert refine.groups == [[1, 2, 3, 5]]
    assert [w.frame.index for w in written] == list(range(6))
    assert all(np.array_equal(w.output, w.frame.image.astype(np.int16) + 1)
               for w in written if w.frame.index in {1, 2, 3, 5})


def test_a_phones_ten_bit_hevc_comes_back_as_ten_bit_hevc_apple_can_play(
        make_test_clip, planes_of, tmp_path, capsys):
    """Re-coded as H.264 it would be 10-bit H.264, which hardly any player decodes; as HEVC
    again it plays where the input did. Lossless (CRF 0): the untouched frames come back
    sample for sample."""
    clip = make_test_clip("phone.mov", n_frames=8, size=(128, 96), blurry={3, 5},
                          codec="libx265", pix_fmt="yuv420p10le", audio=True)
    out = tmp_path / "out.mov"
    code = cli_main([str(clip.path), str(out), "--model", "lite", "--crf", "0"])
    assert code == 0 and "8 frames, 2 restored" in capsys.readouterr().out
    with av.open(str(out)) as container:
        video = container.streams.video[0].codec_context
        assert (video.name, video.pix_fmt, video.codec_tag) == ("hevc", "yuv420p10le", "hvc1")
        assert container.streams.audio
    before, after = planes_of(clip.path), planes_of(out)
    for index in set(range(8)) - {3, 5}:
        for plane_in, plane_out in zip(before[index], after[index], strict=True):
            np.testing.assert_array_equal(plane_out, plane_in)
    assert not np.array_equal(after[3][0], before[3][0])  # restored


def test_an_av1_input_comes_back_as_av1_without_the_encoders_chatter(make_test_clip, tmp_path):
    """SVT-AV1 prints its configuration (about twenty lines) straight to the terminal unless
    told not to; the tool's own lines are all a user should see. Its own process, because
    the library writes to the file descriptor, not through Python."""
    import os

    clip = make_test_clip("a.mkv", n_frames=6, size=(128, 96), blurry={2}, codec="libsvtav1",
                          pix_fmt="yuv420p")
    env = {key: value for key, value in os.environ.items() if key != "SVT_LOG"}
    done = subprocess.run([sys.executable, "-m", "refdeblur_video.cli", str(clip.path),
                           str(tmp_path / "out.mkv"), "--model", "lite"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert "Svt" not in done.stderr and "Svt" not in done.stdout, done.stderr
    assert probe(tmp_path / "out.mkv").codec_name == "av1"
    assert len(decoded(tmp_path / "out.mkv")) == 6


def test_a_file_whose_timestamps_stand_still_is_deblurred_and_plays(zero_pts_clip, tmp_path,
                                                                   capsys):
    out = tmp_path / "out.mp4"
    code = cli_main([str(zero_pts_clip), str(out), "--model", "lite"])
    captured = capsys.readouterr()
    assert code == 0 and "8 frames, 1 restored" in captured.out
    warned = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "timestamps do not increase" in warned[0]
    with av.open(str(out)) as container:
        times = [frame.time for frame in container.decode(video=0)]
    assert len(times) == 8 and times == pytest.approx([k / 25 for k in range(8)], abs=1e-3)


def test_inputs_that_would_share_a_frame_log_are_refused(make_test_clip, tmp_path):
    (tmp_path / "in").mkdir()
    make_test_clip("in/x.mp4", n_frames=2)
    make_test_clip("in/x.mkv", n_frames=2)
    with pytest.raises(UserError, match="x.mkv and x.mp4 would share one frame log"):
        deblur_many(str(tmp_path / "in"), tmp_path / "out", quiet=True,
                    log=str(tmp_path / "frames.csv"))
    assert not (tmp_path / "out").exists()


def test_a_missing_decord_is_refused_before_anything_loads(monkeypatch):
    import importlib.util

    from refdeblur_video.pipeline.preflight import check_reader

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match="use --reader pyav"):
        check_reader("decord")
    check_reader("pyav")


def test_the_preflight_knows_the_containers_the_writer_writes():
    from refdeblur_video.pipeline.preflight import WRITABLE_SUFFIXES
    from refdeblur_video.video.containers import CONTAINERS

    assert set(WRITABLE_SUFFIXES) == set(CONTAINERS)


def test_a_file_whose_name_looks_like_a_pattern_is_that_file(make_test_clip, tmp_path,
                                                               monkeypatch, restorer):
    monkeypatch.setattr("refdeblur_video.pipeline.run.make_restorer", lambda opts: restorer)
    monkeypatch.chdir(tmp_path)
    make_test_clip("Holiday [dQw4w9WgXcQ].mp4", n_frames=6, blurry={2})
    make_test_clip("what?.mp4", n_frames=5, blurry={2})
    assert cli_main(["-q", "Holiday [dQw4w9WgXcQ].mp4", "one.mp4"]) == 0
    assert cli_main(["-q", "what?.mp4", "two.mp4"]) == 0
    assert len(decoded(tmp_path / "one.mp4")) == 6 and len(decoded(tmp_path / "two.mp4")) == 5
    # still a pattern where no file has that name
    assert cli_main(["-q", "*.mp4", "many"]) == 0
    assert sorted(p.name for p in (tmp_path / "many").iterdir()) == [
        "Holiday [dQw4w9WgXcQ].mp4", "one.mp4", "two.mp4", "what?.mp4"]


def test_a_file_another_run_finished_meanwhile_is_skipped_not_failed(make_test_clip, tmp_path,
                                                                     monkeypatch, restorer):
    """Two runs on one folder: when the other run finishes a file between this run's check
    and its start on it, the file is done, not failed (before: "already exists", exit 2)."""
    import shutil

    import refdeblur_video.pipeline.run as run

    monkeypatch.setattr(run, "make_restorer", lambda opts: restorer)
    (tmp_path / "in").mkdir()
    clip = make_test_clip("in/a.mp4", n_frames=5, blurry={2})

    def finished_by_another_run(source, target, *args, **kwargs):
        shutil.copy(clip.path, target)  # the other run's output: this input's size, length
        raise UserError(f"output {target} already exists (use --overwrite to replace it)")

    monkeypatch.setattr(run, "deblur_video", finished_by_another_run)
    results = deblur_many(str(tmp_path / "in"), tmp_path / "out", quiet=True)
    assert [(r.error, r.skipped) for r in results] == [(None, True)]
    assert results[0].closing_line().endswith("already done by another run, skipped")


def test_an_output_folder_that_cannot_be_made_is_one_line(make_test_clip, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    make_test_clip("in/a.mp4", n_frames=3)
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    code = cli_main([str(tmp_path / "in"), str(tmp_path / "notes.txt" / "out") + os.sep])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: cannot make the output folder") and "Not a directory" in err[0]


def test_hidden_files_of_an_input_folder_are_left_out(make_test_clip, tmp_path, monkeypatch,
                                                      restorer):
    monkeypatch.setattr("refdeblur_video.pipeline.run.make_restorer", lambda opts: restorer)
    (tmp_path / "card").mkdir()
    make_test_clip("card/clip.mp4", n_frames=5, blurry={2})
    (tmp_path / "card" / "._clip.mp4").write_bytes(b"\0\5\26\7" + bytes(60))  # AppleDouble
    results = deblur_many(str(tmp_path / "card"), tmp_path / "out", quiet=True)
    assert [r.error for r in results] == [None]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["clip.mp4"]


def test_the_frame_logs_of_many_files_go_where_log_points(make_test_clip, tmp_path,
                                                          monkeypatch, restorer):
    """`--log logs/frames.csv` puts each video's log in logs/ (before: in the output folder,
    logs/ ignored); a bare name keeps them in the output folder; a missing folder is one
    line before any work."""
    monkeypatch.setattr("refdeblur_video.pipeline.run.make_restorer", lambda opts: restorer)
    (tmp_path / "in").mkdir()
    make_test_clip("in/a.mp4", n_frames=5, blurry={2})
    make_test_clip("in/b.mp4", n_frames=5, blurry={2})
    (tmp_path / "logs").mkdir()
    deblur_many(str(tmp_path / "in"), tmp_path / "out", quiet=True,
                log=str(tmp_path / "logs" / "frames.csv"))
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["a.csv", "b.csv"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.mp4", "b.mp4"]
    monkeypatch.chdir(tmp_path)
    deblur_many("in", tmp_path / "out2", quiet=True, log="frames.json")
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == [
        "a.json", "a.mp4", "b.json", "b.mp4"]
    with pytest.raises(UserError, match="--log: folder not found: nowhere"):
        deblur_many("in", tmp_path / "out3", quiet=True, log="nowhere/frames.csv")
    assert not (tmp_path / "out3").exists()


def test_photos_in_a_folder_of_videos_are_named_once_as_left_alone(make_test_clip, tmp_path,
                                                                   monkeypatch, restorer,
                                                                   caplog):
    monkeypatch.setattr("refdeblur_video.pipeline.run.make_restorer", lambda opts: restorer)
    (tmp_path / "trip").mkdir()
    make_test_clip("trip/clip.mp4", n_frames=5, blurry={2})
    make_image(tmp_path / "trip" / "IMG_1.jpg")
    make_image(tmp_path / "trip" / "IMG_2.png")
    with caplog.at_level("WARNING"):
        code = cli_main([str(tmp_path / "trip"), str(tmp_path / "out"), "-q"])
    said = [r.getMessage() for r in caplog.records if "left alone" in r.getMessage()]
    assert code == 0 and len(said) == 1 and "2 photos (IMG_1.jpg, ...)" in said[0]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["clip.mp4"]


def test_a_folder_s_videos_of_every_common_container_are_restored(make_test_clip, tmp_path,
                                                                  monkeypatch, restorer):
    """A camcorder's .mpg, a phone's .3gp and a web .flv in a folder are taken, as they are
    when named alone (before, they were passed over without a word); other files are not."""
    monkeypatch.setattr("refdeblur_video.pipeline.run.make_restorer", lambda opts: restorer)
    (tmp_path / "in").mkdir()
    for name, codec in (("a.mpg", "mpeg2video"), ("b.3gp", "libx264"), ("c.flv", "libx264")):
        make_test_clip(f"in/{name}", n_frames=5, blurry={2}, codec=codec)
    (tmp_path / "in" / "notes.txt").write_text("shot on the beach")
    results = deblur_many(str(tmp_path / "in"), tmp_path / "out", quiet=True)
    assert [r.error for r in results] == [None, None, None]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.mkv", "b.mkv", "c.mkv"]


def _size_changing_ts(path, sizes=((96, 64), (128, 80)), frames_each=4) -> None:
    """An MPEG-TS whose H.264 stream changes its frame size mid-way (TS captures do)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = *sizes[0], "yuv420p"
        pts = 0
        for width, height in sizes:
            encoder = av.CodecContext.create("libx264", "w")
            encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
            encoder.time_base, encoder.framerate = Fraction(1, 25), 25
            for _ in range(frames_each):
                frame = av.VideoFrame.from_ndarray(make_image(size=(width, height), index=pts),
                                                   format="rgb24")
                frame.pts, frame.time_base = pts, Fraction(1, 25)
                pts += 1
                for packet in encoder.encode(frame):
                    packet.stream, packet.time_base = stream, Fraction(1, 25)
                    out.mux(packet)
            for packet in encoder.encode(None):
                packet.stream, packet.time_base = stream, Fraction(1, 25)
                out.mux(packet)


def test_a_video_whose_frame_size_changes_is_one_line_naming_where(tmp_path, capsys):
    source = tmp_path / "capture.ts"
    _size_changing_ts(source)
    assert cli_main(["-q", str(source), str(tmp_path / "out.mkv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {source}: the frame size changes at frame 4 (from 96x64 to "
                   "128x80), which is not supported: cut the video there and restore each "
                   "part"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["capture.ts"]


def _as_ffmpeg_shows(image: np.ndarray, rotation: int) -> np.ndarray:
    """``image`` turned as FFmpeg's own autorotate turns a frame of display ``rotation``
    (fftools: transpose=cclock for 90, clock for -90, both flips for 180)."""
    filters = {90: [("transpose", "cclock")], -90: [("transpose", "clock")],
               180: [("hflip", ""), ("vflip", "")]}[rotation]
    graph = av.filter.Graph()
    frame = av.VideoFrame.from_ndarray(image, format="rgb24")
    chain = [graph.add_buffer(template=None, width=frame.width, height=frame.height,
                              format="rgb24", time_base=Fraction(1, 25))]
    chain += [graph.add(name, args) for name, args in filters] + [graph.add("buffersink")]
    graph.link_nodes(*chain).configure()
    graph.push(frame)
    return graph.pull().to_ndarray(format="rgb24")


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_a_reference_photo_of_a_turned_video_is_taken_as_the_video_is_shown(
        make_test_clip, restorer, tmp_path, monkeypatch, rotation):
    from refdeblur_video.pipeline import run

    clip = make_test_clip("phone.mp4", n_frames=6, blurry={3}, rotation=rotation)
    photo = tmp_path / "photo.png"  # the sharp frame as the user sees the video
    cv2.imwrite(str(photo), cv2.cvtColor(_as_ffmpeg_shows(clip.frames[2], rotation),
                                         cv2.COLOR_RGB2BGR))
    given = []
    real = run.run_stream
    monkeypatch.setattr(run, "run_stream", lambda *args, **kwargs: given.append(
        kwargs["forced_reference"]) or real(*args, **kwargs))
    deblur_video(clip.path, tmp_path / "out.mp4", restorer, quiet=True, ref=str(photo))
    np.testing.assert_array_equal(given[0], clip.frames[2])  # the coded orientation


def test_a_reference_of_another_size_is_named_as_the_turned_video_is_shown(
        make_test_clip, restorer, tmp_path, caplog):
    clip = make_test_clip("phone.mp4", n_frames=6, blurry={3}, rotation=90)
    h, w = clip.frames[2].shape[:2]
    photo = tmp_path / "stored.png"  # the frame as stored, not as the user sees it
    cv2.imwrite(str(photo), cv2.cvtColor(clip.frames[2], cv2.COLOR_RGB2BGR))
    with caplog.at_level("WARNING", logger="refdeblur_video"):
        deblur_video(clip.path, tmp_path / "out.mp4", restorer, quiet=True, ref=str(photo))
    assert (f"the reference image is {w}x{h}, the frames as shown {h}x{w}: scaling it to "
            "fit and filling the rest from its edges (its aspect differs)") in caplog.text


def test_a_reference_of_another_aspect_is_scaled_by_one_factor_and_filled_out(caplog):
    """Stretched to the photo's aspect, a wider shot of a photo's scene no longer matched
    it, and was dropped as another scene."""
    from skimage import data

    scene = data.chelsea()  # 451 x 300
    wide = scene[40:40 + 240, :]  # a wider view of the scene at its scale: 451 x 240
    with caplog.at_level("WARNING", logger="refdeblur_video"):
        fitted = fit_reference(wide, (300, 451, 3), np.uint8, "the photo")
    assert fitted.shape == (300, 451, 3) and "its aspect differs" in caplog.text
    np.testing.assert_array_equal(fitted[30:270], wide)  # its scale and place kept
    assert (fitted[:30] == wide[:1]).all() and (fitted[270:] == wide[-1:]).all()
    twice = cv2.resize(scene, (902, 600))  # the same aspect: plainly resized
    caplog.clear()
    with caplog.at_level("WARNING", logger="refdeblur_video"):
        assert fit_reference(twice, (300, 451, 3), np.uint8).shape == (300, 451, 3)
    assert caplog.text.rstrip().endswith("resizing it")
    # within a percent (a phone's 4000x2252 "16:9"): plainly resized, no filled edges
    phone = cv2.resize(scene, (400, 225))
    caplog.clear()
    with caplog.at_level("WARNING", logger="refdeblur_video"):
        fitted = fit_reference(phone, (216, 384, 3), np.uint8)
    np.testing.assert_array_equal(fitted, cv2.resize(phone, (384, 216),
                                                     interpolation=cv2.INTER_AREA))
    assert caplog.text.rstrip().endswith("resizing it")
    # anamorphic video (HDV: 1440x1080 stored, shown 1920x1080): a 16:9 photo is stretched
    # to the stored samples, as they show it
    wide_photo = cv2.resize(scene, (480, 270))
    caplog.clear()
    with caplog.at_level("WARNING", logger="refdeblur_video"):
        fitted = fit_reference(wide_photo, (270, 360, 3), np.uint8,
                                           "the frames as shown", sample_aspect=4 / 3)
    np.testing.assert_array_equal(fitted, cv2.resize(wide_photo, (360, 270),
                                                     interpolation=cv2.INTER_AREA))
    assert "the frames as shown 480x270: resizing it" in caplog.text


def test_a_black_and_white_photo_stored_as_colour_takes_its_black_and_white_reference(
        tmp_path, restorer, caplog):
    grey = cv2.cvtColor(make_image(size=(96, 64), blurry=True, index=1), cv2.COLOR_RGB2GRAY)
    sharp = cv2.cvtColor(make_image(size=(96, 64), index=1), cv2.COLOR_RGB2GRAY)
    for name, image in (("bw.png", grey), ("bw_ref.png", sharp)):  # three equal colours
        cv2.imwrite(str(tmp_path / name), cv2.merge([image, image, image]))
    with caplog.at_level("WARNING", logger="refdeblur_video"):
        deblur_image(tmp_path / "bw.png", tmp_path / "out.png", restorer,
                     ref=str(tmp_path / "bw_ref.png"), quiet=True)
    assert "black and white" not in caplog.text


def test_a_black_and_white_reference_of_a_colour_photo_is_set_aside(tmp_path, restorer,
                                                                     caplog):
    """Its grey would be blended into the photo's colours; before, it was said to show
    another scene."""
    make_image(tmp_path / "blurry.png", size=(96, 64), blurry=True, index=1)
    grey = cv2.cvtColor(make_image(size=(96, 64), index=1), cv2.COLOR_RGB2GRAY)
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    with caplog.at_level("WARNING", logger="refdeblur_video"):
        summary = deblur_image(tmp_path / "blurry.png", tmp_path / "out.png", restorer,
                               ref=str(tmp_path / "grey.png"), quiet=True)
    said = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("the reference is black and white, the photo in colour") for m in said)
    assert not any("does not show the photo's scene" in m for m in said)
    assert summary.references_dropped == 1 and summary.records[0].reference_used == 0
    caplog.clear()
    with caplog.at_level("WARNING", logger="refdeblur_video"):
        deblur_image(tmp_path / "blurry.png", tmp_path / "alone.png", restorer, quiet=True)
    assert "a sharp photo of the same scene (--ref) lends it the detail" in caplog.text


def test_a_grey_photo_takes_a_colour_reference_of_its_scene(tmp_path):
    from refdeblur_video.model import load_model

    network = load_model("default", "cpu", amp=False)
    sharp = make_image(size=(192, 128), index=1)
    blurry = make_image(size=(192, 128), blurry=True, index=1)
    cv2.imwrite(str(tmp_path / "grey.png"), cv2.cvtColor(blurry, cv2.COLOR_RGB2GRAY))
    cv2.imwrite(str(tmp_path / "colour.png"), cv2.cvtColor(sharp, cv2.COLOR_RGB2BGR))
    summary = deblur_image(tmp_path / "grey.png", tmp_path / "out.png", network,
                           ref=str(tmp_path / "colour.png"))
    assert summary.records[0].reference_used == 1  # not taken for another scene
    out = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    truth = cv2.cvtColor(sharp, cv2.COLOR_RGB2GRAY)
    assert out.ndim == 2  # still grey
    assert psnr(out, truth) > psnr(cv2.cvtColor(blurry, cv2.COLOR_RGB2GRAY), truth) + 3


@pytest.mark.parametrize("suffix", [".png", ".tif", ".webp"])  # OpenCV turns a TIFF itself
@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_photo_is_read_as_its_exif_orientation_shows_it(tmp_path, orientation, suffix):
    from PIL import Image, ImageOps

    from refdeblur_video.image_files import read_image, read_photo

    stored = make_image(size=(48, 32), index=orientation)
    path = tmp_path / f"photo{suffix}"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(path, exif=exif, lossless=True)
    with Image.open(path) as photo:  # Pillow's own reading of the tag, independently
        shown = np.asarray(ImageOps.exif_transpose(photo).convert("RGB"))
    np.testing.assert_array_equal(read_image(path), shown)
    np.testing.assert_array_equal(read_photo(path).image, shown)


def test_a_turned_camera_photo_is_restored_upright(tmp_path, restorer):
    from PIL import Image

    sharp = make_image(size=(96, 64))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown portrait
    Image.fromarray(sharp).save(tmp_path / "camera.jpg", exif=exif, quality=95)
    deblur_image(tmp_path / "camera.jpg", tmp_path / "out.png", restorer)
    assert cv2.imread(str(tmp_path / "out.png")).shape[:2] == (96, 64)  # as shown



def _camera_photo(path, orientation=6):
    """A photo as a camera writes it: EXIF with a time in the Exif sub-IFD, and an ICC
    colour profile (written by Pillow)."""
    from PIL import Image, ImageCms

    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"
    exif.get_ifd(0x8769)[0x9003] = "2026:12:06 10:00:00"  # DateTimeOriginal
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(make_image(size=(96, 64))).save(path, exif=exif, icc_profile=profile,
                                                    quality=95)
    return profile


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp"])
def test_a_restored_photo_keeps_its_exif_upright_and_its_colour_profile(tmp_path, restorer,
                                                                         suffix,
                                                                         network_sharpens):
    from PIL import Image

    profile = _camera_photo(tmp_path / "camera.jpg")
    out = tmp_path / f"out{suffix}"
    deblur_image(tmp_path / "camera.jpg", out, restorer)
    with Image.open(out) as photo:  # read back by Pillow, independently of OpenCV
        exif = photo.getexif()
        assert photo.size == (64, 96)  # turned upright, so the tag must say upright
        assert exif[0x0112] == 1 and exif[0x010F] == "TestCam"
        assert exif.get_ifd(0x8769)[0x9003] == "2026:12:06 10:00:00"
        assert photo.info.get("icc_profile") == profile


@pytest.mark.parametrize("suffix, kept", [(".png", {"dpi", "text"}), (".jpg", {"dpi"}),
                                           (".tif", {"dpi"}), (".webp", set())])
def test_a_restored_photo_keeps_its_pixel_density_and_png_text(tmp_path, restorer, suffix,
                                                               kept, network_sharpens,
                                                               caplog):
    from PIL import Image, PngImagePlugin

    text = PngImagePlugin.PngInfo()
    text.add_text("Title", "A dog")
    text.add_text("Copyright", "Zoë", zip=True)
    text.add_itxt("Author", "Zoë Ünal")
    text.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta/>")  # XMP: left out, as elsewhere
    text.add_text("Raw profile type exif", "\nexif\n  6\n457869660000\n", zip=True)  # too
    Image.fromarray(make_image(size=(96, 64))).save(tmp_path / "scan.png", dpi=(300, 150),
                                                    pnginfo=text)
    out = tmp_path / f"out{suffix}"
    with caplog.at_level("WARNING"):
        deblur_image(tmp_path / "scan.png", out, restorer)
    with Image.open(out) as photo:  # read back by Pillow, independently
        photo.load()
        dpi = photo.info.get("dpi")
        assert ("dpi" in kept) == (dpi is not None)
        if dpi is not None:
            assert dpi == pytest.approx((300, 150), abs=0.05)  # PNG stores dots per metre
        found = {k: v for k, v in photo.info.items() if k in ("Title", "Copyright", "Author")}
        assert found == ({"Title": "A dog", "Copyright": "Zoë", "Author": "Zoë Ünal"}
                         if "text" in kept else {})
        assert "XML:com.adobe.xmp" not in photo.info
        assert "Raw profile type exif" not in photo.info
        assert np.asarray(photo).shape[:2] == (64, 96)
    said = " ".join(r.getMessage() for r in caplog.records)
    assert ("pixel density (300 dpi) is not kept" in said) == ("dpi" not in kept)
    assert ("text (Title, Copyright, Author) is not kept" in said) == ("text" not in kept)


def test_a_jpeg_s_density_is_kept_turned_as_the_photo_is(tmp_path, restorer,
                                                          network_sharpens, caplog):
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # shown a quarter turn from its samples
    Image.fromarray(make_image(size=(96, 64))).save(tmp_path / "cam.jpg", exif=exif,
                                                    dpi=(200, 100), quality=95)
    deblur_image(tmp_path / "cam.jpg", tmp_path / "out.jpg", restorer)
    with Image.open(tmp_path / "out.jpg") as photo:
        assert photo.size == (64, 96) and photo.info["dpi"] == (100, 200)
    # a camera's JPEG: its density in the EXIF only (the JFIF header, if any, gives none)
    exif[0x011A], exif[0x011B], exif[0x0128] = 300.0, 300.0, 2
    Image.fromarray(make_image(size=(96, 64))).save(tmp_path / "camera.jpg", exif=exif,
                                                    quality=95)
    with Image.open(tmp_path / "camera.jpg") as photo:
        assert photo.info.get("jfif_density", (1, 1)) == (1, 1)  # no density of its own
    deblur_image(tmp_path / "camera.jpg", tmp_path / "out.png", restorer)
    with Image.open(tmp_path / "out.png") as photo:
        assert photo.info["dpi"] == pytest.approx((300, 300), abs=0.05)
    # WebP keeps the EXIF, and with it the density: nothing to warn of
    caplog.clear()
    with caplog.at_level("WARNING"):
        deblur_image(tmp_path / "camera.jpg", tmp_path / "out.webp", restorer)
    assert "pixel density" not in caplog.text
    # a TIFF's resolution tags
    Image.fromarray(make_image(size=(96, 64))).save(tmp_path / "scan.tif", dpi=(600, 600))
    deblur_image(tmp_path / "scan.tif", tmp_path / "scan.png", restorer)
    with Image.open(tmp_path / "scan.png") as photo:
        assert photo.info["dpi"] == pytest.approx((600, 600), abs=0.05)


def test_the_kept_exif_loses_its_thumbnail_and_a_broken_one_is_dropped():
    import struct

    from PIL import ExifTags, Image

    from refdeblur_video.photo_metadata import upright_exif

    # IFD0 (orientation 8) linked to IFD1 (a thumbnail's offset), little-endian
    ifd0 = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, 8, 0) + \
        struct.pack("<I", 26)
    ifd1 = struct.pack("<H", 1) + struct.pack("<HHII", 0x0201, 4, 1, 0) + struct.pack("<I", 0)
    raw = b"II*\0" + struct.pack("<I", 8) + ifd0 + ifd1
    before, after = Image.Exif(), Image.Exif()
    before.load(raw)
    after.load(upright_exif(b"Exif\0\0" + raw))
    assert before[0x0112] == 8 and before.get_ifd(ExifTags.IFD.IFD1)
    assert after[0x0112] == 1 and not after.get_ifd(ExifTags.IFD.IFD1)
    assert upright_exif(b"II*\0" + struct.pack("<I", 4000)) == b""
    # an orientation stored as a LONG, big-endian, as some writers do
    long = b"MM\0*" + struct.pack(">I", 8) + struct.pack(">H", 1) + \
        struct.pack(">HHII", 0x0112, 4, 1, 6) + struct.pack(">I", 0)
    turned = Image.Exif()
    turned.load(upright_exif(long))
    assert turned[0x0112] == 1
    assert upright_exif(b"not exif at all") == b""


def test_a_colour_profile_of_another_space_than_the_written_samples_is_left_out():
    from PIL import ImageCms

    from refdeblur_video.photo_metadata import PhotoMetadata

    rgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    cmyk = rgb[:16] + b"CMYK" + rgb[20:]  # OpenCV decodes a CMYK JPEG to RGB samples
    for profile, kept in ((rgb, True), (cmyk, False)):
        metadata = PhotoMetadata.kept_from([cv2.IMAGE_METADATA_ICCP],
                                           [np.frombuffer(profile, np.uint8)])
        assert (cv2.IMAGE_METADATA_ICCP in metadata.chunks) == kept

def test_a_large_colour_profile_is_split_in_a_jpeg_and_a_large_exif_left_out(
        tmp_path, restorer, caplog, network_sharpens):
    import struct

    from PIL import Image, ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes() + \
        bytes(140_000)  # a JPEG marker segment holds at most 64 KiB: three of them
    profile = struct.pack(">I", len(profile)) + profile[4:]  # its header's size field
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif[0x9286] = b"ASCII\0\0\0" + b"x" * 70_000  # UserComment: EXIF over a segment
    Image.fromarray(make_image(size=(96, 64))).save(tmp_path / "in.png", icc_profile=profile,
                                                    exif=exif)
    with caplog.at_level("WARNING"):
        deblur_image(tmp_path / "in.png", tmp_path / "out.jpg", restorer)
        deblur_image(tmp_path / "in.png", tmp_path / "out.png", restorer)
    said = [r.getMessage() for r in caplog.records if "too large" in r.getMessage()]
    assert said == ["the photo's EXIF (68 KiB) is too large for a JPEG and is left out (PNG "
                    "and WebP keep it)"]
    # Pillow reassembles the profile from its numbered segments, independently
    with Image.open(tmp_path / "out.jpg") as jpeg, Image.open(tmp_path / "out.png") as png:
        assert jpeg.info["icc_profile"] == profile and png.info["icc_profile"] == profile
        assert png.getexif()[0x010F] == "TestCam"
    data = (tmp_path / "out.jpg").read_bytes()
    assert data.count(b"ICC_PROFILE\x00") == 3


@pytest.mark.parametrize(("mode", "profile_space", "kept"),
                         [("L", "sRGB", False), ("LA", "GRAY", False), ("L", "GRAY", True)])
def test_a_grey_photo_keeps_only_a_profile_of_the_samples_written(tmp_path, restorer, mode,
                                                                  profile_space, kept,
                                                                  network_sharpens):
    """A grey photo is written grey, and a grey one with transparency as three equal colours
    with it: the profile kept must describe what is written."""
    from PIL import Image, ImageCms

    rgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    profile = rgb if profile_space == "sRGB" else rgb[:16] + b"GRAY" + rgb[20:]
    grey = Image.fromarray(make_image(size=(96, 64))).convert(mode)
    grey.save(tmp_path / "in.png", icc_profile=profile)
    deblur_image(tmp_path / "in.png", tmp_path / "out.png", restorer)
    with Image.open(tmp_path / "out.png") as out:
        assert ("icc_profile" in out.info) == kept

def test_quality_sets_a_restored_jpeg_s_quantisation(tmp_path, restorer):
    from PIL import Image

    _camera_photo(tmp_path / "camera.jpg", orientation=1)
    deblur_image(tmp_path / "camera.jpg", tmp_path / "q30.jpg", restorer, quality=30)
    Image.fromarray(make_image(size=(96, 64))).save(tmp_path / "pillow30.jpg", quality=30)
    with Image.open(tmp_path / "q30.jpg") as ours, Image.open(tmp_path / "pillow30.jpg") as ref:
        assert ours.quantization == ref.quantization  # libjpeg's tables for quality 30
    with pytest.raises(UserError, match="--quality must be in"):
        deblur_image(tmp_path / "camera.jpg", tmp_path / "q0.jpg", restorer, quality=0)


def test_metadata_a_format_cannot_hold_is_named(tmp_path, restorer, caplog):
    _camera_photo(tmp_path / "camera.jpg", orientation=1)
    with caplog.at_level("WARNING"):
        deblur_image(tmp_path / "camera.jpg", tmp_path / "out.tif", restorer, quality=80)
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "EXIF and colour profile are not kept" in said
    assert "--quality does nothing for .tif" in said
    assert (tmp_path / "out.tif").is_file()

def test_video_options_given_for_a_photo_are_named(tmp_path, restorer, caplog, capsys):
    blurry, sharp = tmp_path / "blurry.png", tmp_path / "sharp.png"
    make_image(blurry, blurry=True)
    make_image(sharp, index=1)
    with caplog.at_level("WARNING"):
        summary = deblur_image(blurry, tmp_path / "out.jpg", restorer, ref=str(sharp), crf=30,
                               all_frames=True, window=3)
    said = [r.getMessage() for r in caplog.records if "for a photo" in r.getMessage()]
    assert said == ["for a photo --crf, --window, --all-frames do nothing (video options)"]
    assert summary.closing_line().startswith(f"{tmp_path / 'out.jpg'}: 1 frame, 1 restored")
    caplog.clear()
    with caplog.at_level("WARNING"):
        deblur_image(blurry, tmp_path / "out2.jpg", restorer, ref=str(sharp))
    assert not [r for r in caplog.records if "for a photo" in r.getMessage()]


def test_a_run_that_restores_nothing_says_how_to_restore_every_frame(make_test_clip, tmp_path,
                                                                     restorer):
    clip = make_test_clip("even.mp4", n_frames=6)  # no frame blurrier than the others
    summary = deblur_video(clip.path, tmp_path / "out.mp4", restorer, quiet=True)
    assert summary.restored == 0
    assert "0 restored (none was much blurrier than its neighbours; --all-frames restores " \
        "every frame)" in summary.closing_line()
    forced = deblur_video(clip.path, tmp_path / "all.mp4", restorer, quiet=True,
                          all_frames=True)
    assert forced.restored + forced.unchanged == 6
    assert "--all-frames" not in forced.closing_line()


def test_quality_given_for_a_video_points_to_crf(make_test_clip, tmp_path, restorer, caplog,
                                                 monkeypatch):
    import refdeblur_video.pipeline.run as run

    monkeypatch.setattr(run, "make_restorer", lambda options: restorer)
    clip = make_test_clip("in.mp4", n_frames=6, blurry={2})
    with caplog.at_level("WARNING"):
        deblur(str(clip.path), str(tmp_path / "out.mp4"), quiet=True, quality=80)
    assert "a video's is --crf" in " ".join(r.getMessage() for r in caplog.records)


def test_the_progress_bar_expects_a_matroska_clips_frames_from_its_duration(make_test_clip):
    from refdeblur_video.video.metadata import expected_frames as _expected_frames

    clip = make_test_clip("in.mkv", n_frames=20)
    info = probe(clip.path)
    assert info.frame_count is None  # Matroska announces none
    assert _expected_frames(info) == 20


def test_the_progress_bar_of_a_file_whose_timestamps_are_all_0(zero_pts_clip, tmp_path,
                                                                restorer, capsys):
    """Such a file's duration reads one frame: the bar counts frames with no total (not
    "0/1", then "8/1") and ends at the frames there were."""
    with pytest.warns(CorruptVideoWarning, match="timestamps do not increase"):
        deblur_video(zero_pts_clip, tmp_path / "out.mp4", restorer)
    bar = capsys.readouterr().err
    assert re.search(r"\b\d+/1 ", bar) is None
    assert "8/8" in bar.rsplit("\r", 1)[-1] or "8/8" in bar.splitlines()[-1]


def test_the_closing_line_s_time_includes_loading_the_model(make_test_clip, tmp_path,
                                                            monkeypatch, restorer):
    """A user times the whole command: a slow model load counts, for a video and a photo."""
    import time

    def slow_load(opts):
        time.sleep(0.6)
        return restorer

    monkeypatch.setattr("refdeblur_video.pipeline.run.make_restorer", slow_load)
    clip = make_test_clip("in.mp4", n_frames=4, blurry={2})
    video = deblur_video(clip.path, tmp_path / "out.mp4", quiet=True)
    blurry, sharp = tmp_path / "blurry.png", tmp_path / "sharp.png"
    make_image(blurry, blurry=True)
    make_image(sharp, index=1)
    photo = deblur_image(blurry, tmp_path / "out.png", ref=str(sharp))
    for summary in (video, photo):
        assert summary.seconds >= 0.6 + summary.restoring_seconds
        assert summary.restoring_seconds > 0
        assert f"{summary.seconds:.1f} s" in summary.closing_line()


@pytest.mark.skipif(not os.path.isdir("/sys/kernel") or _makes_files("/sys/kernel"),
                    reason="needs a folder no one may write in")
def test_a_log_or_weights_file_in_a_folder_nobody_may_write_is_refused_first(
        make_test_clip, tmp_path, capsys):
    """Even root cannot make files in /sys: the command says so before any work, in one
    line, and writes nothing (permissions alone let root through)."""
    clip = make_test_clip("in.mp4", n_frames=4, blurry={2})
    out = tmp_path / "out.mp4"
    for extra, name in ((["--log", "/sys/kernel/frames.csv"], "--log"),
                        (["--adapt", "--save-adapted", "/sys/kernel/w.safetensors"],
                         "--save-adapted")):
        assert cli_main([str(clip.path), str(out), "-q", *extra]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines == [f"error: {name} folder /sys/kernel is not writable (Permission "
                         "denied)"]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_an_existing_log_is_kept_unless_overwrite(make_test_clip, tmp_path, capsys):
    clip = make_test_clip("in.mp4", n_frames=4, blurry={2})
    log = tmp_path / "frames.csv"
    log.write_text("an earlier run's log")
    code = cli_main([str(clip.path), str(tmp_path / "out.mp4"), "--log", str(log), "-q"])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: --log {log} already exists (use --overwrite to replace it)"]
    assert log.read_text() == "an earlier run's log"
    assert not (tmp_path / "out.mp4").exists()
    assert cli_main([str(clip.path), str(tmp_path / "out.mp4"), "--log", str(log), "-q",
                     "--overwrite"]) == 0
    assert read_log(log)[0]["index"] == "0"


def test_a_log_that_cannot_be_written_says_the_video_was(make_test_clip, tmp_path,
                                                          monkeypatch, restorer):
    import errno

    clip = make_test_clip("in.mp4", n_frames=6, blurry={2})
    out, log = tmp_path / "out.mp4", tmp_path / "frames.csv"

    def full(self, rows):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(csv.DictWriter, "writerows", full)
    with pytest.raises(UserError) as error:
        deblur_video(clip.path, out, restorer, quiet=True, log=str(log))
    assert str(error.value) == (f"cannot write the frame log {log} (No space left on "
                                f"device); {out} was written")
    assert len(decoded(out)) == 6  # complete
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]  # no log part


def _filtering_restorer(filter_image) -> Restorer:
    """A restorer whose "network" returns ``filter_image`` of each frame (float RGB)."""
    from refdeblur_video.image_files import to_float

    class Filtering(Restorer):
        def restore_floats(self, blurry, references):
            _, used = super().restore_floats(blurry, references)
            return [filter_image(to_float(image)) for image in blurry], used

    torch.manual_seed(0)
    return Filtering(RefDeblurNet(TINY, TINY_MATCH), torch.device("cpu"), trained=True)


def _soften(image):
    return cv2.GaussianBlur(image, (0, 0), 1.5)


def _sharpen(image):
    return np.clip(image + 1.5 * (image - cv2.GaussianBlur(image, (0, 0), 1.5)), 0, 1)


@pytest.mark.parametrize("all_frames", [False, True])
def test_a_frame_the_network_does_not_sharpen_is_written_as_it_came(make_test_clip, tmp_path,
                                                                    all_frames):
    clip = make_test_clip("in.mkv", n_frames=10, blurry={3, 7}, codec="ffv1", pix_fmt="bgr0")
    results = {}
    for name, filter_image in (("soft", _soften), ("sharp", _sharpen)):
        out, log = tmp_path / f"{name}.mkv", tmp_path / f"{name}.csv"
        summary = deblur_video(clip.path, out, _filtering_restorer(filter_image), quiet=True,
                               codec="ffv1", pix_fmt="bgr0", log=str(log), transfer=False,
                               all_frames=all_frames)
        rows = read_log(log)
        changed = [not np.array_equal(a, b) for (_, a), (_, b)
                   in zip(decoded(clip.path), decoded(out), strict=True)]
        results[name] = summary, rows, changed
    sent = 10 if all_frames else 2
    summary, rows, changed = results["soft"]
    assert not any(changed)  # every frame as it came, bit-exact
    assert sum(r["restored"] == "1" for r in rows) == sent  # all went through the network
    assert [r["unchanged"] for r in rows if r["restored"] == "1"] == ["1"] * sent
    assert (summary.restored, summary.unchanged) == (0, sent)
    assert f"0 restored, {sent} kept as they came (the network did not sharpen them)" \
        in summary.closing_line()
    assert "--all-frames restores" not in summary.closing_line()
    summary, rows, changed = results["sharp"]
    assert sum(changed) == sent and all(changed[i] for i in (3, 7))
    assert {r["unchanged"] for r in rows} == {"0"}
    assert (summary.restored, summary.unchanged) == (sent, 0)


def test_many_files_into_a_read_only_folder_say_so_once(make_test_clip, tmp_path, monkeypatch,
                                                        capsys):
    import errno

    (tmp_path / "in").mkdir()
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        make_test_clip(f"in/{name}", n_frames=4, blurry={2})
    (tmp_path / "out").mkdir()

    def read_only(*args, **kwargs):  # a read-only mount refuses root too
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr("refdeblur_video.safe_output.tempfile.mkstemp", read_only)
    assert cli_main([str(tmp_path / "in"), str(tmp_path / "out"), "-q"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: output folder {tmp_path / 'out'} is not writable (Read-only file system)"]
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(("made", "why"), [
    ({"n_frames": 30}, None),  # the earlier run's: done
    ({"n_frames": 29}, None),  # a damaged input's last frame never decoded
    ({"n_frames": 12}, "length 0.48 s in it, 1.20 s in the input"),  # Matroska counts none
    ({"n_frames": 30, "size": (80, 64)}, "size 80x64 in it, 96x64 in the input"),
    ({"n_frames": 30, "rotation": 90}, "rotation 90 in it, 0 in the input"),
])
def test_an_existing_output_counts_as_done_only_if_it_can_be_this_inputs(make_test_clip,
                                                                         tmp_path, made, why):
    from refdeblur_video.pipeline.preflight import not_made_from

    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    source = make_test_clip("in/a.mkv", n_frames=30, size=(96, 64)).path
    target = make_test_clip("out/a.mkv", **{"size": (96, 64), **made}).path
    assert probe(source).frame_count is None  # the length decides
    found = not_made_from(source, target)
    if why is None:
        assert found is None
    else:
        assert found == (f"output {target} exists but is not made from {source} ({why}): "
                         "remove it, or use --overwrite")


def test_an_odd_sized_input_s_padded_output_counts_as_done(make_test_clip, tmp_path):
    """libx264 pads a 97x55 frame to 98x56: that output is the input's, and a rerun of the
    folder skips it (before: "not made from", an error on every rerun)."""
    from refdeblur_video.pipeline.preflight import not_made_from

    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    source = make_test_clip("in/a.mkv", n_frames=6, size=(97, 55), codec="libvpx-vp9").path
    padded = make_test_clip("out/a.mkv", n_frames=6, size=(98, 56)).path
    assert not_made_from(source, padded) is None
    larger = make_test_clip("out/b.mkv", n_frames=6, size=(100, 56)).path
    assert "size 100x56 in it, 97x55 in the input" in not_made_from(source, larger)


def test_an_unreadable_input_beside_an_existing_output_says_what_is_wrong_with_it(
        make_test_clip, tmp_path):
    from refdeblur_video.pipeline.preflight import not_made_from

    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    source = tmp_path / "in" / "a.mp4"
    source.write_bytes(b"not a video")
    target = make_test_clip("out/a.mp4", n_frames=4).path
    assert "a.mp4" in not_made_from(source, target)
    assert "exists but" not in not_made_from(source, target)


def test_videos_in_subfolders_are_named_as_not_searched(make_test_clip, tmp_path, monkeypatch,
                                                       restorer, caplog):
    """A card copied with its day folders: a folder run restores the top level only, and says
    which subfolders hold videos it leaves alone; the output folder inside is not one."""
    monkeypatch.setattr("refdeblur_video.pipeline.run.make_restorer", lambda opts: restorer)
    for name in ("trip/clip.mp4", "trip/day2/a.mp4", "trip/restored/clip.mp4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        make_test_clip(name, n_frames=5, blurry={2})
    (tmp_path / "trip" / "empty").mkdir()
    with caplog.at_level("WARNING"):
        code = cli_main([str(tmp_path / "trip"), str(tmp_path / "trip" / "restored"), "-q",
                         "--overwrite"])
    said = [r.getMessage() for r in caplog.records if "not searched" in r.getMessage()]
    assert code == 0 and len(said) == 1
    assert "subfolder day2 holds videos" in said[0]  # one subfolder named: not the output
    assert "glob" not in said[0]  # '**' would take the outputs inside the folder too


def test_a_folder_whose_videos_are_all_in_subfolders_says_so(make_test_clip, tmp_path,
                                                            capsys):
    (tmp_path / "card" / "100GOPRO").mkdir(parents=True)
    make_test_clip("card/100GOPRO/GX01.MP4", n_frames=5, blurry={2})  # as cameras spell it
    code = cli_main([str(tmp_path / "card"), str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert code != 0 and "no video files found" in err and "100GOPRO holds videos" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()
    glob = err.split("quoted glob such as '")[1].split("'")[0]
    assert expand_inputs(glob) == [tmp_path / "card" / "100GOPRO" / "GX01.MP4"]  # it works


def test_a_finished_file_rerun_with_a_log_says_it_has_none(make_test_clip, tmp_path,
                                                           monkeypatch, restorer):
    """--log added on a rerun: the files already done are skipped, and each says that it has
    no frame log and how to get one, instead of a log folder that silently lacks them."""
    monkeypatch.setattr("refdeblur_video.pipeline.run.make_restorer", lambda opts: restorer)
    (tmp_path / "in").mkdir()
    make_test_clip("in/a.mp4", n_frames=5, blurry={2})
    deblur_many(str(tmp_path / "in"), tmp_path / "out", quiet=True)
    logs = tmp_path / "logs"
    logs.mkdir()
    again = deblur_many(str(tmp_path / "in"), tmp_path / "out", quiet=True,
                        log=str(logs / "f.csv"))
    assert again[0].skipped and "no frame log a.csv" in again[0].closing_line()
    assert "--overwrite" in again[0].closing_line() and not (logs / "a.csv").exists()
    redone = deblur_many(str(tmp_path / "in"), tmp_path / "out", quiet=True,
                         log=str(logs / "f.csv"), overwrite=True)
    assert not redone[0].skipped and (logs / "a.csv").exists()
    last = deblur_many(str(tmp_path / "in"), tmp_path / "out", quiet=True,
                       log=str(logs / "f.csv"))
    assert last[0].closing_line().endswith(": already done, skipped")


def test_what_a_photo_s_output_format_cannot_keep_is_said(tmp_path, restorer, monkeypatch,
                                                          caplog, network_sharpens):
    """A TIFF's colour profile (OpenCV reads no TIFF metadata) and a 16-bit photo written
    as JPEG were lost without a word."""
    from PIL import Image, ImageCms

    monkeypatch.setattr("refdeblur_video.pipeline.run.make_restorer", lambda opts: restorer)
    make_image(tmp_path / "p.png")
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.open(tmp_path / "p.png").save(tmp_path / "p.tiff", icc_profile=profile)
    deep = (cv2.imread(str(tmp_path / "p.png")).astype(np.uint16) * 257)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/'
           b'1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>')
    Image.open(tmp_path / "p.png").save(tmp_path / "x.jpg", xmp=xmp)
    with caplog.at_level("WARNING"):
        deblur(str(tmp_path / "p.tiff"), str(tmp_path / "o.png"))
        deblur(str(tmp_path / "deep.png"), str(tmp_path / "o.jpg"))
        deblur(str(tmp_path / "x.jpg"), str(tmp_path / "x_out.jpg"))
        deblur(str(tmp_path / "p.png"), str(tmp_path / "plain.png"))
    said = [r.getMessage() for r in caplog.records if "not kept" in r.getMessage()
            or "16-bit" in r.getMessage() or "left out" in r.getMessage()]
    assert said == ["the TIFF's colour profile is not kept: the tool reads a photo's "
                    "metadata from JPEG, PNG and WebP",
                    "the photo's 16-bit samples are written as 8-bit: .jpg holds no more "
                    "(PNG and TIFF keep 16)",
                    "the photo's XMP is left out: it may describe the original samples (an "
                    "orientation, edits), not the restored ones"], said


def test_photo_extras_of_a_damaged_or_plain_file_are_none():
    from refdeblur_video.photo_extras import PNG_SIGNATURE, PhotoExtras

    cut = PNG_SIGNATURE + b"\0\0\0\x09pHYs\0\0"  # a chunk that runs past the end
    assert PhotoExtras.read(cut) == PhotoExtras()
    aspect_only = PNG_SIGNATURE + b"\0\0\0\x09pHYs" + bytes(8) + b"\0" + bytes(4)
    assert PhotoExtras.read(aspect_only).dots_per_metre is None
    assert PhotoExtras.read(b"\xff\xd8\xff\xdb no JFIF header") == PhotoExtras()
    ok, encoded = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    assert PhotoExtras().written_into(".jpg", encoded.tobytes()) == encoded.tobytes()


def test_the_api_takes_keywords_over_an_options_object_and_checks_both(make_test_clip,
                                                                       tmp_path):
    from refdeblur_video import DeblurOptions, UserError, deblur

    assert deblur is run_module.deblur  # the package's own name for the entry point
    clip = make_test_clip("clip.mp4", n_frames=8, blurry={4})
    base = DeblurOptions(quiet=True, model="lite")
    out = tmp_path / "out.mp4"
    [plain] = deblur(clip.path, out, options=base, log=tmp_path / "frames.json")
    assert plain.restored + plain.unchanged == 1  # the blurry frame alone
    assert (tmp_path / "frames.json").is_file()  # a Path is taken where a text is
    # keywords given beside options= are applied over it, not dropped
    [every] = deblur(clip.path, out, options=base, all_frames=True, overwrite=True)
    assert every.restored + every.unchanged == 8
    changed = DeblurOptions(quiet=True)
    changed.window = 0  # set after the object was made: checked when it is used
    with pytest.raises(UserError, match="--window"):
        deblur(clip.path, tmp_path / "other.mp4", options=changed)
    for wrong, says in ((dict(threshold="0.5"), "option threshold must be a number"),
                        (dict(batch=1.5), "option batch must be a whole number"),
                        (dict(transfer="no"), "option transfer must be true or false"),
                        (dict(options={"quiet": True}), "must be a DeblurOptions"),
                        (dict(treshold=0.5), r"treshold \(did you mean threshold\?\)")):
        with pytest.raises(TypeError, match=says):
            deblur(clip.path, tmp_path / "other.mp4", **wrong)
    # NumPy's numbers are numbers, and its booleans booleans
    opts = DeblurOptions(threshold=np.float32(0.5), window=np.int64(3), fp32=np.True_)
    assert (type(opts.threshold), type(opts.window), opts.fp32) == (float, int, True)
    with pytest.raises(TypeError, match="option batch must be a whole number"):
        DeblurOptions(batch=np.True_)
    assert not (tmp_path / "other.mp4").exists()
    # a plan needs no output, and says it is one
    [planned] = deblur(clip.path, dry_run=True, quiet=True)
    assert planned.to_restore == [4]
    with pytest.raises(TypeError, match="needs an output"):
        deblur(clip.path)


def _iptc_app13(caption: bytes, thumbnail: bytes) -> bytes:
    """A Photoshop APP13 segment as a camera or editor writes it: an IPTC record (caption,
    copyright) and a thumbnail resource."""
    import struct

    datasets = (b"\x1c\x02\x78" + struct.pack(">H", len(caption)) + caption
                + b"\x1c\x02\x74" + struct.pack(">H", 8) + b"(c) Jane")

    def resource(ident: int, data: bytes) -> bytes:
        return (b"8BIM" + struct.pack(">HBBI", ident, 0, 0, len(data)) + data
                + b"\x00" * (len(data) % 2))

    block = b"Photoshop 3.0\x00" + resource(0x040C, thumbnail) + resource(0x0404, datasets)
    return b"\xff\xed" + struct.pack(">H", len(block) + 2) + block


@pytest.mark.parametrize("suffix, kept", [(".jpg", True), (".png", False)])
def test_a_restored_jpeg_keeps_its_iptc_record_and_not_the_old_thumbnail(
        tmp_path, restorer, network_sharpens, caplog, suffix, kept):
    from PIL import Image, IptcImagePlugin

    ok, encoded = cv2.imencode(".jpg", make_image(size=(96, 64), blurry=True)[..., ::-1])
    data = encoded.tobytes()
    (tmp_path / "agency.jpg").write_bytes(
        data[:2] + _iptc_app13(b"A dog, blurred", b"OLD THUMBNAIL") + data[2:])
    out = tmp_path / f"out{suffix}"
    with caplog.at_level("WARNING"):
        deblur_image(tmp_path / "agency.jpg", out, restorer)
    with Image.open(out) as photo:  # Pillow's own reading of the record
        found = IptcImagePlugin.getiptcinfo(photo) or {}
    assert found == ({(2, 120): b"A dog, blurred", (2, 116): b"(c) Jane"} if kept else {})
    assert b"OLD THUMBNAIL" not in out.read_bytes()
    said = " ".join(r.getMessage() for r in caplog.records)
    assert ("IPTC record (caption, keywords, copyright) is not kept" in said) == (not kept)


def test_a_large_iptc_record_goes_over_several_segments_and_back():
    from refdeblur_video.photo_iptc import iptc_record, with_iptc

    ok, encoded = cv2.imencode(".jpg", make_image(size=(96, 64)))
    caption = b"x" * 30_000
    record = b"".join(b"\x1c\x02\x78" + len(caption).to_bytes(2, "big") + caption
                      for _ in range(3))  # 90 kB: two segments' worth
    written = with_iptc(encoded.tobytes(), record)
    assert written.count(b"Photoshop 3.0\x00") == 2
    assert iptc_record(written) == record
    cut = written[:written.rindex(b"Photoshop 3.0\x00")]  # the second segment lost
    assert iptc_record(cut) is None  # cut short: not written back half


def test_an_absurd_exif_resolution_is_no_density(tmp_path):
    from PIL import Image

    from refdeblur_video.image_files import read_photo

    exif = Image.Exif()
    exif[0x011A], exif[0x011B], exif[0x0128] = 200_000_000.0, 200_000_000.0, 2
    Image.fromarray(make_image(size=(96, 64))).save(tmp_path / "odd.jpg", exif=exif)
    assert read_photo(tmp_path / "odd.jpg").extras.dots_per_metre is None


def test_a_damaged_photo_is_named_as_damaged_and_a_non_image_as_none(tmp_path):
    from refdeblur_video.errors import UserError
    from refdeblur_video.image_files import read_photo

    ok, encoded = cv2.imencode(".jpg", make_image(size=(96, 64)))
    (tmp_path / "cut.jpg").write_bytes(encoded.tobytes()[:200])  # its header alone
    with pytest.raises(UserError, match="it is a JPEG file, but damaged, cut short, or of"):
        read_photo(tmp_path / "cut.jpg")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(UserError, match=r"\(not an image, or a format OpenCV lacks\)"):
        read_photo(tmp_path / "notes.png")

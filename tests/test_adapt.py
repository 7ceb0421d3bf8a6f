"""``--adapt``: the bounded reservoir, the strength fit, the time budget, the held-back
fallback, saving and reusing the adapted weights, many files, and Ctrl-C while adapting."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

import refdeblur_video.adapt
from refdeblur_video.adapt import AdaptSettings, adapt_restorer, check_save_path
from refdeblur_video.adapt.entry import tuning_bar
from refdeblur_video.adapt.fit import estimate_noise, fit_strengths
from refdeblur_video.adapt.reservoir import Reservoir, held_block, scan_video, thumbnail
from refdeblur_video.adapt.tune import held_psnr
from refdeblur_video.cli import main as cli_main
from refdeblur_video.data.shake import render_path_blur, sample_camera_path
from refdeblur_video.data.trajectory import trajectory_blur
from refdeblur_video.errors import UserError
from refdeblur_video.frames.sharpness import sharpness
from refdeblur_video.image_files import write_image
from refdeblur_video.model import InferenceSettings, ModelConfig, RefDeblurNet, save_checkpoint
from refdeblur_video.model.restorer import Restorer, load_model
from refdeblur_video.pipeline import DeblurOptions, deblur_image, deblur_many, deblur_video
from refdeblur_video.pipeline.resume import model_identity, state_dir
from refdeblur_video.video.reader import open_reader
from refdeblur_video.video.synthetic import make_image

TINY = ModelConfig(name="tiny", channels=(8, 8, 8), n_resblocks=1, ref_channels=(4, 4, 4),
                   phi_channels=(4, 4, 4), sffm_hidden=(4, 4))
TINY_MATCH = InferenceSettings(match_radius=2).matching
BLURRY = {5, 12, 19, 26, 33}  # and 34, which the planner finds blurry beside 33
# small crops, a rate that learns within seconds: what a tiny network on a tiny clip needs
FAST = AdaptSettings(seconds=3.0, crop=32, batch=2, lr=1e-3, warmup_steps=2, held_samples=4,
                     capacity=12, held_capacity=4)


def tiny_net(seed: int = 0) -> RefDeblurNet:
    """A small network with random weights: it spoils every frame it touches a little."""
    torch.manual_seed(seed)
    net = RefDeblurNet(TINY, TINY_MATCH)
    for p in net.parameters():
        p.data.normal_(0, 0.05)
    return net


def tiny_restorer(seed: int = 0) -> Restorer:
    return Restorer(tiny_net(seed), torch.device("cpu"), trained=True)


@pytest.fixture(autouse=True)
def one_thread():
    """These tests time steps against a budget: one thread, since on a busy machine every
    parallel region waits for its slowest (descheduled) thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture()
def fast(monkeypatch):
    """Adaptation with :data:`FAST` settings (``--adapt-seconds`` still sets the budget);
    ``fast(lr=...)`` changes them."""

    def use(**changes) -> AdaptSettings:
        chosen = dataclasses.replace(FAST, **changes)

        def settings_for(device_type, seconds=None, cpu_count=1):
            return chosen if seconds is None else dataclasses.replace(chosen, seconds=seconds)

        monkeypatch.setattr("refdeblur_video.adapt.entry.settings_for", settings_for)
        return chosen

    use()
    return use


@pytest.fixture()
def clip(make_test_clip):
    return make_test_clip("in.mp4", n_frames=40, size=(96, 64), blurry=BLURRY)


@pytest.fixture()
def tiny_file(tmp_path) -> Path:
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(path, tiny_net(), TINY)
    return path


# -- the pieces ------------------------------------------------------------------------------


def test_the_reservoir_keeps_each_item_equally_likely_and_no_more_than_it_holds():
    kept = np.zeros(50)
    for seed in range(400):
        reservoir = Reservoir(5, np.random.default_rng(seed))
        for item in range(50):
            slot = reservoir.offer()
            if slot is not None:
                reservoir.put(slot, item)
        assert len(reservoir.items) == 5
        kept[reservoir.items] += 1
    # each item is kept with probability 5/50: 40 of 400 runs, give or take
    assert kept.min() > 15 and kept.max() < 70


def test_the_reading_pass_keeps_a_bounded_sample_of_sharp_frames(make_test_clip):
    clip = make_test_clip("long.mp4", n_frames=60, size=(96, 64), blurry={7, 21, 40})
    with open_reader(clip.path) as reader:
        sample = scan_video(reader, window=5, max_offset=5, threshold=0.8, cuts=True, crop=32,
                            capacity=6, held_capacity=3, held_every=4, frame_count=60,
                            deadline=None, seed=0)
    assert sample.frames == 60 and sample.complete
    assert sample.blurry_frames == 3 and len(sample.blurry_ratios) == 3
    assert max(sample.blurry_ratios) < 0.8
    assert len(sample.train) == 6 and len(sample.held) == 3  # of 57 sharp frames
    block = held_block(60)
    for region, held in [(r, False) for r in sample.train] + [(r, True) for r in sample.held]:
        assert ((region.index // block) % 4 == 3) == held
        assert region.index not in {7, 21, 40}  # blurry frames are never targets
        assert region.crop == 32 and region.sharp.shape[0] == 32 + 2 * region.margin
        assert all(n.shape == (32, 32, 3) for n in region.neighbours.values())
        assert all(abs(d) <= 5 for d in region.neighbours)
    most = max(r.nbytes for r in sample.train + sample.held)
    assert sum(r.nbytes for r in sample.train + sample.held) <= 9 * most
    # out of time (its share of the budget): the pass stops and keeps what it read
    with open_reader(clip.path) as reader:
        early = scan_video(reader, window=5, max_offset=5, threshold=0.8, cuts=True, crop=32,
                           capacity=6, held_capacity=3, held_every=4, frame_count=60,
                           deadline=time.monotonic(), seed=0)
    assert early.frames == 1 and not early.complete


def test_the_strength_fit_finds_the_blur_it_is_shown():
    rng = np.random.default_rng(1)
    thumbs = [thumbnail(make_image(size=(320, 180), seed=k)) for k in range(4)]
    ratios = []
    for thumb in thumbs:
        for _ in range(3):
            blurred = render_path_blur(thumb, sample_camera_path(thumb.shape[:2], rng, 0.6))
            ratios.append(sharpness(blurred) / sharpness(thumb))
    fit = fit_strengths(thumbs, ratios, seed=2)
    assert 0.3 < float(np.median(fit.strengths)) < 1.0
    assert list(fit.curve) == sorted(fit.curve, reverse=True)


def test_the_length_fit_finds_the_trajectory_blur_it_is_shown():
    rng = np.random.default_rng(3)
    thumbs = [thumbnail(make_image(size=(320, 180), seed=k)) for k in range(4)]
    ratios = [sharpness(trajectory_blur(t, 6.0, rng)) / sharpness(t)
              for t in thumbs for _ in range(3)]
    # frames twice the thumbnails' size: lengths come back in frame pixels
    fit = fit_strengths(thumbs, ratios, seed=2, frame_hw=(360, 640))
    assert 6.0 < float(np.median(fit.lengths)) < 24.0
    assert fit_strengths(thumbs, ratios, seed=2).lengths == ()


def test_the_noise_estimate_sees_noise_not_texture():
    rng = np.random.default_rng(0)
    flat = np.full((96, 96, 3), 120.0)
    noisy = np.clip(flat + rng.normal(0, 3, flat.shape), 0, 255).astype(np.uint8)
    assert estimate_noise([flat.astype(np.uint8)]) == 0
    assert 2 < estimate_noise([noisy]) < 4


class _Fixed(torch.nn.Module):
    """A stand-in network whose output is fixed, whatever it is shown."""

    def __init__(self, output: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("output", output)

    def forward(self, blur: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return self.output


def test_the_held_back_check_pools_errors_so_flat_crops_do_not_outweigh_textured_ones():
    # crop 0 flat, crop 1 textured; "worse" is far worse on the textured crop and only
    # misses the flat one by a hair more than "better" does (+20 dB there per crop)
    sharp = torch.stack([torch.full((3, 16, 16), 0.5),
                         torch.rand((3, 16, 16), generator=torch.Generator().manual_seed(0))
                         * 0.8 + 0.1])
    signs = torch.where(torch.arange(16 * 16).reshape(16, 16) % 2 == 0, 1.0, -1.0)
    better = sharp + torch.stack([1e-3 * signs, 1e-2 * signs]).unsqueeze(1)
    worse = sharp + torch.stack([1e-4 * signs, 5e-2 * signs]).unsqueeze(1)
    batches = [{"blur": sharp.clone(), "ref": sharp.clone(), "sharp": sharp}]
    cpu = torch.device("cpu")
    model = _Fixed(better).train()
    good, bad = held_psnr(model, batches, cpu, None), held_psnr(_Fixed(worse), batches, cpu,
                                                                  None)
    assert model.training  # left in the mode it came in
    assert good == pytest.approx(-10 * np.log10((1e-6 + 1e-4) / 2), abs=1e-3)
    assert bad == pytest.approx(-10 * np.log10((1e-8 + 2.5e-3) / 2), abs=1e-3)
    assert bad < good - 10  # the mean of per-crop PSNRs would put "worse" 3 dB ahead
    # a check the budget's deadline has passed stops: no score (on a busy machine the
    # original's check alone outlasted a 20 s budget, then trained nothing)
    import time

    assert math.isnan(held_psnr(model, batches, cpu, None, stop_at=time.monotonic() - 1))
    assert held_psnr(model, batches, cpu, None, stop_at=time.monotonic() + 60) == good


def test_bad_adaptation_options_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="need --adapt"):
        DeblurOptions(save_adapted="a.safetensors")
    with pytest.raises(UserError, match="--adapt-seconds"):
        DeblurOptions(adapt=True, adapt_seconds=0)
    with pytest.raises(UserError, match=r"\.safetensors"):
        check_save_path(str(tmp_path / "weights.pt"), overwrite=False)
    (tmp_path / "w.safetensors").write_bytes(b"")
    with pytest.raises(UserError, match="exists"):
        check_save_path(str(tmp_path / "w.safetensors"), overwrite=False)
    image = tmp_path / "photo.png"
    write_image(image, make_image(size=(64, 48)))
    with pytest.raises(UserError, match="needs a video"):
        deblur_image(image, tmp_path / "out.png", tiny_restorer(), adapt=True)


def test_a_save_adapted_folder_that_is_missing_is_refused_before_the_model_loads(
        clip, tmp_path, monkeypatch):
    def no_model(options):
        raise AssertionError("the model loaded before the paths were checked")

    monkeypatch.setattr("refdeblur_video.pipeline.run.make_restorer", no_model)
    with pytest.raises(UserError, match="--save-adapted: folder not found"):
        deblur_video(clip.path, tmp_path / "out.mp4", adapt=True,
                     save_adapted=str(tmp_path / "missing" / "w.safetensors"))
    assert not (tmp_path / "out.mp4").exists()


# -- adapting --------------------------------------------------------------------------------


def test_adaptation_keeps_its_budget_and_leaves_the_original_alone(clip, fast):
    restorer = tiny_restorer()
    before = model_identity(restorer)
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # PyTorch's one-time imports
    start = time.monotonic()
    outcome = adapt_restorer(restorer, clip.path, DeblurOptions(adapt=True, adapt_seconds=4,
                                                                quiet=True))
    took = time.monotonic() - start
    details = json.loads(outcome.metadata["adapt_settings"])
    assert details["steps"] > 0 and details["settings"]["seconds"] == 4
    # steps stop in time for the last check; a busy machine may stretch one step past it
    assert took < 4 + details["check_seconds"] + details["step_seconds"] + 0.5, details
    assert model_identity(restorer) == before
    assert outcome.adopted, outcome.message  # a random network only gets better
    assert model_identity(outcome.restorer) != before
    assert outcome.message.startswith("adapted to this video")


def test_a_budget_spent_before_tuning_skips_it_at_once(clip, fast, monkeypatch):
    """Where reading the video and scoring the original on its real blurry frames use up
    --adapt-seconds, the tuning is not started: its own check of the original would run
    the budget over again (a user's 20 s budget took 52 s)."""
    from refdeblur_video.adapt.crosscheck import Baseline
    from refdeblur_video.pipeline.run import make_refiner

    def slow_baseline(restorer, refiner, checks):
        time.sleep(1.2)
        return Baseline(psnr=30.0, seconds=1.2)

    def no_tuning(*args, **kwargs):
        raise AssertionError("the tuning started without time left for it")

    monkeypatch.setattr("refdeblur_video.adapt.entry.score_original", slow_baseline)
    monkeypatch.setattr("refdeblur_video.adapt.entry._tune", no_tuning)
    restorer = tiny_restorer()
    outcome = adapt_restorer(restorer, clip.path, DeblurOptions(adapt=True, adapt_seconds=1,
                                                                quiet=True),
                             refiner=make_refiner(DeblurOptions(), restorer))
    assert not outcome.adopted and outcome.restorer is restorer
    assert outcome.message.startswith("adaptation skipped (reading the video and scoring the "
                                      "original took ")
    assert "s of --adapt-seconds 1; the rest cannot hold" in outcome.message
    details = json.loads(outcome.metadata["adapt_settings"])
    assert "steps" not in details and details["total_seconds"] < 3


def test_a_step_cap_stops_the_adaptation_before_its_budget(clip, fast):
    fast(max_steps=3)
    start = time.monotonic()
    outcome = adapt_restorer(tiny_restorer(), clip.path,
                             DeblurOptions(adapt=True, adapt_seconds=30, quiet=True))
    took = time.monotonic() - start
    details = json.loads(outcome.metadata["adapt_settings"])
    assert details["steps"] == 3 and details["settings"]["max_steps"] == 3
    assert took < 20, took  # the reading pass's share (40 %) and three steps, not 30 s


def test_the_tuning_bar_ends_at_its_end_without_a_warning(capsys):
    # a budget that a rounded total once fell short of: the bar ran past its end and tqdm
    # printed "clamping frac to range [0, 1]" under it
    bar, progress = tuning_bar(265.04, quiet=False)
    bar.mininterval = 0  # redraw on every call, so that a bar past its end would warn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for steps, done in ((1, 0.5), (2, 0.999), (3, 1.0), (4, 1.3)):
            progress(steps, 0.1, done)
            assert bar.n <= bar.total
    assert bar.n == bar.total
    bar.close()
    assert "100%" in capsys.readouterr().err


def _sent_to_the_network(line: str) -> int:
    """The frames a closing line says were restored, those left as they were included
    (a tiny random network sharpens few)."""
    found = re.search(r", (\d+) restored(?:, (\d+) kept as they came)?", line)
    return int(found[1]) + int(found[2] or 0)


def test_a_worse_adapted_copy_falls_back_to_the_original(clip, fast, tiny_file, tmp_path,
                                                         capsys):
    fast(lr=3.0)  # wrecks the copy
    saved = tmp_path / "used.safetensors"
    code = cli_main([str(clip.path), str(tmp_path / "out.mp4"), "--model", str(tiny_file),
                     "--no-transfer", "--adapt", "--save-adapted", str(saved)])
    assert code == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert _sent_to_the_network(line) == 6 and "adaptation not used" in line
    assert "restored with the original model" in line
    with safe_open(str(saved), "pt") as handle:
        assert handle.metadata()["adapt_result"] == "original"
    original = load_model(tiny_file, "cpu")
    assert model_identity(load_model(saved, "cpu")) == model_identity(original)


def test_adapted_weights_are_saved_and_restore_again_with_model(clip, fast, tiny_file,
                                                                tmp_path, capsys):
    # saving and reusing, not the checks: on the few real frames of this clip the random
    # network's copy passes the real-frame check on some machines and not on others (bf16)
    # a budget a busy machine fits in, the steps capped to keep it short
    fast(min_crosscheck_gain_db=-math.inf, max_steps=40)
    saved = tmp_path / "adapted.safetensors"
    args = [str(clip.path), str(tmp_path / "a.mp4"), "--model", str(tiny_file),
            "--no-transfer", "--adapt", "--adapt-seconds", "60", "--save-adapted", str(saved)]
    assert cli_main(args) == 0
    assert "adapted to this video" in capsys.readouterr().out
    with safe_open(str(saved), "pt") as handle:
        metadata = handle.metadata()
    assert metadata["adapted_from"] == "in.mp4" and metadata["adapt_result"] == "adapted"
    details = json.loads(metadata["adapt_settings"])
    assert details["settings"]["seconds"] == 60 and details["steps"] == 40
    assert details["seconds"] <= details["total_seconds"]  # the tuning within the whole
    assert len(details["fit"]["strengths"]) == 10
    assert details["held_psnr_adapted"] > details["held_psnr_original"]
    assert cli_main(args) == 2  # the weights file exists: refused, not replaced
    assert "exists" in capsys.readouterr().err
    # reused with --model: the same network restores the video without adapting again
    again = deblur_video(clip.path, tmp_path / "b.mp4", model=str(saved), transfer=False,
                         quiet=True)
    assert again.restored + again.unchanged == 6 and again.adaptation is None
    with open_reader(tmp_path / "a.mp4") as a, open_reader(tmp_path / "b.mp4") as b:
        for x, y in zip(a, b, strict=True):
            assert np.array_equal(x.image, y.image)


def test_no_blurry_frames_means_nothing_to_adapt_to(make_test_clip, fast):
    clip = make_test_clip("sharp.mp4", n_frames=16, size=(96, 64))
    summary = deblur_video(clip.path, clip.path.with_name("out.mp4"), tiny_restorer(),
                           adapt=True, quiet=True)
    assert summary.restored == 0
    assert summary.adaptation.startswith("adaptation skipped (no frame is blurrier than its "
                                         "neighbours")


def test_a_resumed_run_reuses_the_weights_it_adapted(clip, fast, tmp_path):
    restorer, folder = tiny_restorer(), tmp_path / "state"
    folder.mkdir()
    opts = DeblurOptions(adapt=True, quiet=True)
    first = adapt_restorer(restorer, clip.path, opts, keep_in=folder)
    start = time.monotonic()
    again = adapt_restorer(restorer, clip.path, opts, keep_in=folder, resuming=True)
    assert time.monotonic() - start < 1.5  # read back, not adapted again
    assert again.adopted == first.adopted
    assert model_identity(again.restorer) == model_identity(first.restorer)


def test_resume_goes_on_with_the_adapted_weights(clip, fast, tmp_path, monkeypatch):
    restore, calls = Restorer.restore_floats, []
    out = tmp_path / "out.mp4"

    def stops_at_the_fourth_call(self, blurry, refs):
        # the restoring pass's calls (adaptation's own end-to-end check restores frames too)
        if (state_dir(out) / "adapted.safetensors").is_file():
            calls.append(len(blurry))
        if len(calls) == 4:
            raise KeyboardInterrupt
        return restore(self, blurry, refs)

    # an earlier --save-adapted file, replaced only once the output is written: before,
    # the interrupted run had already written over it while saying nothing was written
    saved = tmp_path / "w.safetensors"
    saved.write_bytes(b"an earlier run's weights")
    options = dict(adapt=True, quiet=True, batch=1, segment_seconds=0.32,  # 8 frames
                   save_adapted=str(saved), overwrite=True)
    with monkeypatch.context() as patch:
        patch.setattr(Restorer, "restore_floats", stops_at_the_fourth_call)
        with pytest.raises(KeyboardInterrupt):
            deblur_video(clip.path, out, tiny_restorer(), **options)
    assert (state_dir(out) / "adapted.safetensors").is_file()
    assert saved.read_bytes() == b"an earlier run's weights"
    summary = deblur_video(clip.path, out, tiny_restorer(),
                           **{**options, "resume": True, "overwrite": False})
    with safe_open(str(saved), "pt") as handle:  # written by the finished run
        assert handle.metadata()["adapted_from"] == "in.mp4"
    assert summary.resumed >= 8 and summary.restored + summary.unchanged == 6
    assert summary.adaptation in ("adapted weights of the interrupted run reused",
                                  "restored with the original model, as before the "
                                  "interruption")
    assert not state_dir(out).exists()


def test_many_files_each_adapt_their_own_copy(make_test_clip, fast, tiny_file, tmp_path,
                                              monkeypatch):
    (tmp_path / "in").mkdir()
    for seed, name in enumerate(("a.mp4", "b.mp4")):
        make_test_clip(f"in/{name}", n_frames=40, size=(96, 64), blurry=BLURRY, seed=seed)
    started_from = []
    adapt = refdeblur_video.adapt.adapt_restorer

    def spy(restorer, *args, **kwargs):
        started_from.append(model_identity(restorer))
        return adapt(restorer, *args, **kwargs)

    monkeypatch.setattr(refdeblur_video.adapt, "adapt_restorer", spy)
    adapted = tmp_path / "weights"
    results = deblur_many(str(tmp_path / "in"), tmp_path / "out", model=str(tiny_file),
                          transfer=False, adapt=True, adapt_seconds=2.5,
                          save_adapted=str(adapted), quiet=True)
    assert [r.restored + r.unchanged for r in results] == [6, 6]
    assert all(r.adaptation for r in results)
    # each file adapted a copy of the original, not the copy the file before it adapted
    assert started_from == [model_identity(load_model(tiny_file, "cpu"))] * 2
    files = sorted(adapted.iterdir())
    assert [f.name for f in files] == ["a.safetensors", "b.safetensors"]
    for path in files:
        with safe_open(str(path), "pt") as handle:
            meta = handle.metadata()
        assert meta["adapted_from"] == f"{path.stem}.mp4"
        assert json.loads(meta["adapt_settings"])["base_model"] == str(tiny_file)


# -- Ctrl-C ----------------------------------------------------------------------------------


def test_ctrl_c_while_adapting_ends_the_run_like_elsewhere(make_test_clip, tiny_file,
                                                           tmp_path):
    clip = make_test_clip("in.mp4", n_frames=40, size=(192, 128), blurry=BLURRY)
    run = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-m", "refdeblur_video.cli", clip.path.name,
         "out.mp4", "--model",
         str(tiny_file), "--adapt", "--adapt-seconds", "120", "-q"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    folder = state_dir(tmp_path / "out.mp4")
    end = time.monotonic() + 90
    while not folder.exists() and run.poll() is None and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(3)  # reading the video or tuning: the model and the run's state are ready
    assert run.poll() is None, "the run ended before the signal"
    assert not (folder / "manifest.json").exists(), "adaptation was over before the signal"
    run.send_signal(signal.SIGINT)
    try:
        _, err = run.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # SIGABRT: faulthandler prints where every thread is
        run.send_signal(signal.SIGABRT)
        _, err = run.communicate(timeout=30)
        pytest.fail(f"the run did not end within 60 s of SIGINT; its threads:\n{err}")
    assert run.returncode == 130, (run.returncode, err)
    lines = err.strip().splitlines()
    assert lines == ["interrupted: no output was written"], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "tiny.safetensors"]


def test_many_files_with_a_single_save_adapted_file_are_refused_up_front(make_test_clip,
                                                                        tmp_path, capsys):
    """It was found only as the first file adapted (an empty output folder left), and not
    at all where every file was already done."""
    (tmp_path / "in").mkdir()
    make_test_clip("in/a.mp4", n_frames=5, size=(96, 64), blurry={2})
    args = [str(tmp_path / "in"), str(tmp_path / "out"), "--adapt", "-q",
            "--save-adapted", str(tmp_path / "w.safetensors")]
    assert cli_main(args) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["error: with many inputs, --save-adapted names a folder (one file per "
                   "video)"]
    assert not (tmp_path / "out").exists()

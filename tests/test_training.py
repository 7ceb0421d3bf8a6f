"""Training: a few steps, resume, the schedule, and two processes under torchrun (gloo)."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors import safe_open

from refdeblur_video.errors import UserError
from refdeblur_video.training.cli import main as train_main
from refdeblur_video.training.config import OptimConfig, load_train_config
from refdeblur_video.training.loop import cosine_lr

TINY_MODEL = {"channels": [8, 8, 8], "n_resblocks": 1, "ref_channels": [4, 4, 4],
              "phi_channels": [4, 4, 4], "sffm_hidden": [4, 4], "match_radius": 2}


@pytest.fixture()
def train_config(tmp_path, make_test_clip) -> Path:
    a = make_test_clip("a.mp4", n_frames=8, size=(96, 80))
    b = make_test_clip("b.mp4", n_frames=8, size=(96, 80), seed=3)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY_MODEL))
    config = {
        "model": str(tmp_path / "tiny.yaml"),
        "out": str(tmp_path / "run"),
        "data": {"source": "videos", "train_videos": [str(a.path)], "val_videos": [str(b.path)],
                 "crop": 48, "batch": 2, "workers": 0, "val_count": 2, "val_crop": 64},
        "train": {"steps": 6, "val_every": 2, "ckpt_every": 2, "log_every": 1,
                  "gan_start": 2, "warmup_steps": 0},
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def steps_logged(run: Path) -> list[int]:
    with (run / "train_log.csv").open() as handle:
        return [int(row["step"]) for row in csv.DictReader(handle)]


def test_train_resume_and_checkpoints(train_config, tmp_path):
    assert train_main(["--config", str(train_config), "--max-steps", "3", "--quiet"]) == 0
    run = tmp_path / "run"
    with safe_open(str(run / "last.safetensors"), "pt") as handle:
        meta = handle.metadata()
        keys = list(handle.keys())
    assert meta["step"] == "3" and meta["kind"] == "training-state"
    assert any(k.startswith("optim_g.") for k in keys) and any(k.startswith("disc.") for k in keys)
    assert train_main(["--config", str(train_config), "--resume", "--quiet"]) == 0
    assert steps_logged(run) == [1, 2, 3, 4, 5, 6]
    with (run / "val_log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [2, 3, 4, 6]
    assert all(float(r["psnr_input"]) > 10 for r in rows)
    from refdeblur_video.model import load_model

    assert load_model(run / "model.safetensors", "cpu").trained


def test_a_resumed_run_keeps_its_own_settings(train_config, tmp_path, capsys):
    run = tmp_path / "run"
    started = ["--config", str(train_config), "--set", "data.crop=32", "--set",
               "train.lr=3e-4", "--set", "train.steps=4", "--set", "train.gan_start=null"]
    assert train_main([*started, "--max-steps", "2", "--quiet"]) == 0
    # resumed as the docs show it, with the plain config: its crop, rate and length are not
    # the run's, and are not used
    assert train_main(["--config", str(train_config), "--resume", "--max-steps", "1"]) == 0
    said = capsys.readouterr().out
    assert ("--resume goes on with the run's own settings: the config's data.crop, "
            "train.gan_start, train.lr, train.steps (which differ from them) are not used"
            ) in said
    assert "stopped at step 3 of 4" in said  # the run's length, not the config's 6
    with safe_open(str(run / "last.safetensors"), "pt") as handle:
        kept = json.loads(handle.metadata()["train_config"])
    assert (kept["data"]["crop"], kept["train"]["lr"]) == (32, 3e-4)
    assert json.loads((run / "train_config.json").read_text())["data"]["crop"] == 32
    # what the command sets on purpose applies, named; a new validation set starts the
    # best afresh
    assert train_main([*started, "--set", "train.steps=5", "--set", "data.val_count=1",
                       "--resume"]) == 0
    said = capsys.readouterr().out.strip().splitlines()
    assert "--resume with changed settings: data.val_count 2 -> 1; train.steps 4 -> 5" in said
    assert "the validation set changed: best.safetensors is chosen afresh from here" in said
    assert steps_logged(run) == [1, 2, 3, 4, 5]
    assert said[-1].startswith(f"finished at step 5: {run / 'model.safetensors'} (the last "
                               f"weights), {run / 'best.safetensors'} (the best on "
                               "validation, ")
    with (run / "val_log.csv").open() as handle:  # the best of the new set's scores
        since = [float(r["psnr_model"]) for r in csv.DictReader(handle) if int(r["step"]) > 3]
    with safe_open(str(run / "best.safetensors"), "pt") as handle:
        best = handle.metadata()
    assert int(best["step"]) > 3 and float(best["val_psnr"]) == pytest.approx(max(since),
                                                                               abs=1e-3)


def test_a_copied_run_resumes_in_its_own_folder(train_config, tmp_path):
    """A branch: a run's folder copied and resumed under the new name writes there, and
    leaves the run it was copied from as it was."""
    import shutil

    run, branch = tmp_path / "run", tmp_path / "branch"
    assert train_main(["--config", str(train_config), "--max-steps", "2", "--quiet"]) == 0
    shutil.copytree(run, branch)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert train_main(["--config", str(train_config), "--set", f"out={branch}", "--set",
                       "train.lr=5e-5", "--resume", "--max-steps", "1", "--quiet"]) == 0
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert steps_logged(branch) == [1, 2, 3]
    assert json.loads((branch / "train_config.json").read_text())["out"] == str(branch)


def test_resume_without_state_is_a_clear_error(train_config, tmp_path, capsys):
    assert train_main(["--config", str(train_config), "--resume", "--quiet"]) == 2
    assert "no training state" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing written for a run that never started


def test_a_bad_model_or_init_leaves_no_run_folder(train_config, tmp_path, capsys):
    (tmp_path / "fake.safetensors").write_bytes(b"not weights")
    for setting in ("model=no_such_model", f"init={tmp_path / 'fake.safetensors'}",
                    "model=default", f"model={tmp_path / 'fake.safetensors'}"):
        assert train_main(["--config", str(train_config), "--set", setting, "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1
        assert not (tmp_path / "run").exists(), setting
        if setting.startswith("model=") and setting != "model=no_such_model":
            # not "unknown ... (known: default, ...safetensors)", which lists it as valid
            assert "to start from a checkpoint's weights give init=PATH" in err[0]


def test_a_run_that_fails_before_its_first_step_leaves_nothing_changed(
        train_config, tmp_path, capsys, monkeypatch):
    """Before, the run's settings were written as it started: a fresh run that failed left
    a folder holding only them, and a resume that failed replaced the earlier settings."""
    from refdeblur_video.training import loop

    def fail(*args, **kwargs):
        raise UserError("a data worker failed")

    real_step = loop._train_step
    monkeypatch.setattr(loop, "_train_step", fail)
    assert train_main(["--config", str(train_config), "--quiet"]) == 2
    assert "a data worker failed" in capsys.readouterr().err
    run = tmp_path / "run"
    assert not run.exists()
    monkeypatch.setattr(loop, "_train_step", real_step)
    assert train_main(["--config", str(train_config), "--max-steps", "1", "--quiet"]) == 0
    settings = (run / "train_config.json").read_text()
    assert '"steps": 6' in settings
    monkeypatch.setattr(loop, "_train_step", fail)
    assert train_main(["--config", str(train_config), "--resume", "--quiet",
                       "--set", "train.steps=8"]) == 2
    assert (run / "train_config.json").read_text() == settings


def test_a_run_stopped_early_or_already_done_says_so(train_config, tmp_path, capsys):
    assert train_main(["--config", str(train_config), "--max-steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "stopped at step 1 of 6 (--max-steps or --time-limit): state saved; continue " \
        "with --resume" in out
    assert train_main(["--config", str(train_config), "--resume", "--quiet"]) == 0
    assert train_main(["--config", str(train_config), "--resume"]) == 0  # at step 6 of 6
    assert "already at step 6 of train.steps 6: nothing to do" in capsys.readouterr().out


def test_a_fresh_run_does_not_replace_an_earlier_one_unless_told(train_config, tmp_path,
                                                                 capsys):
    assert train_main(["--config", str(train_config), "--max-steps", "2", "--quiet"]) == 0
    run = tmp_path / "run"
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert train_main(["--config", str(train_config), "--max-steps", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "--resume continues it, --overwrite starts again" in err[0]
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert train_main(["--config", str(train_config), "--max-steps", "1", "--quiet",
                       "--overwrite"]) == 0
    with safe_open(str(run / "last.safetensors"), "pt") as handle:
        assert handle.metadata()["step"] == "1"
    assert steps_logged(run) == [1]


def test_a_fresh_run_keeps_a_folder_s_checkpoints_without_a_training_state(
        train_config, tmp_path, capsys):
    """A copied model, or a log of one's own, in the run's folder (no last.safetensors):
    before, a fresh run replaced them without asking."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.safetensors").write_bytes(b"the model I keep")
    (run / "train_log.csv").write_text("my notes\n")
    assert train_main(["--config", str(train_config), "--max-steps", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "holds an earlier run (model.safetensors, train_log.csv)" in err[0]
    assert "--resume" not in err[0] and "--overwrite" in err[0]
    assert (run / "model.safetensors").read_bytes() == b"the model I keep"
    assert (run / "train_log.csv").read_text() == "my notes\n"


def test_an_overwriting_run_leaves_nothing_of_the_old_run_beside_its_own(train_config,
                                                                         tmp_path,
                                                                         monkeypatch):
    """--overwrite interrupted at its first step: before, the old run's best.safetensors
    stayed beside the new run's checkpoints, one folder holding two runs."""
    from refdeblur_video.model.net import RefDeblurNet

    run = tmp_path / "run"
    run.mkdir()
    (run / "best.safetensors").write_bytes(b"an old run's best")

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(RefDeblurNet, "forward", interrupted)
    assert train_main(["--config", str(train_config), "--quiet", "--overwrite"]) == 130
    assert not (run / "best.safetensors").exists()


def test_config_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {source: videos, train_videos: [a.mp4], colour: 3}\n")
    with pytest.raises(UserError, match="unknown keys in 'data': colour"):
        load_train_config(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("data: {source: videos, train_videos: [a.mp4]}\ntrain: {stpes: 5}\n")
    with pytest.raises(UserError, match=r"unknown keys in 'train': stpes \(did you mean "
                       r"steps\?\)"):
        load_train_config(typo)
    with pytest.raises(UserError, match="not found"):
        load_train_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize(("override", "says"), [
    ({"train.steps": [1, 2]}, "train.steps must be a whole number"),
    ({"train.lr": True}, "train.lr must be a number"),
    ({"data.batch": 0}, "data.batch must be at least 1"),
    ({"data.crop": -5}, "data.crop must be at least 16"),
    ({"data.strength": [2, 1]}, "data.strength must be [LOW, HIGH]"),
    ({"data.train_videos": "a.mp4"}, "data.train_videos must be a list"),
    ({"train.amp": "yes"}, "train.amp must be a bool"),
    ({"data.blur_on": "gpux"}, "train config: data.blur_on must be 'cpu' or 'gpu', not 'gpux'"),
    ({"data.source": "manifest", "data.manifest": "m.jsonl", "data.blur_on": "gpux"},
     "data.blur_on must be 'cpu' or 'gpu'"),  # checked for a manifest run too
])
def test_values_of_the_wrong_type_or_range_are_one_clear_error(override, says):
    from refdeblur_video.training.config import train_config_from_dict

    with pytest.raises(UserError, match=re.escape(says)):
        train_config_from_dict({"data": {"train_videos": ["a.mp4"]}}, override)
    with pytest.raises(UserError, match="must be a mapping"):
        train_config_from_dict(["a", "b"])


def test_numbers_written_without_a_dot_are_numbers(tmp_path):
    # YAML 1.1 reads 5e-5 as text: as a learning rate Adam failed with a traceback
    config = tmp_path / "train.yaml"
    config.write_text("data: {source: videos, train_videos: [a.mp4]}\n"
                      "train: {lr: 2e-4}\n")
    cfg = load_train_config(config, {"train.lr_min": yaml.safe_load("5e-7"),
                                     "data.noise_sigma": "3", "train.steps": "40"})
    assert (cfg.train.lr, cfg.train.lr_min) == (2e-4, 5e-7)
    assert cfg.data.noise_sigma == 3.0 and cfg.train.steps == 40
    assert isinstance(cfg.train.steps, int)
    with pytest.raises(UserError, match=r"train.lr must be a number, not 'fast'"):
        load_train_config(config, {"train.lr": "fast"})
    with pytest.raises(UserError, match=r"train.steps must be a number, not '1.5'"):
        load_train_config(config, {"train.steps": "1.5"})


def test_cosine_schedule_with_warmup():
    cfg = OptimConfig(steps=100, lr=1e-4, lr_min=1e-6, warmup_steps=10)
    assert cosine_lr(0, cfg) == pytest.approx(1e-5)
    assert cosine_lr(10, cfg) == pytest.approx(1e-6 + 0.5 * (1e-4 - 1e-6) * (1 + 0.9510565163))
    assert cosine_lr(100, cfg) == pytest.approx(1e-6)


def test_two_processes_under_torchrun_gloo(train_config, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "refdeblur_video.training.cli", "--config", str(train_config),
           "--max-steps", "2", "--quiet"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert steps_logged(tmp_path / "run") == [1, 2]
    with safe_open(str(tmp_path / "run" / "last.safetensors"), "pt") as handle:
        assert handle.metadata()["step"] == "2"


def test_init_from_a_smaller_model_warm_starts_the_configured_one(train_config, tmp_path):
    from refdeblur_video.model import RefDeblurNet, load_model, save_checkpoint
    from refdeblur_video.model.config import parse_config

    plain, settings = parse_config(TINY_MODEL)
    init = tmp_path / "plain.safetensors"
    save_checkpoint(init, RefDeblurNet(plain, settings.matching), plain)
    grown = {**TINY_MODEL, "fusion_gate": True, "n_resblocks": [1, 1, 3]}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(grown))
    out = tmp_path / "warm"
    args = ["--config", str(train_config), "--set", f"init={init}", "--set", f"out={out}",
            "--set", "train.steps=2", "--quiet"]
    assert train_main(args) == 0
    trained = load_model(out / "model.safetensors", "cpu").model
    assert trained.config.fusion_gate and trained.ream2.gate is not None
    assert trained.config.n_resblocks == (1, 1, 3) and len(trained.dec3) == 3
    assert trained.matching.radius == 2  # the model YAML's settings travel with the weights


def _saved_tiny_model(tmp_path: Path):
    """A fresh tiny network saved as a checkpoint to start from: (path, network)."""
    from refdeblur_video.model import RefDeblurNet, save_checkpoint
    from refdeblur_video.model.config import parse_config

    torch.manual_seed(0)
    config, settings = parse_config(TINY_MODEL)
    init = tmp_path / "init.safetensors"
    start = RefDeblurNet(config, settings.matching)
    save_checkpoint(init, start, config)
    return init, start


def test_freeze_phi_keeps_the_matching_encoder_and_trains_the_rest(train_config, tmp_path):
    from refdeblur_video.model import load_model

    init, start = _saved_tiny_model(tmp_path)
    out = tmp_path / "frozen"
    args = ["--config", str(train_config), "--set", f"init={init}", "--set", f"out={out}",
            "--set", "train.steps=3", "--set", "train.freeze_phi=true", "--quiet"]
    assert train_main(args) == 0
    trained = load_model(out / "model.safetensors", "cpu").model
    phi = dict(start.phi.named_parameters())
    assert all(torch.equal(p, phi[n]) for n, p in trained.phi.named_parameters())
    assert not torch.equal(trained.ream1.fuse.weight, start.ream1.fuse.weight)
    assert train_main([*args, "--set", "train.steps=5", "--resume"]) == 0  # resumes frozen
    resumed = load_model(out / "model.safetensors", "cpu").model
    assert all(torch.equal(p, phi[n]) for n, p in resumed.phi.named_parameters())


def test_the_matching_loss_trains_a_frozen_phi_and_is_logged(train_config, tmp_path, capsys):
    from refdeblur_video.model import load_model

    init, start = _saved_tiny_model(tmp_path)
    out = tmp_path / "matching"
    assert train_main(["--config", str(train_config), "--set", f"init={init}",
                       "--set", f"out={out}", "--set", "train.steps=3",
                       "--set", "train.freeze_phi=true", "--set", "train.match_weight=1.0",
                       "--set", "train.match_radius=3", "--quiet"]) == 0
    trained = load_model(out / "model.safetensors", "cpu").model
    phi = dict(start.phi.named_parameters())
    assert any(not torch.equal(p, phi[n]) for n, p in trained.phi.named_parameters())
    with (out / "train_log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    assert all(0.0 <= float(row["match_accuracy"]) <= 1.0 for row in rows)
    # a state saved with phi trained cannot resume with phi frozen: one clear line
    capsys.readouterr()
    assert train_main(["--config", str(train_config), "--set", f"out={out}",
                       "--set", "train.steps=4", "--set", "train.match_weight=0", "--quiet",
                       "--resume"]) == 2
    assert "another set of trainable parameters" in capsys.readouterr().err
    # resumed without naming it, it goes on training phi by the matching loss
    assert train_main(["--config", str(train_config), "--set", f"out={out}",
                       "--set", "train.steps=4", "--quiet", "--resume"]) == 0
    with (out / "train_log.csv").open() as handle:
        assert "match_accuracy" in list(csv.DictReader(handle))[-1]


@pytest.mark.parametrize("workers, whole_group", [(0, False), (1, True)],
                         ids=["kill-PID", "kill-process-group-with-a-data-worker"])
def test_kill_saves_the_training_state_first(train_config, tmp_path, workers, whole_group):
    # a long run, logged every step, a state only every 1000 steps: SIGTERM must save one,
    # also when the signal reaches the data workers too (`kill -- -PGID`, a service manager)
    config = yaml.safe_load(train_config.read_text())
    config["train"].update(steps=100000, ckpt_every=1000, val_every=1000, gan_start=None)
    config["data"]["workers"] = workers
    train_config.write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "refdeblur_video.training.cli", "--config", str(train_config),
         "--quiet"], env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    end = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < end:
        if (run / "train_log.csv").is_file() and len(steps_logged(run)) >= 2:
            break
        time.sleep(0.1)
    assert process.poll() is None, process.communicate()[1][-2000:]
    if whole_group:
        os.killpg(process.pid, signal.SIGTERM)
    else:
        process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    with safe_open(str(run / "last.safetensors"), "pt") as handle:
        saved = int(handle.metadata()["step"])
    assert saved >= 2 and f"state saved at step {saved}" in out + err


def test_the_gated_mix_tells_the_network_which_references_are_placed(train_config, tmp_path,
                                                                      monkeypatch):
    from refdeblur_video.model.net import RefDeblurNet

    seen = []
    forward = RefDeblurNet.forward

    def recording(self, blurry, reference, matched=None, in_place=None):
        if self.training:
            seen.append(in_place)
        return forward(self, blurry, reference, matched, in_place)

    monkeypatch.setattr(RefDeblurNet, "forward", recording)
    mix = ("data.mix={generators: {shake: 1.0}, aligned_ref_prob: 1.0, align_context: 16, "
           "aligned_ref_by: homography, aligned_ref_gate: true}")
    args = ["--config", str(train_config), "--set", mix, "--set", "train.steps=2",
            "--set", "train.gan_start=null", "--quiet"]
    assert train_main(args) == 0
    assert len(seen) == 2
    assert all(flags is not None and flags.dtype == torch.bool and flags.shape == (2,)
               for flags in seen)


def test_a_share_of_the_loss_after_the_transfer_is_logged_and_validated(train_config,
                                                                         tmp_path):
    out = tmp_path / "after"
    assert train_main(["--config", str(train_config), "--set", f"out={out}",
                       "--set", "train.steps=2", "--set", "train.transfer_loss_share=0.5",
                       "--set", "data.crop=64", "--quiet"]) == 0
    with (out / "train_log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and all(float(row["after_transfer"]) > 0 for row in rows)
    with (out / "val_log.csv").open() as handle:
        scores = list(csv.DictReader(handle))[-1]
    # the transfer never blends in more than the reference: finite and near the model's
    assert abs(float(scores["psnr_transfer"]) - float(scores["psnr_model"])) < 10
    with pytest.raises(UserError, match="transfer_loss_share"):
        load_train_config(train_config, {"train.transfer_loss_share": 1.5})


def _weights(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), "pt") as handle:
        return {k: handle.get_tensor(k).float() for k in handle.keys()}  # noqa: SIM118


def test_the_moving_average_of_the_weights_is_kept_and_resumed(train_config, tmp_path):
    from refdeblur_video.model import load_model

    out, decay = tmp_path / "ema", 0.5
    args = ["--config", str(train_config), "--set", f"out={out}", "--set",
            f"train.ema_decay={decay}", "--set", "train.gan_start=null", "--max-steps", "1",
            "--quiet"]
    expected: dict[str, torch.Tensor] = {}
    for step in (1, 2, 3):  # one step per run: each resumes the average from the state
        assert train_main(args + (["--resume"] if step > 1 else [])) == 0
        weights = _weights(out / "model.safetensors")
        expected = weights if step == 1 else {
            k: decay * expected[k] + (1 - decay) * w for k, w in weights.items()}
        averaged = _weights(out / "ema.safetensors")
        assert averaged.keys() == weights.keys()
        for key, value in expected.items():
            assert torch.allclose(averaged[key], value, atol=1e-6), (step, key)
    moved = [k for k in weights if not torch.equal(weights[k], averaged[k])]
    assert moved  # the average lags the weights it averages
    with (out / "val_log.csv").open() as handle:
        assert float(list(csv.DictReader(handle))[-1]["psnr_model_ema"]) > 10
    assert load_model(out / "ema.safetensors", "cpu").trained
    # resumed by a command that does not ask for the average: it is kept, decay and all
    assert train_main(["--config", str(train_config), "--set", f"out={out}", "--set",
                       "train.gan_start=null", "--max-steps", "1", "--quiet", "--resume"]) == 0
    weights = _weights(out / "model.safetensors")
    expected = {k: decay * expected[k] + (1 - decay) * w for k, w in weights.items()}
    averaged = _weights(out / "ema.safetensors")
    for key, value in expected.items():
        assert torch.allclose(averaged[key], value, atol=1e-6), key
    with pytest.raises(UserError, match="ema_decay"):
        load_train_config(train_config, {"train.ema_decay": 1.0})


def test_a_resumed_run_draws_new_samples_instead_of_replaying_the_first(train_config,
                                                                         tmp_path):
    out = tmp_path / "replay"
    args = ["--config", str(train_config), "--set", f"out={out}", "--set", "train.lr=1e-12",
            "--set", "train.lr_min=1e-13", "--set", "train.gan_start=null", "--set",
            "train.steps=8", "--set", "data.unrelated_ref_prob=0", "--quiet"]
    assert train_main([*args, "--max-steps", "4"]) == 0
    assert train_main([*args, "--resume"]) == 0
    with (out / "train_log.csv").open() as handle:
        losses = [float(row["loss"]) for row in csv.DictReader(handle)]
    assert len(losses) == 8
    # the weights hardly move (lr 1e-12): equal losses would mean the same crops again
    assert losses[4:] != losses[:4]


def _tiny_manifest(tmp_path: Path, make_test_clip, val_fraction: float) -> Path:
    from refdeblur_video.data.triplets import build_video_triplets

    clips = [make_test_clip(f"m{k}.mp4", n_frames=8, size=(96, 80), seed=k).path
             for k in range(2)]
    build_video_triplets(clips, tmp_path / "trip", frames_per_video=3,
                         val_fraction=val_fraction, seed=0)
    return tmp_path / "trip" / "manifest.jsonl"


def _manifest_run(tmp_path: Path, manifest: Path, workers: int) -> Path:
    """A two-step training config of the tiny model on ``manifest``, out in ``run``."""
    config = tmp_path / "t.yaml"
    config.write_text(yaml.safe_dump({
        "model": str(tmp_path / "tiny.yaml"), "out": str(tmp_path / "run"),
        "data": {"source": "manifest", "manifest": str(manifest), "crop": 32, "batch": 2,
                 "workers": workers, "val_crop": 32},
        "train": {"steps": 2}}))
    return config


def test_a_batch_larger_than_the_triplets_or_no_validation_split_is_one_line(
        tmp_path, make_test_clip, capsys):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY_MODEL))
    manifest = _tiny_manifest(tmp_path, make_test_clip, 0.5)  # 3 train, 3 val triplets
    args = ["--config", str(tmp_path / "t.yaml"), "--quiet"]
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({
        "model": str(tmp_path / "tiny.yaml"), "out": str(tmp_path / "run"),
        "data": {"source": "manifest", "manifest": str(manifest), "crop": 32, "batch": 8,
                 "workers": 0, "val_crop": 32},
        "train": {"steps": 2}}))
    assert train_main(args) == 2  # it used to spin for ever, the loader giving nothing
    assert not (tmp_path / "run").exists()
    assert capsys.readouterr().err.strip() == (
        "error: data.batch is 8, but there are only 3 training triplets: lower data.batch "
        "or build more")
    (tmp_path / "trip").rename(tmp_path / "old")
    manifest = _tiny_manifest(tmp_path, make_test_clip, 0.0)
    assert train_main([*args, "--overwrite", "--set", "data.batch=2"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: manifest {manifest} has no validation triplets (split val or test): build "
        "it with refdeblur-triplets and --val-videos or --val-sequences NAMES, or "
        "--val-fraction F")
    assert not (tmp_path / "run").exists()  # refused before the run's folder was touched


def test_validating_on_the_test_split_or_never_leaving_warm_up_is_said(
        tmp_path, make_test_clip, capsys):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY_MODEL))
    manifest = _tiny_manifest(tmp_path, make_test_clip, 0.5)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    manifest.write_text("".join(json.dumps({**row, "split": "test" if row["split"] == "val"
                                            else row["split"]}) + "\n" for row in rows))
    config = _manifest_run(tmp_path, manifest, workers=0)
    assert train_main(["--config", str(config), "--quiet", "--set",
                       "train.warmup_steps=2"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"warning: {manifest} has no val triplets: validating, and choosing "
        "best.safetensors, on its test triplets (refdeblur-triplets --val-sequences or "
        "--val-fraction keeps a val split apart)",
        "warning: train.warmup_steps (2) is not below train.steps (2): the learning rate "
        "never reaches train.lr"]
    # crops larger than the frames are said (the tiny clips are 96x80)
    assert train_main(["--config", str(config), "--quiet", "--overwrite", "--set",
                       "data.crop=128", "--set", "train.steps=1"]) == 0
    assert "warning: data.crop 128 is larger than the triplets' frames (96x80" in \
        capsys.readouterr().err
    # a mistake in the blur mix is one on a manifest too, though it makes no blur there
    assert train_main(["--config", str(config), "--quiet", "--overwrite", "--set",
                       "data.mix={foo: 1}"]) == 2
    assert "unknown keys in 'data.mix': foo" in capsys.readouterr().err


def test_an_out_that_is_a_file_or_a_config_that_is_not_text_is_one_line(train_config,
                                                                        tmp_path, capsys):
    taken = tmp_path / "clip.mp4"
    taken.write_bytes(b"\x00\x00\x00\x18ftypmp42\xff\xfe")
    assert train_main(["--config", str(train_config), "--set", f"out={taken}"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: out {taken} is a file; give a folder for the run")
    assert train_main(["--config", str(taken)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: train config {taken} is not a text (YAML) file")
    assert taken.read_bytes().startswith(b"\x00\x00\x00\x18ftyp")


def test_resume_and_overwrite_together_are_refused(train_config, capsys):
    with pytest.raises(SystemExit) as stop:
        train_main(["--config", str(train_config), "--resume", "--overwrite"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite: not allowed with argument --resume" in err[0], err


def test_a_bad_training_image_found_by_a_loader_worker_is_one_line(tmp_path, make_test_clip,
                                                                  capsys):
    """With data.workers > 0 a UserError raised in a worker came back wrapped in the
    worker's traceback (about 15 lines); it is the one line it is with workers=0."""
    from refdeblur_video.data.manifest import read_manifest

    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY_MODEL))
    manifest = _tiny_manifest(tmp_path, make_test_clip, 0.5)
    for triplet in read_manifest(manifest, "train"):
        Path(triplet.sharp).write_bytes(b"not an image")
    assert train_main(["--config", str(_manifest_run(tmp_path, manifest, workers=1)),
                       "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot read image "), err


def test_a_negative_time_limit_is_refused(train_config, capsys):
    with pytest.raises(SystemExit) as stop:
        train_main(["--config", str(train_config), "--time-limit", "-1"])
    assert stop.value.code == 2
    assert "--time-limit: must be above 0, not -1" in capsys.readouterr().err


def test_ctrl_c_before_the_first_step_says_nothing_was_saved(train_config, tmp_path,
                                                             monkeypatch, capsys):
    import refdeblur_video.training.loop as loop

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "_build_model", interrupted)
    assert train_main(["--config", str(train_config), "--quiet"]) == 130
    assert capsys.readouterr().err.strip() == (
        "interrupted before the first step: no training state was saved")
    monkeypatch.undo()
    # in the first step itself, after the run has started: no untrained state either
    monkeypatch.setattr(loop, "_train_step", interrupted)
    assert train_main(["--config", str(train_config), "--quiet"]) == 130
    assert capsys.readouterr().err.strip() == (
        "interrupted before the first step: no training state was saved")
    assert not (tmp_path / "run" / "last.safetensors").exists()
    monkeypatch.undo()  # nothing blocks a fresh start
    assert train_main(["--config", str(train_config), "--quiet", "--max-steps", "1"]) == 0


def test_a_manifest_with_pairs_of_different_sizes_is_refused_before_training(
        tmp_path, make_test_clip, capsys):
    """A manifest merged by hand: before, a pair of different sizes was found only when a
    loader drew it (after some steps, or hours into a long run)."""
    import numpy as np

    from refdeblur_video.data.manifest import read_manifest
    from refdeblur_video.image_files import write_png

    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY_MODEL))
    manifest = _tiny_manifest(tmp_path, make_test_clip, 0.5)
    odd = read_manifest(manifest, "train")[-1].sharp
    write_png(odd, np.zeros((40, 48, 3), np.uint8))
    assert train_main(["--config", str(_manifest_run(tmp_path, manifest, workers=0)),
                       "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "blurry and sharp sizes differ" in err[0] and "48x40" in err[0]
    assert not (tmp_path / "run").exists()

"""The command line on bad input: one line, exit 2, at once; messages never on the bar's line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import pytest
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from refdeblur_video.cli import main as cli_main
from refdeblur_video.model import InferenceSettings, ModelConfig, RefDeblurNet, save_checkpoint
from refdeblur_video.model.restorer import NON_FINITE_OUTPUT, Restorer
from refdeblur_video.video.synthetic import make_image

TINY = ModelConfig(name="tiny", channels=(8, 8, 8), n_resblocks=1, ref_channels=(4, 4, 4),
                   phi_channels=(4, 4, 4), sffm_hidden=(4, 4))
TINY_SETTINGS = InferenceSettings(match_radius=2)
TINY_MATCH = TINY_SETTINGS.matching

# Runs the command once per argument list in a fresh interpreter; reports, for each, the exit
# code, what went to stderr and whether PyTorch had been imported by then.
HARNESS = """
import contextlib, io, json, sys
from refdeblur_video.cli import main
results = []
for args in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(args)
    results.append([code, err.getvalue(), "torch" in sys.modules])
print(json.dumps(results))
"""


def run_fresh(cases: list[list[str]], cwd: Path) -> list[tuple[int, list[str], bool]]:
    done = subprocess.run([sys.executable, "-c", HARNESS, json.dumps(cases)], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=True)
    return [(code, err.strip().splitlines(), torch_loaded)
            for code, err, torch_loaded in json.loads(done.stdout.splitlines()[-1])]


def test_argument_errors_come_before_pytorch_is_imported(tmp_path, make_test_clip):
    clip = make_test_clip("in.mp4", n_frames=4)
    batch = tmp_path / "batch"
    batch.mkdir()
    (tmp_path / "dir.csv").mkdir()
    make_test_clip("batch/a.mp4", n_frames=4)
    cases = {
        "input file not found: missing.mp4": ["missing.mp4", "o1.mp4"],
        "reference image (--ref) not found: nope.jpg": ["in.mp4", "o2.mp4", "--ref", "nope.jpg"],
        "cannot tell the container of 'out.xyz'": ["in.mp4", "out.xyz"],
        "unknown video encoder": ["in.mp4", "o3.mp4", "--codec", "not-a-codec"],
        "--batch must be at least 1": ["in.mp4", "o4.mp4", "--batch", "0"],
        "--window and --max-offset must be at least 1": ["in.mp4", "o15.mp4", "--window", "0"],
        "output folder batch holds the input videos": ["batch/*.mp4", "batch/"],
        # the log is written after the whole run: too late to fail then
        "--log folder nodir does not exist": ["in.mp4", "o5.mp4", "--log", "nodir/f.csv"],
        "--log dir.csv is a folder": ["in.mp4", "o6.mp4", "--log", "dir.csv"],
        "--preset must be one of ultrafast,": ["in.mp4", "o7.mp4", "--preset", "nosuch"],
        "--crf must be 0 (lossless) or more": ["in.mp4", "o8.mp4", "--crf", "-5"],
        "--crf 60 is beyond libx264's range": ["in.mp4", "o9.mp4", "--crf", "60"],
        "output one.mp4 names a video file, but the input is many": ["batch", "one.mp4"],
        "unknown device 'cuda:abc'": ["in.mp4", "o10.mp4", "--device", "cuda:abc"],
        "output batch/ is a folder, but the input is one file": ["bad.yaml", "batch/"],
        "model file not found: none.safetensors": ["in.mp4", "o11.mp4", "--model",
                                                   "none.safetensors"],
        # a training run's folder, its weights named
        "--model batch is a folder: give a model file": ["in.mp4", "o17.mp4", "--model",
                                                         "batch"],
        "model config bad.yaml is not valid YAML (line 2, column 1:": [
            "in.mp4", "o12.mp4", "--model", "bad.yaml"],
        # it would write a copy of the input and exit 0
        "no trained weights are installed for the paper model": [
            "in.mp4", "o15.mp4", "--model", "paper"],
        # read more than once: a FIFO would hang the second read
        "input fifo.mkv is not a regular file (a pipe or device?)": ["fifo.mkv", "o13.mkv"],
        "output in.mp4 is the --ref file": ["bad.yaml", "in.mp4", "--ref", "in.mp4", "-y"],
        "output o14.png is an image, but in.mp4 is none of the images": ["in.mp4", "o14.png"],
        "standard input or output (-) cannot be used": ["-", "o16.mp4"],
    }
    (tmp_path / "bad.yaml").write_text("x: [\n")
    os.mkfifo(tmp_path / "fifo.mkv")
    results = run_fresh(list(cases.values()), tmp_path)
    problems = []  # every case is checked, so that a failure lists all that went wrong
    for (expected, args), (code, err, torch_loaded) in zip(cases.items(), results, strict=True):
        if code != 2 or len(err) != 1 or not err[0].startswith("error: "):
            problems.append(f"{args}: exit {code}, stderr {err}")
        elif expected not in err[0] or ".part" in err[0]:  # the user's path, not the temp file
            problems.append(f"{args}: {err[0]!r} does not say {expected!r}")
        if torch_loaded:
            problems.append(f"{args}: PyTorch was imported before the error")
    assert not problems, "\n".join(problems)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "batch", "dir.csv",
                                                          "fifo.mkv", clip.path.name]
    assert [p.name for p in batch.iterdir()] == ["a.mp4"]


def screen(stream: str) -> list[str]:
    """The lines a terminal shows for ``stream`` (a carriage return rewrites its line)."""
    lines = []
    for raw in stream.split("\n"):
        shown = ""
        for part in raw.split("\r"):
            shown = part + shown[len(part):]
        if shown.strip():
            lines.append(shown.rstrip())
    return lines


def test_warnings_and_errors_have_one_style_and_their_own_lines(tmp_path, make_test_clip):
    clip = make_test_clip("in.mkv", n_frames=30, blurry={3}, codec="ffv1", pix_fmt="bgr0")
    data = clip.path.read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: len(data) * 2 // 3])
    tiny_yaml = {**TINY.to_dict(), **TINY_SETTINGS.to_dict()}  # architecture and settings
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny_yaml))
    # warnings: the reference's size (logged), untrained weights and the truncated file
    make_image(tmp_path / "ref.png", size=(48, 32))
    command = [sys.executable, "-m", "refdeblur_video.cli", "cut.mkv", "out.mkv",
               "--model", "tiny.yaml", "--codec", "ffv1", "--ref", "ref.png"]
    env = {**os.environ, "COLUMNS": "80"}
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr
    lines = screen(done.stderr)
    warned = [line for line in lines if "warning" in line.lower()]
    assert len(warned) >= 3, lines  # the reference's size, untrained weights, truncated file
    assert all(line.startswith("warning: ") for line in warned), lines
    # an error after the bar would have started: on a line of its own
    done = subprocess.run([*command[:4], "out2.mkv", "--codec", "not-a-codec"], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2
    assert [line for line in screen(done.stderr) if "error" in line] == [
        "error: unknown video encoder 'not-a-codec': FFmpeg's encoder names, e.g. libx264, "
        "libx265, libsvtav1, libvpx-vp9, ffv1"]


def checkpoint_variant(tmp_path: Path, kind: str) -> Path:
    """A TINY checkpoint spoilt in one way: ``config`` (another model's config in its
    metadata), ``reshaped`` (one tensor of another shape), ``nan`` (NaN/inf weights) or
    ``state`` (a training state given for weights)."""
    good = tmp_path / "good.safetensors"
    save_checkpoint(good, RefDeblurNet(TINY, TINY_MATCH), TINY)
    tensors = load_file(str(good))
    with safe_open(str(good), framework="pt") as handle:
        metadata = handle.metadata()
    if kind == "state":
        from refdeblur_video.training.state import save_training_state

        net = RefDeblurNet(TINY, TINY_MATCH)
        path = tmp_path / "last.safetensors"
        save_training_state(path, net, TINY, torch.optim.Adam(net.parameters()), 5, {})
        return path
    if kind == "config":
        metadata["config"] = TINY.replace(channels=(8, 16, 16)).to_json()
    elif kind == "reshaped":
        name = next(k for k, v in tensors.items() if v.dim() == 4 and v.shape[-1] == 3)
        tensors[name] = tensors[name].reshape(tensors[name].shape[0], -1, 1, 1).contiguous()
    else:
        name = next(k for k, v in tensors.items() if v.dim() == 4)
        tensors[name][0, 0, 0, 0] = float("nan")
        tensors[name][-1, 0, 0, 0] = float("inf")
    path = tmp_path / f"{kind}.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    return path


@pytest.mark.parametrize(("kind", "message"), [
    ("config", "does not fit its model config"),
    ("reshaped", "does not fit its model config"),
    ("nan", "NaN or infinite weights"),
    ("state", "is a training state (to --resume from); its weights are the run's"),
])
def test_spoilt_checkpoint_is_refused_in_one_line(tmp_path, capsys, make_test_clip, kind,
                                                  message):
    clip = make_test_clip("in.mp4", n_frames=4, blurry={1})
    path = checkpoint_variant(tmp_path, kind)
    code = cli_main([str(clip.path), str(tmp_path / "out.mp4"), "--model", str(path), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "out.mp4").exists()


def test_non_finite_restored_frames_stop_the_run(tmp_path, capsys, make_test_clip,
                                                 monkeypatch):
    clip = make_test_clip("in.mp4", n_frames=6, blurry={2})
    net = RefDeblurNet(TINY, TINY_MATCH)
    with torch.no_grad():  # as if loaded from a file nobody checked, or an fp16 overflow
        net.tail.weight.fill_(float("nan"))
    broken = Restorer(net, torch.device("cpu"), trained=True)
    monkeypatch.setattr("refdeblur_video.pipeline.run.make_restorer", lambda opts: broken)
    code = cli_main([str(clip.path), str(tmp_path / "out.mp4"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [f"error: {NON_FINITE_OUTPUT}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_random_bytes_that_pass_for_a_video_are_one_line_and_leave_nothing(
        tmp_path, capsys, noise_video, monkeypatch):
    """Random bytes can probe as a raw H.263 stream whose frames all decode, concealed
    (three files in 1,525 in one try): refused, not restored into a video of noise."""
    noise = noise_video("download.mp4")
    net = Restorer(RefDeblurNet(TINY, TINY_MATCH), torch.device("cpu"), trained=True)
    monkeypatch.setattr("refdeblur_video.pipeline.run.make_restorer", lambda opts: net)
    code = cli_main([str(noise), str(tmp_path / "out.mp4"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and "corrupt" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["download.h263", "download.mp4"]


def test_a_bad_argument_is_one_line_naming_help(capsys):
    with pytest.raises(SystemExit) as stop:
        cli_main(["in.mp4", "out.mp4", "--batch", "many"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: argument --batch"), err
    assert "refdeblur-video --help" in err[0]
    with pytest.raises(SystemExit) as stop:  # an unquoted glob: many inputs
        cli_main(["a.mp4", "b.mp4", "c.mp4", "out/"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unrecognized arguments: c.mp4 out/; "
                                               "it takes one input and one output"), err
    assert "a quoted glob ('clips/*.mp4')" in err[0]
    with pytest.raises(SystemExit):  # a mistyped option is not taken for many inputs
        cli_main(["a.mp4", "out.mp4", "--bogus"])
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: unknown option --bogus (refdeblur-video --help lists the options)"]
    for typed in (["--treshold", "0.5"], ["--treshold=0.5"]):  # its value is no input
        with pytest.raises(SystemExit):
            cli_main(["a.mp4", "out.mp4", *typed])
        err = capsys.readouterr().err.strip().splitlines()
        assert err == ["error: unknown option --treshold (did you mean --threshold?) "
                       "(refdeblur-video --help lists the options)"]


def test_option_help_wraps_to_the_terminal(monkeypatch):
    from refdeblur_video.cli import build_parser

    monkeypatch.setenv("COLUMNS", "80")
    text = build_parser().format_help()
    too_wide = [line for line in text.splitlines() if len(line) > 80]
    assert not too_wide, too_wide


@pytest.mark.parametrize("rank0_hosts", [False, True])
def test_torchrun_bad_file_does_not_cut_the_others_short(tmp_path, make_test_clip,
                                                         rank0_hosts):
    """torchrun stops every process when one exits with an error: the process whose file
    was bad waits for the others, so each good file is still made (and logged); whether
    torchrun's agent or rank 0 hosts the store the processes count on."""
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "a_bad.mp4").write_bytes(os.urandom(4096))  # rank 0's share
    # rank 1's share, long enough to be cut off (seconds, where rank 0 fails in a moment)
    make_test_clip("clips/b_good.mp4", n_frames=48, size=(320, 240), blurry=range(2, 48, 3))
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**TINY.to_dict(),
                                                        **TINY_SETTINGS.to_dict()}))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", "--monitor-interval", "0.1",
               "-m", "refdeblur_video.cli", "clips", "out", "--model", "tiny.yaml",
               "--frame-log", "frames.csv", "-q"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1",
                               "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": str(int(rank0_hosts))},
                          timeout=300)
    assert done.returncode != 0  # the bad file is still an error
    assert "error: clips/a_bad.mp4" in done.stderr
    assert "interrupted" not in done.stderr, done.stderr[-2000:]
    with av.open(str(tmp_path / "out" / "b_good.mp4")) as made:
        assert sum(1 for _ in made.decode(video=0)) == 48
    assert len((tmp_path / "out" / "b_good.csv").read_text().splitlines()) == 49


def test_a_folder_named_as_a_shipped_model_does_not_hide_it(tmp_path, monkeypatch):
    """Outputs sorted into a folder per model: the shipped names still name the models."""
    from refdeblur_video.errors import UserError
    from refdeblur_video.pipeline.preflight import check_model

    monkeypatch.chdir(tmp_path)
    for name in ("default", "lite", "run"):
        (tmp_path / name).mkdir()
    (tmp_path / "run" / "model.safetensors").write_bytes(b"")
    check_model("default")
    check_model("lite")
    with pytest.raises(UserError, match=r"--model run is a folder: give a model file "
                       r"\(model.safetensors there\)"):
        check_model("run")


def test_a_mistyped_option_of_a_mode_is_named_with_the_mode_s_own(capsys):
    from refdeblur_video.evaluate.cli import main as eval_main

    with pytest.raises(SystemExit) as stop:
        eval_main(["compare", "--output", "a", "--gt", "b", "--report", "c", "--exmaples",
                   "3"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "error: unknown option --exmaples (did you mean --examples?) (refdeblur-eval --help "
        "lists the options)")



def test_a_glob_of_photos_says_how_photos_are_restored(tmp_path, capsys):
    from refdeblur_video.cli import main as cli_main
    from refdeblur_video.video.synthetic import make_image

    (tmp_path / "photos").mkdir()
    for name in ("a.jpg", "b.jpg"):
        make_image(tmp_path / "photos" / name)
    pattern = str(tmp_path / "photos" / "*.jpg")
    assert cli_main([pattern, str(tmp_path / "out") + "/"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: no video files found in {pattern} (it names 2 images: a folder of images is "
        "restored as one image sequence, given as the folder, and a photo alone as "
        "refdeblur-video PHOTO OUT.png --ref SHARP.jpg)")
    assert not (tmp_path / "out").exists()

"""Interrupts and resumable runs: signals end a run cleanly, its finished segments are kept
and ``--resume`` goes on to the same output as a run that was never interrupted."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from refdeblur_video.errors import UserError
from refdeblur_video.interrupts import Interrupted, deferred, handle_signals
from refdeblur_video.model import InferenceSettings, ModelConfig, RefDeblurNet
from refdeblur_video.model.restorer import Restorer
from refdeblur_video.pipeline import deblur_video
from refdeblur_video.pipeline.resume import UnfinishedRun, segment_frames, state_dir
from refdeblur_video.safe_output import remove_stale_temps
from refdeblur_video.video.metadata import probe
from refdeblur_video.video.reader import CorruptVideoWarning, open_reader
from refdeblur_video.video.synthetic import make_image

TINY = ModelConfig(name="tiny", channels=(8, 8, 8), n_resblocks=1, ref_channels=(4, 4, 4),
                   phi_channels=(4, 4, 4), sffm_hidden=(4, 4))
TINY_MATCH = InferenceSettings(match_radius=2).matching
SEGMENT = 0.32  # seconds: 8 frames of the 25 fps test clips


def tiny_restorer(seed: int = 0) -> Restorer:
    """A small network with random weights: it changes every frame it touches."""
    torch.manual_seed(seed)
    net = RefDeblurNet(TINY, TINY_MATCH)
    for p in net.parameters():
        p.data.normal_(0, 0.05)
    return Restorer(net, torch.device("cpu"), trained=True)


@pytest.fixture(scope="module")
def restorer() -> Restorer:
    return tiny_restorer()


class StopsAfter:
    """The restorer, interrupted (as by Ctrl-C) at its ``calls``-th call."""

    def __init__(self, restorer: Restorer, calls: int) -> None:
        self._restorer, self._left = restorer, calls

    def __getattr__(self, name):  # the model, its settings: the wrapped restorer's
        return getattr(self._restorer, name)

    def restore_floats(self, blurry, refs):
        self._left -= 1
        if self._left <= 0:
            raise KeyboardInterrupt
        return self._restorer.restore_floats(blurry, refs)


def streams(path: Path) -> dict:
    """Everything an output is compared by: its packets, timestamps and decoded frames."""
    with av.open(str(path)) as container:
        packets = {s.type: [] for s in container.streams}
        for packet in container.demux():
            if packet.size:
                packets[packet.stream.type].append(
                    (packet.pts, packet.dts, packet.is_keyframe, bytes(packet)))
    with open_reader(path) as reader:
        frames = [(f.pts, f.duration, f.image) for f in reader]
    return {"packets": packets, "frames": frames}


def assert_same_output(a: Path, b: Path) -> None:
    first, second = streams(a), streams(b)
    assert first["packets"] == second["packets"]
    assert len(first["frames"]) == len(second["frames"])
    for (pts_a, dur_a, img_a), (pts_b, dur_b, img_b) in zip(first["frames"], second["frames"],
                                                            strict=True):
        assert (pts_a, dur_a) == (pts_b, dur_b) and np.array_equal(img_a, img_b)


def log_rows(path: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"}
            for row in json.loads(path.read_text())["frames"]]


def interrupted_run(clip, out: Path, restorer: Restorer, calls: int, **options) -> None:
    with pytest.raises(KeyboardInterrupt):
        deblur_video(clip.path, out, StopsAfter(restorer, calls), quiet=True, batch=1,
                     segment_seconds=SEGMENT, **options)


# -- resuming, in process -------------------------------------------------------------------


@pytest.mark.parametrize(("suffix", "done"), [(".mp4", "16 of 32 frames done"),
                                               (".mts", "16 frames done")])  # TS counts none
def test_an_interrupted_run_resumes_to_the_same_output(make_test_clip, restorer, tmp_path,
                                                       suffix, done):
    clip = make_test_clip(f"in{suffix}", n_frames=32, blurry={3, 10, 19, 27}, audio=True)
    whole = tmp_path / f"whole{suffix}"
    once = deblur_video(clip.path, whole, restorer, quiet=True, batch=1,
                        segment_seconds=SEGMENT, log=str(tmp_path / "whole.json"))
    out = tmp_path / f"out{suffix}"
    interrupted_run(clip, out, restorer, calls=3)  # at frame 19, in the third segment
    state = state_dir(out)
    assert not out.exists() and sorted(p.name for p in state.glob("*.json")) == [
        "000000.json", "000001.json", "manifest.json"]
    assert not list(tmp_path.glob(f".out.*.part{suffix}"))
    with pytest.raises(UnfinishedRun, match=done) as refused:
        deblur_video(clip.path, out, restorer, quiet=True, segment_seconds=SEGMENT)
    # in the API's words, not the command's
    assert str(refused.value).endswith("continue it with resume=True, or start again with "
                                       "overwrite=True")
    with pytest.raises(KeyboardInterrupt):  # resumed, and interrupted again at frame 27
        deblur_video(clip.path, out, StopsAfter(restorer, 2), quiet=True, batch=1,
                     segment_seconds=SEGMENT, resume=True)
    summary = deblur_video(clip.path, out, restorer, quiet=True, batch=1,
                           segment_seconds=SEGMENT, resume=True, log=str(tmp_path / "out.json"))
    assert summary.resumed == 24
    assert (summary.frames, summary.restored, summary.unchanged) == \
        (once.frames, once.restored, once.unchanged)
    assert not state.exists()
    assert_same_output(out, whole)
    assert log_rows(tmp_path / "out.json") == log_rows(tmp_path / "whole.json")



@pytest.mark.parametrize("wrong", ["noise", "another scene"])
def test_a_run_with_a_wrong_ref_resumes_to_the_same_output(make_test_clip, tmp_path,
                                                          pooled_phi, wrong):
    """The --ref image is set aside (as much noisier than the frames) or rejected by the
    reference check, and the frames take the planner's choice: the resumed run must
    recognise those frames as its own."""
    import cv2

    torch.manual_seed(0)
    net = RefDeblurNet(TINY, TINY_MATCH)
    net.phi = pooled_phi
    checking = Restorer(net, torch.device("cpu"), trained=True, amp=False,
                        reference_check=0.55)
    clip = make_test_clip("in.mp4", n_frames=32, blurry={3, 10, 19, 27})
    noise = tmp_path / "ref.png"
    if wrong == "noise":  # set aside before the network as much noisier than the frames
        image = np.random.default_rng(0).integers(0, 256, (64, 96, 3), np.uint8)
    else:  # another scene: the reference check drops it
        image = 255 - make_image(size=(96, 64), seed=3)
    cv2.imwrite(str(noise), image)
    options = {"quiet": True, "batch": 1, "segment_seconds": SEGMENT, "ref": str(noise)}
    whole = tmp_path / "whole.mp4"
    deblur_video(clip.path, whole, checking, log=str(tmp_path / "whole.json"), **options)
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        # a rejected frame is restored twice (the --ref image, then the planner's choice)
        deblur_video(clip.path, out, StopsAfter(checking, 5 if wrong == "another scene"
                                                else 3), **options)
    summary = deblur_video(clip.path, out, checking, resume=True,
                           log=str(tmp_path / "out.json"), **options)
    assert summary.resumed > 0
    assert_same_output(out, whole)
    assert log_rows(tmp_path / "out.json") == log_rows(tmp_path / "whole.json")

def test_a_full_disk_is_one_line_and_resume_goes_on_once_there_is_room(
        make_test_clip, restorer, tmp_path, monkeypatch):
    """The disk fills in the third segment: one line that says so and what is kept, no
    output; with room again, --resume ends where a run that had room all along ends."""
    from refdeblur_video.pipeline.resume import SegmentRecorder

    clip = make_test_clip("in.mp4", n_frames=32, blurry={3, 10, 19, 27})
    whole = tmp_path / "whole.mp4"
    deblur_video(clip.path, whole, restorer, quiet=True, batch=1, segment_seconds=SEGMENT)
    keep_packet = SegmentRecorder.packet

    def packet_on_a_small_disk(self, packet):
        if self.index == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        keep_packet(self, packet)

    monkeypatch.setattr(SegmentRecorder, "packet", packet_on_a_small_disk)
    out = tmp_path / "out.mp4"
    with pytest.raises(UserError) as error:
        deblur_video(clip.path, out, restorer, quiet=True, batch=1, segment_seconds=SEGMENT)
    line = str(error.value)
    assert "\n" not in line and line.startswith(f"cannot write {out} (No space left on device)")
    assert "16 finished frames are kept" in line and "--resume" in line
    assert not out.exists() and not list(tmp_path.glob(".out.*.part.mp4"))
    monkeypatch.setattr(SegmentRecorder, "packet", keep_packet)  # room again
    summary = deblur_video(clip.path, out, restorer, quiet=True, batch=1,
                           segment_seconds=SEGMENT, resume=True)
    assert summary.resumed == 16
    assert_same_output(out, whole)


def test_foreign_or_damaged_state(make_test_clip, restorer, tmp_path):
    clip = make_test_clip("in.mp4", n_frames=24, blurry={3, 12, 20})
    other = make_test_clip("other.mp4", n_frames=24, blurry={3, 12, 20}, seed=3)
    out = tmp_path / "out.mp4"
    interrupted_run(clip, out, restorer, calls=3)  # frame 20: two segments kept
    refusals = {
        "another input": dict(input=other.path),
        "other options": dict(crf=20),
        "another model": dict(restorer=tiny_restorer(seed=1)),
    }
    for what, change in refusals.items():
        args = {"input": clip.path, "restorer": restorer, **change}
        with pytest.raises(UserError, match=what) as error:
            deblur_video(args.pop("input"), out, args.pop("restorer"), quiet=True, batch=1,
                         segment_seconds=SEGMENT, resume=True, **args)
        assert "\n" not in str(error.value)
    assert len(list(state_dir(out).glob("0*.json"))) == 2  # refused, not touched
    # a damaged segment is dropped and made again
    (state_dir(out) / "000001.packets").write_bytes(b"garbage")
    summary = deblur_video(clip.path, out, restorer, quiet=True, batch=1,
                           segment_seconds=SEGMENT, resume=True)
    assert summary.resumed == 8
    whole = tmp_path / "whole.mp4"
    deblur_video(clip.path, whole, restorer, quiet=True, batch=1, segment_seconds=SEGMENT)
    assert_same_output(out, whole)


def test_overwrite_starts_again_and_resume_without_state_starts(make_test_clip, restorer,
                                                                 tmp_path, caplog):
    clip = make_test_clip("in.mp4", n_frames=20, blurry={3, 12})
    out = tmp_path / "out.mp4"
    interrupted_run(clip, out, restorer, calls=2)
    summary = deblur_video(clip.path, out, restorer, quiet=True, segment_seconds=SEGMENT,
                           overwrite=True)
    assert summary.resumed == 0 and summary.frames == 20 and not state_dir(out).exists()
    with caplog.at_level("WARNING"):
        fresh = deblur_video(clip.path, tmp_path / "fresh.mp4", restorer, quiet=True,
                             segment_seconds=SEGMENT, resume=True)
    assert fresh.resumed == 0 and fresh.frames == 20
    assert [r.getMessage() for r in caplog.records if "--resume" in r.getMessage()] == [
        f"--resume: no interrupted run of {tmp_path / 'fresh.mp4'} was found; starting from "
        "the first frame"]
    with pytest.raises(UserError, match="already exists: that run finished"):  # once done
        deblur_video(clip.path, tmp_path / "fresh.mp4", restorer, quiet=True, resume=True)


def test_a_run_stopped_after_its_last_commit_only_writes_the_output(
        make_test_clip, restorer, tmp_path, monkeypatch):
    clip = make_test_clip("in.mkv", n_frames=20, blurry={3, 12}, audio=True)
    whole = tmp_path / "whole.mkv"
    deblur_video(clip.path, whole, restorer, quiet=True, segment_seconds=SEGMENT)
    out = tmp_path / "out.mkv"

    def stopped(self):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr("refdeblur_video.video.writer.VideoWriter.close", stopped)
        with pytest.raises(KeyboardInterrupt):
            deblur_video(clip.path, out, restorer, quiet=True, segment_seconds=SEGMENT)

    def no_restoring(blurry, refs):
        raise AssertionError("every frame was kept")

    kept = StopsAfter(restorer, 1)
    kept.restore_floats = no_restoring
    summary = deblur_video(clip.path, out, kept, quiet=True, segment_seconds=SEGMENT,
                           resume=True)
    assert summary.resumed == summary.frames == 20
    assert_same_output(out, whole)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".ts"])
def test_segments_keep_variable_frame_rate_timestamps(make_test_clip, restorer, tmp_path,
                                                      suffix):
    # each segment's encoder starts its decode timestamps afresh: they must still increase
    clip = make_test_clip(f"in{suffix}", n_frames=30, vfr=True, blurry={5, 17})
    out = tmp_path / f"out{suffix}"
    deblur_video(clip.path, out, restorer, quiet=True, segment_seconds=0.3)
    with open_reader(clip.path) as before, open_reader(out) as after:
        times, kept = [f.pts for f in before], [f.pts for f in after]
    if suffix == ".ts":  # it holds no decode time before 0: all starts a little later
        kept = [pts - (kept[0] - times[0]) for pts in kept]
    assert times == kept
    with av.open(str(out)) as container:
        video = [p for p in container.demux(container.streams.video[0]) if p.size]
    dts = [p.dts for p in video if p.dts is not None]
    assert dts == sorted(set(dts)) and all(p.dts is None or p.dts <= p.pts for p in video)
    # a keyframe at each segment (of frames at the rate the container gives: TS guesses 50)
    size = segment_frames(0.3, float(probe(clip.path).fps))
    assert sum(p.is_keyframe for p in video) >= -(-30 // size) >= 2


def test_a_run_that_moved_its_start_later_resumes_to_the_same_output(untimed_lead_clip,
                                                                      restorer, tmp_path):
    """A video whose first frames fell before 0 is moved later, sound with it, at its first
    frame: a resumed run moves the sound it copies again as the stored frames were moved
    (before: the frames after the stored ones did not follow them, a traceback)."""
    options = {"quiet": True, "batch": 1, "segment_seconds": 0.12, "all_frames": True}
    whole, out = tmp_path / "whole.mkv", tmp_path / "out.mkv"
    with pytest.warns(CorruptVideoWarning):
        deblur_video(untimed_lead_clip, whole, restorer, **options)
    with pytest.warns(CorruptVideoWarning), pytest.raises(KeyboardInterrupt):
        deblur_video(untimed_lead_clip, out, StopsAfter(restorer, 10), **options)
    assert (state_dir(out) / "000000.json").exists()
    with pytest.warns(CorruptVideoWarning):
        summary = deblur_video(untimed_lead_clip, out, restorer, resume=True, **options)
    assert summary.resumed >= 3
    assert_same_output(out, whole)


def test_stale_temporary_outputs_are_removed(tmp_path):
    target = tmp_path / "out.mp4"
    stale = [tmp_path / ".out.0a1b2c3d.part.mp4", tmp_path / ".out.ffffffff.part.mp4"]
    kept = [tmp_path / ".out.0a1b2c3d.part.mkv", tmp_path / ".other.0a1b2c3d.part.mp4",
            tmp_path / ".out.xyz.part.mp4", tmp_path / "out.mp4"]
    for path in stale + kept:
        path.write_bytes(b"x")
    assert remove_stale_temps(target) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in kept)


# -- the command line under signals ----------------------------------------------------------


def start_cli(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "refdeblur_video.cli", *args, "-q"],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, process: subprocess.Popen, limit: float) -> None:
    """Until ``path`` exists, ``process`` ended or ``limit`` seconds passed."""
    end = time.monotonic() + limit
    while not path.exists() and process.poll() is None and time.monotonic() < end:
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=lambda signum: signum.name)
def test_a_signal_while_frames_are_restored_ends_the_run_cleanly(make_test_clip, tmp_path,
                                                                 signum):
    # One model call restores 8 frames (seconds): the signal comes in the middle of the first
    # of three. Before, the interpreter shut down under that call and the C++ runtime aborted
    # (134).
    clip = make_test_clip("in.mp4", n_frames=24, size=(640, 384), blurry={3, 9})
    run = start_cli([clip.path.name, "out.mp4", "--all-frames", "--batch", "8"], tmp_path)
    wait_for(state_dir(tmp_path / "out.mp4") / "manifest.json", run, limit=14)  # model loaded
    time.sleep(1)
    assert run.poll() is None, "the run ended before the signal"
    run.send_signal(signum)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130, (run.returncode, err)  # every signal as Ctrl-C
    lines = err.strip().splitlines()
    head = "interrupted:" if signum == signal.SIGINT else f"interrupted ({signum.name}):"
    assert len(lines) == 1 and lines[0].startswith(head), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_a_killed_run_resumes_from_the_command_line(make_test_clip, tmp_path):
    clip = make_test_clip("in.mp4", n_frames=48, blurry={4, 18, 19, 33}, audio=True)
    args = [clip.path.name, "out.mp4", "--model", "lite", "--no-transfer", "--all-frames",
            "--segment-seconds", str(SEGMENT)]
    run = start_cli(args, tmp_path)
    state = state_dir(tmp_path / "out.mp4")
    wait_for(state / "000001.json", run, limit=60)
    assert run.poll() is None, "the run ended before it was killed"
    run.send_signal(signal.SIGKILL)
    run.communicate(timeout=60)
    assert list(tmp_path.glob(".out.*.part.mp4"))  # what SIGKILL leaves
    refused = subprocess.run([sys.executable, "-m", "refdeblur_video.cli", *args, "-q"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1, refused.stderr
    assert "unfinished run" in lines[0] and lines[0].endswith(
        f"{' '.join(args)} -q --resume, or start again with --overwrite")
    resumed = start_cli([*args, "--resume"], tmp_path)
    whole = start_cli([*args[:1], "whole.mp4", *args[2:]], tmp_path)
    for process in (resumed, whole):
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4", "whole.mp4"]
    assert_same_output(tmp_path / "out.mp4", tmp_path / "whole.mp4")


def test_ignored_signals_stay_ignored_and_handlers_come_back():
    # nohup ignores SIGHUP: a run under it must go on when the terminal closes
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGHUP, signal.SIGTERM)}
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with handle_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is before[signal.SIGTERM]
    finally:
        signal.signal(signal.SIGHUP, before[signal.SIGHUP])


def test_a_signal_during_a_commit_is_raised_once_it_is_done():
    done = []
    with handle_signals(), pytest.raises(Interrupted) as stopped, deferred():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)  # the handler runs here, in this thread
        done.append(1)
    assert done == [1] and stopped.value.exit_code == 130


def test_an_interrupted_run_of_many_files_says_what_is_kept(tmp_path, monkeypatch):
    from refdeblur_video.pipeline import resume

    out = tmp_path / "out"
    out.mkdir()
    line = resume.interrupted_line(str(out))
    assert "--resume" not in line and "goes on with the rest" in line
    (out / ".b.mp4.refdeblur").mkdir()
    monkeypatch.setattr(resume, "kept_frames", lambda target: 150 if Path(target).name == "b.mp4"
                        else 0)
    line = resume.interrupted_line(str(out))
    assert "150 finished frames of b.mp4 are kept" in line and "--resume" in line


def test_files_finished_before_an_interruption_have_their_closing_lines(
        make_test_clip, tmp_path, monkeypatch, capsys):
    from refdeblur_video.cli import main as cli_main
    from refdeblur_video.pipeline import run

    (tmp_path / "batch").mkdir()
    for name in ("a.mp4", "b.mp4"):
        make_test_clip(f"batch/{name}", n_frames=6, blurry={2})
    real = run.deblur_video

    def stopped_at_the_second(source, *args, **kwargs):
        if Path(source).name == "b.mp4":
            raise KeyboardInterrupt
        return real(source, *args, **kwargs)

    monkeypatch.setattr(run, "deblur_video", stopped_at_the_second)
    code = cli_main([str(tmp_path / "batch"), str(tmp_path / "out")])
    said = capsys.readouterr()
    assert code == 130
    assert f"{tmp_path / 'out' / 'a.mp4'}: 6 frames" in said.out, said
    assert "b.mp4" not in said.out and "interrupted" in said.err


def test_a_state_folder_removed_under_a_run_is_one_line(make_test_clip, tmp_path, monkeypatch,
                                                        capsys):
    from refdeblur_video.cli import main as cli_main
    from refdeblur_video.pipeline import resume

    clip = make_test_clip("in.mp4", n_frames=8, blurry={3})

    def removed(source, target):  # as when the hidden folder is deleted meanwhile
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(source))

    monkeypatch.setattr(resume.os, "replace", removed)
    out = tmp_path / "out.mp4"
    assert cli_main(["-q", str(clip.path), str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: cannot write {out}: ")
    assert err[0].endswith("was removed while the run was writing it")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


@pytest.mark.parametrize("status", [0, 2])
def test_a_signal_as_the_program_shuts_down_ends_it_with_the_run_s_status(status):
    """A Ctrl-C while the interpreter shuts down after a finished run (here it waits 30 s
    for a thread) ends the process at once, with the run's own status, not 130. A real
    signal to a real process."""
    import time

    program = ("import os, signal, threading, time\n"
               "from refdeblur_video.interrupts import exit_after, handle_signals\n"
               "def late():\n"
               "    time.sleep(0.3)\n"
               "    os.kill(os.getpid(), signal.SIGINT)\n"
               "    time.sleep(30)\n"
               "def main(exiting=False):\n"
               "    with handle_signals(then_ignore=exiting):\n"
               "        threading.Thread(target=late).start()\n"
               f"    return {status}\n"
               "exit_after(main)\n")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=60)
    assert time.monotonic() - started < 20, "the signal did not end the shutdown"
    assert done.returncode == status, done.stderr


@pytest.mark.parametrize(("program", "module"), [
    ("refdeblur-video", "refdeblur_video.cli"),
    ("refdeblur-train", "refdeblur_video.training.cli"),
    ("refdeblur-eval", "refdeblur_video.evaluate.cli"),
    ("refdeblur-triplets", "refdeblur_video.data.cli")])
def test_the_installed_programs_end_ignoring_signals(monkeypatch, program, module):
    import importlib
    from pathlib import Path

    cli = importlib.import_module(module)
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert f'{program} = "{module}:run"' in pyproject  # (tomllib: 3.11+)
    seen = []
    monkeypatch.setattr(cli, "main", lambda argv=None, *, exiting=False: seen.append(exiting))
    with pytest.raises(SystemExit):
        cli.run()
    assert seen == [True]

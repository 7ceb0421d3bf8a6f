"""Image sequences: a folder of frames restored as a video's frames, into a folder of the
same names; untouched frames byte for byte, nothing written unless every frame is."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from refdeblur_video.cli import main as cli_main
from refdeblur_video.model import InferenceSettings, ModelConfig, RefDeblurNet
from refdeblur_video.model.restorer import Restorer
from refdeblur_video.pipeline import deblur
from refdeblur_video.pipeline.framelog import read_frame_log
from refdeblur_video.pipeline.sequence import deblur_sequence
from refdeblur_video.video.synthetic import render_frames

TINY = ModelConfig(name="tiny", channels=(8, 8, 8), n_resblocks=1, ref_channels=(4, 4, 4),
                   phi_channels=(4, 4, 4), sffm_hidden=(4, 4))
BLURRY = {3, 7}


@pytest.fixture(scope="module")
def restorer() -> Restorer:
    """A small network with random weights: it changes every frame it touches."""
    torch.manual_seed(0)
    net = RefDeblurNet(TINY, InferenceSettings(match_radius=2).matching)
    for p in net.parameters():
        p.data.normal_(0, 0.05)
    return Restorer(net, torch.device("cpu"), trained=True)


@pytest.fixture()
def network_sharpens(monkeypatch):
    """Every restored frame counts as sharper than it came, so it is written as made."""
    monkeypatch.setattr("refdeblur_video.pipeline.sequence.sharpened", lambda *args: True)


def write_sequence(folder: Path, suffix: str = ".png", n_frames: int = 12,
                   size: tuple[int, int] = (96, 64), blurry=BLURRY) -> list[Path]:
    """The synthetic scene's frames as ``frame_1`` ... ``frame_N`` (so that natural order
    differs from the names' sorted order)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, image in enumerate(render_frames(size, n_frames, blurry)):
        path = folder / f"frame_{index + 1}{suffix}"
        assert cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1]))
        paths.append(path)
    return paths


def test_blurry_frames_are_restored_and_the_others_copied_byte_for_byte(
        tmp_path, restorer, network_sharpens):
    frames = write_sequence(tmp_path / "frames")
    summary = deblur_sequence(tmp_path / "frames", tmp_path / "out", restorer, quiet=True,
                              log=str(tmp_path / "log.csv"))
    assert (summary.frames, summary.restored) == (12, len(BLURRY))
    outputs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert outputs == sorted(p.name for p in frames)  # no staging folder left
    for index, source in enumerate(frames):
        made = (tmp_path / "out" / source.name).read_bytes()
        if index in BLURRY:
            assert made != source.read_bytes()
            assert cv2.imread(str(tmp_path / "out" / source.name)).shape == (64, 96, 3)
        else:
            assert made == source.read_bytes()
    rows = read_frame_log(tmp_path / "log.csv")
    assert sorted(i for i, r in rows.items() if r.restored) == sorted(BLURRY)


def test_a_restored_frame_keeps_its_bit_depth_and_transparency(tmp_path, restorer,
                                                                network_sharpens):
    folder = tmp_path / "frames16"
    folder.mkdir()
    alpha = np.full((64, 96), 40000, np.uint16)
    alpha[:, :10] = 0
    for index, image in enumerate(render_frames((96, 64), 10, BLURRY)):
        deep = image[..., ::-1].astype(np.uint16) * 257
        cv2.imwrite(str(folder / f"{index:03d}.png"), np.dstack([deep, alpha]))
    deblur_sequence(folder, tmp_path / "out", restorer, quiet=True)
    made = cv2.imread(str(tmp_path / "out" / "003.png"), cv2.IMREAD_UNCHANGED)
    given = cv2.imread(str(folder / "003.png"), cv2.IMREAD_UNCHANGED)
    assert made.dtype == np.uint16 and made.shape == (64, 96, 4)
    np.testing.assert_array_equal(made[..., 3], alpha)
    assert not np.array_equal(made[..., :3], given[..., :3])


def test_the_dry_run_plans_the_blurry_frames(tmp_path):
    write_sequence(tmp_path / "frames")
    [plan] = deblur(tmp_path / "frames", dry_run=True, quiet=True)
    assert plan.frames == 12 and plan.to_restore == sorted(BLURRY)
    assert not (tmp_path / "out").exists()


def test_an_interrupted_run_leaves_the_output_folder_as_it_was(tmp_path, restorer,
                                                               monkeypatch):
    write_sequence(tmp_path / "frames")
    out = tmp_path / "out"
    out.mkdir()
    (out / "frame_1.png").write_bytes(b"the earlier result")

    def stopped(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("refdeblur_video.pipeline.sequence._write_like", stopped)
    with pytest.raises(KeyboardInterrupt):
        deblur_sequence(tmp_path / "frames", out, restorer, quiet=True, overwrite=True,
                        all_frames=True)
    assert [p.name for p in out.iterdir()] == ["frame_1.png"]
    assert (out / "frame_1.png").read_bytes() == b"the earlier result"


@pytest.mark.parametrize(("output", "said"), [
    ("frames", "the output folder frames is the input folder"),
    ("out.mp4", "an image sequence is written as images into a folder, not into a video"),
    ("taken", "taken already holds 1 of the sequence's 12 file names (frame_2.png); "
              "--overwrite replaces them"),
])
def test_an_output_the_sequence_cannot_go_to_is_one_line(tmp_path, capsys, monkeypatch,
                                                         output, said):
    write_sequence(tmp_path / "frames")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "frame_2.png").write_bytes(b"someone's")
    monkeypatch.chdir(tmp_path)
    assert cli_main(["frames", output]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {said}") and len(err.splitlines()) == 1, err
    assert (tmp_path / "taken" / "frame_2.png").read_bytes() == b"someone's"
    assert not (tmp_path / "out.mp4").exists()


def test_frames_of_different_sizes_are_one_line_and_leave_nothing(tmp_path, capsys):
    folder = tmp_path / "photos"
    write_sequence(folder, n_frames=3, blurry=())
    write_sequence(tmp_path / "other", n_frames=1, size=(80, 64), blurry=())
    (tmp_path / "other" / "frame_1.png").rename(folder / "frame_2.png")
    assert cli_main([str(folder), str(tmp_path / "out"), "-q", "--model", "lite"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: the frames of {folder} differ in size") and \
        "restore photos of their own one at a time" in err, err
    assert not (tmp_path / "out").exists()


def test_a_signal_mid_sequence_ends_in_one_line_with_nothing_written(tmp_path):
    write_sequence(tmp_path / "frames", n_frames=24, size=(640, 384), blurry={3, 9})
    run = subprocess.Popen([sys.executable, "-m", "refdeblur_video.cli", "frames", "out",
                            "--all-frames", "--batch", "8", "-q"], cwd=tmp_path,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 60
    while run.poll() is None and time.monotonic() < end and not any(
            p.is_dir() and any(p.iterdir()) for p in (tmp_path / "out").glob(".refdeblur-*")):
        time.sleep(0.05)  # until the first frame is made
    assert run.poll() is None, "the run ended before the signal"
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130, (run.returncode, err)
    assert err.strip() == "interrupted: no frame of the sequence was written (out is as it was)"
    assert not (tmp_path / "out").exists()

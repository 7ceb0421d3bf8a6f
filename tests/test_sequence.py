"""Image sequences: a folder of frames restored as a video's frames, into a folder of the
same names; untouched frames byte for byte, nothing written unless every frame is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from refdeblur_video.cli import main as cli_main
from refdeblur_video.errors import UserError
from refdeblur_video.pipeline import deblur
from refdeblur_video.pipeline.framelog import read_frame_log
from refdeblur_video.pipeline.sequence import deblur_sequence
from refdeblur_video.video.synthetic import render_frames

BLURRY = {3, 7}


@pytest.fixture()
def network_sharpens(monkeypatch):
    """Every restored frame counts as sharper than it came, so it is written as made."""
    monkeypatch.setattr("refdeblur_video.pipeline.into_folder.sharpened", lambda *args: True)


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
        tmp_path, random_restorer, network_sharpens):
    frames = write_sequence(tmp_path / "frames")
    summary = deblur_sequence(tmp_path / "frames", tmp_path / "out", random_restorer, quiet=True,
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
    header = (tmp_path / "log.csv").read_text().splitlines()[0]
    assert header.endswith(",unchanged,file")
    assert (tmp_path / "log.csv").read_text().splitlines()[4].endswith(",frame_4.png")


def test_a_restored_frame_keeps_its_bit_depth_and_transparency(tmp_path, random_restorer,
                                                                network_sharpens):
    folder = tmp_path / "frames16"
    folder.mkdir()
    alpha = np.full((64, 96), 40000, np.uint16)
    alpha[:, :10] = 0
    for index, image in enumerate(render_frames((96, 64), 10, BLURRY)):
        deep = image[..., ::-1].astype(np.uint16) * 257
        cv2.imwrite(str(folder / f"{index:03d}.png"), np.dstack([deep, alpha]))
    deblur_sequence(folder, tmp_path / "out", random_restorer, quiet=True)
    made = cv2.imread(str(tmp_path / "out" / "003.png"), cv2.IMREAD_UNCHANGED)
    given = cv2.imread(str(folder / "003.png"), cv2.IMREAD_UNCHANGED)
    assert made.dtype == np.uint16 and made.shape == (64, 96, 4)
    np.testing.assert_array_equal(made[..., 3], alpha)
    assert not np.array_equal(made[..., :3], given[..., :3])


def test_the_dry_run_plans_the_blurry_frames(tmp_path):
    write_sequence(tmp_path / "frames")
    [plan] = deblur(tmp_path / "frames", tmp_path / "out", dry_run=True, quiet=True)
    assert plan.frames == 12 and plan.to_restore == sorted(BLURRY)
    assert not (tmp_path / "out").exists()  # its output named, still nothing made


def test_an_interrupted_run_leaves_the_output_folder_as_it_was(tmp_path, random_restorer,
                                                               monkeypatch):
    write_sequence(tmp_path / "frames")
    out = tmp_path / "out"
    out.mkdir()
    (out / "frame_1.png").write_bytes(b"the earlier result")

    def stopped(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("refdeblur_video.pipeline.sequence._write_like", stopped)
    with pytest.raises(KeyboardInterrupt):
        deblur_sequence(tmp_path / "frames", out, random_restorer, quiet=True, overwrite=True,
                        all_frames=True)
    assert [p.name for p in out.iterdir()] == ["frame_1.png"]
    assert (out / "frame_1.png").read_bytes() == b"the earlier result"


@pytest.mark.parametrize(("output", "said"), [
    ("frames", "the output folder frames is the input folder"),
    ("out.png", "an image sequence is written as images into a folder, or into a video, "
                "not into one image"),
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


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_frames_of_different_sizes_are_refused_before_the_network(tmp_path, capsys,
                                                                    monkeypatch, suffix):
    folder = tmp_path / "photos"
    write_sequence(folder, suffix, n_frames=30, blurry=())
    write_sequence(tmp_path / "other", suffix, n_frames=1, size=(96, 62), blurry=())
    (tmp_path / "other" / f"frame_1{suffix}").replace(folder / f"frame_30{suffix}")  # last

    def no_network(*args):
        raise AssertionError("the network was loaded")

    monkeypatch.setattr("refdeblur_video.pipeline.run.make_restorer", no_network)
    assert cli_main([str(folder), str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: the frames of {folder} differ in size: frame_1{suffix} is 96x64, "
                   f"frame_30{suffix} 96x62: a folder of images is restored as one image "
                   "sequence; restore photos of their own one at a time (refdeblur-video "
                   "PHOTO OUT.png --ref SHARP.jpg)")
    assert not (tmp_path / "out").exists()


def test_frames_of_different_bit_depths_are_named_by_file(tmp_path):
    folder = tmp_path / "frames"
    paths = write_sequence(folder, n_frames=4, blurry=())
    deep = cv2.imread(str(paths[2]), cv2.IMREAD_UNCHANGED).astype(np.uint16) * 257
    cv2.imwrite(str(paths[2]), deep)
    with pytest.raises(UserError, match="differ in bit depth: frame_1.png is 8-bit, "
                                        "frame_3.png 16-bit"):
        deblur_sequence(folder, tmp_path / "out", quiet=True, model="lite")
    assert not (tmp_path / "out").exists()


def test_a_burst_s_restored_frame_lies_as_its_copied_neighbours(tmp_path, random_restorer,
                                                                network_sharpens):
    """A phone's burst stores its frames on their side with EXIF orientation 6; a restored
    frame written upright beside copies stored turned made a sequence whose frame size
    changes for tools that ignore the EXIF."""
    from PIL import Image

    folder = tmp_path / "burst"
    folder.mkdir()
    for index, image in enumerate(render_frames((96, 64), 8, BLURRY)):
        stored = np.ascontiguousarray(np.rot90(image, 1))  # shown turned 90 clockwise
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.fromarray(stored).save(folder / f"IMG_{index:04d}.JPG", exif=exif.tobytes(),
                                     quality=95)
    deblur_sequence(folder, tmp_path / "out", random_restorer, quiet=True)
    restored, copied = tmp_path / "out" / "IMG_0003.JPG", tmp_path / "out" / "IMG_0002.JPG"
    assert copied.read_bytes() == (folder / "IMG_0002.JPG").read_bytes()
    for path in (restored, copied):
        with Image.open(path) as written:
            assert written.size == (64, 96)  # stored on its side, as the camera wrote it
            assert written.getexif().get(0x0112) == 6
    shown = cv2.imread(str(restored))  # OpenCV turns it upright by its EXIF
    assert shown.shape == (64, 96, 3)
    truth = render_frames((96, 64), 8)[3][..., ::-1].astype(int)
    upright, upside_down = (np.abs(shown.astype(int) - t).mean() for t in (truth,
                                                                           truth[::-1, ::-1]))
    assert upright < 0.75 * upside_down  # the scene the right way up (a random network)


def test_a_frame_that_cannot_be_moved_in_leaves_the_folder_as_it_was(tmp_path, random_restorer,
                                                                      monkeypatch):
    frames = write_sequence(tmp_path / "frames", n_frames=6, blurry={2})
    out = tmp_path / "out"
    out.mkdir()
    for path in frames[:4]:
        (out / path.name).write_bytes(b"earlier " + path.name.encode())
    real_replace, moved_in = os.replace, []

    def failing(src, dst):
        if Path(dst).parent == out:
            moved_in.append(dst)
            if len(moved_in) == 4:
                raise PermissionError(1, "Operation not permitted", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr("refdeblur_video.pipeline.staged_folder.os.replace", failing)
    with pytest.raises(UserError, match=r"cannot write .*frame_4.png \(Operation not "
                                        r"permitted\): nothing was written$"):
        deblur_sequence(tmp_path / "frames", out, random_restorer, quiet=True, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in frames[:4]]
    for path in frames[:4]:
        assert (out / path.name).read_bytes() == b"earlier " + path.name.encode()


def test_a_folder_under_a_frame_s_name_is_refused_up_front(tmp_path, capsys, monkeypatch):
    write_sequence(tmp_path / "frames", n_frames=4)
    (tmp_path / "out" / "frame_3.png").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert cli_main(["frames", "out", "--overwrite"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {Path('out') / 'frame_3.png'} is a folder: a frame of the sequence would be "
        "written under its name; move it or choose another output folder")
    assert (tmp_path / "out" / "frame_3.png").is_dir()


def test_a_killed_run_s_staging_folder_is_removed_and_a_live_one_kept(tmp_path, random_restorer,
                                                                      caplog):
    from refdeblur_video.safe_output import try_lock

    write_sequence(tmp_path / "frames", n_frames=5, blurry=())
    out = tmp_path / "out"
    stale, live, kept = (out / f".refdeblur-{n}-x.part" for n in (11, 12, 13))
    for folder in (stale, live, kept):
        folder.mkdir(parents=True)
        (folder / "frame_1.png").write_bytes(b"half")
        (folder / ".lock").touch()
    (kept / "replaced").mkdir()  # a run killed while it moved its frames in
    (kept / "replaced" / "frame_2.png").write_bytes(b"the user's earlier frame")
    held = try_lock(live / ".lock")  # a run still making its frames
    try:
        with caplog.at_level("WARNING", logger="refdeblur_video"):
            deblur_sequence(tmp_path / "frames", out, random_restorer, quiet=True)
    finally:
        os.close(held)
    assert not stale.exists() and live.exists()
    assert (kept / "replaced" / "frame_2.png").read_bytes() == b"the user's earlier frame"
    assert f"{kept / 'replaced'} holds files a stopped run had taken out" in caplog.text


def test_names_that_differ_only_in_case_are_refused(tmp_path, capsys):
    paths = write_sequence(tmp_path / "frames", n_frames=3, blurry=())
    paths[1].rename(tmp_path / "frames" / "FRAME_1.png")
    assert cli_main([str(tmp_path / "frames"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "differ only in case" in err, err
    assert "FRAME_1.png" in err and "frame_1.png" in err
    assert not (tmp_path / "out").exists()


def test_copies_and_restored_frames_keep_their_times(tmp_path, random_restorer, network_sharpens):
    frames = write_sequence(tmp_path / "frames", n_frames=8)
    for index, path in enumerate(frames):  # a burst: a second apart
        os.utime(path, (1_600_000_000 + index, 1_600_000_000 + index))
    deblur_sequence(tmp_path / "frames", tmp_path / "out", random_restorer, quiet=True)
    for path in frames:
        assert (tmp_path / "out" / path.name).stat().st_mtime == path.stat().st_mtime


def test_the_plan_names_a_sequence_s_files(tmp_path):
    write_sequence(tmp_path / "frames")
    [plan] = deblur(tmp_path / "frames", dry_run=True, quiet=True)
    assert plan.closing_line().startswith(
        f"{tmp_path / 'frames'}: 12 frames, 2 would be restored (files frame_4.png, "
        "frame_8.png); planned in")
    assert plan.closing_line().endswith("nothing written")


def test_a_number_like_character_in_a_name_sorts_without_error():
    from refdeblur_video.image_files import natural_key

    names = ["f10.png", "f1²2.png", "f2.png"]
    assert sorted(names, key=natural_key) == ["f1²2.png", "f2.png", "f10.png"]


def interrupted_once_a_frame_is_made(args: list[str], cwd: Path, outdir: Path) -> str:
    """Run the command ``args`` in ``cwd``, Ctrl-C it once its first frame is made in
    ``outdir``'s hidden folder, and return what it said (it must exit 130)."""
    run = subprocess.Popen([sys.executable, "-m", "refdeblur_video.cli", *args], cwd=cwd,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 60
    while run.poll() is None and time.monotonic() < end and not any(
            p.is_dir() and any(p.iterdir()) for p in outdir.glob(".refdeblur-*")):
        time.sleep(0.05)
    assert run.poll() is None, "the run ended before the signal"
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130, (run.returncode, err)
    return err.strip()


def test_a_signal_mid_sequence_ends_in_one_line_with_nothing_written(tmp_path):
    write_sequence(tmp_path / "frames", n_frames=24, size=(640, 384), blurry={3, 9})
    said = interrupted_once_a_frame_is_made(
        ["frames", "out", "--all-frames", "--batch", "8", "-q"], tmp_path, tmp_path / "out")
    assert said == "interrupted: no frame of the sequence was written (out is as it was)"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_a_jpeg_s_size_from_its_header_is_its_size_as_shown(tmp_path, orientation):
    from PIL import Image

    from refdeblur_video.image_files import header_size

    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "f.jpg"
    Image.fromarray(np.zeros((30, 50, 3), np.uint8)).save(path, exif=exif.tobytes())
    shown = cv2.imread(str(path))  # OpenCV decodes and turns it by its EXIF
    assert header_size(path) == (shown.shape[1], shown.shape[0])
    (tmp_path / "f.bmp").write_bytes(cv2.imencode(".bmp", shown)[1].tobytes())
    assert header_size(tmp_path / "f.bmp") is None  # no header read: found when decoded


def test_videos_in_a_subfolder_of_a_sequence_are_named_as_left_alone(tmp_path, random_restorer,
                                                                     make_test_clip, caplog):
    write_sequence(tmp_path / "holiday", n_frames=4, blurry=())
    (tmp_path / "holiday" / "clips").mkdir()
    make_test_clip("holiday/clips/a.mp4", n_frames=3)
    with caplog.at_level("WARNING", logger="refdeblur_video"):
        summary = deblur_sequence(tmp_path / "holiday", tmp_path / "out", random_restorer,
                                  quiet=True)
    assert summary.frames == 4
    assert (f"{tmp_path / 'holiday'}: its images are restored as one image sequence; the "
            "videos in clips are left alone (give that folder as its own run)") in caplog.text

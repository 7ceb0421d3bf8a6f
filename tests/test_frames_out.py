"""A video written as numbered images (``in.mp4 'frames/%06d.png'``): every frame as an
image, untouched ones as decoded, upright, 16-bit where the video has more than 8 bits;
refusals in one line; nothing written unless every frame is."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from test_sequence import interrupted_once_a_frame_is_made

from refdeblur_video.cli import main as cli_main
from refdeblur_video.pipeline import deblur
from refdeblur_video.pipeline.framelog import read_frame_log
from refdeblur_video.pipeline.frames_out import deblur_video_to_frames
from refdeblur_video.video.reader import open_reader

BLURRY = {3, 7}


@pytest.fixture()
def network_sharpens(monkeypatch):
    """Every restored frame counts as sharper than it came, so it is written as made."""
    monkeypatch.setattr("refdeblur_video.pipeline.into_folder.sharpened", lambda *args: True)


def decoded(path: Path) -> list[np.ndarray]:
    """The video's frames as the tool decodes them (coded orientation, RGB)."""
    with open_reader(path) as reader:
        return [frame.image for frame in reader]


def read_rgb(path: Path) -> np.ndarray:
    """An image file as RGB, in its stored bit depth (OpenCV, not the tool's reader)."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return image[..., ::-1]


def test_every_frame_is_written_untouched_ones_as_decoded(tmp_path, make_test_clip, random_restorer,
                                                         network_sharpens):
    clip = make_test_clip("in.mp4", blurry=BLURRY)
    summary = deblur_video_to_frames(clip.path, tmp_path / "frames" / "f_%04d.png", random_restorer,
                                     quiet=True, log=str(tmp_path / "log.csv"))
    names = [f"f_{index:04d}.png" for index in range(12)]
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == names  # none hidden left
    assert (summary.frames, summary.restored) == (12, len(BLURRY))
    assert summary.closing_line().startswith(
        f"{tmp_path / 'frames' / 'f_0000.png'} to f_0011.png (25 fps): 12 frames, 2 restored")
    for index, (name, frame) in enumerate(zip(names, decoded(clip.path), strict=True)):
        image = read_rgb(tmp_path / "frames" / name)
        assert image.dtype == np.uint8 and image.shape == frame.shape
        assert np.array_equal(image, frame) == (index not in BLURRY), index
    rows = read_frame_log(tmp_path / "log.csv")
    assert sorted(i for i, row in rows.items() if row.restored) == sorted(BLURRY)
    assert (tmp_path / "log.csv").read_text().splitlines()[4].endswith(",f_0003.png")


def test_a_turned_video_s_frames_are_written_upright(tmp_path, make_test_clip, random_restorer):
    clip = make_test_clip("phone.mp4", n_frames=6, rotation=90)  # shown a quarter turn left
    deblur_video_to_frames(clip.path, tmp_path / "%d.png", random_restorer, quiet=True)
    image = read_rgb(tmp_path / "0.png")
    coded = decoded(clip.path)[0]
    assert image.shape == (96, 64, 3)  # coded 96x64, shown 64 wide
    assert np.array_equal(image, np.rot90(coded, 1))
    # the scene's green rises from the coded top to its bottom: turned left, the top row
    # is the left column
    assert image[:, :8, 1].mean() < image[:, -8:, 1].mean() - 50


def test_more_than_8_bits_are_kept_in_16_bit_png_and_rounded_in_jpeg(tmp_path, make_test_clip,
                                                                     random_restorer, caplog):
    clip = make_test_clip("deep.mkv", n_frames=6, codec="ffv1", pix_fmt="yuv444p10le")
    frames = decoded(clip.path)
    assert frames[0].dtype == np.uint16
    deblur_video_to_frames(clip.path, tmp_path / "png" / "%03d.png", random_restorer, quiet=True)
    assert np.array_equal(read_rgb(tmp_path / "png" / "002.png"), frames[2])
    with caplog.at_level("WARNING", logger="refdeblur_video"):
        deblur_video_to_frames(clip.path, tmp_path / "jpg" / "%03d.jpg", random_restorer,
                               quiet=True, quality=100)
    assert ".jpg holds 8 bits a sample: the video's 10-bit samples are rounded" in caplog.text
    jpeg = read_rgb(tmp_path / "jpg" / "002.jpg")
    assert jpeg.dtype == np.uint8
    # JPEG halves the colours' resolution: compared on 8x8 blocks' means
    blocks = [cv2.resize(image.astype(np.float32), (12, 8), interpolation=cv2.INTER_AREA)
              for image in (jpeg, frames[2] / 257.0)]
    assert np.abs(blocks[0] - blocks[1]).mean() < 2


def test_the_sound_is_said_not_to_be_written(tmp_path, make_test_clip, random_restorer, caplog):
    clip = make_test_clip("talk.mp4", n_frames=6, audio=True)
    with caplog.at_level("WARNING", logger="refdeblur_video"):
        deblur_video_to_frames(clip.path, tmp_path / "%06d.png", random_restorer, quiet=True)
    assert "the sound is not written" in caplog.text


def test_names_already_there_are_refused_then_replaced_and_later_ones_named(
        tmp_path, make_test_clip, random_restorer, caplog, capsys):
    long_clip = make_test_clip("long.mp4", n_frames=10)
    short_clip = make_test_clip("short.mp4", n_frames=6)
    pattern = str(tmp_path / "frames" / "%06d.png")
    deblur_video_to_frames(long_clip.path, pattern, random_restorer, quiet=True)
    before = (tmp_path / "frames" / "000002.png").read_bytes()
    assert cli_main([str(short_clip.path), pattern, "-q"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {tmp_path / 'frames'} already holds 10 images named as %06d.png "
        "(000000.png, ...); --overwrite replaces them")
    assert (tmp_path / "frames" / "000002.png").read_bytes() == before
    with caplog.at_level("WARNING", logger="refdeblur_video"):
        deblur_video_to_frames(short_clip.path, pattern, random_restorer, quiet=True,
                               overwrite=True)
    assert np.array_equal(read_rgb(tmp_path / "frames" / "000002.png"),
                          decoded(short_clip.path)[2])
    assert "still holds 4 earlier image(s) named as %06d.png after this video's last frame " \
           "(000006.png, ...)" in caplog.text


def test_names_follow_ffmpeg_s_patterns_and_only_those_they_make_are_taken(tmp_path):
    from refdeblur_video.pipeline.numbered_images import existing_frames, frame_names

    assert frame_names("f/%d.png", 2) == ["0.png", "1.png"]
    assert frame_names("f/%5d.png", 1) == ["00000.png"]  # FFmpeg pads %5d with zeros too
    assert frame_names("f/100%%_%03d.tif", 1) == ["100%_000.tif"]
    (tmp_path / "f").mkdir()
    for name in ("0.png", "12.png", "000012.png", "1234567.png", "0012345.png", "x000001.png"):
        (tmp_path / "f" / name).touch()
    assert [p.name for p in existing_frames(tmp_path / "f" / "%06d.png")] == [
        "000012.png", "1234567.png"]
    assert [p.name for p in existing_frames(tmp_path / "f" / "%d.png")] == [
        "0.png", "12.png", "1234567.png"]


def test_what_images_cannot_hold_is_said(tmp_path, make_test_clip, random_restorer, caplog):
    clip = make_test_clip("vfr.mkv", n_frames=8, vfr=True)
    with caplog.at_level("WARNING", logger="refdeblur_video"):
        summary = deblur_video_to_frames(clip.path, tmp_path / "%d.jpg", random_restorer,
                                         quiet=True, quality=90)
    assert "the video's frames are not evenly timed" in caplog.text
    assert "fps" not in summary.closing_line()
    caplog.clear()
    clip = make_test_clip("alpha.mov", n_frames=4, codec="png", pix_fmt="rgba")
    with caplog.at_level("WARNING", logger="refdeblur_video"):
        deblur_video_to_frames(clip.path, tmp_path / "a" / "%d.jpg", random_restorer,
                               quiet=True)
        deblur_video_to_frames(clip.path, tmp_path / "b" / "%d.png", random_restorer,
                               quiet=True, quality=90)
    assert caplog.text.count("holds no transparency") == 1
    assert "--quality does nothing for .png" in caplog.text


@pytest.mark.parametrize(("output", "says"), [
    ("frames/%06d.mp4", "numbered images are written as .png"),
    ("frames/%06d/%06d.png", "the frame number goes in the file name"),
    ("a" * 300 + "/%d.png", "a file name is too long for its disk"),
    ("frames/%d_%d.png", "numbered images take one frame number in their name"),
    ("frames/%s.png", "numbered images take one frame number in their name"),
    ("in.mp4/%04d.png", "in.mp4 is a file: numbered images are written into a folder"),
])
def test_a_wrong_pattern_is_one_line(tmp_path, make_test_clip, output, says, capsys,
                                     monkeypatch):
    make_test_clip("in.mp4", n_frames=4)
    monkeypatch.chdir(tmp_path)
    assert cli_main(["in.mp4", output]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_only_a_video_is_written_as_numbered_images(tmp_path, make_test_clip, capsys,
                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stills").mkdir()
    for index in range(3):
        cv2.imwrite(str(tmp_path / "stills" / f"{index}.png"), np.zeros((8, 8, 3), np.uint8))
    assert cli_main(["stills", "out/%04d.png"]) == 2
    assert "an image sequence is written under its own file names" in capsys.readouterr().err
    assert cli_main(["stills/0.png", "out/%04d.png"]) == 2
    assert "is a photo: it is restored into one image" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_plan_names_the_images_a_run_would_write(tmp_path, make_test_clip):
    clip = make_test_clip("in.mp4", blurry=BLURRY)
    [plan] = deblur(clip.path, tmp_path / "out" / "%03d.png", dry_run=True, quiet=True)
    assert "2 would be restored (files 003.png, 007.png)" in plan.closing_line()
    assert plan.closing_line().endswith("nothing written")
    assert not (tmp_path / "out").exists()


def test_a_signal_mid_run_ends_in_one_line_with_nothing_written(tmp_path, make_test_clip):
    make_test_clip("in.mp4", n_frames=24, size=(640, 384), blurry={3, 9})
    said = interrupted_once_a_frame_is_made(
        ["in.mp4", "out/%04d.png", "--all-frames", "--batch", "8", "-q"], tmp_path,
        tmp_path / "out")
    assert said == "interrupted: no frame was written (out is as it was)"
    assert not (tmp_path / "out").exists()


def test_a_photo_may_be_named_with_a_percent_sign(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("blurry.png", "sharp.png"):
        cv2.imwrite(name, np.full((64, 96, 3), 128, np.uint8))
    assert cli_main(["blurry.png", "sharp 50%.png", "--ref", "sharp.png", "-q"]) == 0
    assert (tmp_path / "sharp 50%.png").is_file()


@pytest.mark.parametrize("many", ["vids", "vids/*.mp4"])
def test_many_videos_into_numbered_images_are_refused(tmp_path, make_test_clip, capsys,
                                                       monkeypatch, many):
    (tmp_path / "vids").mkdir()
    make_test_clip("vids/a.mp4", n_frames=4)
    monkeypatch.chdir(tmp_path)
    for dry in ([], ["--dry-run"]):
        assert cli_main([many, "out/%06d.png", *dry]) == 2
        assert "numbered images (%06d.png) are written from one video" in \
            capsys.readouterr().err
    assert not (tmp_path / "out").exists()

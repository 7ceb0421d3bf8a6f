"""An image sequence made into a video (``frames/ out.mp4 --fps 29.97``): its frames
restored and encoded at the rate given, tagged BT.709, resumable as a video's run is."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from test_resume import StopsAfter

from refdeblur_video.cli import main as cli_main
from refdeblur_video.errors import UserError
from refdeblur_video.pipeline import deblur, deblur_video
from refdeblur_video.pipeline.framelog import read_frame_log
from refdeblur_video.pipeline.options import sequence_rate
from refdeblur_video.pipeline.resume import state_dir
from refdeblur_video.video.reader import open_reader
from refdeblur_video.video.synthetic import render_frames

BLURRY = {3, 7}


def write_sequence(folder: Path, n_frames: int = 12, blurry=BLURRY,
                   deep: bool = False) -> list[np.ndarray]:
    """The synthetic scene's frames as ``f1.png`` ... (natural order, not sorted order);
    16-bit where ``deep``. Returns the RGB images written."""
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for index, image in enumerate(render_frames((96, 64), n_frames, blurry)):
        if deep:
            image = image.astype(np.uint16) * 257
        assert cv2.imwrite(str(folder / f"f{index + 1}.png"),
                           np.ascontiguousarray(image[..., ::-1]))
        images.append(image)
    return images


def test_a_sequence_becomes_a_video_at_the_rate_given(tmp_path, random_restorer):
    images = write_sequence(tmp_path / "frames")
    out = tmp_path / "out.mkv"
    summary = deblur_video(tmp_path / "frames", out, random_restorer, quiet=True, fps="29.97",
                           codec="ffv1", pix_fmt="yuv444p", log=str(tmp_path / "log.csv"))
    assert (summary.frames, summary.restored) == (12, len(BLURRY))
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == Fraction(30000, 1001)
        context = stream.codec_context
        # BT.709 primaries, transfer and matrix, limited range: what players assume of HD
        assert (context.color_primaries, context.color_trc, context.colorspace,
                context.color_range) == (1, 1, 1, 1)
        times = [float(frame.time) for frame in container.decode(stream)]
    assert np.allclose(times, np.arange(12) * 1001 / 30000, atol=1e-3)
    with open_reader(out) as reader:
        decoded = [frame.image for frame in reader]
    for index, (image, frame) in enumerate(zip(images, decoded, strict=True)):
        error = np.abs(image.astype(int) - frame.astype(int)).max()
        if index in BLURRY:
            assert error > 20, index  # the network's output
        else:
            assert error <= 2, index  # 8-bit RGB through 8-bit YUV 4:4:4 and back
    rows = read_frame_log(tmp_path / "log.csv")
    assert sorted(i for i, row in rows.items() if row.restored) == sorted(BLURRY)
    assert (tmp_path / "log.csv").read_text().splitlines()[11].endswith(",f11.png")


def test_sixteen_bit_images_make_a_ten_bit_video(tmp_path, random_restorer):
    write_sequence(tmp_path / "frames", n_frames=6, blurry=(), deep=True)
    deblur_video(tmp_path / "frames", tmp_path / "out.mp4", random_restorer, quiet=True)
    with av.open(str(tmp_path / "out.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.pix_fmt == "yuv420p10le"
        assert stream.average_rate == 25  # FFmpeg's rate for image sequences


def test_an_interrupted_sequence_resumes_to_the_same_video(tmp_path, random_restorer):
    write_sequence(tmp_path / "frames", n_frames=32, blurry={3, 10, 19, 27})
    options = {"quiet": True, "batch": 1, "segment_seconds": 0.32, "fps": 25}
    whole = deblur_video(tmp_path / "frames", tmp_path / "whole.mp4", random_restorer, **options)
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):  # at frame 19, in the third segment
        deblur_video(tmp_path / "frames", out, StopsAfter(random_restorer, 3), **options)
    assert not out.exists() and (state_dir(out) / "000001.json").exists()
    summary = deblur_video(tmp_path / "frames", out, random_restorer, resume=True, **options)
    assert summary.resumed == 16 and summary.restored == whole.restored
    with open_reader(out) as a, open_reader(tmp_path / "whole.mp4") as b:
        for x, y in zip(a, b, strict=True):
            assert x.pts == y.pts and np.array_equal(x.image, y.image)


def test_a_changed_sequence_is_not_resumed_from(tmp_path, random_restorer):
    write_sequence(tmp_path / "frames", n_frames=32, blurry={3, 10, 19, 27})
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        deblur_video(tmp_path / "frames", out, StopsAfter(random_restorer, 3), quiet=True, batch=1,
                     segment_seconds=0.32)
    cv2.imwrite(str(tmp_path / "frames" / "f2.png"), np.zeros((64, 96, 3), np.uint8))
    with pytest.raises(UserError, match="was made with another input"):
        deblur_video(tmp_path / "frames", out, random_restorer, quiet=True, batch=1,
                     segment_seconds=0.32, resume=True)
    assert not out.exists()


@pytest.mark.parametrize(("text", "rate"), [("25", Fraction(25)), ("29.97", Fraction(30000, 1001)),
                                            ("23.976", Fraction(24000, 1001)),
                                            ("30000/1001", Fraction(30000, 1001)),
                                            ("12.5", Fraction(25, 2)), (50, Fraction(50))])
def test_frame_rates_are_read_as_written_and_ntsc_names_as_ntsc(text, rate):
    assert sequence_rate(text) == rate


def test_transparency_is_kept_where_the_pixel_format_holds_it(tmp_path, random_restorer,
                                                              caplog):
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, image in enumerate(render_frames((96, 64), 4, ())):
        alpha = np.full((64, 96, 1), 200, np.uint8)
        alpha[:8, :8] = 0
        cv2.imwrite(str(folder / f"{index}.png"), np.dstack((image[..., ::-1], alpha)))
    deblur_video(folder, tmp_path / "kept.mkv", random_restorer, quiet=True, codec="ffv1",
                 pix_fmt="yuva444p")
    with av.open(str(tmp_path / "kept.mkv")) as container:
        frame = next(container.decode(video=0))
        alpha = frame.to_ndarray(format="rgba")[..., 3]
    assert frame.format.name == "yuva444p" and alpha[0, 0] == 0 and alpha[30, 30] == 200
    with caplog.at_level("WARNING", logger="refdeblur_video"):
        deblur_video(folder, tmp_path / "opaque.mp4", random_restorer, quiet=True)
    assert "transparency (alpha, yuva420p) is not kept" in caplog.text


def test_a_rate_s_names_are_one_rate(tmp_path, random_restorer):
    from refdeblur_video.pipeline.options import DeblurOptions

    assert DeblurOptions(fps=Fraction(30000, 1001)).fps == DeblurOptions(fps="29.97").fps
    write_sequence(tmp_path / "frames", n_frames=4, blurry=())
    deblur_video(tmp_path / "frames", tmp_path / "out.mp4", random_restorer, quiet=True,
                 fps=Fraction(24000, 1001))
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert container.streams.video[0].average_rate == Fraction(24000, 1001)


def test_the_plan_of_a_sequence_made_into_a_video_times_its_frames(tmp_path, make_test_clip,
                                                                   caplog):
    write_sequence(tmp_path / "frames")
    [plan] = deblur(tmp_path / "frames", tmp_path / "out.mp4", dry_run=True, quiet=True,
                    fps=50, log=str(tmp_path / "plan.csv"))
    assert plan.closing_line().endswith("no video written (it would be 50 fps)")
    assert read_frame_log(tmp_path / "plan.csv")[3].time_s == pytest.approx(0.06)
    clip = make_test_clip("in.mp4", n_frames=4)
    with caplog.at_level("WARNING", logger="refdeblur_video"):
        deblur(clip.path, dry_run=True, quiet=True, fps=50)
    assert "--fps does nothing here" in caplog.text


@pytest.mark.parametrize(("args", "says"), [
    (["frames", "out.mp4", "--fps", "0"], "--fps must be a frame rate in (0, 1000]"),
    (["frames", "out.mp4", "--fps", "fast"], "--fps must be a frame rate in (0, 1000]"),
    (["frames", "out.mp4", "--adapt"], "an image sequence is not adapted to yet"),
    (["frames", "frames/out.mp4"], "would be written into the image sequence's own folder"),
    (["frames", "out/%04d.png"], "an image sequence is written under its own file names"),
    (["frames", "out/%04d"], "an image sequence is written under its own file names"),
])
def test_what_a_sequence_made_into_a_video_refuses_is_one_line(tmp_path, monkeypatch, capsys,
                                                               args, says):
    write_sequence(tmp_path / "frames", n_frames=4)
    monkeypatch.chdir(tmp_path)
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and says in err, err
    assert cli_main([*args, "--dry-run"]) == 2  # the plan refuses what the run does
    assert capsys.readouterr().err == err
    assert not (tmp_path / "out.mp4").exists()
    assert not (tmp_path / "frames" / "out.mp4").exists()


def test_fps_for_a_video_is_said_to_do_nothing(make_test_clip, tmp_path, caplog):
    clip = make_test_clip("in.mp4", n_frames=4)
    with caplog.at_level("WARNING", logger="refdeblur_video"):
        [summary] = deblur(clip.path, tmp_path / "out.mp4", quiet=True, fps=30)
    assert "--fps does nothing here" in caplog.text and summary.frames == 4


def test_the_plan_of_a_sequence_made_into_a_video_checks_its_encoder(tmp_path):
    write_sequence(tmp_path / "frames")
    [plan] = deblur(tmp_path / "frames", tmp_path / "out.mp4", dry_run=True, quiet=True)
    assert "12 frames, 2 would be restored (files f4.png, f8.png)" in plan.closing_line()
    with pytest.raises(UserError, match="unknown video encoder"):
        deblur(tmp_path / "frames", tmp_path / "out.mp4", dry_run=True, quiet=True,
               codec="libnothing")
    assert not (tmp_path / "out.mp4").exists()


def test_a_name_ending_in_a_slash_is_a_folder_whatever_its_suffix(tmp_path, random_restorer):
    write_sequence(tmp_path / "frames", n_frames=4, blurry=())
    deblur(tmp_path / "frames", f"{tmp_path / 'out.mp4'}/", quiet=True, model="default")
    assert sorted(p.name for p in (tmp_path / "out.mp4").iterdir()) == [
        "f1.png", "f2.png", "f3.png", "f4.png"]
    with pytest.raises(UserError, match="names a video"):  # the images' entry point
        from refdeblur_video.pipeline.sequence import deblur_sequence

        deblur_sequence(tmp_path / "frames", tmp_path / "b.mp4", random_restorer, quiet=True)


def test_an_interrupted_sequence_into_a_video_says_what_is_kept():
    from refdeblur_video.pipeline.resume import interrupted_line

    assert interrupted_line("out.mp4", None, "frames") == (
        "interrupted: no output was written")


def test_one_image_made_into_a_video_is_pointed_to_the_photo_command(tmp_path,
                                                                    random_restorer, caplog):
    write_sequence(tmp_path / "one", n_frames=1, blurry=())
    with caplog.at_level("WARNING", logger="refdeblur_video"):
        summary = deblur_video(tmp_path / "one", tmp_path / "one.mp4", random_restorer,
                               quiet=True)
    assert summary.frames == 1 and "holds one image: with no neighbours" in caplog.text


def test_an_mjpeg_video_is_coded_with_the_matrix_its_decoders_read(tmp_path, random_restorer):
    # FFmpeg's MJPEG decoder reads every frame as JFIF says, BT.601, whatever the stream's
    # tag: coded with the sequence's BT.709 its colours came back off by 4.4 levels
    images = write_sequence(tmp_path / "frames", n_frames=6, blurry=())
    out = tmp_path / "out.mkv"
    deblur_video(tmp_path / "frames", out, random_restorer, quiet=True, codec="mjpeg")
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.colorspace == 5
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    errors = [np.abs(cv2.blur(a.astype(float), (4, 4)) - cv2.blur(b.astype(float), (4, 4)))
              .mean() for a, b in zip(images, decoded, strict=True)]
    assert max(errors) < 2.5, errors


def test_transparency_after_an_opaque_first_image_is_kept(tmp_path, random_restorer):
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, image in enumerate(render_frames((96, 64), 3, ())):
        bgr = image[..., ::-1]
        alpha = np.full((64, 96, 1), 100, np.uint8)
        cv2.imwrite(str(folder / f"{index}.png"),
                    np.ascontiguousarray(bgr) if index == 0 else np.dstack((bgr, alpha)))
    deblur_video(folder, tmp_path / "out.mkv", random_restorer, quiet=True, codec="ffv1",
                 pix_fmt="yuva444p")
    with av.open(str(tmp_path / "out.mkv")) as container:
        alphas = [frame.to_ndarray(format="rgba")[..., 3] for frame in container.decode(video=0)]
    assert [int(a.mean()) for a in alphas] == [255, 100, 100]

"""A reference exposed otherwise than its photo: the gain that matches it, and the photo
restored with it keeps its own levels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from refdeblur_video.data.shake import from_linear, to_linear
from refdeblur_video.refine.exposure import exposure_gains, matched_exposure
from refdeblur_video.video.synthetic import make_image


def _photo() -> np.ndarray:
    """A real photograph (scikit-image's cat), larger than the scenes cut from it."""
    from skimage import data

    return data.chelsea()


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """A sharp 320x240 photo of a scene and its motion-blurred copy (11 px, horizontal,
    averaged in light as a camera's exposure averages it)."""
    sharp = _photo()[:240, :320].copy()
    kernel = np.full((1, 11), 1 / 11, np.float32)
    light = cv2.filter2D(to_linear(sharp), -1, kernel, borderType=cv2.BORDER_REFLECT)
    return sharp, from_linear(light)


def _exposed(gains, shift=(3, 2)) -> np.ndarray:
    """The scene shot again from ``shift`` px away with ``gains`` times the light."""
    y, x = shift
    light = to_linear(_photo()[y:y + 240, x:x + 320]) * np.asarray(gains, np.float32)
    return from_linear(np.clip(light, 0.0, 1.0))


@pytest.mark.parametrize("gains", [(1.05, 1.05, 1.05), (0.9, 0.9, 0.9), (1.06, 1.0, 0.94)])
def test_the_gain_undoes_another_exposure_or_white_balance(gains):
    _, blurry = _scene()
    reference = _exposed(gains)
    found = exposure_gains(blurry, reference)
    assert found == pytest.approx(1 / np.asarray(gains), abs=0.006)
    matched, applied = matched_exposure(blurry, reference)
    assert applied is not None and matched.dtype == np.uint8
    # the matched reference is the second shot as if exposed alike (its light, not its
    # coded values, is what blur keeps: the blurry photo's coded means read brighter)
    alike = _exposed((1.0, 1.0, 1.0)).astype(np.float64)
    assert np.abs(matched.mean((0, 1)) - alike.mean((0, 1))).max() < 0.5
    assert np.abs(matched - alike).mean() < 1.0


def test_a_reference_exposed_alike_or_of_another_scene_is_left_as_it_is():
    _, blurry = _scene()
    alike = _exposed((1.0, 1.0, 1.0))
    matched, applied = matched_exposure(blurry, alike)
    assert applied is None and matched is alike
    other = make_image(size=(320, 240), index=7)  # another scene: no homography places it
    assert matched_exposure(blurry, other)[1] is None
    # 16-bit samples keep their type and scale
    brighter = from_linear(np.clip(to_linear(alike) * 1.08, 0, 1), np.uint16)
    matched, applied = matched_exposure(blurry.astype(np.uint16) * 257, brighter)
    assert matched.dtype == np.uint16 and applied == pytest.approx(1 / 1.08, abs=0.006)


def test_a_photo_restored_with_a_brighter_reference_keeps_its_own_levels(tmp_path, caplog):
    from refdeblur_video.image_files import read_image, write_image
    from refdeblur_video.pipeline import deblur_image

    sharp, blurry = _scene()
    write_image(tmp_path / "blurry.png", blurry)
    write_image(tmp_path / "ref.png", _exposed((1.08, 1.08, 1.08)))
    with caplog.at_level("WARNING"):
        deblur_image(tmp_path / "blurry.png", tmp_path / "out.png", model="lite", quiet=True,
                     ref=str(tmp_path / "ref.png"))
    said = [r.getMessage() for r in caplog.records]
    assert ("the reference is exposed otherwise than the photo (8 % brighter): matched to "
            "the photo before its detail is borrowed") in said
    out = read_image(tmp_path / "out.png").astype(np.float64)
    # the scene's own levels (5 levels up before)
    assert np.abs(out.mean((0, 1)) - sharp.mean((0, 1))).max() < 1.0


def test_a_video_s_brighter_ref_is_matched_to_each_frame_it_lends_to(tmp_path, caplog):
    """A still taken apart from the video, brighter: its levels stay out of the frames."""
    import av

    from refdeblur_video.image_files import write_image
    from refdeblur_video.pipeline import deblur_video
    from refdeblur_video.video.reader import open_reader

    photo = _photo()
    frames = [photo[k:k + 240, k:k + 320] for k in range(6)]  # a slow pan
    light = cv2.filter2D(to_linear(frames[3]), -1, np.full((1, 11), 1 / 11, np.float32),
                         borderType=cv2.BORDER_REFLECT)
    frames[3] = from_linear(light)  # one blurry frame
    with av.open(str(tmp_path / "pan.mkv"), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "bgr0"
        for image in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image[..., ::-1].copy(),
                                                             format="bgr24")))
        out.mux(stream.encode())
    write_image(tmp_path / "still.png", from_linear(np.clip(
        to_linear(photo[3:243, 3:323]) * 1.1, 0, 1)))
    with caplog.at_level("WARNING", logger="refdeblur_video"):
        deblur_video(tmp_path / "pan.mkv", tmp_path / "out.mkv", model="lite", quiet=True,
                     codec="ffv1", all_frames=False, ref=str(tmp_path / "still.png"))
    assert "the reference is exposed otherwise than frame 3 (10 % brighter)" in caplog.text
    with open_reader(tmp_path / "out.mkv") as reader:
        restored = [f.image for f in reader][3].astype(np.float64)
    sharp = photo[3:243, 3:323].astype(np.float64)
    assert np.abs(restored.mean((0, 1)) - sharp.mean((0, 1))).max() < 1.5

"""A reference clearly noisier than its frame is not transferred from (refine/noise.py)."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch
from test_transfer import _scene

from refdeblur_video.evaluate.metrics import psnr
from refdeblur_video.image_files import from_float
from refdeblur_video.model import DeviceOutput
from refdeblur_video.refine import DEFAULT_TRANSFER, Refiner
from refdeblur_video.refine.noise import noise_level

H, W = 192, 256
UNCHECKED = replace(DEFAULT_TRANSFER, noise_allowance=0.0)


@pytest.fixture(scope="module")
def scene() -> dict[str, np.ndarray]:
    big = _scene(3, (H + 16, W + 16))
    sharp, reference = big[8:8 + H, 8:8 + W], big[5:5 + H, 11:11 + W]  # moved by (3, -3)
    noise = np.random.default_rng(4).normal(0, 0.06, reference.shape).astype(np.float32)
    soft = cv2.GaussianBlur(sharp, (0, 0), 1.5)
    return {"sharp": from_float(sharp, np.uint8), "soft": soft,
            "blurry": from_float(soft, np.uint8),
            "reference": from_float(reference, np.uint8),
            "noisy": from_float(reference + noise, np.uint8),
            "noisy_frame": from_float(soft + noise[::-1], np.uint8)}


@pytest.mark.parametrize("std", [0.0, 0.02, 0.05])
def test_the_noise_level_reads_the_noise_added_to_a_textured_image(std):
    image = _scene(0, (288, 384))
    noise = np.random.default_rng(1).normal(0, std, image.shape).astype(np.float32)
    found = noise_level(np.clip(image + noise, 0, 1))
    if std == 0:  # texture and hard edges are not noise
        assert found < DEFAULT_TRANSFER.noise_allowance / 5
    else:  # the std of the luma's noise (the mean of three channels'), measured
        assert found == pytest.approx(float(noise.mean(axis=2).std()), rel=0.2)
    assert noise_level(np.zeros((288, 384, 3), np.float32)) == 0.0  # saturated: no estimate


def test_fine_texture_is_not_taken_for_noise_on_a_sharp_image():
    from refdeblur_video.image_files import to_float
    from refdeblur_video.refine.noise import texture_free_noise_level
    from refdeblur_video.video.synthetic import render_frame

    blocks = to_float(render_frame(1, (384, 288)))  # 2x2-pixel random blocks everywhere
    scene = _scene(0, (288, 384))
    allowance = DEFAULT_TRANSFER.noise_allowance
    assert noise_level(blocks) > allowance  # every block is textured: the flattest too
    assert texture_free_noise_level(blocks) < allowance / 5
    assert texture_free_noise_level(scene) < allowance / 5
    noise = np.random.default_rng(2).normal(0, 0.05, scene.shape).astype(np.float32)
    assert texture_free_noise_level(np.clip(scene + noise, 0, 1)) == pytest.approx(
        float(noise.mean(axis=2).std()), rel=0.2)


def test_a_noisy_reference_of_the_right_scene_is_not_transferred_from(scene, caplog):
    sharp, soft, blurry, noisy = (scene[k] for k in ("sharp", "soft", "blurry", "noisy"))
    raw = Refiner(UNCHECKED, foreign=noisy)(soft, blurry, noisy)
    assert psnr(raw, sharp) < psnr(blurry, sharp) - 2  # the noise copied in: worse than none
    # a neighbour in the video is not checked: its noise is the frame's own
    assert np.array_equal(Refiner()(soft, blurry, noisy), raw)
    refiner = Refiner(foreign=noisy)
    with caplog.at_level("WARNING", logger="refdeblur_video"):
        kept = [refiner(soft, blurry, noisy) for _ in range(2)]
    network_alone = from_float(soft, np.uint8)  # what the network gave, rounded
    assert all(np.array_equal(image, network_alone) for image in kept)
    assert not refiner.takes_second(blurry, noisy, scene["reference"])
    said = [r.getMessage() for r in caplog.records if "noisier" in r.getMessage()]
    assert len(said) == 1 and "not copied in" in said[0]  # once, however many frames
    # the clean reference of the same scene lends its detail
    clean = scene["reference"]
    assert psnr(Refiner(foreign=clean)(soft, blurry, clean), sharp) > psnr(blurry, sharp) + 5


def test_a_reference_no_noisier_than_its_frame_is_left_as_it_is(scene):
    soft = scene["soft"]
    for frame, reference in ((scene["blurry"], scene["reference"]),  # both clean
                             (scene["noisy_frame"], scene["noisy"])):  # both as noisy
        assert np.array_equal(Refiner(foreign=reference)(soft, frame, reference),
                              Refiner(UNCHECKED, foreign=reference)(soft, frame, reference))


def test_the_device_path_leaves_a_noisy_reference_out_as_the_array_path_does(scene):
    def on_device(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()

    soft, blurry, noisy = (scene[k] for k in ("soft", "blurry", "noisy"))
    output = DeviceOutput(on_device(soft), on_device(noisy) / 255)
    there = Refiner(foreign=noisy)(output, blurry, noisy)
    assert np.array_equal(there, Refiner(foreign=noisy)(soft, blurry, noisy))
    assert np.array_equal(there, from_float(soft, np.uint8))  # nothing transferred
    assert not np.array_equal(there, Refiner(UNCHECKED, foreign=noisy)(output, blurry, noisy))


def test_the_command_copies_no_detail_from_a_noisy_ref_photo(tmp_path, scene, caplog):
    """As a user runs it: a photo with a high-ISO still of its scene as ``--ref`` comes out
    as with ``--no-transfer``, and the command says why."""
    from refdeblur_video.cli import main

    blurry, noisy = tmp_path / "blurry.png", tmp_path / "noisy.png"
    cv2.imwrite(str(blurry), scene["blurry"][..., ::-1])
    cv2.imwrite(str(noisy), scene["noisy"][..., ::-1])
    with caplog.at_level("WARNING", logger="refdeblur_video"):
        assert main([str(blurry), str(tmp_path / "out.png"), "--ref", str(noisy), "-q"]) == 0
    assert "much noisier than the frame" in caplog.text
    assert main([str(blurry), str(tmp_path / "alone.png"), "--ref", str(noisy), "-q",
                 "--no-transfer"]) == 0
    out, alone = (cv2.imread(str(tmp_path / name)) for name in ("out.png", "alone.png"))
    assert np.array_equal(out, alone)
    clean = tmp_path / "clean.png"  # the same scene, clean: its detail is copied in
    cv2.imwrite(str(clean), scene["reference"][..., ::-1])
    assert main([str(blurry), str(tmp_path / "clean_out.png"), "--ref", str(clean), "-q"]) == 0
    assert not np.array_equal(cv2.imread(str(tmp_path / "clean_out.png")), alone)


def _pan_clip(path, n_frames: int, blurry: set[int]) -> list[np.ndarray]:
    """A lossless clip panning 3 px a frame over a smooth textured scene (whose noise reads
    as it is, unlike the 2x2 blocks of the synthetic clips), motion-blurred at ``blurry``;
    its frames as RGB uint8."""
    import av

    big = from_float(_scene(7, (H + 16, W + 3 * n_frames + 16)), np.uint8)
    frames = []
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "bgr0"
        for i in range(n_frames):
            frame = np.ascontiguousarray(big[8:8 + H, 8 + 3 * i:8 + 3 * i + W])
            if i in blurry:
                frame = cv2.blur(frame, (15, 1))
            frames.append(frame)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return frames


def test_a_video_with_a_noisy_ref_is_restored_as_without_it(tmp_path, caplog):
    """As a user runs it: a noisy still of the scene as ``--ref`` would lend less than the
    video's own sharp frames; the output is the one without ``--ref``, and it says why."""
    from refdeblur_video.cli import main
    from refdeblur_video.video.reader import open_reader

    frames = _pan_clip(tmp_path / "in.mkv", 8, {2, 5})
    still = frames[1] + np.random.default_rng(5).normal(0, 15, frames[1].shape)
    cv2.imwrite(str(tmp_path / "still.png"), np.clip(still, 0, 255).astype(np.uint8)[..., ::-1])
    common = ["--codec", "ffv1", "--pix-fmt", "bgr0", "-q"]
    with caplog.at_level("WARNING", logger="refdeblur_video"):
        assert main([str(tmp_path / "in.mkv"), str(tmp_path / "with.mkv"), "--ref",
                     str(tmp_path / "still.png"), *common]) == 0
    assert "--ref image is much noisier than the video" in caplog.text
    assert "in 2 of 2 restored frames: they were restored as without --ref" in caplog.text
    assert "reference check" not in caplog.text
    assert main([str(tmp_path / "in.mkv"), str(tmp_path / "without.mkv"), *common]) == 0

    def decoded(name):
        with open_reader(tmp_path / name) as reader:
            return [frame.image for frame in reader]

    assert all(np.array_equal(a, b) for a, b in zip(decoded("with.mkv"),
                                                    decoded("without.mkv"), strict=True))
    clean = tmp_path / "clean.png"  # the same still, clean: it is used (the frames change)
    cv2.imwrite(str(clean), frames[1][..., ::-1])
    assert main([str(tmp_path / "in.mkv"), str(tmp_path / "clean.mkv"), "--ref", str(clean),
                 *common]) == 0
    assert not all(np.array_equal(a, b) for a, b in zip(decoded("clean.mkv"),
                                                        decoded("without.mkv"), strict=True))


def test_the_noise_check_reads_sixteen_bit_and_float_images_alike(scene):
    from refdeblur_video.refine.noise import QuietEnough

    noisy, blurry = scene["noisy"], scene["blurry"]
    for convert in (lambda x: x, lambda x: x.astype(np.uint16) * 257,
                    lambda x: x.astype(np.float32) / 255):
        check = QuietEnough(convert(noisy), DEFAULT_TRANSFER.noise_allowance)
        assert not check(convert(blurry))  # a noisy reference for a clean frame
        assert check(convert(scene["noisy_frame"]))  # as noisy as the frame
        assert check.refused == 1
        assert check.level == pytest.approx(QuietEnough(noisy, 0.01).level, abs=1e-3)

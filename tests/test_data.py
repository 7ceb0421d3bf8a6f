"""Training-data tools: GoPro manifests, HFR averaging, blur synthesis, datasets, CLI."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from refdeblur_video.data import cli
from refdeblur_video.data.dataset import OnlineVideoTriplets, TripletDataset, finish_gpu_batch
from refdeblur_video.data.gopro import build_hfr_triplets, gopro_triplets
from refdeblur_video.data.manifest import Triplet, read_manifest, write_manifest
from refdeblur_video.data.photo_clips import load_video_frames
from refdeblur_video.data.shake import (
    CameraShake,
    average_linear,
    linear_to_srgb,
    render_path_blur,
    sample_camera_path,
    srgb_to_linear,
    synthesize_camera_blur,
    synthesize_camera_blur_torch,
    to_linear,
)
from refdeblur_video.data.triplets import build_video_triplets, choose_offset
from refdeblur_video.errors import UserError
from refdeblur_video.frames.shots import shot_ids, shot_ranges
from refdeblur_video.image_files import read_image, write_png

FIELDS = {"blur", "sharp", "ref", "sequence", "offset", "split"}
FRAME = (480, 640)  # full-frame size the synthetic blur extents refer to (crops of 480p)


def _texture(h: int, w: int, seed: int = 0, cell: int = 4) -> np.ndarray:
    """Random colour texture with fine detail (upsampled noise)."""
    rng = np.random.default_rng(seed)
    small = (rng.random((h // cell + 1, w // cell + 1, 3)) * 200 + 25).astype(np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _sharpness(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def _gopro_tree(root: Path, layout: dict[str, dict[str, int]]) -> None:
    """root/<split>/<seq>/{blur,blur_gamma,sharp}/%06d.png with frame value = 8 * index."""
    for split, seqs in layout.items():
        for seq, n in seqs.items():
            for i in range(n):
                image = np.full((8, 12, 3), 8 * i, np.uint8)
                for kind in ("blur", "blur_gamma", "sharp"):
                    write_png(root / split / seq / kind / f"{i:06d}.png", image)


def _frame_folder(folder: Path, frames: list[np.ndarray]) -> Path:
    for i, f in enumerate(frames):
        write_png(folder / f"frame{i}.png", f)
    return folder


# ---------------------------------------------------------------- GoPro manifests


@pytest.fixture()
def gopro_root(tmp_path: Path) -> Path:
    root = tmp_path / "GOPRO"
    _gopro_tree(root, {"train": {"seqA": 12, "seqB": 9}, "test": {"seqC": 7}})
    return root


def test_gopro_manifest_fields_offsets_and_splits(gopro_root: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "out" / "gopro.jsonl"
    triplets = gopro_triplets(gopro_root, manifest, dmin=2, dmax=4, seed=3)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert len(rows) == len(triplets) == 12 + 9 + 7
    for row in rows:
        assert set(row) == FIELDS
        assert not Path(row["blur"]).is_absolute()  # relative to the manifest folder
        for key in ("blur", "sharp", "ref"):
            assert (manifest.parent / row[key]).is_file()
        assert 2 <= abs(row["offset"]) <= 4
        assert row["ref"] != row["sharp"]
        i = int(Path(row["sharp"]).stem)
        assert int(Path(row["ref"]).stem) == i + row["offset"]
        assert Path(row["ref"]).parent.parent.name == row["sequence"]
        assert Path(row["blur"]).parent.name == "blur"
    assert {r["sequence"]: r["split"] for r in rows} == {
        "seqA": "train", "seqB": "train", "seqC": "test"}
    # deterministic for a seed, different for another
    again = tmp_path / "again.jsonl"
    gopro_triplets(gopro_root, again, dmin=2, dmax=4, seed=3)
    assert [t.offset for t in read_manifest(again)] == [r["offset"] for r in rows]
    other = gopro_triplets(gopro_root, None, dmin=2, dmax=4, seed=4)
    assert [t.offset for t in other] != [r["offset"] for r in rows]


def test_gopro_val_sequences_and_blur_gamma(gopro_root: Path, tmp_path: Path) -> None:
    triplets = gopro_triplets(gopro_root, tmp_path / "m.jsonl", val_sequences=["seqB"],
                              blur_dir="blur_gamma")
    splits = {t.sequence: t.split for t in triplets}
    assert splits == {"seqA": "train", "seqB": "val", "seqC": "test"}
    assert all(Path(t.blur).parent.name == "blur_gamma" for t in triplets)
    with pytest.raises(UserError):
        gopro_triplets(gopro_root, None, val_sequences=["seqC"])  # a test sequence


def test_realblur_style_pairs_by_number_and_short_sequences(tmp_path: Path) -> None:
    scene = tmp_path / "RealBlur" / "scene001"
    for i in (1, 2, 3):
        write_png(scene / "blur" / f"blur_{i}.png", np.full((4, 4, 3), i, np.uint8))
        write_png(scene / "gt" / f"gt_{i}.png", np.full((4, 4, 3), i, np.uint8))
    triplets = gopro_triplets(tmp_path / "RealBlur", None, dmin=2, dmax=6, seed=0)
    assert len(triplets) == 3
    for t in triplets:
        assert Path(t.sharp).name == Path(t.blur).name.replace("blur", "gt")
        assert t.ref != t.sharp and 1 <= abs(t.offset) <= 2  # clipped to the sequence


def test_choose_offset_never_the_frame_and_within_range() -> None:
    rng = np.random.default_rng(0)
    for _ in range(500):
        length = int(rng.integers(2, 30))
        i = int(rng.integers(length))
        d = choose_offset(i, length, 2, 5, rng)
        assert d is not None and d != 0 and 0 <= i + d < length
        if length >= 11:
            assert 2 <= abs(d) <= 5
    assert choose_offset(0, 1, 1, 3, rng) is None
    d = choose_offset(10, 30, 2, 5, rng, exclude=(7, 13))
    assert abs(d) >= 4


def test_manifest_roundtrip_absolute_paths(tmp_path: Path) -> None:
    t = Triplet(str(tmp_path / "a/b.png"), str(tmp_path / "a/s.png"), str(tmp_path / "r.png"),
                "seq", -3, "val")
    write_manifest(tmp_path / "sub" / "m.jsonl", [t])
    assert json.loads((tmp_path / "sub" / "m.jsonl").read_text())["blur"] == "../a/b.png"
    back = read_manifest(tmp_path / "sub" / "m.jsonl")[0]
    assert Path(back.blur) == (tmp_path / "a/b.png").resolve() and back.offset == -3
    # a split no reader takes is refused, not left out of every one
    record = json.loads((tmp_path / "sub" / "m.jsonl").read_text())
    (tmp_path / "bad.jsonl").write_text(json.dumps({**record, "split": "training"}) + "\n")
    with pytest.raises(UserError, match="line 1: split must be train, val, test or absent, "
                       "not 'training'"):
        read_manifest(tmp_path / "bad.jsonl")


# ---------------------------------------------------------------- linear light, HFR


def test_average_linear_matches_hand_computation() -> None:
    black, white = np.zeros((2, 3, 3), np.uint8), np.full((2, 3, 3), 255, np.uint8)
    # linear mean 0.5 -> sRGB 1.055 * 0.5 ** (1 / 2.4) - 0.055 = 0.7354 -> 188 (not 128)
    assert np.all(average_linear([black, white]) == 188)
    a, b = np.full((1, 1, 3), 60, np.uint8), np.full((1, 1, 3), 200, np.uint8)
    lin = [((v / 255 + 0.055) / 1.055) ** 2.4 for v in (60, 200)]
    expect = round(255 * (1.055 * (sum(lin) / 2) ** (1 / 2.4) - 0.055))
    assert np.all(average_linear([a, b]) == expect)
    values = np.arange(256, dtype=np.uint8)
    assert np.all(np.rint(linear_to_srgb(to_linear(values)) * 255) == values)
    assert np.allclose(srgb_to_linear(np.array([0.0, 1.0])), [0.0, 1.0])


def test_hfr_average_in_linear_light_and_reference_outside(tmp_path: Path) -> None:
    values = [int(v) for v in np.linspace(0, 250, 40)]
    src = _frame_folder(tmp_path / "GOPRO_Large_all" / "train" / "clip",
                        [np.full((6, 8, 3), v, np.uint8) for v in values])
    out = tmp_path / "hfr"
    triplets = build_hfr_triplets([tmp_path / "GOPRO_Large_all"], out, min_frames=3,
                                  max_frames=3, ref_min=2, ref_max=6, seed=1)
    assert len(triplets) == 40 // 3
    assert (out / "manifest.jsonl").is_file()
    for t in read_manifest(out / "manifest.jsonl"):
        assert t.split == "train" and t.sequence == "clip"
        middle = int(Path(t.sharp).stem)
        assert Path(t.blur).parent.parent == out / "train" / "clip"
        expect = average_linear([np.full((1, 1, 3), values[k], np.uint8)
                                 for k in (middle - 1, middle, middle + 1)])
        assert np.all(read_image(t.blur) == expect[0, 0])
        assert np.all(read_image(t.sharp) == values[middle])
        ref_index = middle + t.offset
        assert abs(t.offset) >= 2 and abs(t.offset) <= 6  # outside the 3-frame window
        assert np.all(read_image(t.ref) == values[ref_index])
    assert src.is_dir()


def test_hfr_says_when_a_video_is_of_an_ordinary_frame_rate(make_test_clip, tmp_path: Path,
                                                            caplog) -> None:
    clip = make_test_clip("clip.mp4", n_frames=20)  # 25 fps
    with caplog.at_level("WARNING"):
        triplets = build_hfr_triplets([clip.path], tmp_path / "hfr", min_frames=3,
                                      max_frames=5, ref_min=2, ref_max=6, seed=1)
    assert triplets
    said = [r.getMessage() for r in caplog.records]
    assert said == ["clip.mp4 runs at 25 fps: windows of 3-5 of its frames span 0.12-0.20 s, "
                    "far more motion than the 240 fps footage this averaging is made for"]


def test_hfr_refuses_a_blur_sharp_tree_and_leaves_out_earlier_outputs(
        gopro_root: Path, tmp_path: Path, caplog) -> None:
    """A GoPro blur/sharp tree given to hfr was taken as high-frame-rate sequences named
    blur, sharp, ... (blur averaged again); an earlier output inside a source folder was
    read as more sequences."""
    with pytest.raises(UserError, match="blur/ and sharp/ folders.*refdeblur-triplets gopro"):
        build_hfr_triplets([gopro_root], tmp_path / "wrong", min_frames=3, max_frames=3,
                           ref_min=2, ref_max=4)
    assert not (tmp_path / "wrong").exists()
    seq = _frame_folder(tmp_path / "src" / "seq",
                        [np.full((4, 4, 3), 3 * k, np.uint8) for k in range(30)])
    first = build_hfr_triplets([tmp_path / "src"], seq / "out", min_frames=3, max_frames=3,
                               ref_min=2, ref_max=4, seed=0)
    with caplog.at_level("WARNING"):
        again = build_hfr_triplets([tmp_path / "src"], tmp_path / "again", min_frames=3,
                                   max_frames=3, ref_min=2, ref_max=4, seed=0)
    assert {t.sequence for t in again} == {"seq"} and len(again) == len(first)
    assert [r for r in caplog.records if "triplets already built" in r.getMessage()]


def test_hfr_varies_window_size_deterministically(tmp_path: Path) -> None:
    _frame_folder(tmp_path / "seq", [np.full((4, 4, 3), 3 * k, np.uint8) for k in range(80)])
    a = build_hfr_triplets([tmp_path / "seq"], tmp_path / "a", seed=7)
    b = build_hfr_triplets([tmp_path / "seq"], tmp_path / "b", seed=7)
    assert [(Path(t.sharp).name, t.offset) for t in a] == [
        (Path(t.sharp).name, t.offset) for t in b]
    middles = [int(Path(t.sharp).stem) for t in a]
    gaps = set(np.diff(middles))
    assert len(gaps) > 1  # window sizes vary
    for t in a:
        assert abs(t.offset) >= 4  # beyond half of a 7..13-frame window


# ---------------------------------------------------------------- camera blur


def test_camera_blur_reduces_sharpness_keeps_brightness() -> None:
    image = _texture(96, 128)
    for seed in range(4):
        blurred, meta = synthesize_camera_blur(image, np.random.default_rng(seed), 1.0,
                                               frame_hw=FRAME)
        assert blurred.shape == image.shape and blurred.dtype == np.uint8
        assert _sharpness(blurred) < 0.8 * _sharpness(image)
        # averaging in linear light keeps the light (linear mean); the sRGB mean of this
        # high-contrast texture rises a little, as it does for real motion blur
        lin_in, lin_out = to_linear(image).mean(), to_linear(blurred).mean()
        assert abs(lin_out - lin_in) < 0.005
        assert -1.0 < float(blurred.mean()) - float(image.mean()) < 12.0
        assert 16 <= meta["steps"] <= 32 and meta["path_px"] > 0
    again, _ = synthesize_camera_blur(image, np.random.default_rng(3), 1.0, frame_hw=FRAME)
    assert np.array_equal(again, blurred)  # deterministic for a generator state


def test_camera_blur_strength_scales_and_zero_is_identity() -> None:
    image = _texture(72, 96, seed=1)
    same, meta = synthesize_camera_blur(image, np.random.default_rng(0), 0.0)
    assert np.array_equal(same, image) and meta["strength"] == 0.0
    weak, _ = synthesize_camera_blur(image, np.random.default_rng(5), 0.2, frame_hw=FRAME)
    strong, _ = synthesize_camera_blur(image, np.random.default_rng(5), 2.0, frame_hw=FRAME)
    assert _sharpness(strong) < _sharpness(weak) < _sharpness(image)
    noisy, meta = synthesize_camera_blur(image, np.random.default_rng(5), 1.0, noise_sigma=5,
                                         jpeg_quality=(60, 80))
    assert "noise_sigma" in meta and 60 <= meta["jpeg_quality"] <= 80


def test_torch_camera_blur_in_spirit() -> None:
    image = _texture(64, 80, seed=2)
    batch = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255).repeat(3, 1, 1, 1)
    gen = torch.Generator().manual_seed(0)
    out, metas = synthesize_camera_blur_torch(batch, gen, [0.0, 1.0, 2.0], frame_hw=FRAME)
    assert out.shape == batch.shape and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert torch.equal(out[0], batch[0]) and metas[0]["strength"] == 0.0
    as_image = (out.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    assert _sharpness(as_image[2]) < 0.7 * _sharpness(image)
    assert abs(to_linear(as_image[1]).mean() - to_linear(image).mean()) < 0.005
    # a tiny path must stay close to the input (linear-light round trip is exact)
    tiny, _ = synthesize_camera_blur_torch(batch[:1], gen, 1e-6)
    assert torch.allclose(tiny, batch[:1], atol=2e-3)
    cropped, _ = synthesize_camera_blur_torch(batch, gen, 1.0, margin=8)
    assert cropped.shape == (3, 3, 48, 64)


def test_numpy_and_torch_blur_agree_for_one_path() -> None:
    image = _texture(64, 80, seed=2)
    batch = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255)
    out, _ = synthesize_camera_blur_torch(batch, torch.Generator().manual_seed(0), 1.0,
                                          frame_hw=FRAME)
    # the torch version draws one NumPy seed per sample from the generator: redo it by hand
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=torch.Generator().manual_seed(0)))
    path = sample_camera_path(FRAME, np.random.default_rng(seed), 1.0)
    expect = render_path_blur(image, path, ((FRAME[0] - 64) / 2, (FRAME[1] - 80) / 2))
    got = out[0].permute(1, 2, 0).numpy() * 255
    inner = np.abs(got - expect)[8:-8, 8:-8]  # borders: reflect101 vs reflection
    assert path.meta["path_px"] > 5 and inner.mean() < 0.5 and inner.max() < 4


def _blurred_dot_centre(shake: CameraShake, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Where a one-pixel dot at the frame centre lands after the path's blur (the centre of
    mass of its light) and where the path's middle pose puts it."""
    h, w = 161, 201
    dot = np.zeros((h, w, 3), np.uint16)
    dot[h // 2, w // 2] = 65535
    path = sample_camera_path((h, w), np.random.default_rng(seed), 1.6, shake, steps=41)
    light = to_linear(render_path_blur(dot, path))[..., 0]
    yy, xx = np.mgrid[0:h, 0:w]
    mass = np.array([(light * xx).sum(), (light * yy).sum()]) / light.sum()
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    middle = path.in_region()[20] @ np.array([*centre, 1.0])
    return mass - centre, middle[:2] / middle[2] - centre


def test_shake_target_at_the_middle_pose_or_at_the_blur_centroid() -> None:
    """By default the sharp frame is the path's middle pose; with centre="centroid" it is
    where the blurred light's centre of mass is, which on bent paths is pixels away."""
    shake = CameraShake(max_rotation_deg=0.0, max_zoom=0.0, max_perspective=0.0,
                        curvature=0.8)
    offsets = []
    for seed in range(6):
        mass, middle = _blurred_dot_centre(shake, seed)
        assert np.hypot(*middle) < 0.05  # the middle pose is the identity
        offsets.append(np.hypot(*mass))
        mass, _ = _blurred_dot_centre(dataclasses.replace(shake, centre="centroid"), seed)
        assert np.hypot(*mass) < 0.15
    assert max(offsets) > 1.0  # the two conventions differ on these paths
    with pytest.raises(ValueError, match="centre"):
        CameraShake(centre="start")


# ---------------------------------------------------------------- ordinary videos


def _videos(tmp_path: Path, count: int, frames: int = 12) -> list[Path]:
    out = []
    for v in range(count):
        base = _texture(48, 64, seed=10 + v)
        clip = [np.roll(base, k, axis=1) for k in range(frames)]  # real motion between frames
        out.append(_frame_folder(tmp_path / f"video{v}", clip))
    return out


def test_video_triplets_refuse_a_repeated_input_and_say_a_renamed_one(tmp_path: Path,
                                                                       caplog) -> None:
    first, second = _videos(tmp_path, 2)
    twin = second.rename(tmp_path / "elsewhere")
    (tmp_path / "x").mkdir()
    renamed = twin.rename(tmp_path / "x" / first.name)  # another folder, the same name
    with pytest.raises(UserError, match=f"{first} is given twice"):
        build_video_triplets([first, first], tmp_path / "o1", frames_per_video=1)
    with caplog.at_level("WARNING"):
        triplets = build_video_triplets([first, renamed], tmp_path / "o2",
                                        frames_per_video=1, val_videos=["video0_2"])
    assert {t.sequence for t in triplets} == {"video0", "video0_2"}
    assert {t.sequence for t in triplets if t.split == "val"} == {"video0_2"}
    assert [r.getMessage() for r in caplog.records] == [
        f"{renamed} is named video0_2 in the manifest, as another input is named video0 "
        "(--val-videos takes the new name)"]


def test_video_triplets_split_by_video(tmp_path: Path) -> None:
    videos = _videos(tmp_path, 4)
    out = tmp_path / "trip"
    triplets = build_video_triplets(videos, out, frames_per_video=3, dmin=1, dmax=3,
                                    val_fraction=0.25, seed=0)
    by_split: dict[str, set[str]] = {"train": set(), "val": set()}
    for t in read_manifest(out / "manifest.jsonl"):
        by_split[t.split].add(t.sequence)
        assert 1 <= abs(t.offset) <= 3
        assert Path(t.blur).parent.parent == (out / t.split / t.sequence).resolve()
        sharp, ref = read_image(t.sharp), read_image(t.ref)
        assert not np.array_equal(sharp, ref)  # a real neighbouring frame
    assert len(by_split["val"]) == 1 and len(by_split["train"]) == 3
    assert not by_split["train"] & by_split["val"]
    assert len(triplets) == 12
    assert len((out / "blur_meta.jsonl").read_text().splitlines()) == 12
    named = build_video_triplets(videos, tmp_path / "n", frames_per_video=2,
                                 val_videos=["video1", str(videos[3])])
    assert {t.sequence for t in named if t.split == "val"} == {"video1", "video3"}
    with pytest.raises(UserError):
        build_video_triplets(videos, tmp_path / "x", val_videos=["nope"])


def test_more_triplets_asked_than_frames_is_said(tmp_path: Path, caplog) -> None:
    videos = _videos(tmp_path, 2, frames=6)
    with caplog.at_level("WARNING"):
        made = build_video_triplets(videos, tmp_path / "t", frames_per_video=50,
                                    val_videos=["video1"])
    assert len(made) == 12  # one per frame
    said = [r.getMessage() for r in caplog.records]
    assert "video0: 6 frames give 6 triplets, not --frames-per-video 50" in said, said


def _two_shots(frames: int = 8) -> list[np.ndarray]:
    """A clip that cuts to another shot (another texture, in negative) at frame ``frames``."""
    first = [np.roll(_texture(48, 64, seed=1), k, axis=1) for k in range(frames)]
    return first + [255 - np.roll(_texture(48, 64, seed=2), k, axis=1) for k in range(frames)]


def test_references_never_cross_a_shot_cut(tmp_path: Path) -> None:
    clip = _two_shots()
    assert shot_ids(clip) == [0] * 8 + [1] * 8
    assert shot_ranges(shot_ids(clip))[:9:8] == [(0, 8), (8, 16)]
    rng = np.random.default_rng(0)
    assert {choose_offset(7, 16, 1, 3, rng, shot=(0, 8)) for _ in range(50)} == {-1, -2, -3}
    assert choose_offset(8, 16, 1, 3, rng, shot=(8, 9)) is None  # alone in its shot
    folder = _frame_folder(tmp_path / "cut", clip)
    triplets = build_video_triplets([folder], tmp_path / "t", frames_per_video=16, dmax=6)
    frames = [int(Path(t.sharp).stem) for t in triplets]
    assert len(triplets) == 16 and {f < 8 for f in frames} == {True, False}
    assert all((f < 8) == (f + t.offset < 8) for f, t in zip(frames, triplets, strict=True))
    online = OnlineVideoTriplets([clip], crop=32, length=4, seed=0)
    assert [len(shot) for shot in online.videos] == [8, 8] and online.sources == [0, 0]
    # unrelated references: from another input when there is one, not the same input's
    # other shot (an edited video may cut back to the same view)
    flat = [np.full((48, 64, 3), 200, np.uint8)] * 4
    mixed = OnlineVideoTriplets([clip, flat], crop=32, length=8, seed=0, strength=0.0,
                                unrelated_ref_prob=1.0)
    assert mixed.sources == [0, 0, 1]
    for k in range(8):
        item = mixed[k]
        from_flat = float(item["ref"].std()) < 1e-6
        assert from_flat == (float(item["sharp"].std()) > 0.1)  # always the other input


def test_load_video_frames_cv2_and_strides(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    if not writer.isOpened():
        pytest.skip("no MJPG encoder in this OpenCV build")
    for k in range(10):
        writer.write(cv2.cvtColor(np.roll(_texture(48, 64), k, axis=1), cv2.COLOR_RGB2BGR))
    writer.release()
    frames = load_video_frames(path, reader="cv2")
    assert len(frames) == 10 and frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8
    assert len(load_video_frames(path, max_frames=3, reader="cv2", stride=2)) == 3
    assert load_video_frames(path, reader="cv2", max_side=32)[0].shape == (24, 32, 3)
    triplets = build_video_triplets([path], tmp_path / "t", frames_per_video=2, reader="cv2")
    assert len(triplets) == 2


def test_real_video_files_through_every_reader(lossless_clip, tmp_path: Path) -> None:
    expect = lossless_clip.frames
    for reader in ("auto", "project", "av"):
        frames = load_video_frames(lossless_clip.path, reader=reader)
        assert len(frames) == len(expect)
        assert all(np.array_equal(a, b) for a, b in zip(frames, expect, strict=True))
    by_cv2 = load_video_frames(lossless_clip.path, reader="cv2")
    assert len(by_cv2) == len(expect)
    assert np.abs(by_cv2[5].astype(int) - expect[5]).mean() < 2
    # high-frame-rate averaging straight from a video file
    out = tmp_path / "hfr"
    triplets = build_hfr_triplets([lossless_clip.path], out, min_frames=3, max_frames=3,
                                  ref_min=2, ref_max=4)
    assert len(triplets) == 4
    for t in triplets:
        m = int(Path(t.sharp).stem)
        assert np.array_equal(read_image(t.blur), average_linear(expect[m - 1 : m + 2]))
        assert np.array_equal(read_image(t.ref), expect[m + t.offset])
    # ordinary-video triplets from two real files, split by file
    second = tmp_path / "second.mkv"
    second.write_bytes(lossless_clip.path.read_bytes())
    made = build_video_triplets([lossless_clip.path, second], tmp_path / "v",
                                frames_per_video=3, val_videos=["second"])
    assert {(t.sequence, t.split) for t in made} == {("lossless", "train"), ("second", "val")}


# ---------------------------------------------------------------- datasets


def _coordinate_image(h: int, w: int, extra: int) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w]
    return np.stack([xs, ys, np.full_like(xs, extra)], -1).astype(np.uint16)


def _is_rigid_block(t: torch.Tensor, crop: int) -> tuple[int, int]:
    """(x0, y0) of a crop of the coordinate image, after any flip/rot90."""
    xs, ys = (t[0] * 65535).round().long(), (t[1] * 65535).round().long()
    assert int(xs.max() - xs.min()) == crop - 1 and int(ys.max() - ys.min()) == crop - 1
    pairs = set(zip(xs.flatten().tolist(), ys.flatten().tolist(), strict=True))
    assert len(pairs) == crop * crop  # a contiguous block, each pixel once
    return int(xs.min()), int(ys.min())


def test_triplet_dataset_same_crop_and_flips(tmp_path: Path) -> None:
    files = {}
    for kind, extra in (("blur", 1), ("sharp", 2), ("ref", 3)):
        files[kind] = tmp_path / f"{kind}.png"
        write_png(files[kind], _coordinate_image(40, 56, extra))
    t = Triplet(str(files["blur"]), str(files["sharp"]), str(files["ref"]), "s", 2, "train")
    write_manifest(tmp_path / "m.jsonl", [t] * 6)
    ds = TripletDataset(tmp_path / "m.jsonl", crop=16, seed=0)
    corners = set()
    for k in range(len(ds)):
        item = ds[k]
        assert set(item) == {"blur", "sharp", "ref"}
        assert item["blur"].shape == (3, 16, 16) and item["blur"].dtype == torch.float32
        assert torch.equal(item["blur"][:2], item["sharp"][:2])
        assert torch.equal(item["blur"][:2], item["ref"][:2])
        corners.add(_is_rigid_block(item["sharp"], 16))
    assert len(corners) > 1  # random positions
    assert torch.equal(ds[3]["blur"], ds[3]["blur"])  # seeded: repeatable
    jittered = TripletDataset(tmp_path / "m.jsonl", crop=16, seed=1, ref_jitter=3,
                              augment=False)[0]
    shift = (jittered["ref"][:2] - jittered["sharp"][:2]) * 65535
    assert float(shift.abs().max()) <= 3.5
    full = TripletDataset(tmp_path / "m.jsonl", crop=None, augment=False)[0]
    assert full["blur"].shape == (3, 40, 56)


def test_online_video_triplets(tmp_path: Path) -> None:
    clips = [[np.roll(_texture(64, 80, seed=s), k, axis=1) for k in range(8)] for s in (0, 1)]
    ds = OnlineVideoTriplets(clips, crop=32, length=6, seed=0, unrelated_ref_prob=0.0)
    assert [len(shot) for shot in ds.videos] == [8, 8]  # one shot each
    sample = ds[0]
    assert {k: tuple(v.shape) for k, v in sample.items()} == {
        "blur": (3, 32, 32), "sharp": (3, 32, 32), "ref": (3, 32, 32)}
    assert all(float(v.min()) >= 0.0 and float(v.max()) <= 1.0 for v in sample.values())
    assert torch.equal(ds[2]["blur"], ds[2]["blur"])
    diffs = [float((ds[k]["blur"] - ds[k]["sharp"]).abs().mean()) for k in range(6)]
    assert max(diffs) > 0.01
    still = OnlineVideoTriplets(clips, crop=32, length=3, seed=0, strength=0.0,
                                unrelated_ref_prob=0.0)
    assert all(torch.equal(still[k]["blur"], still[k]["sharp"]) for k in range(3))
    # unrelated references come from the other video
    flat = [[np.full((40, 40, 3), 10 * v, np.uint8)] * 4 for v in (1, 2)]
    other = OnlineVideoTriplets(flat, crop=16, length=8, seed=0, unrelated_ref_prob=1.0,
                                strength=0.0)
    for k in range(8):
        item = other[k]
        assert not torch.equal(item["ref"], item["sharp"])
    gpu = OnlineVideoTriplets(clips, crop=32, length=4, seed=0, blur_on="gpu")
    batch = torch.utils.data.default_collate([gpu[k] for k in range(4)])
    assert batch["sharp_padded"].shape[-1] == 32 + 2 * gpu.margin
    done = finish_gpu_batch(batch, gpu.margin, torch.Generator().manual_seed(0))
    assert done["blur"].shape == done["sharp"].shape == done["ref"].shape == (4, 3, 32, 32)
    with pytest.raises(UserError):
        OnlineVideoTriplets([clips[0][:1]], crop=32)


# ---------------------------------------------------------------- command line


def test_cli_gopro_ok_and_bad_input(gopro_root: Path, tmp_path: Path, capsys) -> None:
    manifest = tmp_path / "m.jsonl"
    assert cli.main(["gopro", str(gopro_root), str(manifest), "--val-sequences", "seqA"]) == 0
    assert "28 triplets" in capsys.readouterr().out
    assert {t.split for t in read_manifest(manifest)} == {"train", "val", "test"}
    assert cli.main(["gopro", str(tmp_path / "missing"), str(manifest)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    (tmp_path / "empty").mkdir()
    assert cli.main(["gopro", str(tmp_path / "empty"), str(manifest)]) == 2
    assert cli.main(["video", str(tmp_path / "nope.mp4"), str(tmp_path / "o")]) == 2
    assert cli.main(["hfr", str(tmp_path / "empty"), str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)


def test_cli_gopro_never_writes_over_a_file_unasked(gopro_root: Path, tmp_path: Path,
                                                    capsys) -> None:
    """A manifest named after a frame of the dataset (a slip) used to replace that frame;
    an existing manifest was replaced silently."""
    frame = gopro_root / "train" / "seqA" / "sharp" / "000000.png"
    before = frame.read_bytes()
    assert cli.main(["gopro", str(gopro_root), str(frame)]) == 2
    assert "must end in .jsonl" in capsys.readouterr().err and frame.read_bytes() == before
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("mine\n")
    assert cli.main(["gopro", str(gopro_root), str(manifest)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "exists: --overwrite replaces it" in err[0]
    assert manifest.read_text() == "mine\n"
    assert cli.main(["gopro", str(gopro_root), str(manifest), "--overwrite"]) == 0
    assert len(read_manifest(manifest)) == 28
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_cli_gopro_finds_frames_of_different_sizes_before_training(gopro_root: Path,
                                                                   tmp_path: Path,
                                                                   capsys) -> None:
    write_png(gopro_root / "train" / "seqB" / "sharp" / "000004.png",
              np.zeros((10, 12, 3), np.uint8))
    assert cli.main(["gopro", str(gopro_root), str(tmp_path / "m.jsonl")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "the frames of sequence seqB differ in size" in err[0]
    assert "12x8" in err[0] and "000004.png 12x10" in err[0]
    assert not (tmp_path / "m.jsonl").exists()
    (gopro_root / "train" / "seqB" / "blur" / "000002.png").write_bytes(b"not an image")
    write_png(gopro_root / "train" / "seqB" / "sharp" / "000004.png",
              np.zeros((8, 12, 3), np.uint8))
    assert cli.main(["gopro", str(gopro_root), str(tmp_path / "m.jsonl")]) == 2
    assert "cannot read image" in capsys.readouterr().err


def test_cli_gopro_says_when_sequences_are_too_short_for_dmin(gopro_root: Path,
                                                              tmp_path: Path,
                                                              caplog) -> None:
    with caplog.at_level("WARNING"):
        assert cli.main(["gopro", str(gopro_root), str(tmp_path / "m.jsonl"),
                         "--dmin", "8", "--dmax", "10"]) == 0
    closer = [t for t in read_manifest(tmp_path / "m.jsonl") if abs(t.offset) < 8]
    said = [r.getMessage() for r in caplog.records if "closer than --dmin 8" in r.getMessage()]
    assert closer and len(said) == 1 and said[0].startswith(f"{len(closer)} of 28 triplets")


def test_cli_gopro_says_what_frames_are_missing_and_refuses_a_file(gopro_root: Path,
                                                                   tmp_path: Path, caplog,
                                                                   capsys) -> None:
    seq = gopro_root / "train" / "seqA"
    (seq / "sharp" / "000003.png").unlink()  # blurry 3 has no partner; the numbers skip
    with caplog.at_level("WARNING"):
        assert cli.main(["gopro", str(gopro_root), str(tmp_path / "m.jsonl")]) == 0
    said = [r.getMessage() for r in caplog.records]
    assert f"{Path('train/seqA')}: 1 blurry frame without a sharp frame of the same name or " \
           "number left out" in said
    assert any(m.startswith(f"{Path('train/seqA')}: its sharp frames skip 1 number:")
               for m in said)
    assert all("seqB" not in m for m in said)  # whole sequences are not named
    caplog.clear()
    for k in range(6):  # every 8th frame of a faster source: a regular rate, not a gap
        image = np.full((8, 12, 3), 8 * k, np.uint8)
        for kind in ("blur", "sharp"):
            write_png(tmp_path / "EVERY8" / "train" / "s" / kind / f"{8 * k:06d}.png", image)
    with caplog.at_level("WARNING"):
        assert cli.main(["gopro", str(tmp_path / "EVERY8"), str(tmp_path / "e.jsonl")]) == 0
    assert not [r for r in caplog.records if "skip" in r.getMessage()]
    assert cli.main(["gopro", str(tmp_path / "m.jsonl"), str(tmp_path / "n.jsonl")]) == 2
    assert "m.jsonl is a file: give the dataset's folder" in capsys.readouterr().err


@pytest.mark.parametrize(("option", "says"), [
    (["--min-exposure", "2"], "--min-exposure must be above 0 and at most 1"),
    (["--max-translation", "-5"], "--max-translation must be at least 0"),
    (["--steps", "0,0"], "--steps must be at least 1"),
    (["--jpeg", "200,300"], "--jpeg qualities must lie in 1..100"),
])
def test_cli_refuses_blur_options_out_of_range(tmp_path: Path, capsys, option, says) -> None:
    video = _videos(tmp_path, 1)[0]
    assert cli.main(["video", str(video), str(tmp_path / "o"), *option]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {says}")
    assert not (tmp_path / "o").exists()


def test_cli_refuses_outputs_that_would_mix_or_cannot_be_written(tmp_path: Path, capsys,
                                                                 gopro_root: Path) -> None:
    video = _videos(tmp_path, 1)[0]
    (tmp_path / "afile").write_text("x")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "old.png").write_bytes(b"")
    (tmp_path / "adir").mkdir()
    assert cli.main(["video", str(video), str(tmp_path / "afile")]) == 2
    assert cli.main(["hfr", str(video), str(tmp_path / "used")]) == 2
    assert cli.main(["gopro", str(gopro_root), str(tmp_path / "adir")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in err] == ["error"] * 3, err
    assert "is a file" in err[0] and "not empty" in err[1] and "is a folder" in err[2]
    assert sorted(p.name for p in (tmp_path / "used").iterdir()) == ["old.png"]


def test_cli_interrupted_leaves_no_half_written_triplets(tmp_path: Path, capsys,
                                                         monkeypatch) -> None:
    from refdeblur_video.data import triplets

    video = _videos(tmp_path, 1)[0]

    def interrupted(videos, outdir, **kwargs):
        (Path(outdir) / "train").mkdir(parents=True)
        (Path(outdir) / "train" / "half.png").write_bytes(b"")
        raise KeyboardInterrupt

    monkeypatch.setattr(triplets, "build_video_triplets", interrupted)
    assert cli.main(["video", str(video), str(tmp_path / "out")]) == 130
    assert capsys.readouterr().err.startswith("interrupted")
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out*"))  # nor the folder it was built in


def test_cli_entry_point_exit_code(tmp_path: Path) -> None:
    code = "import sys; from refdeblur_video.data.cli import main; sys.exit(main())"
    run = subprocess.run([sys.executable, "-c", code, "gopro", str(tmp_path / "x"),
                          str(tmp_path / "m.jsonl")], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and run.stderr.startswith("error: ")


def test_photo_pan_clip_moves_smoothly_and_is_repeatable(tmp_path: Path) -> None:
    from refdeblur_video.data.photo_clips import pan_clip

    photo = _texture(600, 900, cell=8)
    clip = pan_clip(photo, 10, size=(120, 200), rng=np.random.default_rng(5))
    again = pan_clip(photo, 10, size=(120, 200), rng=np.random.default_rng(5))
    assert len(clip) == 10 and all(f.shape == (120, 200, 3) for f in clip)
    assert all(np.array_equal(a, b) for a, b in zip(clip, again, strict=True))
    # consecutive frames: a real but small camera move, measured by phase correlation
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float64) for f in clip]
    pairs = zip(gray[:-1], gray[1:], strict=True)
    shifts = [np.hypot(*cv2.phaseCorrelate(a, b)[0]) for a, b in pairs]
    assert 0.05 < np.median(shifts) < 15, shifts
    assert not np.array_equal(clip[0], clip[-1])
    # portrait photos give portrait frames
    assert pan_clip(photo.transpose(1, 0, 2), 2, size=(120, 200))[0].shape == (200, 120, 3)


def test_a_photo_path_loads_as_a_clip_and_feeds_online_triplets(tmp_path: Path) -> None:
    from refdeblur_video.data.photo_clips import PHOTO_CLIP_FRAMES

    photo = tmp_path / "still.png"
    write_png(photo, _texture(400, 640, cell=8))
    frames = load_video_frames(photo, max_side=320)
    assert len(frames) == PHOTO_CLIP_FRAMES and max(frames[0].shape[:2]) == 320
    assert all(np.array_equal(a, b) for a, b in zip(frames, load_video_frames(photo, max_side=320),
                                                    strict=True))
    assert len(load_video_frames(photo, max_frames=6)) == 6
    data = OnlineVideoTriplets([photo], crop=64, max_side=320, length=3, seed=0)
    item = data[0]
    assert item["blur"].shape == item["ref"].shape == (3, 64, 64)


def test_a_video_of_one_frame_is_named_and_skipped(tmp_path: Path) -> None:
    video = _videos(tmp_path, 1)[0]
    still = tmp_path / "still.png"
    write_png(still, _texture(48, 64, seed=5))

    def triplets(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "refdeblur_video.data.cli", "video",
                               *args], capture_output=True, text=True, timeout=120)

    done = triplets(str(still), str(video), str(tmp_path / "a"), "--frames-per-video", "2")
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == (f"warning: skipped {still}: 1 frame (a video needs at "
                                   "least 2 frames)")
    assert "2 triplets" in done.stdout
    done = triplets(str(still), str(tmp_path / "b"))
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: no triplets could be made: {still}: 1 frame (a "
                                   "video needs at least 2 frames)")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(("odd", "count"), [("frame5.png", 12), ("frame0.png", 3)])
def test_a_frame_folder_of_mixed_sizes_is_one_line(tmp_path: Path, odd: str, count: int) -> None:
    folder = _videos(tmp_path, 1)[0]  # 12 frames of 64x48
    write_png(folder / odd, _texture(50, 60, seed=9))
    # the odd frame named, whether it comes first or later
    sizes = ("frame0.png is 60x50, frame1.png 64x48" if odd == "frame0.png"
             else "frame0.png is 64x48, frame5.png 60x50")
    with pytest.raises(UserError, match=f"the frames of .*video0 differ in size: {sizes}"):
        build_video_triplets([folder], tmp_path / "out", frames_per_video=count, dmin=1,
                             dmax=1)

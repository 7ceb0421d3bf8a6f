"""The left-out rs6dof blur generator, the validation-set helpers and the flicker metrics."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from refdeblur_video.data import shake6dof as s6
from refdeblur_video.data import validation
from refdeblur_video.data.manifest import read_manifest
from refdeblur_video.data.rs6dof_triplets import (
    NO_SHARP_EXPOSURE_S,
    Rs6DofSource,
    _exposures,
    build_rs6dof_triplets,
)
from refdeblur_video.data.validation import plan_average_windows
from refdeblur_video.evaluate import flicker
from refdeblur_video.evaluate.generators import format_generators, read_index
from refdeblur_video.evaluate.temporal import evaluate_temporal
from refdeblur_video.image_files import write_image, write_png
from refdeblur_video.video.synthetic import make_image

SIZE = (48, 64)
ROOT = Path(__file__).resolve().parents[1]


def texture(height: int, width: int, seed: int = 0, sigma: float = 1.5) -> np.ndarray:
    """Smooth random RGB texture in 40..215 (room for brightness offsets)."""
    noise = np.random.default_rng(seed).uniform(0, 1, (height, width, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), sigma)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return np.round(40 + 175 * smooth).astype(np.uint8)


def camera(readout_s: float = 0.02, **changes) -> s6.Camera:
    values = dict(fov_deg=65.0, fps=30.0, rate_hz=1000.0, readout_s=readout_s, depth_m=2.0,
                  photons_at_white=4000.0, read_noise_e=2.0, crf=23)
    return s6.Camera(**(values | changes))


def steady_yaw(deg_per_s: float, start_s: float = 0.0, duration_s: float = 0.2,
               rate: float = 1000.0) -> s6.Trajectory:
    """Still until ``start_s``, then turning at a constant yaw rate."""
    t = np.arange(round(duration_s * rate) + 1) / rate
    angles = np.zeros((len(t), 3))
    angles[:, 1] = np.radians(deg_per_s) * np.clip(t - start_s, 0, None)
    return s6.Trajectory(rate, angles, np.zeros((len(t), 3)))


def blur_of(image: np.ndarray, truth: np.ndarray) -> float:
    return float(np.abs(image.astype(np.float64) - truth).mean())


# --- the camera model ----------------------------------------------------------------------


def test_rotation_and_forward_motion_map_pixels_as_a_pinhole_does():
    cam = camera()
    K = cam.intrinsics(64, 48)
    f, cx, cy = K[0, 0], K[0, 2], K[1, 2]
    assert f == pytest.approx(32 / math.tan(math.radians(32.5)))
    theta = math.radians(2.0)
    yaw = s6.rotations(np.array([[0, theta, 0]]))
    turned = s6.plane_homographies(K, np.eye(3), np.zeros(3), yaw, np.zeros((1, 3)),
                                   np.array([0.0, 0, 1]), 2.0)[0]
    x, y, w = turned @ [cx, cy, 1]
    assert (x / w - cx, y / w - cy) == pytest.approx((-f * math.tan(theta), 0), abs=1e-9)
    forward = s6.plane_homographies(K, np.eye(3), np.zeros(3), np.eye(3)[None],
                                    np.array([[0, 0, 0.1]]), np.array([0.0, 0, 1]), 2.0)[0]
    x, y, w = forward @ [cx + 10, cy, 1]
    assert x / w - cx == pytest.approx(10 * 2.0 / 1.9)  # zoom: depth / (depth - step)


def test_band_process_has_unit_speed_and_stays_in_its_band():
    signal = s6.band_process(np.random.default_rng(1), 4000, 1000.0, (5.0, 15.0))
    assert signal.shape == (4000,)
    assert math.sqrt(np.mean(np.diff(signal) ** 2)) * 1000 == pytest.approx(1, rel=0.25)
    power = np.abs(np.fft.rfft(signal)) ** 2
    freqs = np.fft.rfftfreq(4000, 1e-3)
    assert power[(freqs >= 4) & (freqs <= 16)].sum() > 0.95 * power.sum()


def test_window_weights_cover_the_exposure():
    times, weights = s6.window_weights(0.0123, 0.01, 1000.0)
    assert weights.sum() == pytest.approx(1)
    assert times.min() >= 0.0123 - 0.0005 and times.max() <= 0.0223 + 0.0005
    assert s6.window_weights(0.5, 0.0, 1000.0)[1].tolist() == [1.0]
    assert s6.band_height(720, camera(0.03, rate_hz=2000.0)) == 12
    assert s6.band_height(720, camera(0.0)) == 720


def test_zero_exposure_returns_the_source():
    source = texture(*SIZE)
    rng = np.random.default_rng(0)
    cam = s6.draw_camera(rng)
    path = s6.sample_trajectory(rng, cam, 0.2)
    image, extent = s6.expose(s6.srgb_to_linear(source), np.eye(3), SIZE, cam, path, 0.05, 0.0)
    assert np.array_equal(s6.linear_to_srgb(image), source)
    assert extent["extent_max_px"] == 0


def test_blur_grows_with_exposure():
    source = texture(*SIZE)
    linear = s6.srgb_to_linear(source)
    blur, lengths = [], []
    for exposure in (1 / 500, 1 / 100, 1 / 30):
        image, extent = s6.expose(linear, np.eye(3), SIZE, camera(), steady_yaw(400.0), 0.0,
                                  exposure)
        blur.append(blur_of(s6.linear_to_srgb(image), source))
        lengths.append(extent["extent_mean_px"])
    assert blur[0] < blur[1] < blur[2]
    assert lengths[0] < lengths[1] < lengths[2]
    # a turn of 400 deg/s for 1/30 s sweeps f * 13.3 deg (in radians) at the centre, up to
    # (1 + (x / f)^2) times that at the frame's edge x
    f = camera().intrinsics(64, 48)[0, 0]
    sweep = f * math.radians(400 / 30)
    assert sweep < lengths[2] < sweep * (1 + (32 / f) ** 2) * 1.05
    # and with a random hand-held path the image path lengthens with the exposure
    rng = np.random.default_rng(5)
    cam = s6.draw_camera(rng)
    path = s6.sample_trajectory(rng, cam, 0.2)
    extents = [s6.expose(linear, np.eye(3), SIZE, cam, path, 0.02, e)[1]["extent_mean_px"]
               for e in (1 / 200, 1 / 60, 1 / 15)]
    assert extents[0] < extents[1] < extents[2]


def test_rolling_shutter_makes_the_blur_vary_by_row():
    source = texture(*SIZE)
    linear = s6.srgb_to_linear(source)
    path = steady_yaw(900.0, start_s=0.016)  # still while the top rows expose, then turning

    def top_and_bottom(readout: float) -> tuple[float, float]:
        image = s6.linear_to_srgb(s6.expose(linear, np.eye(3), SIZE, camera(readout), path,
                                            0.0, 0.008)[0])
        return blur_of(image[:12], source[:12]), blur_of(image[-12:], source[-12:])

    top, bottom = top_and_bottom(0.03)
    assert top < 0.5 and bottom > 3 * top + 2
    still_top, still_bottom = top_and_bottom(0.0)  # global shutter: every row still
    assert still_top < 0.5 and still_bottom < 0.5


def test_clip_sizes_types_and_determinism():
    source = texture(64, 80, seed=2)
    clip = [s6.ClipFrame(source, s6.crop_base(8, 8), e) for e in (1 / 500, 1 / 40, 1 / 500)]

    def film(seed: int) -> s6.RenderedClip:
        return s6.render_clip(clip, SIZE, np.random.default_rng(seed))

    first, again, other = film(3), film(3), film(4)
    assert len(first.frames) == len(first.truth) == 3
    for image in (*first.frames, *first.truth):
        assert image.dtype == np.uint8 and image.shape == (*SIZE, 3)
    assert np.array_equal(first.truth[0], source[8:56, 8:72])  # the crop, untouched
    assert first.video[4:8] == b"ftyp"  # an MP4
    assert all(np.array_equal(a, b) for a, b in zip(first.frames, again.frames, strict=True))
    assert first.video == again.video
    assert not all(np.array_equal(a, b) for a, b in zip(first.frames, other.frames, strict=True))
    assert first.meta[1]["extent_mean_px"] > first.meta[0]["extent_mean_px"]


def test_noise_and_codec_can_be_left_out():
    source = texture(*SIZE, seed=3)
    clip = [s6.ClipFrame(source, np.eye(3), 0.0)]
    plain = s6.render_clip(clip, SIZE, np.random.default_rng(0), noise=False, compress=False)
    assert np.array_equal(plain.frames[0], source) and plain.video == b""
    noisy = s6.render_clip(clip, SIZE, np.random.default_rng(0), compress=False)
    assert 0 < blur_of(noisy.frames[0], source) < 8


def test_photo_bases_pan_across_the_photo():
    cam = camera()
    photo = s6.fit_photo(texture(100, 150), SIZE)
    assert photo.shape[0] >= 1.4 * SIZE[0] - 1 and photo.shape[1] >= 1.4 * SIZE[1] - 1
    bases = s6.photo_bases(photo.shape[:2], SIZE, 5, np.random.default_rng(0), cam)
    centre = np.array([photo.shape[1] / 2 - 0.5, photo.shape[0] / 2 - 0.5, 1])
    points = [(b @ centre)[:2] / (b @ centre)[2] for b in bases]
    assert np.allclose(points[2], [31.5, 23.5], atol=1e-6)  # middle frame centred
    steps = [np.linalg.norm(b - a) for a, b in zip(points, points[1:], strict=False)]
    assert all(2.5 < step < 13 for step in steps)


# --- validation sets -------------------------------------------------------------------


def test_average_windows_put_the_reference_just_outside():
    windows = plan_average_windows(0, 60, 6, np.random.default_rng(0))
    assert len(windows) == 6
    for middle, half, reference in windows:
        assert half in (2, 3, 4)
        assert middle - half >= 0 and middle + half < 60
        assert abs(reference - middle) == half + 1 and 0 <= reference < 60


def test_exposures_are_long_for_targets_and_capped_by_the_frame_rate():
    exposures = _exposures(np.random.default_rng(0), 3, 24.0)
    assert len(exposures) == 10
    long = [exposures[k] for k in (1, 4, 7)]
    assert all(1 / 200 <= e <= 1 / 24 for e in long)
    assert all(1 / 1000 <= exposures[k] <= 1 / 400 for k in range(10) if k % 3 != 1)
    strata = sorted(math.log(e) for e in long)  # one per third of the log range
    bounds = np.linspace(math.log(1 / 200), math.log(1 / 24), 4)
    assert all(lo <= e <= hi for e, lo, hi in zip(strata, bounds, bounds[1:], strict=False))


def test_a_clip_without_sharp_frames_exposes_every_frame_long():
    exposures = _exposures(np.random.default_rng(0), 3, 15.0, sharp_frames=False)
    low, high = NO_SHARP_EXPOSURE_S
    assert len(exposures) == 10 and all(low <= e <= high for e in exposures)
    strata = sorted(math.log(exposures[k]) for k in (1, 4, 7))  # targets: one per third
    bounds = np.linspace(math.log(low), math.log(high), 4)
    assert all(lo <= e <= hi for e, lo, hi in zip(strata, bounds, bounds[1:], strict=False))
    capped = _exposures(np.random.default_rng(0), 3, 60.0, sharp_frames=False)
    assert all(e <= 1 / 60 for e in capped)
    # the sharp clips draw exactly as before the option existed
    assert _exposures(np.random.default_rng(0), 3, 24.0) == _exposures(
        np.random.default_rng(0), 3, 24.0, sharp_frames=True)


def test_an_interrupted_validation_build_leaves_the_earlier_sets_as_they_were(
        tmp_path, monkeypatch):
    frames = [np.roll(make_image(size=(64, 48)), k, axis=1) for k in range(12)]

    def small_set(out, videos, photos, seed):  # a real shake set of one small clip
        return validation.shake_triplets(out, {"clip": frames}, seed), ["clip"]

    def interrupted(out, videos, photos, seed):
        write_png(out / "_sources" / "clip" / "000000.png", frames[0])  # a first file...
        raise KeyboardInterrupt  # ...then Ctrl-C

    monkeypatch.setattr(validation, "BUILDERS", {name: small_set for name in
                                                 validation.GENERATORS})
    out = tmp_path / "val"
    built = validation.build_validation(out, tmp_path, tmp_path, only=["shake", "average"])
    assert built and all(Path(t.blur).is_file() for t in built)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    monkeypatch.setitem(validation.BUILDERS, "average", interrupted)
    with pytest.raises(KeyboardInterrupt):
        validation.build_validation(out, tmp_path, tmp_path, only=["shake", "average"])
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in out.iterdir()) == ["average", "generators.json", "shake"]
    assert [g["name"] for g in read_index(out)] == ["shake", "average"]
    # stopped at the very end, the new sets already moved in: the earlier ones come back
    monkeypatch.setitem(validation.BUILDERS, "average", small_set)
    real_replace = Path.replace

    def stopped(self, target):
        if self.name.startswith(".generators"):
            raise KeyboardInterrupt
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", stopped)
    (out / "shake" / "manifest.jsonl").write_text("")  # so the earlier set can be told apart
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(KeyboardInterrupt):
        validation.build_validation(out, tmp_path, tmp_path, only=["shake", "average"])
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in out.iterdir()) == ["average", "generators.json", "shake"]
    monkeypatch.setattr(Path, "replace", real_replace)
    # a set that is a link to a folder elsewhere: replaced by the new set, the folder kept
    elsewhere = tmp_path / "elsewhere"
    (out / "shake").rename(elsewhere)
    (out / "shake").symlink_to(elsewhere)
    validation.build_validation(out, tmp_path, tmp_path, only=["shake"])
    assert not (out / "shake").is_symlink() and (out / "shake" / "manifest.jsonl").stat().st_size
    assert (elsewhere / "manifest.jsonl").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["average", "generators.json", "shake"]


def _training_photos() -> set[str]:
    """Every photo a training recipe fetches: get_photos.sh's default lists and the lomiri
    photos that train_general.sh adds."""
    script = (ROOT / "tools/recipes/get_photos.sh").read_text()
    lists = re.findall(r"\$\{(?:MATE|PLASMA):-([^}]*)\}", script)
    assert len(lists) == 2
    names = {name for text in lists for name in text.replace("\\", " ").split()}
    general = (ROOT / "tools/recipes/train_general.sh").read_text()
    lomiri = re.findall(r"^lomiri=\(([^)]*)\)", general, re.M)[0].split()
    assert len(lomiri) == 8 and all(item.split("/")[0] in ("16.04", "20.04") for item in lomiri)
    return names | {item.split("/", 1)[1] for item in lomiri}


def test_held_out_photos_are_photographs_never_trained_on_and_fetched():
    training = _training_photos()
    assert {"Blinds", "YellowFlower", "BytheWater", "Path", "Kleiber_by_Lukas_Baubkus"} <= training
    stems = set(validation.PHOTOS)
    assert len(stems) == len(validation.PHOTOS) == 6
    assert not stems & training
    authors = {stem.split("_by_")[1] for stem in stems if "_by_" in stem}
    assert authors and not any(name.split("_by_")[-1] in authors for name in training)
    assert not stems & {"Altai", "Canopee", "Cascade"}  # drawings, no longer used
    assert set(validation.RS6DOF_NO_SHARP) <= set(validation.RS6DOF_PHOTOS)
    assert validation.AVERAGE_PHOTO[1] not in validation.RS6DOF_PHOTOS.values()
    recipe = (ROOT / "tools/recipes/make_validation.sh").read_text()
    fetched = set(re.findall(r"^mate=\(([^)]*)\)", recipe, re.M)[0].split())
    fetched |= set(re.findall(r"^lomiri=\(([^)]*)\)", recipe, re.M)[0].split())
    assert fetched == stems


def test_rs6dof_triplets_from_a_folder_and_a_photo(tmp_path):
    frames = tmp_path / "clip"
    frames.mkdir()
    base = texture(120, 160, seed=4)
    for k in range(12):
        write_image(frames / f"{k:03d}.png", np.ascontiguousarray(base[k:k + 64, k:k + 96]))
    photo = tmp_path / "photo.png"
    write_image(photo, texture(90, 120, seed=5))
    sources = [Rs6DofSource("clip", frames, (0, 12)),
               Rs6DofSource("photo", photo, sharp_frames=False)]
    out = tmp_path / "rs6dof"
    triplets = build_rs6dof_triplets(sources, out, targets=2, seed=1, photo_size=(48, 64))
    assert len(triplets) == 4
    read = read_manifest(out / "manifest.jsonl")
    assert [t.sequence for t in read] == ["clip", "clip", "photo", "photo"]
    for t in read:
        assert t.offset in (-3, -2, -1, 1, 2) and (t.offset % 3) != 0
        blur, sharp = cv2.imread(str(t.blur)), cv2.imread(str(t.sharp))
        assert blur.shape == sharp.shape
    assert (out / "clips" / "clip" / "input.mp4").stat().st_size > 0
    assert len(list((out / "clips" / "photo" / "gt").iterdir())) == 7
    meta = [json.loads(line) for line in (out / "blur_meta.jsonl").read_text().splitlines()]
    assert len(meta) == 4 and all("extent_mean_px" in m and "camera" in m for m in meta)
    assert [m["sharp_frames"] for m in meta] == [True, True, False, False]
    clip_meta = json.loads((out / "clips" / "photo" / "meta.json").read_text())
    assert clip_meta["sharp_frames"] is False
    assert all(f["exposure_s"] >= NO_SHARP_EXPOSURE_S[0] for f in clip_meta["frames"])
    again = tmp_path / "again"
    build_rs6dof_triplets(sources, again, targets=2, seed=1, photo_size=(48, 64))
    assert (again / "val/photo/blur/000001.png").read_bytes() == (
        out / "val/photo/blur/000001.png").read_bytes()


def test_generator_table_puts_the_left_out_one_first(tmp_path):
    index = {"generators": [{"name": "shake", "manifest": "shake/manifest.jsonl"},
                            {"name": "rs6dof", "manifest": "rs6dof/manifest.jsonl",
                             "left_out": True}]}
    (tmp_path / "generators.json").write_text(json.dumps(index))
    assert [e["name"] for e in read_index(tmp_path)] == ["rs6dof", "shake"]
    table = {"rows": [{"generator": "rs6dof", "left_out": True, "label": "input", "n": 3,
                       "psnr": 25.0, "ssim": 0.8}]}
    text = format_generators(table)
    assert "rs6dof (left out)" in text and "25.00" in text and "0.8000" in text


# --- flicker metrics -----------------------------------------------------------------------


def moving(n: int = 5, step: int = 2, extra: dict[int, int] | None = None) -> list[np.ndarray]:
    """Crops of one texture whose content moves ``step`` px left per frame; ``extra`` shifts
    some frames further."""
    big = texture(140, 220, seed=7, sigma=2.0)
    extra = extra or {}
    return [np.ascontiguousarray(big[10:106, 10 + step * t + extra.get(t, 0):
                                     138 + step * t + extra.get(t, 0)]) for t in range(n)]


def test_warping_error_of_a_steady_sequence_is_small_and_exact_for_a_flicker():
    truth = moving()
    flicker_out = [np.clip(f.astype(int) + (10 if t % 2 else 0), 0, 255).astype(np.uint8)
                   for t, f in enumerate(truth)]
    for t in range(1, len(truth)):
        pair = flicker.ground_truth_pair(truth[t - 1], truth[t])
        assert pair.valid_share > 0.8
        assert np.allclose(pair.backward[20:-20, 20:-20], [2, 0], atol=0.25)  # t -> t-1
        steady = flicker.warping_error(truth[t - 1], truth[t], pair)
        assert steady < 1.0
        flickering = flicker.warping_error(flicker_out[t - 1], flicker_out[t], pair)
        # independently: frame t against frame t-1 two pixels further right
        direct = np.abs(flicker_out[t][:, :-2].astype(float) - flicker_out[t - 1][:, 2:]).mean()
        assert direct == pytest.approx(10, abs=0.01)
        assert flickering == pytest.approx(direct, abs=1.0)
        assert flicker.tof(truth[t - 1], truth[t], pair) == 0


def test_tof_measures_the_extra_motion():
    truth = moving()
    jittered = moving(extra={1: 1, 3: 1})  # frames 1 and 3 one pixel off
    for t in range(1, len(truth)):
        pair = flicker.ground_truth_pair(truth[t - 1], truth[t])
        assert flicker.tof(jittered[t - 1], jittered[t], pair) == pytest.approx(1.0, abs=0.35)


def test_temporal_mode_scores_a_flickering_output_worse(tmp_path):
    truth = moving(6)
    outputs = {"steady": truth,
               "flicker": [np.clip(f.astype(int) + (8 if t == 3 else 0), 0, 255).astype(np.uint8)
                           for t, f in enumerate(truth)]}
    for name, frames in (("gt", truth), *outputs.items()):
        (tmp_path / name).mkdir()
        for t, image in enumerate(frames):
            write_image(tmp_path / name / f"{t:03d}.png", image)
    log = tmp_path / "frames.csv"
    log.write_text("index,blurry,reference\n" + "".join(
        f"{t},{int(t == 3)},{2 if t == 3 else -1}\n" for t in range(6)))
    results = {name: evaluate_temporal(tmp_path / name, tmp_path / "gt", tmp_path / "steady",
                                       log=log, quiet=True) for name in outputs}
    steady, flickering = results["steady"], results["flicker"]
    assert len(steady.rows) == 5
    assert [row["restored"] for row in steady.rows] == [0, 0, 1, 1, 0]
    assert steady.summary["metrics"]["warp_output"]["mean"] == pytest.approx(
        steady.summary["metrics"]["warp_gt"]["mean"])
    spikes = [row["warp_output"] - row["warp_gt"] for row in flickering.rows]
    assert spikes[2] > 6 and spikes[3] > 6 and max(spikes[0], spikes[1], spikes[4]) < 0.5
    assert (flickering.summary["metrics"]["warp_output"]["mean"]
            > steady.summary["metrics"]["warp_output"]["mean"] + 2)


def test_a_validation_draw_can_blur_through_another_camera_response(tmp_path, monkeypatch,
                                                                   capsys):
    """`validation --response-gamma 1` blurs as averaging decoded frames does: the blurry
    frames keep their sharp frames' mean level, where sRGB's linear light brightens them."""
    from refdeblur_video.data.cli import main as triplets_main

    frames = [np.roll(make_image(size=(64, 48)), k, axis=1) for k in range(12)]

    def small_set(out, videos, photos, seed):  # a real shake set of one small clip
        return validation.shake_triplets(out, {"clip": frames}, seed), ["clip"]

    monkeypatch.setattr(validation, "BUILDERS", {name: small_set for name in
                                                 validation.GENERATORS})

    def brightening(out, *extra) -> float:
        assert triplets_main(["validation", str(out), "--only", "shake", *extra]) == 0
        pairs = [(cv2.imread(str(t.blur)), cv2.imread(str(t.sharp)))
                 for t in read_manifest(out / "shake" / "manifest.jsonl")]
        return float(np.mean([b.mean() - s.mean() for b, s in pairs]))

    srgb = brightening(tmp_path / "srgb")
    plain = brightening(tmp_path / "plain", "--response-gamma", "1")
    assert srgb > 0.5 and abs(plain) < 0.25 * srgb
    index = json.loads((tmp_path / "plain" / "generators.json").read_text())
    assert [g.get("response_gamma") for g in index["generators"]] == [1.0]  # recorded
    assert "response_gamma" not in json.loads(
        (tmp_path / "srgb" / "generators.json").read_text())["generators"][0]
    capsys.readouterr()
    # one folder, one response: another set built into it under another is refused
    assert triplets_main(["validation", str(tmp_path / "plain"), "--only", "average"]) == 2
    assert "built with response gamma 1.0" in capsys.readouterr().err
    for bad in ("0", "nan", "-1"):
        with pytest.raises(SystemExit):
            triplets_main(["validation", str(tmp_path / "x"), "--response-gamma", bad])
        assert "--response-gamma: must be a number above 0" in capsys.readouterr().err

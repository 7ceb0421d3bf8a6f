"""The evaluator end to end: sources, compare / triplets / noref modes and the report files."""

from __future__ import annotations

import csv
import html
import json
import math
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from refdeblur_video.data.manifest import read_manifest
from refdeblur_video.errors import UserError
from refdeblur_video.evaluate import evaluate_triplets, psnr, ssim
from refdeblur_video.evaluate.cli import main
from refdeblur_video.evaluate.stats import column_stats
from refdeblur_video.evaluate.triplets import unrelated_partners
from refdeblur_video.frames.sharpness import sharpness
from refdeblur_video.image_files import to_uint8
from refdeblur_video.pipeline.framelog import read_frame_log
from refdeblur_video.refine import Refiner
from refdeblur_video.video.sources import iter_frames, load_image
from refdeblur_video.video.synthetic import make_clip

N_FRAMES = 8
SIZE = (64, 48)  # width, height
BLURRY = {1, 4, 6}


def write_png(path: Path, image: np.ndarray) -> None:
    assert cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1]))


def write_folder(folder: Path, frames: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        write_png(folder / f"frame{i}.png", frame)  # natural order: frame2 before frame10
    return folder


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """Sharp and blurry renders of one scene (also encoded as videos) and a fake restoration."""
    root = tmp_path_factory.mktemp("clip")
    sharp = make_clip(root / "sharp.mp4", n_frames=N_FRAMES, size=SIZE)
    blurry = make_clip(root / "blurry.mp4", n_frames=N_FRAMES, size=SIZE, blurry=BLURRY)
    restored = [
        ((s.astype(np.uint16) * 3 + b) // 4).astype(np.uint8) if i in BLURRY else b
        for i, (s, b) in enumerate(zip(sharp, blurry, strict=True))
    ]
    return {
        "root": root, "sharp": sharp, "blurry": blurry, "restored": restored,
        "sharp_dir": write_folder(root / "sharp", sharp),
        "blurry_dir": write_folder(root / "blurry", blurry),
        "restored_dir": write_folder(root / "restored", restored),
    }


def read_rows(report: Path) -> list[dict]:
    with (report / "frames.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def number(cell: str) -> float | None:
    return None if cell == "" else float(cell)


def assert_self_contained(page: str, min_images: int) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower()
    assert "http://" not in page and "https://" not in page
    assert "href=" not in page and "url(" not in page and "<link" not in page
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) >= min_images
    assert all(src.startswith("data:image/png;base64,") for src in sources)


def write_log(path: Path, rows: list[dict]) -> Path:
    columns = ["index", "pts", "time_s", "sharpness", "blurry", "reference", "seconds"]
    if path.suffix == ".json":
        path.write_text(json.dumps({"frames": rows}))
    else:
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    return path


def pipeline_log_rows() -> list[dict]:
    return [
        {"index": i, "pts": i, "time_s": i / 25, "sharpness": 0.1, "blurry": int(i in BLURRY),
         "reference": i - 1 if i in BLURRY else -1, "seconds": 0.01}
        for i in range(N_FRAMES)
    ]


# --- sources and helpers ---------------------------------------------------------------------


def test_folders_are_read_in_natural_order_as_rgb_uint8(tmp_path):
    colours = {"f10.png": 10, "f2.png": 2, "f1.jpg": 1, "notes.txt": None,
               "._f1.jpg": None}  # a card's AppleDouble companion: hidden, left out
    for name, value in colours.items():
        if value is None:
            (tmp_path / name).write_text("not an image")
        else:
            write_png(tmp_path / name, np.full((12, 12, 3), value * 10, np.uint8))
    frames = list(iter_frames(tmp_path))
    assert [f.index for f in frames] == [0, 1, 2]
    assert [int(f.image[0, 0, 0]) for f in frames] == [10, 20, 100]
    assert all(f.image.dtype == np.uint8 and f.image.shape == (12, 12, 3) for f in frames)


def test_sixteen_bit_and_grey_images_become_rgb_uint8(tmp_path):
    deep = np.array([[[0, 257, 65535]]], np.uint16).repeat(4, 0).repeat(4, 1)
    assert to_uint8(deep)[0, 0].tolist() == [0, 1, 255]
    cv2.imwrite(str(tmp_path / "deep.png"), deep[..., ::-1])
    assert load_image(tmp_path / "deep.png")[0, 0].tolist() == [0, 1, 255]
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((4, 4), 7, np.uint8))
    assert load_image(tmp_path / "grey.png")[0, 0].tolist() == [7, 7, 7]
    with pytest.raises(UserError, match="no such file"):
        list(iter_frames(tmp_path / "missing"))


def test_a_table_s_psnr_means_cover_the_same_frames_so_the_gain_is_their_difference():
    """An untouched frame identical to the truth in the input (inf) but not quite in the
    output (a player's YUV conversion, 71 dB) was in the output's mean and not the input's:
    the table read input 13.8, output 60.6, gain +2.3."""
    from refdeblur_video.evaluate.stats import summarize

    rows = [{"psnr_input": 14.0, "psnr_output": 16.0, "psnr_gain": 2.0, "ssim_output": 0.5},
            {"psnr_input": 12.0, "psnr_output": 15.0, "psnr_gain": 3.0, "ssim_output": 0.4},
            {"psnr_input": math.inf, "psnr_output": 71.0, "psnr_gain": -math.inf,
             "ssim_output": 1.0},
            {"psnr_input": math.inf, "psnr_output": math.inf, "psnr_gain": None,
             "ssim_output": 1.0}]
    stats = summarize(rows, ["psnr_input", "psnr_output", "psnr_gain", "ssim_output"])
    assert stats["psnr_input"]["mean"] == pytest.approx(13.0)
    assert stats["psnr_output"]["mean"] == pytest.approx(15.5)
    assert stats["psnr_gain"]["mean"] == pytest.approx(2.5)
    assert (stats["psnr_output"]["n"], stats["psnr_output"]["n_infinite"]) == (4, 2)
    assert (stats["psnr_gain"]["n"], stats["psnr_gain"]["n_infinite"]) == (3, 1)
    assert stats["ssim_output"]["mean"] == pytest.approx(0.725)  # SSIM has no infinity


def test_statistics_leave_out_infinite_and_missing_values():
    stats = column_stats([1.0, math.inf, 3.0, None, 8.0])
    assert stats["n"] == 4 and stats["n_infinite"] == 1
    assert stats["mean"] == pytest.approx(4.0) and stats["median"] == pytest.approx(3.0)
    assert column_stats([math.inf])["mean"] is None


# --- compare -----------------------------------------------------------------------------------


def test_compare_folders_writes_csv_json_html_matching_the_metrics(clip, tmp_path, capsys):
    report = tmp_path / "report"
    code = main([
        "compare", "--output", str(clip["restored_dir"]), "--gt", str(clip["sharp_dir"]),
        "--input", str(clip["blurry_dir"]), "--report", str(report), "--quiet",
    ])
    assert code == 0
    printed = capsys.readouterr().out
    assert "gain (output - input)" in printed and "PSNR (dB) mean" in printed

    rows = read_rows(report)
    assert len(rows) == N_FRAMES
    expected_gains = []
    for i, row in enumerate(rows):
        sharp, blurry, restored = clip["sharp"][i], clip["blurry"][i], clip["restored"][i]
        assert int(row["frame"]) == i
        assert number(row["psnr_output"]) == pytest.approx(psnr(restored, sharp), abs=1e-6)
        assert number(row["ssim_output"]) == pytest.approx(ssim(restored, sharp), abs=1e-6)
        assert number(row["psnr_input"]) == pytest.approx(psnr(blurry, sharp), abs=1e-6)
        assert number(row["ssim_input"]) == pytest.approx(ssim(blurry, sharp), abs=1e-6)
        if i in BLURRY:
            gain = psnr(restored, sharp) - psnr(blurry, sharp)
            assert number(row["psnr_gain"]) == pytest.approx(gain, abs=1e-5)
            expected_gains.append(gain)
        else:  # sharp frames pass through: identical to the ground truth
            assert row["psnr_output"] == "inf" and row["psnr_gain"] == ""
            assert number(row["ssim_output"]) == 1.0

    summary = json.loads((report / "summary.json").read_text())
    assert summary["n_frames"] == N_FRAMES
    gain_stats = summary["metrics"]["psnr_gain"]
    assert gain_stats["mean"] == pytest.approx(np.mean(expected_gains), abs=1e-9)
    assert gain_stats["median"] == pytest.approx(np.median(expected_gains), abs=1e-9)
    assert summary["metrics"]["psnr_output"]["n_infinite"] == N_FRAMES - len(BLURRY)
    ssim_mean = np.mean([ssim(r, s) for r, s in zip(clip["restored"], clip["sharp"], strict=True)])
    assert summary["metrics"]["ssim_output"]["mean"] == pytest.approx(ssim_mean, abs=1e-9)

    page = (report / "report.html").read_text()
    # one plot, best and worst example with input/output/ground truth crops
    assert_self_contained(page, min_images=1 + 2 * 3)
    assert "Best frame" in page and "Worst frame" in page


def test_compare_video_ground_truth_and_frame_log(clip, tmp_path):
    report = tmp_path / "report"
    log = write_log(tmp_path / "frames.csv", pipeline_log_rows())
    code = main([
        "compare", "--output", str(clip["restored_dir"]), "--gt", str(clip["root"] / "sharp.mp4"),
        "--input", str(clip["blurry_dir"]), "--log", str(log), "--report", str(report),
        "--quiet", "--y-channel",
    ])
    assert code == 0
    decoded = [frame.image for frame in iter_frames(clip["root"] / "sharp.mp4")]
    rows = read_rows(report)
    assert len(rows) == len(decoded) == N_FRAMES
    for row, truth, restored in zip(rows, decoded, clip["restored"], strict=True):
        expected = psnr(restored, truth, y_channel=True)
        assert number(row["psnr_output"]) == pytest.approx(expected, abs=1e-6)
    assert [number(r["reference"]) for r in rows][:2] == [None, 0]
    assert [r["restored"] for r in rows][:2] == ["0", "1"]
    assert number(rows[3]["time_s"]) == pytest.approx(3 / 25)
    summary = json.loads((report / "summary.json").read_text())
    assert summary["y_channel"] is True and "Y channel" in summary["convention"]
    restored = [number(r["psnr_gain"]) for r in rows if r["restored"] == "1"]
    assert summary["n_restored"] == len(restored) > 0
    assert summary["restored_frames"]["psnr_gain"]["mean"] == pytest.approx(np.mean(restored))
    page = (report / "report.html").read_text()
    assert "Y channel" in page and "reference (frame" in page
    assert_self_contained(page, min_images=1 + 3 + 4)  # the worst frame is a sharp one


def test_compare_says_the_restored_frames_own_gain_and_a_lossy_re_encoding(clip, tmp_path,
                                                                          capsys):
    log = write_log(tmp_path / "frames.csv", pipeline_log_rows())
    sources = ["--gt", str(clip["sharp_dir"]), "--input", str(clip["blurry_dir"]),
               "--log", str(log), "--quiet"]
    assert main(["compare", "--output", str(clip["restored_dir"]), *sources,
                 "--report", str(tmp_path / "exact")]) == 0
    said = capsys.readouterr().out
    gains = [psnr(clip["restored"][i], clip["sharp"][i]) - psnr(clip["blurry"][i],
                                                                 clip["sharp"][i])
             for i in sorted(BLURRY)]
    line = next(x for x in said.splitlines() if x.startswith("The 3 frames the pipeline"))
    assert f"gain {np.mean(gains):+.2f} dB" in line  # on the console, as in the report
    assert line in html.unescape((tmp_path / "exact" / "report.html").read_text())
    assert "re-encoded" not in said  # the kept frames are the input's own
    darker = [frame if i in BLURRY else (frame - (frame > 0)).astype(np.uint8)
              for i, frame in enumerate(clip["restored"])]  # one code value darker
    assert main(["compare", "--output", str(write_folder(tmp_path / "darker", darker)),
                 *sources, "--report", str(tmp_path / "lossy")]) == 0
    said = capsys.readouterr().out
    assert "Frames the pipeline kept as they came differ from the input (5 of 5" in said
    assert "--codec ffv1" in said
    # an output identical to the truth has no finite mean to give: said so, not a crash
    assert main(["compare", "--output", str(clip["sharp_dir"]), *sources,
                 "--report", str(tmp_path / "perfect")]) == 0
    assert ("The 3 frames the pipeline restored are identical to the ground truth."
            in capsys.readouterr().out)


def test_compare_rejects_different_frame_counts(clip, tmp_path, capsys):
    short = write_folder(tmp_path / "short", clip["restored"][:-1])
    code = main(["compare", "--output", str(short), "--gt", str(clip["sharp_dir"]),
                 "--report", str(tmp_path / "r1"), "--quiet"])
    assert code == 2
    assert "error: frame counts differ: output has 7 frames, ground truth has 8" in (
        capsys.readouterr().err
    )
    code = main(["compare", "--output", str(short), "--gt", str(clip["root"] / "sharp.mp4"),
                 "--report", str(tmp_path / "r2"), "--quiet"])  # video length found by decoding
    assert code == 2
    assert "frame counts differ" in capsys.readouterr().err
    assert not (tmp_path / "r2" / "frames.csv").exists()


@pytest.mark.parametrize("mode", ["compare", "noref", "temporal"])
def test_a_frame_log_of_another_length_is_refused(clip, tmp_path, capsys, mode):
    """A log cut short (or of a longer run) would name the wrong frames as restored."""
    for name, rows in (("short", pipeline_log_rows()[:5]),
                       ("long", pipeline_log_rows() + [{**pipeline_log_rows()[-1],
                                                        "index": N_FRAMES}])):
        log = write_log(tmp_path / f"{name}.csv", rows)
        sources = (["--input", str(clip["root"] / "blurry.mp4")] if mode == "noref" else
                   ["--gt", str(clip["root"] / "sharp.mp4")])
        code = main([mode, "--output", str(clip["restored_dir"]), *sources, "--log", str(log),
                     "--report", str(tmp_path / f"r_{mode}_{name}"), "--quiet"])
        assert code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"error: frame log {log} has rows for {len(rows)} frames (numbered 0 "
                       f"to {len(rows) - 1}), the video {N_FRAMES}: a log of another run?"]
        assert not (tmp_path / f"r_{mode}_{name}" / "frames.csv").exists()


def test_compare_rejects_different_frame_sizes(clip, tmp_path, capsys):
    small = write_folder(tmp_path / "small", [f[:32, :32] for f in clip["restored"]])
    code = main(["compare", "--output", str(small), "--gt", str(clip["sharp_dir"]),
                 "--report", str(tmp_path / "r"), "--quiet"])
    assert code == 2
    assert "output frame 0: size 32x32 differs from the ground truth's 64x48" in (
        capsys.readouterr().err
    )


# --- noref -------------------------------------------------------------------------------------


@pytest.mark.parametrize("log_name", ["frames.csv", "frames.json"])
def test_noref_reports_sharpness_and_the_logged_references(clip, tmp_path, log_name):
    log = write_log(tmp_path / log_name, pipeline_log_rows())
    assert read_frame_log(log)[4].reference == 3
    report = tmp_path / "report"
    code = main(["noref", "--input", str(clip["root"] / "blurry.mp4"),
                 "--output", str(clip["restored_dir"]), "--log", str(log),
                 "--report", str(report), "--quiet"])
    assert code == 0
    decoded = [frame.image for frame in iter_frames(clip["root"] / "blurry.mp4")]
    rows = read_rows(report)
    assert len(rows) == N_FRAMES
    for i, row in enumerate(rows):
        assert number(row["sharpness_input"]) == pytest.approx(sharpness(decoded[i]), rel=1e-6)
        assert number(row["sharpness_output"]) == pytest.approx(
            sharpness(clip["restored"][i]), rel=1e-6)
        assert row["restored"] == ("1" if i in BLURRY else "0")
        assert number(row["reference"]) == (i - 1 if i in BLURRY else None)
    summary = json.loads((report / "summary.json").read_text())
    assert summary["n_restored"] == len(BLURRY)
    restored_blurry = summary["restored_frames"]["sharpness_output"]["mean"]
    assert restored_blurry > summary["restored_frames"]["sharpness_input"]["mean"]
    page = (report / "report.html").read_text()
    assert "used as references" in page
    assert_self_contained(page, min_images=1 + 2 * 3)  # plot; input, output, reference crops


def test_noref_of_frames_of_another_size_is_one_line(clip, tmp_path, capsys):
    small = write_folder(tmp_path / "small", [frame[::2, ::2] for frame in clip["restored"]])
    code = main(["noref", "--input", str(clip["blurry_dir"]), "--output", str(small),
                 "--report", str(tmp_path / "report"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["error: output frame 0: size 32x24 differs from the input's 64x48"]
    assert not (tmp_path / "report").exists()


def test_a_report_that_would_overwrite_its_own_frame_log_is_refused(clip, tmp_path, capsys):
    log = write_log(tmp_path / "frames.csv", pipeline_log_rows())  # as the README names it
    before = log.read_bytes()
    code = main(["noref", "--input", str(clip["root"] / "blurry.mp4"),
                 "--output", str(clip["restored_dir"]), "--log", str(log),
                 "--report", str(tmp_path), "--quiet"])
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: the report in {tmp_path} would overwrite its input {log}: give --report "
        "another folder"]
    assert log.read_bytes() == before
    assert not (tmp_path / "summary.json").exists()


def test_an_interrupted_evaluation_is_one_line_and_writes_no_report(clip, tmp_path, capsys,
                                                                    monkeypatch):
    from refdeblur_video.evaluate import noref

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(noref, "sharpness", interrupted)
    code = main(["noref", "--input", str(clip["blurry_dir"]), "--output",
                 str(clip["restored_dir"]), "--report", str(tmp_path / "report"), "--quiet"])
    assert code == 130
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("interrupted")
    assert not (tmp_path / "report").exists()


def test_frame_log_reference_dropped_by_the_check_counts_as_none(tmp_path):
    from refdeblur_video.pipeline.framelog import FrameRecord, write_frame_log

    records = [FrameRecord(index=i, pts=i, time_s=0.04 * i, shot=0, sharpness=s, blurry=b,
                           restored=b, reference=r, reference_used=u, second_reference=-1,
                           seconds=0.2 * b)
               for i, s, b, r, u in [(0, 0.5, 0, -1, None), (1, 0.1, 1, 0, 1),
                                     (2, 0.1, 1, 0, 0)]]
    for name in ("frames.csv", "frames.json"):
        write_frame_log(tmp_path / name, records)
        frames = read_frame_log(tmp_path / name)
        assert [(f.restored, f.reference) for f in frames.values()] == [
            (False, None), (True, 0), (True, None)]


def test_frame_log_restored_column_decides_what_the_evaluator_counts(tmp_path):
    # an --all-frames log: a sharp frame that went through the network counts as restored;
    # a log of an earlier version, without the column, counts its blurry frames
    new, old = tmp_path / "new.csv", tmp_path / "old.csv"
    new.write_text("index,blurry,restored,reference\n0,0,1,-1\n1,1,1,0\n2,0,0,-1\n")
    old.write_text("index,blurry,reference\n0,0,-1\n1,1,0\n")
    assert [f.restored for f in read_frame_log(new).values()] == [True, True, False]
    assert [f.restored for f in read_frame_log(old).values()] == [False, True]


def test_frame_log_errors_are_user_errors(tmp_path):
    bad = tmp_path / "log.csv"
    bad.write_text("index,pts\n0,0\n")
    with pytest.raises(UserError, match="lacks the column"):
        read_frame_log(bad)
    video = tmp_path / "out.csv"
    video.write_bytes(b"\x00\x00\x00\x18ftypisom\x80\xff")  # a video given as the log
    with pytest.raises(UserError, match="is no frame log .*: it is not text$"):
        read_frame_log(video)


# --- triplets ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """Two sequences, two triplets each: blurry frames 2 and 3, the sharp frame 0 as reference."""
    root = tmp_path_factory.mktemp("triplets")
    lines = []
    for seq in range(2):
        sharp = make_clip(root / f"s{seq}.mp4", n_frames=4, size=SIZE, seed=seq)
        blurry = make_clip(root / f"b{seq}.mp4", n_frames=4, size=SIZE, blurry={2, 3}, seed=seq)
        for i in (2, 3):
            names = {kind: f"seq{seq}/{kind}{i}.png" for kind in ("blur", "sharp", "ref")}
            (root / f"seq{seq}").mkdir(exist_ok=True)
            write_png(root / names["blur"], blurry[i])
            write_png(root / names["sharp"], sharp[i])
            write_png(root / names["ref"], sharp[0])
            lines.append(json.dumps({**names, "sequence": f"seq{seq}", "offset": -i,
                                     "split": "val" if i == 2 else "train"}))
    path = root / "manifest.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


class ReturnsItsInput:
    """A stand-in network that returns its input; its "reference check" drops the reference
    of every second image of a call. What the evaluator's columns then differ by is the step
    after the network (the reference transfer) and which reference it was given."""

    trained = True

    def restore_floats(self, blurry, references):
        assert all(b.shape == r.shape for b, r in zip(blurry, references, strict=True))
        used = [j % 2 == 0 for j in range(len(blurry))]
        return [b.astype(np.float32) / 255 for b in blurry], used


def test_unrelated_references_come_from_another_sequence(manifest):
    triplets = read_manifest(manifest)
    partners = unrelated_partners(triplets)
    assert [p.sequence for p in partners] == ["seq1", "seq1", "seq0", "seq0"]
    assert partners == unrelated_partners(triplets)  # deterministic
    with pytest.raises(UserError, match="two or more sequences"):
        unrelated_partners(triplets[:2])


def test_triplets_score_model_and_ablations(manifest, tmp_path):
    evaluation = evaluate_triplets(
        manifest, "stand-in", self_ref=True, unrelated_ref=True, network_only=True, quiet=True,
        restorer=ReturnsItsInput(), batch_size=2,
    )
    assert len(evaluation.rows) == 4

    def refined(blurry, reference):  # the main job's step after the network
        return Refiner()(blurry.astype(np.float32) / 255, blurry, reference)

    triplets = read_manifest(manifest)
    for row, triplet, partner in zip(evaluation.rows, triplets, unrelated_partners(triplets),
                                     strict=True):
        blurry, sharp, ref = (load_image(p) for p in (triplet.blur, triplet.sharp, triplet.ref))
        assert row["psnr_input"] == pytest.approx(psnr(blurry, sharp))
        kept = row["triplet"] % 2 == 0  # batches of two: the second one's is dropped
        assert row["ref_used_model"] == row["ref_used_unrelated_ref"] == int(kept)
        # the transfer from the reference, none where the check dropped it
        model = refined(blurry, ref) if kept else blurry
        assert row["psnr_model"] == pytest.approx(psnr(model, sharp))
        assert kept is (row["psnr_model"] != pytest.approx(row["psnr_input"]))
        assert row["psnr_self_ref"] == pytest.approx(psnr(blurry, sharp))  # nothing to transfer
        assert "ref_used_self_ref" not in row
        unrelated = refined(blurry, load_image(partner.ref)) if kept else blurry  # same size
        assert row["psnr_unrelated_ref"] == pytest.approx(psnr(unrelated, sharp))
        assert row["psnr_network_only"] == pytest.approx(psnr(blurry, sharp))
    assert evaluation.summary["references_dropped"] == {
        "model": 2, "unrelated_ref": 2, "network_only": 2}
    assert any("2 of 4 references (model)" in note for note in evaluation.notes)
    per_sequence = evaluation.summary["per_sequence"]
    assert list(per_sequence) == ["seq0", "seq1"] and per_sequence["seq0"]["n"] == 2


def test_the_main_jobs_column_leaves_frames_as_sharp_as_their_reference(tmp_path):
    """``pipeline``: the input where the blurry frame is already at least 0.8 as sharp as
    its reference (the main job leaves such a frame untouched), else the model's output;
    the ratio checked against a Laplacian variance computed here."""
    from refdeblur_video.data.manifest import Triplet, write_manifest
    from refdeblur_video.image_files import from_float, write_png

    rng = np.random.default_rng(3)
    scene = cv2.GaussianBlur(rng.random((104, 136, 3)).astype(np.float32), (0, 0), 1.0)
    sharp = from_float(scene[4:100, 4:132], np.uint8)
    reference = from_float(scene[2:98, 6:134], np.uint8)
    triplets = []
    for k, sigma in enumerate((0.4, 3.0)):  # barely blurred, then strongly
        files = {n: tmp_path / f"{n}{k}.png" for n in ("blur", "sharp", "ref")}
        write_png(files["blur"], cv2.GaussianBlur(sharp, (0, 0), sigma))
        write_png(files["sharp"], sharp)
        write_png(files["ref"], reference)
        triplets.append(Triplet(*(str(files[n]) for n in ("blur", "sharp", "ref")),
                                f"seq{k}", 2, "val"))
    manifest = write_manifest(tmp_path / "manifest.jsonl", triplets)
    evaluation = evaluate_triplets(manifest, "stand-in", quiet=True, examples=0,
                                   restorer=ReturnsItsInput())

    def laplacian_variance(image: np.ndarray) -> float:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
        return float(cv2.Laplacian(grey, cv2.CV_64F, ksize=1,
                                   borderType=cv2.BORDER_REFLECT).var())

    kept = []
    for row, triplet in zip(evaluation.rows, triplets, strict=True):
        blurry, ref = load_image(triplet.blur), load_image(triplet.ref)
        assert row["sharpness_ratio"] == pytest.approx(
            laplacian_variance(blurry) / laplacian_variance(ref), rel=0.02)
        left = row["sharpness_ratio"] >= 0.8
        kept.append(left)
        source = "input" if left else "model"
        assert row["psnr_pipeline"] == row[f"psnr_{source}"]
        assert row["ssim_pipeline"] == row[f"ssim_{source}"]
    assert kept == [True, False]
    assert evaluation.rows[0]["psnr_model"] != pytest.approx(evaluation.rows[0]["psnr_input"])
    mean = evaluation.summary["metrics"]["psnr_pipeline"]["mean"]
    assert mean == pytest.approx((evaluation.rows[0]["psnr_input"]
                                  + evaluation.rows[1]["psnr_model"]) / 2)


def test_the_eval_says_its_warnings_as_its_own_lines(manifest, tmp_path):
    """A model YAML has no weights: the warning is a `warning:` line, as refdeblur-video
    says it, not Python's (with its file, line number and source line)."""
    import subprocess
    import sys

    (tmp_path / "tiny.yaml").write_text("channels: [8, 8, 8]\nn_resblocks: 1\n"
                                        "ref_channels: [4, 4, 4]\nphi_channels: [4, 4, 4]\n"
                                        "sffm_hidden: [4, 4]\n")
    done = subprocess.run(
        [sys.executable, "-m", "refdeblur_video.evaluate.cli", "triplets", str(manifest),
         "--model", str(tmp_path / "tiny.yaml"), "--device", "cpu", "--report",
         str(tmp_path / "report"), "--quiet"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("warning: no trained weights"), done.stderr
    assert "UserWarning" not in done.stderr and ".py:" not in done.stderr


def test_triplets_cli_with_the_lite_model(manifest, tmp_path, capsys):
    report = tmp_path / "report"
    code = main(["triplets", str(manifest), "--model", "lite", "--device", "cpu",
                 "--split", "val", "--ablation-self-ref", "--ablation-unrelated-ref",
                 "--report", str(report), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "model, unrelated reference" in out and "The reference check replaced" in out
    rows = read_rows(report)
    assert [r["sequence"] for r in rows] == ["seq0", "seq1"]  # the val split only
    assert all(r["ref_used_model"] in ("0", "1") for r in rows)
    summary = json.loads((report / "summary.json").read_text())
    assert set(summary["per_sequence"]) == {"seq0", "seq1"}
    assert summary["references_dropped"]["model"] == sum(
        r["ref_used_model"] == "0" for r in rows)
    assert_self_contained((report / "report.html").read_text(), min_images=2 + 2 * 6)
    assert main(["triplets", str(manifest), "--model", "lite", "--device", "cpu",
                 "--split", "val", "--reference-check", "0", "--report", str(report),
                 "--quiet", "--overwrite"]) == 0
    assert "The reference check is off" in capsys.readouterr().out


def test_no_examples_asked_means_none_picked():
    from refdeblur_video.evaluate.runner import pick_extremes

    rows = [{"gain": g} for g in (0.5, -1.0, 2.0, None, 1.0)]
    assert pick_extremes(rows, "gain", 0) == []
    assert pick_extremes(rows, "gain", 1) == [("best", 2), ("worst", 1)]
    assert pick_extremes(rows, "gain", 2) == [("best", 2), ("best", 4), ("worst", 1),
                                              ("worst", 0)]
    # more asked for than there are rows: each named for its own end, the middle one best
    assert pick_extremes(rows, "gain", 50) == [("best", 2), ("best", 4), ("worst", 1),
                                               ("worst", 0)]
    assert pick_extremes(rows[:3], "gain", 50) == [("best", 2), ("best", 0), ("worst", 1)]
    assert pick_extremes(rows[:1], "gain", 3) == [("best", 0)]


def test_a_batch_of_no_triplets_is_refused(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["triplets", "manifest.jsonl", "--batch-size", "0"])
    assert stop.value.code == 2
    assert "--batch-size: must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("mode", [["compare", "--output", "o", "--gt", "g"],
                                  ["triplets", "manifest.jsonl"], ["noref", "i", "o"],
                                  ["generators", "valdir"]])
def test_a_negative_number_of_examples_is_refused_by_every_mode_that_shows_them(mode, capsys):
    with pytest.raises(SystemExit) as stop:
        main([*mode, "--report", "r", "--examples", "-1"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "--examples: must be at least 0, not -1" in err[0]


def test_a_report_never_replaces_an_earlier_one_or_lands_among_other_files(clip, tmp_path,
                                                                           capsys):
    """Before, a second run replaced the first run's fuller report without a word, and a
    report was written into any folder, the ground truth's frames among them."""
    args = ["compare", "--output", str(clip["restored_dir"]), "--gt", str(clip["sharp_dir"]),
            "--quiet", "--report"]
    report = tmp_path / "report"
    assert main([*args, str(report), "--input", str(clip["blurry_dir"])]) == 0
    before = {p.name: p.read_bytes() for p in report.iterdir()}
    capsys.readouterr()
    assert main([*args, str(report)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "holds an earlier report: --overwrite replaces it" in err[0]
    assert {p.name: p.read_bytes() for p in report.iterdir()} == before
    frames = sorted(p.name for p in clip["sharp_dir"].iterdir())
    assert main([*args, str(clip["sharp_dir"]), "--overwrite"]) == 2
    assert "holds other files" in capsys.readouterr().err
    assert sorted(p.name for p in clip["sharp_dir"].iterdir()) == frames
    assert main([*args, str(report), "--overwrite"]) == 0
    assert (report / "frames.csv").read_bytes() != before["frames.csv"]  # no gain column


def test_an_overwritten_generator_table_leaves_no_report_of_a_generator_it_left_out(tmp_path):
    """--only shake --overwrite over a table of three generators: the rs6dof and average
    reports were left beside a generators.json that no longer listed them."""
    from refdeblur_video.evaluate.generators import written_files
    from refdeblur_video.evaluate.report import check_report_folder, drop_stale, report_paths

    report = tmp_path / "eval"
    for name in ("rs6dof", "shake", "average"):
        for path in report_paths(report / name).values():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("earlier")
    (report / "generators.json").write_text("{}")
    (report / ".DS_Store").write_text("a viewer's")  # hidden: neither foreign nor refused
    with pytest.raises(UserError, match="holds an earlier report"):
        check_report_folder(report, overwrite=False)
    earlier = check_report_folder(report, overwrite=True)
    assert len(earlier) == 10
    for path in written_files(report, {"generators": [{"name": "shake"}]}):
        path.write_text("new")
    drop_stale(earlier, written_files(report, {"generators": [{"name": "shake"}]}))
    assert sorted(p.name for p in report.iterdir()) == [".DS_Store", "generators.json", "shake"]
    assert {p.read_text() for p in (report / "shake").iterdir()} == {"new"}

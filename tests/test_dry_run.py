"""``--dry-run``: the plan of a run, from the outside (a fresh program) and against a run."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import torch

from refdeblur_video.model import InferenceSettings, ModelConfig, RefDeblurNet
from refdeblur_video.model.restorer import Restorer
from refdeblur_video.pipeline import deblur_video
from refdeblur_video.pipeline.dry_run import frame_ranges, plan

TINY = ModelConfig(name="tiny", channels=(8, 8, 8), n_resblocks=1, ref_channels=(4, 4, 4),
                   phi_channels=(4, 4, 4), sffm_hidden=(4, 4))
TINY_MATCH = InferenceSettings(match_radius=2).matching

# a fresh program; prints its exit status, whether PyTorch was loaded, and its files
HARNESS = """
import json, os, sys
from refdeblur_video.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as stop:  # argparse's own refusals
    code = stop.code
print(json.dumps([code, "torch" in sys.modules, sorted(os.listdir("."))]))
"""


def run_program(args: list[str], cwd) -> tuple[int, bool, list[str], str, str]:
    done = subprocess.run([sys.executable, "-c", HARNESS, *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.strip(), done.stderr
    *said, last = done.stdout.strip().splitlines()
    code, torch_loaded, files = json.loads(last)
    return code, torch_loaded, files, "\n".join(said), done.stderr


def test_a_dry_run_names_the_blurry_frames_and_writes_only_its_plan(make_test_clip, tmp_path):
    make_test_clip("shaky.mp4", n_frames=30, blurry={6, 7, 8, 20})
    code, torch_loaded, files, out, err = run_program(
        ["shaky.mp4", "--dry-run", "--log", "plan.csv"], tmp_path)
    assert (code, err) == (0, "")
    assert not torch_loaded  # no model loads
    assert files == ["plan.csv", "shaky.mp4"]
    assert out.startswith("shaky.mp4: 30 frames, 4 would be restored (frames 6-8, 20); "
                          "planned in ")
    with (tmp_path / "plan.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["index"]) for r in rows if r["blurry"] == "1"] == [6, 7, 8, 20]
    # would be sent to the network, as a run's log says it; nothing checked or timed
    assert [int(r["index"]) for r in rows if r["restored"] == "1"] == [6, 7, 8, 20]
    assert {r["reference_used"] for r in rows} == {""}
    planned = {int(r["index"]): int(r["reference"]) for r in rows if r["blurry"] == "1"}
    assert all(ref not in planned and abs(ref - i) <= 5 for i, ref in planned.items())
    # without --dry-run the output is needed, as before
    code, _, files, _, err = run_program(["shaky.mp4"], tmp_path)
    assert code == 2 and "required: output" in err and files == ["plan.csv", "shaky.mp4"]


def test_the_plan_is_what_a_run_restores(make_test_clip, tmp_path):
    clip = make_test_clip("clip.mkv", n_frames=24, blurry={3, 4, 15}, cut_at=12)
    torch.manual_seed(0)
    net = RefDeblurNet(TINY, TINY_MATCH)
    restorer = Restorer(net, torch.device("cpu"), trained=True)
    deblur_video(clip.path, tmp_path / "out.mkv", restorer, quiet=True, reference_check=0,
                 log=str(tmp_path / "run.json"))
    [planned] = plan(str(clip.path), quiet=True, reference_check=0,
                     log=str(tmp_path / "plan.json"))
    ran = json.loads((tmp_path / "run.json").read_text())["frames"]
    assert planned.to_restore == [r["index"] for r in ran if r["restored"]] == [3, 4, 15]
    assert planned.shots == 2
    rows = json.loads((tmp_path / "plan.json").read_text())["frames"]
    for kept, row in zip(ran, rows, strict=True):
        assert {k: kept[k] for k in ("index", "pts", "shot", "sharpness", "blurry")} == \
            {k: row[k] for k in ("index", "pts", "shot", "sharpness", "blurry")}
        if kept["restored"]:  # the run borrowed from a planned reference
            assert kept["reference"] in (row["reference"], row["second_reference"])


def test_a_dry_run_of_a_folder_plans_each_video_with_its_own_plan(make_test_clip, tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "plans").mkdir()
    make_test_clip("clips/a.mp4", n_frames=12, blurry={5})
    make_test_clip("clips/b.mp4", n_frames=12)
    (tmp_path / "clips" / "c.mp4").write_bytes(b"not a video")
    code, _, _, out, err = run_program(["clips", "--dry-run", "--log", "plans/p.json"],
                                       tmp_path)
    assert code == 2  # one file could not be read; the others were planned
    lines = out.splitlines()
    assert lines[0].startswith("clips/a.mp4: 12 frames, 1 would be restored (frames 5)")
    assert lines[1].startswith("clips/b.mp4: 12 frames, 0 would be restored")
    assert lines[2] == "clips/c.mp4: not planned (see the error above)"
    assert err.count("error: ") == 1
    assert sorted(p.name for p in (tmp_path / "plans").iterdir()) == ["a.json", "b.json"]


def test_a_photo_has_no_plan(tmp_path):
    from refdeblur_video.errors import UserError
    from refdeblur_video.video.synthetic import make_image

    make_image(tmp_path / "p.png")
    with pytest.raises(UserError, match="a photo is restored as a whole"):
        plan(str(tmp_path / "p.png"))


def test_frame_ranges_name_runs_and_count_the_rest():
    assert frame_ranges([20, 6, 7, 8]) == "6-8, 20"
    assert frame_ranges(list(range(0, 40, 2)), shown=3) == "0, 2, 4 and 17 more runs"
    assert frame_ranges([1, 2, 9], shown=1) == "1-2 and 1 more run"


def test_a_dry_run_refuses_at_once_what_a_run_would(make_test_clip, tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "plans").mkdir()
    make_test_clip("clips/a.mp4", n_frames=8, blurry={3})
    make_test_clip("clips/b.mp4", n_frames=8)
    (tmp_path / "plans" / "b.csv").write_text("an earlier plan\n")
    for args, says in (([], "--log plans/b.csv already exists"),
                       (["--ref", "nope.png"], "reference image (--ref) not found"),
                       (["--model", "nope.safetensors"], "nope.safetensors")):
        code, _, _, out, err = run_program(["clips", "--dry-run", "--log", "plans/p.csv",
                                            *args], tmp_path)
        assert code == 2 and out == "" and says in err, (args, err)
        assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in (tmp_path / "plans").iterdir()) == ["b.csv"]


def test_every_frame_is_planned_under_all_frames_and_the_api_plans_too(make_test_clip,
                                                                       tmp_path):
    from refdeblur_video.pipeline import deblur

    clip = make_test_clip("clip.mp4", n_frames=10, blurry={4})
    [planned] = deblur(str(clip.path), str(tmp_path / "out.mp4"), dry_run=True,
                       all_frames=True, quiet=True, log=str(tmp_path / "plan.json"))
    assert planned.to_restore == list(range(10))
    assert not (tmp_path / "out.mp4").exists()  # a plan writes no video
    rows = json.loads((tmp_path / "plan.json").read_text())["frames"]
    assert [r["restored"] for r in rows] == [1] * 10
    assert [r["blurry"] for r in rows] == [int(i == 4) for i in range(10)]


@pytest.mark.parametrize("output, args", [("out.mp4", ["--codec", "no-such-encoder"]),
                                          ("out.ts", ["--codec", "ffv1"]),
                                          ("out.mp4", ["--crf", "99"]),
                                          ("out.xyz", []),
                                          ("taken.mp4", [])])
def test_a_dry_run_with_an_output_refuses_what_the_run_refuses(make_test_clip, tmp_path,
                                                               output, args):
    make_test_clip("clip.mp4", n_frames=6, blurry={3})
    (tmp_path / "taken.mp4").write_bytes(b"an earlier output")
    runs = [run_program(["clip.mp4", output, *args, *dry], tmp_path)
            for dry in (["--dry-run"], [])]
    (code, torch_loaded, files, out, err), (run_code, _, run_files, _, run_err) = runs
    assert not torch_loaded and code == run_code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err == run_err  # the run's own words
    assert files == run_files == ["clip.mp4", "taken.mp4"]


def test_a_dry_run_into_a_folder_leaves_out_what_a_run_would_skip(make_test_clip, tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "done").mkdir()
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        make_test_clip(f"clips/{name}", n_frames=8, blurry={3})
    (tmp_path / "done" / "a.mp4").hardlink_to(tmp_path / "clips" / "a.mp4")  # finished
    make_test_clip("done/b.mp4", n_frames=3)  # not made from clips/b.mp4
    code, torch_loaded, _, out, err = run_program(["clips", "done", "--dry-run"], tmp_path)
    assert code == 2 and not torch_loaded
    assert out.splitlines() == [
        "clips/a.mp4: not planned: done/a.mp4 is already done (a run leaves it; "
        "--overwrite makes it again)",
        "clips/b.mp4: not planned (see the error above)",
        out.splitlines()[2]]
    assert out.splitlines()[2].startswith("clips/c.mp4: 8 frames, 1 would be restored")
    assert "done/b.mp4 exists but is not made from clips/b.mp4 (frames 3 in it" in err
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["a.mp4", "b.mp4"]
    # an output folder that does not exist yet is not made by a plan
    code, _, files, _, _ = run_program(["clips", "new/", "--dry-run"], tmp_path)
    assert code == 0 and "new" not in files

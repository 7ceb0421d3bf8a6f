"""tools/recipes/judge.py: models scored on several validation draws, compared with the first."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from refdeblur_video.data.manifest import Triplet, write_manifest
from refdeblur_video.evaluate.metrics import psnr
from refdeblur_video.image_files import write_png
from refdeblur_video.model import RefDeblurNet, load_model, save_checkpoint
from refdeblur_video.model.config import parse_config

ROOT = Path(__file__).resolve().parent.parent
TINY = {"channels": [8, 8, 8], "n_resblocks": 1, "ref_channels": [4, 4, 4],
        "phi_channels": [4, 4, 4], "sffm_hidden": [4, 4], "match_radius": 2}


def _script():
    spec = importlib.util.spec_from_file_location("judge", ROOT / "tools/recipes/judge.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model(path: Path, seed: int) -> str:
    torch.manual_seed(seed)
    config, settings = parse_config(TINY)
    save_checkpoint(path, RefDeblurNet(config, settings.matching), config, settings=settings)
    return str(path)


def _draw(folder: Path, seed: int) -> Path:
    """A validation draw of one generator with two 64 x 96 triplets."""
    rng = np.random.default_rng(seed)
    triplets = []
    for k in range(2):
        sharp = (rng.random((64, 96, 3)) * 255).astype(np.uint8)
        files = {name: folder / "shake" / f"{name}{k}.png" for name in ("blur", "sharp", "ref")}
        write_png(files["sharp"], sharp)
        write_png(files["blur"], cv2.GaussianBlur(sharp, (0, 0), 2.0))
        write_png(files["ref"], np.roll(sharp, 2, axis=1))
        triplets.append(Triplet(*(str(files[n]) for n in ("blur", "sharp", "ref")),
                                f"seq{k}", 1, "val"))
    write_manifest(folder / "shake" / "manifest.jsonl", triplets)
    (folder / "generators.json").write_text(json.dumps({"generators": [
        {"name": "shake", "left_out": False, "manifest": "shake/manifest.jsonl"}]}))
    return folder


def test_models_are_scored_on_every_draw_and_compared_with_the_first(tmp_path, capsys):
    judge = _script()
    first, second = _model(tmp_path / "a.safetensors", 0), _model(tmp_path / "b.safetensors", 1)
    draws = [_draw(tmp_path / "validation", 0), _draw(tmp_path / "validation_seed1", 1)]
    report = tmp_path / "judge.json"
    assert judge.main([second, "--baseline", first, "--draws", *map(str, draws),
                       "--cache", str(tmp_path / "cache"), "--json", str(report)]) == 0
    results = json.loads(report.read_text())
    # the network alone, checked against the model run here, triplet by triplet
    for model in (first, second):
        restorer = load_model(model, "cpu", reference_check=0.0)
        for draw in draws:
            scores = []
            for k in range(2):
                read = [cv2.imread(str(draw / "shake" / f"{n}{k}.png"))[..., ::-1]
                        for n in ("blur", "sharp", "ref")]
                out = restorer.restore_floats([read[0].copy()], [read[2].copy()])[0][0]
                scores.append(psnr(np.round(np.clip(out, 0, 1) * 255).astype(np.uint8),
                                   read[1]))
            row = results[model][str(draw)]["shake"]
            assert abs(row["network"] - np.mean(scores)) < 0.01
    # the printed differences: the first model's are nil, the second's its mean minus it
    lines = [line for line in capsys.readouterr().out.splitlines()
             if line.startswith("shake ")]
    rows = {(line.split()[1], line.split()[2]): line.split() for line in lines}
    assert rows[(first[-40:], "network")][-1] == "+0.00"
    means = [np.mean([results[m][str(d)]["shake"]["network"] for d in draws])
             for m in (first, second)]
    assert abs(float(rows[(second[-40:], "network")][-1]) - (means[1] - means[0])) < 0.006
    # a second judgement reads the network's outputs from the cache
    cached = sorted(p.name for p in (tmp_path / "cache").rglob("*.npz"))
    assert len(cached) == 2 * 2 * 2

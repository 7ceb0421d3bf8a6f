"""tools/recipes/blend_weights.py: the interpolation, the metadata, refusals."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from refdeblur_video.model import RefDeblurNet, load_model, save_checkpoint
from refdeblur_video.model.config import parse_config
from refdeblur_video.model.weights import read_checkpoint

ROOT = Path(__file__).resolve().parent.parent
TINY = {"channels": [8, 8, 8], "n_resblocks": 1, "ref_channels": [4, 4, 4],
        "phi_channels": [4, 4, 4], "sffm_hidden": [4, 4], "match_radius": 2,
        "prealign": "homography"}


def _script():
    spec = importlib.util.spec_from_file_location(
        "blend_weights", ROOT / "tools/recipes/blend_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _saved(path: Path, seed: int, **changes) -> Path:
    torch.manual_seed(seed)
    config, settings = parse_config({**TINY, **changes})
    save_checkpoint(path, RefDeblurNet(config, settings.matching), config, settings=settings)
    return path


def test_every_weight_is_interpolated_and_the_first_config_is_kept(tmp_path):
    a = _saved(tmp_path / "a.safetensors", 0)
    b = _saved(tmp_path / "b.safetensors", 1, name="renamed", match_mode="identity")
    out = tmp_path / "mix.safetensors"
    assert _script().main([str(a), str(b), "--alpha", "0.25", "--out", str(out)]) == 0
    _, state_a, meta_a = read_checkpoint(a)
    _, state_b, _ = read_checkpoint(b)
    _, mixed, meta = read_checkpoint(out)
    assert mixed.keys() == state_a.keys()
    for key, value in mixed.items():
        expected = 0.75 * state_a[key].double() + 0.25 * state_b[key].double()
        assert torch.allclose(value.double(), expected, atol=1e-6), key
    assert meta["config"] == meta_a["config"] and "x 0.75" in meta["blend"]
    assert load_model(out, "cpu").settings.prealign == "homography"


def test_another_architecture_or_a_bad_alpha_is_one_line(tmp_path, capsys):
    a = _saved(tmp_path / "a.safetensors", 0)
    wider = _saved(tmp_path / "w.safetensors", 1, channels=[8, 8, 16])
    out = tmp_path / "mix.safetensors"
    assert _script().main([str(a), str(wider), "--alpha", "0.5", "--out", str(out)]) == 2
    assert _script().main([str(a), str(a), "--alpha", "1.5", "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "same architecture" in lines[0] and "alpha" in lines[1]
    assert not out.exists()


def test_a_deeper_second_network_blends_with_its_added_blocks_scaled(tmp_path):
    a = _saved(tmp_path / "a.safetensors", 0, n_resblocks=[1, 1, 1])
    b = _saved(tmp_path / "b.safetensors", 1, n_resblocks=[1, 1, 3], name="deep")
    out, start = tmp_path / "mix.safetensors", tmp_path / "start.safetensors"
    script = _script()
    assert script.main([str(a), str(b), "--alpha", "0.25", "--out", str(out)]) == 0
    assert script.main([str(a), str(b), "--alpha", "0", "--out", str(start)]) == 0
    _, state_a, _ = read_checkpoint(a)
    _, state_b, _ = read_checkpoint(b)
    config, mixed, _ = read_checkpoint(out)
    assert list(config.n_resblocks) == [1, 1, 3] and mixed.keys() == state_b.keys()
    for key, value in mixed.items():
        if key in state_a:
            expected = 0.75 * state_a[key] + 0.25 * state_b[key]
        elif ".body.2." in key:  # an added block's residual, scaled
            expected = 0.25 * state_b[key]
        else:
            expected = state_b[key]
        assert torch.allclose(value, expected, atol=1e-6), key
    # at alpha 0 the added blocks are identities: the deeper file restores as A does
    torch.manual_seed(2)
    blurry, reference = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        expected = load_model(a, "cpu").model(blurry, reference)
        grown = load_model(start, "cpu")
        assert grown.settings.prealign == "homography"
        assert torch.allclose(grown.model(blurry, reference), expected, atol=1e-5)

"""The network: shapes, identity at initialisation, parameter counts, configs, checkpoints."""

import dataclasses
import os
import re

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from refdeblur_video.errors import UserError
from refdeblur_video.model import (
    InferenceSettings,
    ModelConfig,
    RefDeblurNet,
    Restorer,
    count_parameters,
    load_config,
    load_model,
    read_checkpoint,
    save_checkpoint,
)
from refdeblur_video.model.config import load_model_yaml
from refdeblur_video.model.phi import MatchingEncoder, load_vgg19_weights
from refdeblur_video.model.restorer import images_to_tensor
from refdeblur_video.model.weights import read_checkpoint_settings

TINY = ModelConfig(
    name="tiny", channels=(8, 8, 16), n_resblocks=1, ref_channels=(4, 8, 8),
    phi_channels=(4, 8, 8), sffm_hidden=(4, 4),
)
TINY_MATCH = InferenceSettings(match_radius=2).matching


def test_paper_config_matches_table1_parameter_count():
    count = count_parameters(RefDeblurNet(load_config("paper")))
    assert abs(count / 14.09e6 - 1) < 0.03, count


def test_lite_is_much_smaller_than_paper():
    assert count_parameters(RefDeblurNet(load_config("lite"))) < 2_000_000


@pytest.mark.parametrize("size", [(17, 23), (32, 32), (45, 61)])
def test_any_frame_size_and_identity_at_init(size):
    net = RefDeblurNet(TINY, TINY_MATCH).eval()
    blurry = torch.rand(2, 3, *size)
    with torch.no_grad():
        out = net(blurry, torch.rand(2, 3, *size))
    assert out.shape == blurry.shape
    assert torch.equal(out, blurry)


def test_training_changes_output_and_gradients_reach_every_part():
    torch.manual_seed(0)
    net = RefDeblurNet(TINY, TINY_MATCH)
    blurry, ref, sharp = torch.rand(3, 2, 3, 24, 24).unbind(0)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        loss = (net(blurry, ref) - sharp).abs().mean()
        loss.backward()
        opt.step()
    for name in ("enc1", "sffm2", "ref1", "ream1", "phi", "dec1", "tail"):
        grads = [p.grad for p in getattr(net, name).parameters()]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), name
    with torch.no_grad():
        assert not torch.equal(net(blurry, ref), blurry)


def test_global_mode_gives_same_output_when_window_covers_map():
    torch.manual_seed(1)
    net = RefDeblurNet(TINY, InferenceSettings(match_radius=8).matching)
    for p in net.parameters():
        p.data.normal_(0, 0.1)
    net.eval()
    blurry, ref = torch.rand(2, 1, 3, 20, 28).unbind(0)
    with torch.no_grad():
        local = net(blurry, ref)
        net.matching = dataclasses.replace(net.matching, mode="global")
        global_ = net(blurry, ref)
    assert torch.allclose(local, global_, atol=1e-5)


def test_yaml_configs_load_and_reject_unknown_keys(tmp_path):
    assert load_config("lite").name == "lite"
    bad = tmp_path / "bad.yaml"
    bad.write_text("channels: [8, 8, 8]\nwidth: 3\n")
    with pytest.raises(UserError, match="unknown keys width"):
        load_config(bad)
    bad.write_text("chanels: [8, 8, 8]\n")
    with pytest.raises(UserError, match=r"unknown keys chanels \(did you mean channels\?\)"):
        load_config(bad)
    with pytest.raises(UserError, match="unknown model config"):
        load_config("nope")


@pytest.mark.parametrize("line, says", [
    ("channels: abc", "channels must be 3 positive integers, not 'abc'"),
    ('channels: "488"', "channels must be 3 positive integers, not '488'"),  # not 4, 8, 8
    ("channels: [8, 8, true]", "channels must be 3 positive integers"),
    ("n_resblocks: two", "n_resblocks must be one or three positive integers"),
    ("fusion_gate: maybe", "fusion_gate must be true or false, not 'maybe'"),
    ("match_radius: four", "match_radius must be a whole number, not 'four'"),
    ("reference_check: high", "reference_check must be a number, not 'high'"),
])
def test_a_model_yaml_of_the_wrong_types_is_one_line_naming_the_key(tmp_path, line, says):
    from refdeblur_video.model.config import load_model_yaml

    good = {"channels": "[8, 8, 8]", "n_resblocks": "1", "fusion_gate": "true",
            "match_radius": "4"}
    key = line.partition(":")[0]
    text = "".join(f"{k}: {v}\n" for k, v in good.items() if k != key) + line + "\n"
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(UserError, match=re.escape(f"model config: {says}")):
        load_model_yaml(tmp_path / "bad.yaml")
    (tmp_path / "good.yaml").write_text("".join(f"{k}: {v}\n" for k, v in good.items()))
    config, settings = load_model_yaml(tmp_path / "good.yaml")
    assert (config.channels, config.n_resblocks, config.fusion_gate) == (
        (8, 8, 8), (1, 1, 1), True)
    assert settings.match_radius == 4


def test_checkpoint_round_trip_keeps_config_and_weights(tmp_path):
    net = RefDeblurNet(TINY, TINY_MATCH)
    for p in net.parameters():
        p.data.normal_()
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(path, net, TINY, extra={"step": "7"})
    config, state, metadata = read_checkpoint(path)
    assert config == TINY and metadata["step"] == "7"
    assert read_checkpoint_settings(path) == InferenceSettings(match_radius=2)
    restorer = load_model(path, "cpu")
    assert restorer.trained
    for key, value in net.state_dict().items():
        assert torch.equal(restorer.model.state_dict()[key], value)
    mask = os.umask(0o022)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # as any other output, not private


def test_checkpoint_with_other_config_is_refused(tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(path, RefDeblurNet(TINY, TINY_MATCH), TINY)
    from refdeblur_video.model.weights import load_weights_into

    other = TINY.replace(channels=(8, 8, 8))
    with pytest.raises(UserError, match="different model"):
        load_weights_into(RefDeblurNet(other, TINY_MATCH), other, path)


def test_non_safetensors_checkpoint_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "model.safetensors"
    torch.save({"a": torch.zeros(1)}, path)  # a pickle wearing the wrong suffix
    with pytest.raises(UserError, match="not a safetensors"):
        load_model(path, "cpu")
    plain = tmp_path / "plain.safetensors"
    save_file({"a": torch.zeros(1)}, str(plain))
    with pytest.raises(UserError, match="no model config"):
        load_model(plain, "cpu")


def test_untrained_model_warns_and_returns_input():
    with pytest.warns(UserWarning, match="no trained weights"):
        restorer = load_model(TINY, "cpu", match_radius=2)
    frame = np.random.default_rng(0).integers(0, 256, (30, 41, 3), dtype=np.uint8)
    assert np.array_equal(restorer.restore_images([frame], [frame])[0], frame)
    deep = (frame.astype(np.uint16) * 257)
    assert np.array_equal(restorer.restore_images([deep], [deep])[0], deep)


def test_vgg19_initialisation_from_torchvision_layout(tmp_path):
    torch.manual_seed(0)
    state = {}
    shapes = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128)}
    for index, (out_ch, in_ch) in shapes.items():
        state[f"features.{index}.weight"] = torch.randn(out_ch, in_ch, 3, 3)
        state[f"features.{index}.bias"] = torch.randn(out_ch)
    state["classifier.0.weight"] = torch.randn(4, 4)
    save_file(state, str(tmp_path / "vgg19.safetensors"))
    encoder = MatchingEncoder((64, 128, 256))
    load_vgg19_weights(encoder, tmp_path / "vgg19.safetensors")
    assert torch.equal(encoder.features[10].weight, state["features.10.weight"])
    with pytest.raises(UserError, match="needs"):
        load_vgg19_weights(MatchingEncoder((8, 16, 16)), tmp_path / "vgg19.safetensors")


def test_vgg19_weights_that_are_pickled_or_broken_are_one_error(tmp_path):
    """A torchvision .pth is pickled: refused, not loaded (nothing is unpickled); a
    truncated safetensors file is a UserError, not safetensors' own traceback."""
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "vgg19.pth")
    with pytest.raises(UserError, match="must be a .safetensors file"):
        load_vgg19_weights(MatchingEncoder((64, 128, 256)), tmp_path / "vgg19.pth")
    save_file({"features.0.weight": torch.zeros(64, 3, 3, 3)}, str(tmp_path / "v.safetensors"))
    (tmp_path / "cut.safetensors").write_bytes((tmp_path / "v.safetensors").read_bytes()[:40])
    with pytest.raises(UserError, match="is not a safetensors VGG19 state dict"):
        load_vgg19_weights(MatchingEncoder((64, 128, 256)), tmp_path / "cut.safetensors")


def test_tiled_restore_matches_whole_frame():
    torch.manual_seed(3)
    net = RefDeblurNet(TINY, TINY_MATCH)
    for p in net.parameters():
        p.data.normal_(0, 0.05)
    from refdeblur_video.model.restorer import Restorer

    whole = Restorer(net, torch.device("cpu"), trained=True, tile=0)
    tiled = Restorer(net, torch.device("cpu"), trained=True, tile=48)
    blurry, ref = torch.rand(2, 1, 3, 64, 100).unbind(0)
    a, b = whole.restore(blurry, ref), tiled.restore(blurry, ref)
    assert a.shape == b.shape
    # tiles see less context at their borders, but blending keeps the result close
    assert (a - b).abs().mean() < 0.05
    assert tiled.tile_size_for(64, 100) == 48 and whole.tile_size_for(64, 100) is None



@pytest.mark.parametrize(("tile", "check"), [(48, 0.85), (48, 0.0), (0, 0.85)])
def test_progress_is_reported_once_per_tile_of_the_check_and_of_the_network(tile, check):
    from refdeblur_video.model.restorer import Restorer
    from refdeblur_video.model.tiling import tile_starts

    torch.manual_seed(3)
    net = RefDeblurNet(TINY, TINY_MATCH)
    restorer = Restorer(net, torch.device("cpu"), trained=True, tile=tile,
                        reference_check=check)
    # counted independently: tile starts along each side, overlap 32 (capped at half a tile)
    tiles = len(tile_starts(64, 48, 24)) * len(tile_starts(100, 48, 24)) if tile else 1
    expected = tiles * (2 if check else 1)
    assert restorer.steps_for(64, 100) == expected
    steps = []
    blurry, ref = torch.rand(2, 1, 3, 64, 100).unbind(0)
    with restorer.reporting(lambda: steps.append(1)):
        restorer.restore(blurry, ref)
    assert len(steps) == expected
    restorer.restore(blurry, ref)  # outside the context nothing is reported
    assert len(steps) == expected

@pytest.mark.parametrize(("machine_gib", "budget_mb"), [(8, 8 * 1024 / 6), (64, 4096)])
def test_the_networks_cpu_budget_leaves_a_small_machine_room(monkeypatch, machine_gib,
                                                               budget_mb):
    """A 4K frame on an 8 GiB laptop: the network tiles within a sixth of its memory."""
    from refdeblur_video.model import restorer as restorer_module

    pages = {"SC_PHYS_PAGES": machine_gib * 2**18, "SC_PAGE_SIZE": 4096}
    monkeypatch.setattr(restorer_module.os, "sysconf", lambda name: pages[name])
    net = restorer_module.Restorer(RefDeblurNet(TINY, TINY_MATCH), torch.device("cpu"),
                                   trained=True)
    assert net.memory_mb == pytest.approx(budget_mb)
    big = restorer_module.Restorer(RefDeblurNet(TINY, TINY_MATCH), torch.device("cpu"),
                                   trained=True, memory_mb=4096)
    small_machine = machine_gib == 8
    # two 1080p frames in one call: within 4 GiB, not within a sixth of 8 GiB
    assert (net.tile_size_for(1080, 1920, batch=2) is not None) == small_machine
    assert big.tile_size_for(1080, 1920, batch=2) is None


def test_a_cpu_runs_frames_above_1080p_in_tiles_where_a_gpu_runs_them_whole():
    """Tiles keep the network's feature maps within a CPU's caches; 1080p and smaller run
    whole, and a GPU (with memory to spare) runs 4K whole."""
    cpu = Restorer(RefDeblurNet(TINY, TINY_MATCH), torch.device("cpu"), trained=True,
                   memory_mb=4096)
    assert cpu.tile_size_for(1080, 1920) is None and cpu.tile_size_for(720, 1280) is None
    assert cpu.tile_size_for(1440, 2560) == cpu.tile_size_for(2160, 3840) == 768
    # a tighter memory budget still wins
    small = Restorer(RefDeblurNet(TINY, TINY_MATCH), torch.device("cpu"), trained=True,
                     memory_mb=64)
    assert small.tile_size_for(2160, 3840) < 768
    # an explicit --tile 0 runs whole
    assert Restorer(RefDeblurNet(TINY, TINY_MATCH), torch.device("cpu"), trained=True,
                    tile=0).tile_size_for(2160, 3840) is None
    gpu = Restorer.__new__(Restorer)  # the same settings, on a device without CUDA here
    gpu.__dict__.update(cpu.__dict__, device=torch.device("cuda"))
    assert gpu.tile_size_for(2160, 3840) is None


def test_shipped_default_model_is_trained_small_and_matches_lite_yaml():
    from refdeblur_video.model.weights import DEFAULT_WEIGHTS

    assert DEFAULT_WEIGHTS.stat().st_size <= 10 * 2**20
    config, _, metadata = read_checkpoint(DEFAULT_WEIGHTS)
    assert config.architecture() == load_config("lite").architecture()
    assert "step" in metadata or "blend" in metadata  # says what made it
    restorer = load_model("default", "cpu")
    assert restorer.trained
    torch.manual_seed(0)
    blurry = torch.rand(1, 3, 48, 64)
    assert not torch.equal(restorer.restore(blurry, blurry), blurry)


def test_paper_config_has_no_shipped_weights_and_warns():
    with pytest.warns(UserWarning, match="no trained weights"):
        assert not load_model("paper", "cpu").trained


def test_fusion_gate_starts_open_and_can_shut_the_reference_out():
    from refdeblur_video.model.matching import MatchResult
    from refdeblur_video.model.ream import GATE_INIT_BIAS, REAM

    torch.manual_seed(0)
    plain, gated = REAM(8, 4, scale=1), REAM(8, 4, scale=1, gate=True)
    gated.load_state_dict(plain.state_dict(), strict=False)
    features, ref = torch.rand(1, 8, 6, 6), torch.rand(1, 4, 6, 6)
    identity = torch.arange(36).view(1, 6, 6)
    found = MatchResult(identity, torch.rand(1, 1, 6, 6))
    with torch.no_grad():
        fused_plain = plain(features, ref, found) - features
        fused_gated = gated(features, ref, found) - features
        # starts at sigmoid(bias) times the paper's fusion, everywhere
        opening = torch.sigmoid(torch.tensor(GATE_INIT_BIAS))
        assert torch.allclose(fused_gated, fused_plain * opening, atol=1e-6)
        gated.gate.bias.fill_(-30.0)  # a shut gate leaves the blurry features alone
        assert torch.allclose(gated(features, ref, found), features, atol=1e-6)


def test_warm_start_adds_gates_to_weights_saved_without_them(tmp_path):
    from refdeblur_video.model.weights import load_weights_into

    path = tmp_path / "plain.safetensors"
    plain = RefDeblurNet(TINY, TINY_MATCH)
    for p in plain.parameters():
        p.data.normal_()
    save_checkpoint(path, plain, TINY)
    gated_config = TINY.replace(fusion_gate=True)
    with pytest.raises(UserError, match="fusion_gate"):
        load_weights_into(RefDeblurNet(gated_config, TINY_MATCH), gated_config, path)
    gated = RefDeblurNet(gated_config, TINY_MATCH)
    load_weights_into(gated, gated_config, path, warm_start=True)
    for key, value in plain.state_dict().items():
        assert torch.equal(gated.state_dict()[key], value), key
    assert gated.ream1.gate is not None and not gated.ream1.gate.weight.detach().any()
    # the other way round (dropping gates) is never silent
    back = tmp_path / "gated.safetensors"
    save_checkpoint(back, gated, gated_config)
    with pytest.raises(UserError, match="different model"):
        load_weights_into(RefDeblurNet(TINY, TINY_MATCH), TINY, back, warm_start=True)


def test_resblocks_per_level_and_old_single_count_configs():
    assert TINY.n_resblocks == (1, 1, 1)  # one integer: the same count at every level
    assert ModelConfig.from_dict({**TINY.to_dict(), "n_resblocks": 2}).n_resblocks == (2, 2, 2)
    net = RefDeblurNet(TINY.replace(n_resblocks=(1, 2, 3)))
    assert (len(net.enc1), len(net.enc2), len(net.enc3)) == (1, 2, 3)
    assert (len(net.dec1), len(net.dec2), len(net.dec3)) == (1, 2, 3)
    for bad in ((1, 2), (1, 0, 1), "many"):
        with pytest.raises(UserError, match="n_resblocks"):
            TINY.replace(n_resblocks=bad)


def test_warm_start_appends_resblocks_as_identities(tmp_path):
    from refdeblur_video.model.weights import load_weights_into

    torch.manual_seed(0)
    path = tmp_path / "shallow.safetensors"
    shallow = RefDeblurNet(TINY, TINY_MATCH).eval()
    for p in shallow.parameters():
        p.data.normal_(0.0, 0.2)
    save_checkpoint(path, shallow, TINY)
    deeper_config = TINY.replace(n_resblocks=(1, 2, 3), fusion_gate=True)
    with pytest.raises(UserError, match="n_resblocks"):
        load_weights_into(RefDeblurNet(deeper_config, TINY_MATCH), deeper_config, path)
    deeper = RefDeblurNet(deeper_config, TINY_MATCH).eval()
    load_weights_into(deeper, deeper_config, path, warm_start=True)
    for key, value in shallow.state_dict().items():
        assert torch.equal(deeper.state_dict()[key], value), key
    added = deeper.enc3[2].body[2]
    assert not added.weight.detach().any() and not added.bias.detach().any()
    assert deeper.enc3[2].body[0].weight.detach().any()  # only the last conv is zeroed
    # the grown model computes what the checkpoint's model computed, up to the gates
    with torch.no_grad():
        for ream in (deeper.ream1, deeper.ream2, deeper.ream3):
            ream.gate.bias.fill_(30.0)  # fully open: the plain fusion
        blurry, ref = torch.rand(1, 3, 24, 28), torch.rand(1, 3, 24, 28)
        assert torch.allclose(deeper(blurry, ref), shallow(blurry, ref), atol=1e-5)
    # removing ResBlocks is never silent
    back = tmp_path / "deeper.safetensors"
    save_checkpoint(back, deeper, deeper_config)
    fewer = deeper_config.replace(n_resblocks=(1, 2, 2))
    with pytest.raises(UserError, match="different model"):
        load_weights_into(RefDeblurNet(fewer, TINY_MATCH), fewer, back, warm_start=True)


def test_warm_start_widens_the_reference_path_and_matching_features(tmp_path):
    from refdeblur_video.model.weights import load_weights_into

    torch.manual_seed(0)
    path = tmp_path / "narrow.safetensors"
    config = TINY.replace(fusion_gate=True)
    narrow = RefDeblurNet(config, TINY_MATCH).eval()
    for p in narrow.parameters():
        p.data.normal_(0.0, 0.2)
    save_checkpoint(path, narrow, config)
    narrow.double()  # compared in float64: the wider convolutions sum in another order
    blurry = torch.rand(2, 3, 32, 40, dtype=torch.float64)
    reference = torch.roll(blurry, shifts=(2, 3), dims=(2, 3))

    wide_ref = config.replace(ref_channels=(8, 12, 16))
    with pytest.raises(UserError, match="ref_channels"):
        load_weights_into(RefDeblurNet(wide_ref, TINY_MATCH), wide_ref, path)
    grown = RefDeblurNet(wide_ref, TINY_MATCH).eval()
    load_weights_into(grown, wide_ref, path, warm_start=True)
    grown.double()
    with torch.no_grad():
        # the new reference channels add nothing yet: the same output as the narrow model
        before = narrow(blurry, reference)
        assert torch.allclose(grown(blurry, reference), before, rtol=1e-4, atol=1e-4)
        # ... but they are there and take part once their fusion weights move
        assert grown.ref3[2].weight[8:].abs().sum() > 0
        grown.ream3.fuse.weight[:, -1].fill_(0.5)
        assert not torch.allclose(grown(blurry, reference), before, rtol=1e-2, atol=1e-2)

    wide_phi = config.replace(phi_channels=(8, 8, 16))
    grown = RefDeblurNet(wide_phi, TINY_MATCH).eval()
    load_weights_into(grown, wide_phi, path, warm_start=True)
    grown.double()
    with torch.no_grad():
        # the old features are computed as before; the new ones start small
        old, new = narrow.phi(blurry), grown.phi(blurry)
        assert torch.allclose(new[:, :8], old, atol=1e-5)
        assert 0 < new[:, 8:].abs().max() < 0.05 * old.abs().max()
        assert torch.equal(grown.match(blurry, reference).index,
                           narrow.match(blurry, reference).index)
    # narrowing is never silent
    back = tmp_path / "wide.safetensors"
    save_checkpoint(back, grown.float(), wide_phi)
    with pytest.raises(UserError, match="different model"):
        load_weights_into(RefDeblurNet(config, TINY_MATCH), config, back, warm_start=True)


def test_cpu_autocast_is_bf16_only_where_native_and_stays_close_to_fp32():
    from refdeblur_video.model.device import cpu_supports_bf16

    fast = load_model("default", "cpu")
    exact = load_model("default", "cpu", amp=False)
    assert exact.amp_dtype is None
    assert fast.amp_dtype == (torch.bfloat16 if cpu_supports_bf16() else None)
    # a textured scene, blurred sideways, and a reference that shows it a few pixels away
    # (on white noise, where candidate matches nearly tie, bf16 may flip the search's choice
    # of a cell and move single pixels by several code values)
    torch.manual_seed(0)
    scene = torch.nn.functional.interpolate(torch.rand(1, 3, 40, 56), size=(80, 112),
                                            mode="bicubic").clamp(0, 1)
    sharp, ref = scene[..., 8:72, 8:104], scene[..., 4:68, 6:102]
    blurry = torch.nn.functional.avg_pool2d(
        torch.nn.functional.pad(sharp, (3, 3, 0, 0), mode="replicate"), (1, 7), stride=1)
    a, b = fast.restore(blurry, ref), exact.restore(blurry, ref)
    assert a.dtype == b.dtype == torch.float32
    assert (a - b).abs().max() < 4 / 255 and (a - b).abs().mean() < 0.5 / 255


def test_reference_check_drops_a_reference_that_does_not_show_the_scene(pooled_phi):
    from refdeblur_video.model.matching import match

    torch.manual_seed(0)
    net = RefDeblurNet(TINY, TINY_MATCH).eval()
    net.phi = pooled_phi
    torch.nn.init.normal_(net.tail.weight, std=0.1)  # not the identity of a fresh net
    scene = torch.nn.functional.interpolate(torch.rand(1, 3, 12, 12), size=(48, 48),
                                            mode="bilinear")
    moved = torch.roll(scene, shifts=(4, 8), dims=(2, 3))  # the same scene, 1-2 cells away
    other = torch.rand(1, 3, 48, 48)  # another "scene": unrelated texture
    blurry, references = torch.cat([scene, scene]), torch.cat([moved, other])
    with torch.no_grad():
        # independently: mean confidence of the match within the radius against the
        # reference, over that of the match within one cell against the frame itself
        query = net.phi(blurry)
        found = match(query, net.phi(net.soften(references)), "local", TINY_MATCH.radius)
        own = match(query, net.phi(net.soften(blurry)), "local", 1)
        ratio = found.confidence.mean((1, 2, 3)) / own.confidence.mean((1, 2, 3))
        agreement = net.reference_agreement(blurry, references)
        assert torch.allclose(agreement, ratio, atol=1e-6)
        assert agreement[0] > 0.6 > 0.5 > agreement[1]
        assert torch.allclose(net.reference_agreement(scene, scene), torch.ones(1), atol=1e-6)
        checked = Restorer(net, torch.device("cpu"), trained=True, amp=False)
        checked.reference_check = 0.55
        out, used = checked.restore_checked(blurry, references)
        assert used.tolist() == [True, False]
        assert torch.allclose(out[:1], net(scene, moved).clamp(0, 1), atol=1e-6)  # kept
        assert torch.allclose(out[1:], net(scene, scene).clamp(0, 1), atol=1e-6)  # replaced
        assert not torch.allclose(out[1:], net(scene, other).clamp(0, 1), atol=1e-4)
        # the check's match is reused by the network: the same output as matching again
        assert torch.allclose(net(scene, moved, net.reference_scores(scene, moved).matched),
                              net(scene, moved), atol=1e-6)
        # the network itself, as trained, uses every reference it is given
        assert not torch.allclose(net(blurry, references)[1:], net(scene, scene), atol=1e-4)
        checked.reference_check = 0.0  # off: every reference used
        assert checked.restore_checked(blurry, references)[1].tolist() == [True, True]


def test_reference_check_decides_once_per_frame_over_all_tiles(pooled_phi):
    from refdeblur_video.model.tiling import run_tiled, tile_regions

    torch.manual_seed(0)
    net = RefDeblurNet(TINY, TINY_MATCH).eval()
    net.phi = pooled_phi
    torch.nn.init.normal_(net.tail.weight, std=0.1)
    scene = torch.nn.functional.interpolate(torch.rand(1, 3, 12, 16), size=(48, 64),
                                            mode="bilinear")
    half = torch.roll(scene, shifts=(4, 4), dims=(2, 3))
    half[..., 32:] = torch.rand(1, 3, 48, 32)  # the right half shows something else
    regions = tile_regions(48, 64, 32, 8)
    with torch.no_grad():
        # independently: both confidences summed over the tiles, weighted by tile area
        scores = [net.reference_scores(scene[..., r, c], half[..., r, c]) for r, c in regions]
        areas = [(r.stop - r.start) * (c.stop - c.start) for r, c in regions]
        agreement = float(sum(s.reference * a for s, a in zip(scores, areas, strict=True))
                          / sum(s.own * a for s, a in zip(scores, areas, strict=True)))
        per_tile = [float(s.reference / s.own) for s in scores]
        assert min(per_tile) < agreement - 0.02 and max(per_tile) > agreement + 0.02
        tiled = Restorer(net, torch.device("cpu"), trained=True, amp=False, tile=32,
                         tile_overlap=8)
        for check, expected in ((agreement - 0.01, True), (agreement + 0.01, False)):
            tiled.reference_check = check
            out, used = tiled.restore_checked(scene, half)
            assert used.tolist() == [expected]
            # every tile ran with the same reference: the given one, or the frame itself
            reference = half if expected else scene
            assert torch.allclose(out, run_tiled(net, scene, reference, 32, 8).clamp(0, 1),
                                  atol=1e-6)
            # a kept reference's tiles reuse the check's match: the matching encoder runs
            # three times per tile (the frame, the reference, the frame as its own), not five
            calls = []
            hook = net.phi.register_forward_hook(lambda *_, seen=calls: seen.append(1))
            try:
                tiled.restore_checked(scene, half)
            finally:
                hook.remove()
            assert len(calls) == len(regions) * (3 if expected else 5)


def test_reference_check_is_a_share_and_can_be_overridden():
    with pytest.raises(UserError, match="reference_check"):
        InferenceSettings(reference_check=1.5)
    assert load_model("default", "cpu", reference_check=0.0).reference_check == 0.0
    assert load_model("default", "cpu").reference_check == (
        load_model_yaml("lite")[1].reference_check)


def test_a_models_transfer_smoothing_reaches_the_step_after_the_network(tmp_path):
    from refdeblur_video.pipeline.options import DeblurOptions
    from refdeblur_video.pipeline.run import make_refiner
    from refdeblur_video.refine import DEFAULT_TRANSFER, transfer_for

    with pytest.raises(UserError, match="transfer_smoothing"):
        InferenceSettings(transfer_smoothing=-1.0)
    net = RefDeblurNet(TINY, TINY_MATCH)
    settings = InferenceSettings(match_radius=2, transfer_smoothing=3.0)
    path = tmp_path / "smoothed.safetensors"
    save_checkpoint(path, net, TINY, settings=settings)
    assert read_checkpoint_settings(path) == settings
    restorer = load_model(path, "cpu", warn_untrained=False)
    assert restorer.settings == settings
    assert transfer_for(restorer).align_smoothing_px == 3.0
    assert transfer_for(restorer).patch_sizes == DEFAULT_TRANSFER.patch_sizes
    refiner = make_refiner(DeblurOptions(), restorer)
    assert refiner.settings is not None and refiner.settings.align_smoothing_px == 3.0
    shipped = load_model("default", "cpu")
    assert transfer_for(shipped).align_smoothing_px == \
        load_model_yaml("lite")[1].transfer_smoothing


@pytest.mark.parametrize(("prealign", "mode"), [(True, "local"), ("homography", "identity"),
                                                 ("homography", "local")])
def test_a_prealigned_model_aligns_each_reference_and_its_checkpoint_says_so(tmp_path,
                                                                            prealign, mode):
    import cv2

    net = RefDeblurNet(TINY, TINY_MATCH)
    settings = InferenceSettings(match_radius=2, match_prior=0.3, prealign=prealign,
                                 match_mode=mode)
    path = tmp_path / "prealigned.safetensors"
    save_checkpoint(path, net, TINY, settings=settings)
    assert read_checkpoint_settings(path) == settings
    restorer = load_model(path, "cpu", warn_untrained=False)
    assert restorer.prealign == prealign and restorer.model.matching.prior == 0.3
    assert restorer.settings == settings
    rng = np.random.default_rng(3)
    scene = cv2.resize(rng.random((24, 32, 3), dtype=np.float32), (256, 192),
                       interpolation=cv2.INTER_CUBIC)
    scene = np.clip(scene * 255, 0, 255).astype(np.uint8)
    frame, reference = scene[16:176, 16:240], scene[10:170, 22:246]  # moved by (6, -6)
    (aligned, same), in_place = restorer._prepared_references([frame, frame],
                                                              [reference, frame])
    inner = (slice(16, -16), slice(16, -16))
    error = np.abs(aligned[inner].astype(int) - frame[inner]).mean()
    assert error < 0.2 * np.abs(reference[inner].astype(int) - frame[inner]).mean()
    assert same is frame  # a frame that is its own reference is not aligned
    # placed by the homography and searched no further, unless every reference is matched
    # in place anyway; the frame that is its own reference is searched as always
    placed = prealign == "homography" and mode == "local"
    assert (in_place.tolist() == [True, False]) if placed else in_place is None
    plain = load_model(TINY, "cpu", warn_untrained=False)
    assert not plain.prealign
    assert plain._prepared_references([frame], [reference])[0][0] is reference
    restored = restorer.restore_images([frame], [reference])[0]  # the whole path runs
    assert restored.shape == frame.shape
    # on a GPU the step after gets the reference as given, and aligns it itself as on a CPU
    (kept,), _ = restorer.restore_on_device([frame], [reference])
    assert torch.equal(kept.reference, images_to_tensor([reference])[0])


def test_an_unknown_prealignment_is_refused():
    with pytest.raises(UserError, match="prealign must be"):
        InferenceSettings(prealign="sideways")


def test_placed_references_are_matched_in_place_and_the_others_searched():
    torch.manual_seed(5)
    net = RefDeblurNet(TINY, TINY_MATCH).eval()
    blurry, reference = torch.rand(2, 3, 32, 48), torch.rand(2, 3, 32, 48)
    mixed = net.match(blurry, reference, torch.tensor([True, False]))
    placed, searched = net.match(blurry, reference, torch.tensor([True, True])), \
        net.match(blurry, reference)
    assert torch.equal(placed.index[0], torch.arange(8 * 12).view(8, 12))
    assert torch.equal(mixed.index[0], placed.index[0])
    assert torch.equal(mixed.index[1], searched.index[1])
    assert torch.allclose(mixed.confidence[1], searched.confidence[1])
    assert not torch.equal(searched.index[0], placed.index[0])  # random images: it wanders

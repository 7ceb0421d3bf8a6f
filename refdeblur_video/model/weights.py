"""Checkpoints: safetensors files with the model config in their metadata (never pickle).

The metadata's ``config`` is one flat JSON mapping: the architecture (:class:`ModelConfig`)
and the inference settings the checkpoint is run with by default
(:class:`~.inference.InferenceSettings`: ``match_mode``, ``match_radius``,
``match_memory_mb``, ``match_prior``, ``prealign``, ``reference_check``,
``transfer_smoothing``; a checkpoint
written before a setting existed takes its default).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from ..errors import UserError
from ..package_files import PACKAGE_WEIGHTS
from .config import ModelConfig, parse_config
from .inference import InferenceSettings

FORMAT = "refdeblur-video/1"
DEFAULT_WEIGHTS = PACKAGE_WEIGHTS / "lite.safetensors"


def write_safetensors(path: str | Path, tensors: dict[str, torch.Tensor],
                      metadata: dict[str, str]) -> None:
    """Write ``tensors`` and ``metadata`` to ``path`` atomically (temp file + rename)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"cannot write {path}: folder {path.parent} does not exist")
    tmp = path.with_name(path.name + ".tmp")
    # written by Python, so the file's mode follows the umask as any output's does
    # (safetensors' own save_file makes its files private, 0600)
    tmp.write_bytes(save({k: v.detach().contiguous().cpu() for k, v in tensors.items()},
                         metadata=metadata))
    os.replace(tmp, path)


def read_safetensors(
    path: str | Path, prefix: str | None = "", what: str = "checkpoint"
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors whose name starts with ``prefix`` (without it; None: no tensor is read)
    and the metadata of a safetensors file; anything unreadable is a :class:`UserError`
    naming ``what`` the file should have been."""
    state: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            if prefix is not None:
                keys = [k for k in handle.keys() if k.startswith(prefix)]  # noqa: SIM118
                state = {k[len(prefix):]: handle.get_tensor(k) for k in keys}
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path} is not a safetensors {what} ({exc})") from None
    return state, metadata


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    config: ModelConfig,
    extra: dict[str, str] | None = None,
    prefix: str = "",
    settings: InferenceSettings | None = None,
) -> None:
    """Write ``model``'s weights, ``config`` and ``settings`` to ``path`` atomically (temp
    file + rename); ``settings`` None: the network's matching, the default reference check."""
    if settings is None:
        matching = getattr(model, "matching", None)
        settings = InferenceSettings() if matching is None else InferenceSettings.of(matching)
    state = {prefix + k: v for k, v in model.state_dict().items()}
    metadata = {"format": FORMAT, "config": config_json(config, settings)}
    metadata.update(extra or {})
    write_safetensors(path, state, metadata)


def config_json(config: ModelConfig, settings: InferenceSettings) -> str:
    """The metadata's ``config``: architecture and inference settings in one flat mapping."""
    return json.dumps({**config.to_dict(), **settings.to_dict()}, sort_keys=True)


def _read(
    path: Path, prefix: str | None
) -> tuple[ModelConfig, InferenceSettings, dict[str, torch.Tensor], dict[str, str]]:
    """Config, inference settings, tensors whose name starts with ``prefix`` (None: no
    tensor), metadata."""
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    state, metadata = read_safetensors(path, prefix)
    if metadata.get("kind") == "training-state":  # its tensors are prefixed, with moments
        raise UserError(f"{path} is a training state (to --resume from); its weights are "
                        f"the run's {path.with_name('model.safetensors')}")
    if "config" not in metadata:
        raise UserError(f"{path} has no model config in its metadata")
    try:
        config, settings = parse_config(json.loads(metadata["config"]))
    except (json.JSONDecodeError, TypeError, AttributeError) as exc:
        raise UserError(f"{path} has an unreadable model config: {exc}") from None
    return config, settings, state, metadata


def read_checkpoint_config(path: str | Path) -> ModelConfig:
    """The model config of a checkpoint, from its metadata only (no tensor is read)."""
    return _read(Path(path), None)[0]


def read_checkpoint_settings(path: str | Path) -> InferenceSettings:
    """The inference settings a checkpoint is run with by default (no tensor is read)."""
    return _read(Path(path), None)[1]


def read_checkpoint_metadata(path: str | Path) -> dict[str, str]:
    """A checkpoint's metadata (config, step, scores), without reading any tensor."""
    return _read(Path(path), None)[3]


def read_checkpoint(
    path: str | Path, prefix: str = ""
) -> tuple[ModelConfig, dict[str, torch.Tensor], dict[str, str]]:
    """Return (config, state dict, metadata) of a checkpoint, tensors on the CPU."""
    config, _, state, metadata = _read(Path(path), prefix)
    return config, state, metadata


def load_weights_into(
    model: nn.Module, config: ModelConfig, path: str | Path, *, warm_start: bool = False
) -> ModelConfig:
    """Load a checkpoint into ``model`` built from ``config``; refuse a disagreeing config.

    ``warm_start=True`` (training from earlier weights) also accepts a checkpoint of a smaller
    model that ``config`` grows: fusion gates added (they keep their almost-open initial
    values), ResBlocks appended to the groups (they start as identities, their last
    convolution zeroed) and wider reference or matching features (:func:`_widen`), so the
    grown model begins where the checkpoint left off.
    """
    saved, state, _ = read_checkpoint(path)
    expected = config.architecture()
    found = saved.architecture()
    grown = warm_start and _grows(saved, config)
    if grown:
        found.update({k: expected[k] for k in _GROWABLE})
        state = _widen(state, model)
    if found != expected:
        diff = {k: (v, expected[k]) for k, v in found.items() if expected[k] != v}
        detail = ", ".join(f"{k}: checkpoint {a} vs model {b}" for k, (a, b) in diff.items())
        raise UserError(f"checkpoint {path} was saved for a different model ({detail})")
    _check_tensors(path, state, model)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if grown:
        added = [k for k in missing if is_added(k, saved)]
        _start_as_identity(model, added)
        missing = [k for k in missing if k not in added]
    if missing or unexpected:
        raise UserError(
            f"checkpoint {path} does not fit the model "
            f"(missing {len(missing)} tensors, unexpected {len(unexpected)})"
        )
    return saved


def _check_tensors(path: str | Path, state: dict[str, torch.Tensor], model: nn.Module) -> None:
    """Refuse tensors whose shapes do not fit ``model`` (a config that is not the weights'),
    and NaN or infinite weights (they would restore every frame to black)."""
    expected = model.state_dict()
    wrong = [k for k, v in state.items() if k in expected and v.shape != expected[k].shape]
    if wrong:
        k = wrong[0]
        raise UserError(
            f"checkpoint {path} does not fit its model config: shapes differ in {len(wrong)} of "
            f"{len(state)} tensors (e.g. {k}: {list(state[k].shape)} in the file, "
            f"{list(expected[k].shape)} for the config)")
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(v.isfinite().all())]
    if bad:
        raise UserError(f"checkpoint {path} has NaN or infinite weights in {len(bad)} of "
                        f"{len(state)} tensors (e.g. {bad[0]}); it cannot restore anything")


# ResBlock groups of RefDeblurNet and the level (full, 1/2, 1/4 resolution) of each
_GROUP_LEVEL = {"enc1": 0, "dec1": 0, "enc2": 1, "dec2": 1, "enc3": 2, "dec3": 2}
_BLOCK_KEY = re.compile(r"^(enc[123]|dec[123])\.(\d+)\.body\.")


_WIDENS = ("n_resblocks", "ref_channels", "phi_channels")  # each entry may only grow
_GROWABLE = (*_WIDENS, "fusion_gate")
# parts whose channels may grow, and the last layer of phi (its new features start small)
_WIDENABLE = re.compile(r"^(ref[123]|phi|ream[123])\.")
_PHI_LAST = "phi.features.10."
NEW_PHI_FEATURE_SCALE = 0.01


def _grows(saved: ModelConfig, config: ModelConfig) -> bool:
    """Whether ``config`` only adds gates, ResBlocks and/or reference or matching channels
    to ``saved``."""
    def no_smaller(name: str) -> bool:
        return all(a <= b for a, b in zip(getattr(saved, name), getattr(config, name),
                                          strict=True))

    return (all(no_smaller(name) for name in _WIDENS)
            and (config.fusion_gate or not saved.fusion_gate))


def _widen(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Embed narrower reference-path and phi tensors of ``state`` in ``model``'s wider ones.

    Old channels keep their weights; weights from new input channels into old output
    channels are zero, so the old features are computed as before; new output channels
    keep ``model``'s fresh initialisation. The fusion gate's last input (the confidence)
    stays last. Only phi's new output features change anything at first: they start
    ``NEW_PHI_FEATURE_SCALE`` times their initial size, so matching is almost unchanged.
    """
    fresh = model.state_dict()
    widened = dict(state)
    for key, old in state.items():
        new = fresh.get(key)
        if new is None or new.shape == old.shape or not _WIDENABLE.match(key):
            continue
        if old.dim() != new.dim() or any(a > b for a, b in zip(old.shape, new.shape,
                                                                strict=True)):
            continue  # not a widening: load_state_dict reports it
        grown = new.detach().clone()
        if key.startswith(_PHI_LAST):
            grown[old.shape[0]:] *= NEW_PHI_FEATURE_SCALE
        rows = slice(0, old.shape[0])
        if old.dim() == 1:
            grown[rows] = old
        else:
            grown[rows] = 0.0
            columns = list(range(old.shape[1]))
            if ".gate." in key:  # inputs [features, moved reference, confidence]
                columns[-1] = new.shape[1] - 1
            grown[rows, columns] = old
        widened[key] = grown
    return widened


def is_added(key: str, saved: ModelConfig) -> bool:
    """Whether tensor ``key`` belongs to a part that ``saved``'s model does not have."""
    if ".gate." in key:
        return not saved.fusion_gate
    block = _BLOCK_KEY.match(key)
    return bool(block) and int(block[2]) >= saved.n_resblocks[_GROUP_LEVEL[block[1]]]


def zeroed_when_added(key: str) -> bool:
    """Whether an added part's tensor ``key`` starts at zero: the last convolution of a
    ResBlock, which makes ``x + body(x)`` the identity."""
    return ".body.2." in key


def _start_as_identity(model: nn.Module, added_keys: list[str]) -> None:
    """Zero the last convolution of each added ResBlock (``x + body(x)`` is then ``x``);
    ``added_keys`` are those ``is_added`` picked (gate or ResBlock tensors)."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for key in added_keys:
            if zeroed_when_added(key):
                params[key].zero_()

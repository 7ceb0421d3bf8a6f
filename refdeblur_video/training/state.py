"""Training checkpoints in safetensors: weights, optimiser moments and the step, no pickle."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from ..errors import UserError
from ..model.config import ModelConfig, parse_config
from ..model.weights import FORMAT, write_safetensors


def _optimizer_tensors(optimizer: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    tensors = {}
    for index, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            tensors[f"{prefix}.{index}.{name}"] = torch.as_tensor(value).detach().cpu().clone()
    return tensors


def _load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                    prefix: str) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    current = optimizer.state_dict()
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    moments = {i: v for i, named in state.items() for k, v in named.items() if k != "step"}
    if len(state) > len(parameters) or any(
            i >= len(parameters) or v.shape != parameters[i].shape for i, v in moments.items()):
        # the moments are stored by position among the trainable parameters
        raise UserError("cannot resume: the saved optimiser state is for another set of "
                        "trainable parameters (train.freeze_phi or train.match_weight changed?)")
    optimizer.load_state_dict({"state": state, "param_groups": current["param_groups"]})


def save_training_state(
    path: Path,
    model: nn.Module,
    config: ModelConfig,
    optimizer: torch.optim.Optimizer,
    step: int,
    train_config: dict,
    discriminator: nn.Module | None = None,
    optimizer_d: torch.optim.Optimizer | None = None,
    best_psnr: float | None = None,
    ema: nn.Module | None = None,
) -> None:
    """Everything needed to resume, written atomically (temp file, then rename); ``ema``:
    the moving average of the weights, if the run keeps one."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update(_optimizer_tensors(optimizer, "optim_g"))
    if discriminator is not None and optimizer_d is not None:
        tensors.update({f"disc.{k}": v.detach().cpu().contiguous()
                        for k, v in discriminator.state_dict().items()})
        tensors.update(_optimizer_tensors(optimizer_d, "optim_d"))
    if ema is not None:
        tensors.update({f"ema.{k}": v.detach().cpu().contiguous()
                        for k, v in ema.state_dict().items()})
    metadata = {
        "format": FORMAT,
        "kind": "training-state",
        "config": config.to_json(),
        "step": str(step),
        "train_config": json.dumps(train_config, sort_keys=True),
        "best_psnr": "" if best_psnr is None else repr(best_psnr),
    }
    write_safetensors(path, tensors, metadata)


def load_training_state(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    discriminator: nn.Module | None = None,
    optimizer_d: torch.optim.Optimizer | None = None,
    ema: nn.Module | None = None,
) -> tuple[int, float | None]:
    """Restore a training state in place; returns (step, best validation PSNR). An ``ema``
    the state has none of (it was turned on for this part of the run) starts afresh from
    the restored weights."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    except Exception as exc:  # noqa: BLE001 - any failure means an unusable file
        raise UserError(f"cannot resume from {path}: {exc}") from None
    if metadata.get("kind") != "training-state":
        raise UserError(f"{path} is not a training state written by refdeblur-train")
    saved = parse_config(json.loads(metadata["config"]))[0]  # older states list settings too
    if saved.architecture() != model.config.architecture():
        raise UserError(f"{path} was written for a different model configuration")
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    _load_optimizer(optimizer, tensors, "optim_g")
    if discriminator is not None and any(k.startswith("disc.") for k in tensors):
        discriminator.load_state_dict({k[5:]: v for k, v in tensors.items()
                                       if k.startswith("disc.")})
        if optimizer_d is not None:
            _load_optimizer(optimizer_d, tensors, "optim_d")
    if ema is not None and any(k.startswith("ema.") for k in tensors):
        ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    best = metadata.get("best_psnr") or None
    return int(metadata["step"]), float(best) if best else None

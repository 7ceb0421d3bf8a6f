"""Model configuration: the architecture, a frozen dataclass, loaded from YAML by name or path.

A model YAML also lists how the network is run (matching, reference check): those entries
are the :class:`~.inference.InferenceSettings` (:func:`load_model_yaml`), not part of
:class:`ModelConfig`.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import UserError, invalid_yaml
from ..messages import did_you_mean
from ..package_files import MODEL_CONFIGS
from ..typed_fields import check_scalar_fields
from .inference import InferenceSettings, split_settings

CONFIG_DIR = MODEL_CONFIGS


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the reference-based deblurring network (paper section 3): what a
    checkpoint's weights were made for (their shapes, and the reference softening they were
    trained with)."""

    name: str = "custom"
    channels: tuple[int, int, int] = (32, 64, 128)
    # ResBlocks per group at full, 1/2 and 1/4 resolution (encoder and decoder alike);
    # one integer means the same count at every level
    n_resblocks: int | tuple[int, int, int] = (16, 16, 16)
    ref_channels: tuple[int, int, int] = (32, 64, 128)
    phi_channels: tuple[int, int, int] = (64, 128, 256)
    sffm_hidden: tuple[int, int] = (16, 32)
    ref_blur_factor: int = 4
    fusion_gate: bool = False  # learned per-pixel switch on each REAM's fusion (not in the paper)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_scalar_fields(self, model_config_error)
        for name, size in (("channels", 3), ("ref_channels", 3), ("phi_channels", 3),
                           ("sffm_hidden", 2)):
            value = _whole_numbers(getattr(self, name))
            if value is None or len(value) != size or min(value) < 1:
                raise UserError(f"model config: {name} must be {size} positive integers, "
                                f"not {getattr(self, name)!r}")
            object.__setattr__(self, name, value)
        given = self.n_resblocks
        blocks = _whole_numbers(given if isinstance(given, (list, tuple)) else [given] * 3)
        if blocks is None or len(blocks) != 3 or min(blocks) < 1:
            raise UserError("model config: n_resblocks must be one or three positive "
                            f"integers, not {self.n_resblocks!r}")
        object.__setattr__(self, "n_resblocks", blocks)
        if self.ref_blur_factor < 1:
            raise UserError("model config: ref_blur_factor must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def architecture(self) -> dict[str, Any]:
        """The fields that decide the weights' shapes."""
        keys = ("channels", "ref_channels", "phi_channels", "sffm_hidden", "n_resblocks")
        shapes: dict[str, Any] = {k: list(getattr(self, k)) for k in keys}
        return {**shapes, "fusion_gate": self.fusion_gate}

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"model config: unknown keys {', '.join(unknown)}"
                            + did_you_mean(unknown[0], known))
        return cls(**data)


def model_config_error(text: str) -> UserError:
    """The error of a model config's value of the wrong type."""
    return UserError(f"model config: {text}")


def _whole_numbers(values: Any) -> tuple[int, ...] | None:
    """``values`` as a tuple of ints where it is a list of whole numbers (not a text, whose
    characters would pass one by one, nor true or false), else None."""
    if not isinstance(values, (list, tuple)) or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
        return None
    return tuple(int(v) for v in values)


def named_configs() -> list[str]:
    """Names of the model configurations shipped in configs/model/."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def parse_config(data: dict[str, Any]) -> tuple[ModelConfig, InferenceSettings]:
    """A flat mapping (model YAML, checkpoint metadata) as (architecture, inference settings)."""
    architecture, settings = split_settings(data)
    return ModelConfig.from_dict(architecture), settings


def load_config(name_or_path: str | Path) -> ModelConfig:
    """Load a model config by shipped name (``lite``, ``paper``) or from a YAML file."""
    return load_model_yaml(name_or_path)[0]


def load_model_yaml(name_or_path: str | Path) -> tuple[ModelConfig, InferenceSettings]:
    """A model YAML by shipped name or path: (architecture, inference settings)."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = CONFIG_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise UserError(
                f"unknown model config '{name_or_path}' (known: default, "
                f"{', '.join(named_configs())}, or a .safetensors or .yaml file)"
            )
    if not path.is_file():
        raise UserError(f"model config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise invalid_yaml("model config", path, exc) from None
    if not isinstance(data, dict):
        raise UserError(f"model config {path} must be a mapping")
    data.setdefault("name", path.stem)
    return parse_config(data)

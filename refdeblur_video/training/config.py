"""Training configuration: YAML with ``model``, ``data``, ``train`` and ``out`` sections."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import UserError, invalid_yaml
from ..messages import did_you_mean


@dataclass
class DataConfig:
    """Where triplets come from: a manifest on disk, or videos blurred on the fly."""

    source: str = "videos"  # videos | manifest
    train_videos: list[str] = field(default_factory=list)
    val_videos: list[str] = field(default_factory=list)
    manifest: str | None = None
    crop: int = 128
    batch: int = 8
    workers: int = 2
    dmin: int = 1
    dmax: int = 6
    strength: list[float] = field(default_factory=lambda: [0.3, 1.0])
    val_strength: float = 0.8
    unrelated_ref_prob: float = 0.1
    ref_jitter: int = 4
    noise_sigma: float = 0.0  # Gaussian noise, sigma drawn in [0, noise_sigma] (8-bit levels)
    poisson_peak: float = 0.0  # shot noise (photons at white, lower = noisier; 0: off)
    jpeg_quality: list[int] | None = None  # (low, high) JPEG quality, half the samples
    # mixed blur generators (data.mixed_blur.BlurMix fields, e.g. {generators: {shake: 0.6,
    # average: 0.25, object: 0.15}}); null: camera shake only
    mix: dict[str, Any] | None = None
    max_side: int | None = None
    max_frames: int | None = None
    blur_on: str = "cpu"  # cpu | gpu
    val_count: int = 24
    val_crop: int = 256


@dataclass
class OptimConfig:
    """The paper's recipe by default: Adam 1e-4, cosine annealing, losses 1 / 0.1 / 5e-3."""

    steps: int = 10000
    lr: float = 1e-4
    lr_min: float = 1e-6
    warmup_steps: int = 0
    content_weight: float = 1.0
    frequency_weight: float = 0.1
    adversarial_weight: float = 5e-3
    gan_start: int | None = None  # step at which the GAN term starts; None: no GAN
    grad_clip: float | None = 1.0
    # no reconstruction gradient to the matching encoder: as initialised (init / VGG19
    # weights), or trained by the matching loss alone when match_weight > 0
    freeze_phi: bool = False
    # the contrastive matching loss that teaches phi where each patch is (training.match_loss;
    # 0: off)
    match_weight: float = 0.0
    match_radius: int = 4  # its search window, in 1/4-resolution cells
    match_temperature: float = 0.05
    # the share of the reconstruction loss taken after the reference transfer (the output
    # with the aligned reference blended in by the transfer's weight: training/transfer_loss),
    # so that the network learns what the transfer cannot fix instead of competing with it
    # (0: on the network's output alone)
    transfer_loss_share: float = 0.0
    # an exponential moving average of the weights (decay per step; 0: off), kept beside the
    # trained weights as ema.safetensors: an average over the end of a noisy small-batch
    # descent is smoother than any one step's weights
    ema_decay: float = 0.0
    val_every: int = 500
    ckpt_every: int = 250
    log_every: int = 25
    amp: bool = True
    seed: int = 0


@dataclass
class TrainConfig:
    model: str = "lite"
    out: str = "runs/lite"
    init: str | None = None  # optional checkpoint to start from (weights only)
    vgg19_weights: str | None = None  # optional torchvision VGG19 state dict for phi
    data: DataConfig = field(default_factory=DataConfig)
    train: OptimConfig = field(default_factory=OptimConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _build(cls, values: dict[str, Any] | None, section: str):
    values = values or {}
    if not isinstance(values, dict):
        raise UserError(f"train config: section '{section}' must be a mapping")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"train config: unknown keys in '{section}': {', '.join(unknown)}"
                        + did_you_mean(unknown[0], known))
    types = {f.name: f.type for f in dataclasses.fields(cls)}
    return cls(**{k: _number(v, types[k], f"{section}.{k}") for k, v in values.items()})


_NUMBERS = {"float": float, "float | None": float, "int": int, "int | None": int}
_LISTS = {"list[str]": str, "list[float]": (int, float), "list[int] | None": int}
_PLAIN = {"str": str, "str | None": str, "bool": bool, "dict[str, Any] | None": dict}


def _number(value: Any, annotation: Any, where: str) -> Any:
    """``value`` checked against its field's type: a number given as text (YAML 1.1 reads
    ``5e-5``, without a dot, as a string) becomes the number its field holds; a value of
    another type (a list for a number, ``true`` for a rate, one string for a list of paths)
    is a :class:`UserError`."""
    annotation = str(annotation)
    if value is None and annotation.endswith("| None"):
        return value
    kind = _NUMBERS.get(annotation)
    if kind is not None:
        if isinstance(value, str):
            try:
                value = kind(value)
            except ValueError:
                raise UserError(f"train config: {where} must be a number, not {value!r}"
                                ) from None
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not numeric or (kind is int and value != int(value)):
            what = "a whole number" if kind is int else "a number"
            raise UserError(f"train config: {where} must be {what}, not {value!r}")
        return kind(value)
    items = _LISTS.get(annotation)
    if items is not None:
        if not isinstance(value, list) or not all(
                isinstance(v, items) and not isinstance(v, bool) for v in value):
            raise UserError(f"train config: {where} must be a list, not {value!r}")
        return value
    plain = _PLAIN.get(annotation)
    if plain is not None and not isinstance(value, plain):
        raise UserError(f"train config: {where} must be a {plain.__name__}, not {value!r}")
    return value


# smallest values that make sense (a crop must hold the network's three scales)
_AT_LEAST = {"data.crop": 16, "data.val_crop": 16, "data.batch": 1, "data.workers": 0,
             "data.dmin": 1, "data.val_count": 1, "train.steps": 1, "train.val_every": 1,
             "train.ckpt_every": 1, "train.log_every": 1, "train.warmup_steps": 0}


def _check_ranges(config: TrainConfig) -> None:
    for where, low in _AT_LEAST.items():
        section, name = where.split(".")
        value = getattr(getattr(config, section), name)
        if value < low:
            raise UserError(f"train config: {where} must be at least {low}, not {value}")
    strength = config.data.strength
    if len(strength) != 2 or not 0 <= strength[0] <= strength[1]:
        raise UserError("train config: data.strength must be [LOW, HIGH] with 0 <= LOW <= "
                        f"HIGH, not {config.data.strength}")
    if config.data.dmax < config.data.dmin:
        raise UserError("train config: data.dmax must be at least data.dmin")
    if not config.train.lr > 0:
        raise UserError(f"train config: train.lr must be positive, not {config.train.lr}")


def load_train_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a training YAML; paths inside it are relative to the current directory."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"train config not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise invalid_yaml("train config", path, exc) from None
    except UnicodeDecodeError:
        raise UserError(f"train config {path} is not a text (YAML) file") from None
    return train_config_from_dict(raw, overrides)


def train_config_from_dict(
    raw: dict[str, Any], overrides: dict[str, Any] | None = None
) -> TrainConfig:
    if not isinstance(raw, dict):
        raise UserError("train config: the file must be a mapping (model, data, train, out)")
    raw = copy.deepcopy(raw)  # the overrides go into its sections, not the caller's
    for key, value in (overrides or {}).items():
        section, _, name = key.rpartition(".")
        target = raw.setdefault(section, {}) if section else raw
        target[name] = value
    top = {k: v for k, v in raw.items() if k not in ("data", "train")}
    config = _build(TrainConfig, top, "top level")
    config.data = _build(DataConfig, raw.get("data"), "data")
    config.train = _build(OptimConfig, raw.get("train"), "train")
    _check_ranges(config)
    if config.data.source not in ("videos", "manifest"):
        raise UserError("train config: data.source must be 'videos' or 'manifest'")
    if config.data.blur_on not in ("cpu", "gpu"):  # checked for a manifest run too
        raise UserError(f"train config: data.blur_on must be 'cpu' or 'gpu', not "
                        f"{config.data.blur_on!r}")
    if config.data.source == "manifest" and not config.data.manifest:
        raise UserError("train config: data.manifest is required when data.source is manifest")
    if config.data.source == "videos" and not config.data.train_videos:
        raise UserError("train config: data.train_videos is empty")
    if config.train.match_weight > 0 and config.train.match_radius < 2:
        raise UserError("train config: train.match_radius must be at least 2 (the loss moves "
                        "the reference by up to match_radius - 1 cells)")
    if not 0.0 <= config.train.transfer_loss_share <= 1.0:
        raise UserError("train config: train.transfer_loss_share must be in [0, 1]")
    if not 0.0 <= config.train.ema_decay < 1.0:
        raise UserError("train config: train.ema_decay must be in [0, 1)")
    if config.train.match_temperature <= 0:
        raise UserError("train config: train.match_temperature must be positive")
    return config

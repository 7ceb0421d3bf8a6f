"""``--resume`` goes on with the settings the run began with (saved in its state), not with
whatever the resuming command's YAML says today: a run started with ``--set`` overrides and
resumed with the plain config would otherwise change its crops, batch, schedule and
validation set without a word, and keep a best score measured on another set.

What the command sets on purpose (``--set``) still applies, each change named: a longer
schedule, another learning rate, a branch copied to another folder. The run's folder is
always the one the command names, where its state was found.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from ..errors import UserError
from .config import TrainConfig, train_config_from_dict

# settings that decide what the validation scores measure: when one changes, the best score
# so far was measured on another set and cannot be compared
VALIDATION_KEYS = frozenset({"data.source", "data.manifest", "data.val_videos",
                             "data.val_count", "data.val_crop", "data.val_strength",
                             "data.max_side", "data.max_frames"})


@dataclass
class Resumed:
    """The settings a resumed run goes on with, and how they came about."""

    config: TrainConfig
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # key: (run's, now)
    unused: list[str] = field(default_factory=list)  # the config's, not the run's, not set
    kept_average: float | None = None  # the run's moving-average decay kept over a 0

    @property
    def validation_changed(self) -> bool:
        return bool(VALIDATION_KEYS & self.changed.keys())


def flat_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``data.crop``-style names of a train config's values (a mapping value such as
    ``data.mix`` stays whole)."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if key in ("data", "train") and isinstance(value, dict):
            flat.update({f"{key}.{name}": item for name, item in value.items()})
        else:
            flat[key] = value
    return flat


def resumed_config(cfg: TrainConfig, saved: str | None,
                   explicit: Collection[str] | None) -> Resumed:
    """The run's ``saved`` settings (JSON, as its state holds them; a state without them goes
    on with ``cfg``), with ``cfg``'s ``explicit`` ones over them (the command's ``--set``
    names; None: every one of ``cfg``'s) and ``cfg``'s ``out``. A moving average the run
    keeps is kept where the command asks for none (a recipe's default of 0)."""
    if not saved:
        return Resumed(cfg)
    try:
        before_raw = json.loads(saved)
        before = flat_settings(train_config_from_dict(before_raw).to_dict())
    except (ValueError, UserError):  # a state of an older layout: as the command says
        return Resumed(cfg)
    now = flat_settings(cfg.to_dict())
    chosen = set(now) if explicit is None else set(explicit)
    differing = [k for k in sorted(now) if k != "out" and now[k] != before[k]]
    result = Resumed(cfg)
    applied: dict[str, Any] = {"out": cfg.out}
    for key in differing:
        if key not in chosen:
            result.unused.append(key)
        elif key == "train.ema_decay" and not now[key] and before[key]:
            result.kept_average = before[key]
        else:
            applied[key] = now[key]
            result.changed[key] = (before[key], now[key])
    result.config = train_config_from_dict(before_raw, applied)
    return result

"""``--resume`` goes on with the settings the run began with (saved in its state), not with
whatever the resuming command's YAML says today: a run started with ``--set`` overrides and
resumed with the plain config would otherwise change its crops, batch, schedule and
validation set without a word, and keep a best score measured on another set.

The command may still say how long the run goes on and how often it logs, validates and
saves (:data:`CHANGEABLE`); any other setting it names that differs from the run's is
refused, with what differs.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from ..errors import UserError
from .config import TrainConfig, train_config_from_dict

# what a resumed run may be told anew: how long it goes on (the schedule spans the new
# train.steps), how often it logs, validates and saves, and how its data is loaded
CHANGEABLE = frozenset({"train.steps", "train.log_every", "train.val_every",
                        "train.ckpt_every", "data.workers"})


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
                   explicit: Collection[str] | None) -> tuple[TrainConfig, list[str]]:
    """The config a resumed run goes on with, and the names of ``cfg``'s values that differ
    from the run's and are not used (those of its YAML, not of ``explicit``).

    ``saved``: the run's settings as its state holds them (JSON); a state without them
    goes on with ``cfg``. ``explicit``: the settings the caller chose (the command's
    ``--set`` names); None: every one of ``cfg``'s. Those among :data:`CHANGEABLE` apply;
    any other that differs from the run's is a :class:`UserError`."""
    if not saved:
        return cfg, []
    try:
        before_raw = json.loads(saved)
        before = flat_settings(train_config_from_dict(before_raw).to_dict())
    except (ValueError, UserError):  # a state of an older layout: as the command says
        return cfg, []
    now = flat_settings(cfg.to_dict())
    chosen = set(now) if explicit is None else set(explicit)
    differing = sorted(k for k in now if now[k] != before.get(k))
    refused = [k for k in differing if k in chosen and k not in CHANGEABLE]
    if refused:
        shown = "; ".join(f"{k}: {_short(before.get(k))} in the run, {_short(now[k])} now"
                          for k in refused[:4])
        more = f" and {len(refused) - 4} more" if len(refused) > 4 else ""
        raise UserError(f"--resume goes on with the run's own settings, and these differ: "
                        f"{shown}{more}; only {', '.join(sorted(CHANGEABLE))} can change "
                        "(another out starts a new run)")
    applied = {k: now[k] for k in differing if k in chosen}
    return (train_config_from_dict(before_raw, applied),
            [k for k in differing if k not in applied])


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."

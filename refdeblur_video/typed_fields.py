"""Dataclass fields checked against their annotations where values come from outside
(the Python API's keywords, a model YAML): a text where a number belongs is one clear
error naming the field, not a comparison failing deep inside."""

from __future__ import annotations

import dataclasses
import numbers
import os
from collections.abc import Callable
from typing import Any

import numpy as np

# the annotations checked, with the values each accepts and how it stores them; a field of
# another annotation is left to its class's own checks
_KINDS: dict[str, tuple[type | tuple[type, ...], Callable[[Any], Any], str]] = {
    "bool": ((bool, np.bool_), bool, "true or false"),
    "int": (numbers.Integral, int, "a whole number"),
    "float": (numbers.Real, float, "a number"),
    "str": (str, str, "a text"),
}


def check_scalar_fields(instance: Any, error: Callable[[str], Exception],
                        paths: bool = False) -> None:
    """Check and store each ``bool``/``int``/``float``/``str`` field of a (possibly frozen)
    dataclass ``instance`` (``X | None`` allows None): a NumPy number is stored as Python's,
    a path as its text where ``paths``. ``error`` makes the exception from ``"NAME must be
    WHAT, not VALUE"``."""
    for spec in dataclasses.fields(instance):
        kind, *rest = str(spec.type).split(" | ")
        if kind not in _KINDS or rest not in ([], ["None"]):
            continue
        value = getattr(instance, spec.name)
        if value is None and rest:
            continue
        if paths and kind == "str" and isinstance(value, os.PathLike):
            value = os.fspath(value)
        accepted, store, what = _KINDS[kind]
        if not isinstance(value, accepted) or (kind != "bool"
                                               and isinstance(value, (bool, np.bool_))):
            raise error(f"{spec.name} must be {what}{' or None' if rest else ''}, "
                        f"not {value!r}")
        object.__setattr__(instance, spec.name, store(value))

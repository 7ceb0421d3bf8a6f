"""The main job: decode, score, pick references, restore blurry frames, encode."""

from __future__ import annotations

from typing import Any

from .options import DeblurOptions

__all__ = ["DeblurOptions", "deblur", "deblur_image", "deblur_many", "deblur_video"]
_RUN = ("deblur", "deblur_image", "deblur_many", "deblur_video")


def __getattr__(name: str) -> Any:
    # The entry points import PyTorch: only when one is asked for, so that the command line
    # checks its arguments first.
    if name in _RUN:
        from . import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

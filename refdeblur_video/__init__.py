"""refdeblur-video: reference-based motion deblurring for videos and photos.

From Python::

    from refdeblur_video import deblur
    [summary] = deblur("shaky.mp4", "steady.mp4", threshold=0.7)

``deblur`` takes the command's options as keywords (:class:`DeblurOptions`' fields:
``cuts=False`` for ``--no-cuts``) and raises :class:`UserError` with the command's one line
for a mistake in a path or value (a :class:`TypeError` for a value of the wrong type).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["DeblurOptions", "UserError", "__version__", "deblur"]


def __getattr__(name: str) -> Any:
    # loaded when asked for: the entry points import PyTorch, which the command line loads
    # only once its arguments are checked
    if name in ("deblur", "DeblurOptions"):
        from . import pipeline

        return getattr(pipeline, name)
    if name == "UserError":
        from .errors import UserError

        return UserError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

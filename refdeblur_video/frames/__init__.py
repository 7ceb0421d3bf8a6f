"""Per-frame sharpness scores and the choice of blurry frames and their sharp references.

Import the score function from its module (``from refdeblur_video.frames.sharpness import
sharpness``); it is not re-exported here so that ``refdeblur_video.frames.sharpness`` stays
the module.
"""

from refdeblur_video.frames.references import (
    DEFAULT_MAX_OFFSET,
    DEFAULT_THRESHOLD,
    DEFAULT_WINDOW,
    FrameDecision,
    ReferencePlanner,
    plan_references,
)

__all__ = [
    "DEFAULT_MAX_OFFSET",
    "DEFAULT_THRESHOLD",
    "DEFAULT_WINDOW",
    "FrameDecision",
    "ReferencePlanner",
    "plan_references",
    "sharpness_scores",
]


def __getattr__(name: str) -> object:
    # sharpness needs OpenCV; the command line imports this package before checking its
    # arguments, so OpenCV is loaded only when the scores are asked for.
    if name == "sharpness_scores":
        from refdeblur_video.frames.sharpness import sharpness_scores

        return sharpness_scores
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

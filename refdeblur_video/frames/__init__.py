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
from refdeblur_video.frames.sharpness import sharpness_scores

__all__ = [
    "DEFAULT_MAX_OFFSET",
    "DEFAULT_THRESHOLD",
    "DEFAULT_WINDOW",
    "FrameDecision",
    "ReferencePlanner",
    "plan_references",
    "sharpness_scores",
]

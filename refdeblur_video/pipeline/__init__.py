"""The main job: decode, score, pick references, restore blurry frames, encode."""

from .options import DeblurOptions
from .run import deblur, deblur_image, deblur_many, deblur_video

__all__ = ["DeblurOptions", "deblur", "deblur_image", "deblur_many", "deblur_video"]

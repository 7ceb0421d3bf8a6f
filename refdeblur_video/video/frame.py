"""One decoded frame (:class:`Frame`), whatever it was read from.

No PyAV here: :mod:`refdeblur_video.video.sources` hands out frames of image folders, and of
videos through OpenCV, on machines without PyAV (a GPU training machine may lack it).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

__all__ = ["Frame", "frame_interval", "to_coded_orientation", "to_shown_orientation"]


def to_coded_orientation(image: np.ndarray, rotation: int) -> np.ndarray:
    """``image`` as a video of display ``rotation`` is shown (degrees counter-clockwise, as
    :attr:`VideoInfo.rotation`) turned back into the video's coded orientation; a rotation
    that is no multiple of 90 degrees is left alone."""
    if rotation % 90 or not (rotation // 90) % 4:
        return image
    return np.ascontiguousarray(np.rot90(image, (-rotation // 90) % 4))


def to_shown_orientation(image: np.ndarray, rotation: int) -> np.ndarray:
    """A coded ``image`` turned as a video of display ``rotation`` (degrees
    counter-clockwise) is shown: the inverse of :func:`to_coded_orientation`."""
    if rotation % 90 or not (rotation // 90) % 4:
        return image
    return np.ascontiguousarray(np.rot90(image, (rotation // 90) % 4))


@dataclass
class Frame:
    """One decoded frame: its position, its timestamp and its RGB pixels.

    ``planes`` are the decoded samples ``image`` was made from (one 2-D array per plane of
    ``pix_fmt``; None for packed formats and the decord backend). They must always describe
    ``image``: replace the image with :meth:`with_image`, never in place.
    """

    index: int
    pts: int | None
    time_base: Fraction
    image: np.ndarray
    duration: int | None = None  # in time_base units, when the stream says
    planes: tuple[np.ndarray, ...] | None = None
    pix_fmt: str | None = None  # the format of ``planes``
    # the transparency (H x W, the image's sample type) of a source with an alpha channel;
    # deblurring leaves it as it was
    alpha: np.ndarray | None = None

    @property
    def time_s(self) -> float | None:
        """Presentation time in seconds (None when the stream has no timestamps)."""
        return None if self.pts is None else float(self.pts * self.time_base)

    def with_image(self, image: np.ndarray) -> Frame:
        """The same frame holding another image (e.g. restored); the decoded planes no
        longer match it and are left out, its transparency stays."""
        return Frame(self.index, self.pts, self.time_base, image, self.duration,
                     alpha=self.alpha)


def frame_interval(fps: Fraction | None, time_base: Fraction) -> int:
    """One frame's interval at ``fps`` (25 where unknown) in ``time_base`` ticks, at least
    one tick: where a frame without a usable timestamp is placed after the one before."""
    return max(1, round(1 / (Fraction(fps or 25) * Fraction(time_base))))

"""The ``--ref`` image: fitted to the frames or photo it lends to, exposed as they are, set
aside where it is much noisier, and what became of it said once at the end."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from ..image_files import peak_value
from ..refine.exposure import exposure_matcher
from ..refine.noise import QuietEnough
from ..refine.transfer import DEFAULT_TRANSFER
from ..video.frame import Frame, to_coded_orientation
from .framelog import FrameRecord

if TYPE_CHECKING:
    from ..video.metadata import VideoInfo

log = logging.getLogger("refdeblur_video")

__all__ = ["ForcedReference", "exposure_words", "fit_reference"]


@dataclass
class ForcedReference:
    """The ``--ref`` image as every blurry frame of a stream is offered it."""

    image: np.ndarray  # fitted to the frames, in their coded orientation and sample type
    # a --ref much noisier than a frame: that frame is restored as without it (its
    # neighbours lend more than a noisy still, whose noise the transfer would copy in)
    quiet: QuietEnough | None
    of_what: str = "the video"  # what the frames are, in the closing warnings
    set_aside: set[int] = field(default_factory=set)  # the frames it was too noisy for

    @classmethod
    def for_frames(cls, image: np.ndarray, size: tuple[int, int], dtype, transfer: bool,
                   rotation: int = 0, sample_aspect: float = 1.0,
                   of_what: str = "the video", grey: bool = False) -> ForcedReference:
        """``image`` for frames of coded ``size`` (h, w) and ``dtype``, shown turned by
        ``rotation`` (degrees counter-clockwise) with samples ``sample_aspect`` wide; a
        photo shows the scene as the frames are shown. ``transfer``: the transfer runs,
        which would copy a noisy reference's noise in; ``grey`` frames are lent it grey
        (the reference check would take its colours for another scene)."""
        shown = size[::-1] if rotation % 180 == 90 else size
        if rotation % 180 == 90:  # turned, a sample's width is shown upright
            sample_aspect = 1.0 / sample_aspect
        fitted = to_coded_orientation(
            fit_reference(image, shown, dtype, "the frames as shown", grey=grey,
                          sample_aspect=sample_aspect), rotation)
        quiet = QuietEnough(fitted, DEFAULT_TRANSFER.noise_allowance) if transfer else None
        return cls(fitted, quiet, of_what)

    @classmethod
    def for_video(cls, image: np.ndarray, info: VideoInfo, transfer: bool,
                  grey: bool = False) -> ForcedReference:
        """:meth:`for_frames` for the frames of a video of ``info`` (its coded size and
        sample type, its rotation and sample shape)."""
        return cls.for_frames(image, (info.height, info.width),
                              np.uint16 if info.bit_depth > 8 else np.uint8, transfer,
                              rotation=info.rotation,
                              sample_aspect=float(info.sample_aspect_ratio or 1), grey=grey)

    def fits(self, frame: Frame) -> bool:
        """Whether the image may lend to ``frame`` (it is not much noisier)."""
        fits = self.quiet is None or self.quiet(frame.image)
        if not fits:
            self.set_aside.add(frame.index)
        return fits

    def stream_options(self) -> dict[str, Any]:
        """:func:`~.stream.run_stream`'s keywords for it."""
        return {"forced_reference": self.image,
                "forced_fits": None if self.quiet is None else self.fits,
                "fit_forced": _exposed_for_frames(self.image)}

    def say_what_was_set_aside(self, records: list[FrameRecord]) -> None:
        """Warn once of the restored frames it did not lend to, and why."""
        _say_forced_dropped(records, self.set_aside, self.of_what)
        if self.quiet is not None:
            _say_forced_noisy(self.quiet, len(self.set_aside), records, self.image.dtype,
                              self.of_what)


def fit_reference(reference: np.ndarray, shape: tuple[int, ...], dtype,
                   against: str = "the frames", grey: bool = False,
                   sample_aspect: float = 1.0) -> np.ndarray:
    """The ``--ref`` image at ``shape`` (``against`` names what has that size in the
    warning; ``sample_aspect``: the width a stored sample is shown at, anamorphic video's
    not 1) in ``dtype``; a colour one made grey for a ``grey`` photo, whose colours the
    reference check would otherwise take for another scene."""
    if reference.shape[:2] != shape[:2]:
        reference = _scaled_to_fit(reference, shape[:2], against, sample_aspect)
    if grey:
        reference = cv2.cvtColor(cv2.cvtColor(reference, cv2.COLOR_RGB2GRAY),
                                 cv2.COLOR_GRAY2RGB)
    if reference.dtype != dtype:
        scale = 257 if dtype == np.uint16 else 1 / 257
        reference = np.clip(np.round(reference.astype(np.float64) * scale), 0,
                            np.iinfo(dtype).max).astype(dtype)
    return reference


def _scaled_to_fit(reference: np.ndarray, size: tuple[int, int], against: str,
                   sample_aspect: float = 1.0) -> np.ndarray:
    """``reference`` scaled by one factor until it fits inside ``size`` (h, w) as shown
    (its width times ``sample_aspect``), the rest filled by its edge rows or columns, then
    stored at ``size``: stretched to another aspect its scene would no longer match, and a
    crop of the photo's own shot (a wider or taller view) keeps its scale. Within a
    percent of the aspect it is plainly resized."""
    height, width = reference.shape[:2]
    shown = (size[0], max(1, round(size[1] * sample_aspect)))
    factor = min(shown[0] / height, shown[1] / width)
    fitted = (min(shown[0], max(1, round(height * factor))),
              min(shown[1], max(1, round(width * factor))))
    plain = all(abs(a - b) <= max(2, 0.01 * b) for a, b in zip(fitted, shown, strict=True))
    log.warning("the reference image is %dx%d, %s %dx%d: %s", width, height, against,
                shown[1], shown[0], "resizing it" if plain else
                "scaling it to fit and filling the rest from its edges (its aspect differs)")
    def resized(image: np.ndarray, to: tuple[int, int]) -> np.ndarray:  # (h, w)
        smaller = to[0] <= image.shape[0] and to[1] <= image.shape[1]
        return cv2.resize(image, (to[1], to[0]),
                          interpolation=cv2.INTER_AREA if smaller else cv2.INTER_CUBIC)

    if plain:
        return resized(reference, size)
    scaled = resized(reference, fitted)
    top, left = (shown[0] - fitted[0]) // 2, (shown[1] - fitted[1]) // 2
    filled = cv2.copyMakeBorder(scaled, top, shown[0] - fitted[0] - top, left,
                                shown[1] - fitted[1] - left, cv2.BORDER_REPLICATE)
    return filled if shown == tuple(size) else resized(filled, size)


def _say_forced_dropped(records: list[FrameRecord], set_aside: set[int], of_what: str) -> None:
    """One warning for the restored frames the reference check kept the ``--ref`` image
    from (not those it was ``set_aside`` for before the network), and what they were
    restored against instead."""
    dropped = [r for r in records if r.network_written and r.reference != -2
               and r.index not in set_aside]
    if not dropped:
        return
    neighbour = sum(r.reference_used == 1 and r.reference >= 0 for r in dropped)
    restored = sum(r.network_written for r in records)
    if neighbour == len(dropped):
        instead = "they were restored against a nearby sharp frame instead, as without --ref"
    elif not neighbour:
        instead = "they were restored against themselves"
    else:
        instead = (f"{neighbour} were restored against a nearby sharp frame instead, "
                   f"{len(dropped) - neighbour} against themselves")
    log.warning("the --ref image does not show %s's scene (reference check) in %d of "
                "%d restored frames: %s", of_what, len(dropped), restored, instead)


def _say_forced_noisy(quiet: QuietEnough, set_aside: int, records: list[FrameRecord],
                      dtype, of_what: str) -> None:
    """One warning for the blurry frames the ``--ref`` image was set aside for as much
    noisier than they are (``set_aside`` of them, in this run)."""
    if not set_aside:
        return
    restored = sum(r.network_written for r in records)
    peak = peak_value(dtype)
    log.warning("the --ref image is much noisier than %s (noise %.1f against up to %.1f "
                "of %d) in %d of %d restored frames: they were restored as without --ref",
                of_what, quiet.level * peak, quiet.frame_level * peak, peak, set_aside, restored)


def _exposed_for_frames(reference: np.ndarray) -> Callable[[Frame, np.ndarray], np.ndarray]:
    """The ``--ref`` image exposed as each frame it lends to (measured once:
    :func:`exposure_matcher`), said the first time it differs: a video's exposure drifts, a
    still is one moment."""
    said: list[int] = []
    matcher = exposure_matcher(reference)

    def exposed(frame: Frame, _reference: np.ndarray) -> np.ndarray:
        matched, gains = matcher(frame.image)
        if gains is not None and not said:
            said.append(frame.index)
            log.warning("the reference is exposed otherwise than frame %d (%s): matched to "
                        "each frame it lends its detail to", frame.index,
                        exposure_words(gains))
        return matched

    return exposed


def exposure_words(gains: np.ndarray) -> str:
    """How a reference's exposure differs, from the gains that match it to its photo:
    ``5 % brighter`` where the channels agree, else each channel's."""
    percent = [round(100 * (1.0 / gain - 1.0)) for gain in gains]  # the reference's
    if max(percent) - min(percent) <= 1:
        amount = round(sum(percent) / 3)
        return f"{abs(amount)} % {'brighter' if amount > 0 else 'darker'}"
    return ", ".join(f"{name} {value:+d} %" for name, value in zip("RGB", percent, strict=True))

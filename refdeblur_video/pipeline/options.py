"""Options of the main job, shared by the command line and the Python API."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..errors import UserError
from ..frames.references import DEFAULT_MAX_OFFSET, DEFAULT_THRESHOLD, DEFAULT_WINDOW
from ..messages import did_you_mean
from ..typed_fields import check_scalar_fields
from ..video.presets import X264_PRESETS


@dataclass
class DeblurOptions:
    """Everything ``refdeblur-video`` can be told; defaults are the command's defaults."""

    model: str = "default"  # default | lite | paper | PATH.safetensors | PATH.yaml
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    fp32: bool = False  # no bf16/fp16 autocast (GPUs, CPUs with native bf16)
    batch: int = 2  # blurry frames per model call
    tile: int | None = None  # tile edge in pixels; None: automatic from the memory budget
    reference_check: float | None = None  # None: the model's; 0: keep every reference
    transfer: bool = True  # flow-guided reference transfer after the network
    both_sides: bool = True  # the transfer also borrows from the sharp frame on the other side
    cpu_transfer: bool = False  # on a GPU, the transfer on the CPU (OpenCV) all the same
    flow_alignment: bool = False  # warp references by the dense flow, not its homography
    # guide each reference's homography by the camera's motion between the two sharp frames
    # around a blurry one, interpolated to its time (refine/motion.py)
    motion_prior: bool = True
    threshold: float = DEFAULT_THRESHOLD
    window: int = DEFAULT_WINDOW
    max_offset: int = DEFAULT_MAX_OFFSET
    all_frames: bool = False  # run every frame through the network
    cuts: bool = True  # find shot cuts; nothing is compared or borrowed across one
    ref: str | None = None  # one reference image for every blurry frame
    reader: str = "pyav"  # pyav | decord
    codec: str | None = None  # default: the input's format where the container holds it
    crf: int | None = 16
    preset: str | None = "medium"
    pix_fmt: str | None = None  # default: the input's, where the codec supports it
    audio: bool = True  # stream-copy audio and subtitles
    quality: int | None = None  # a restored JPEG/WebP photo's; None: JPEG 95, WebP lossless
    log: str | None = None  # per-frame log, .csv or .json
    overwrite: bool = False
    quiet: bool = False
    queue_size: int | None = None  # frames in flight between stages; None: by frame size
    resume: bool = False  # go on from the finished work an interrupted run left
    segment_seconds: float = 5.0  # video committed at a time (each part starts a new GOP)
    adapt: bool = False  # fine-tune a copy of the network on the video's own sharp frames
    adapt_seconds: float | None = None  # its budget; None: the device's default
    save_adapted: str | None = None  # keep the weights used (.safetensors; many files: a folder)
    dry_run: bool = False  # plan only: which frames would be restored, nothing written
    # an image sequence made into a video: its frame rate ("25", "29.97", "30000/1001");
    # None: 25, as FFmpeg reads image sequences
    fps: str | float | None = None

    def __post_init__(self) -> None:
        # the command line parses the values; the Python API takes what it is given
        check_scalar_fields(self, lambda text: TypeError(f"option {text}"), paths=True)
        if self.crf is not None and self.crf < 0:
            raise UserError("--crf must be 0 (lossless) or more")
        # every encoder's speed is set from these names (x264 would print its own
        # complaint about another to the terminal, and the others would ignore it)
        if self.preset is not None and self.preset not in X264_PRESETS:
            raise UserError(f"--preset must be one of {', '.join(X264_PRESETS)}")
        if self.quality is not None and not 1 <= self.quality <= 100:
            raise UserError("--quality must be in [1, 100]")
        if self.batch < 1:
            raise UserError("--batch must be at least 1")
        if self.tile is not None and self.tile != 0 and self.tile < 64:
            raise UserError("--tile must be 0 (off) or at least 64 pixels")
        if self.reference_check is not None and not 0 <= self.reference_check <= 1:
            raise UserError("--reference-check must be in [0, 1]")
        if not 0 < self.threshold <= 1:
            raise UserError("--threshold must be in (0, 1]")
        if self.window < 1 or self.max_offset < 1:  # window 0: no frame has a sharper one
            raise UserError("--window and --max-offset must be at least 1: a frame is judged "
                            "and restored against its neighbours")
        if self.log is not None and not self.log.lower().endswith((".csv", ".json")):
            raise UserError("--log must end in .csv or .json")
        if not 0 < self.segment_seconds <= 86400:
            raise UserError("--segment-seconds must be in (0, 86400]")
        if self.adapt_seconds is not None and not 0 < self.adapt_seconds <= 86400:
            raise UserError("--adapt-seconds must be in (0, 86400]")
        if self.fps is not None:  # refused here, before anything is read; one rate, one
            # text (29.97 and 30000/1001 resume each other's runs; a Fraction is stored)
            self.fps = str(sequence_rate(self.fps))
        if not self.adapt and (self.adapt_seconds is not None or self.save_adapted):
            raise UserError("--adapt-seconds and --save-adapted need --adapt")

    @property
    def rate(self) -> Fraction:
        """An image sequence's frame rate as a video (``--fps``; 25 where not given)."""
        return sequence_rate(self.fps) if self.fps is not None else Fraction(25)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> DeblurOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(unknown)}"
                            + did_you_mean(unknown[0], known))
        return cls(**kwargs)

    @classmethod
    def resolve(cls, keywords: dict[str, Any]) -> DeblurOptions:
        """The options of an entry point's keywords: ``options=`` (a
        :class:`DeblurOptions`, checked afresh since it may have been changed since it was
        made) with any other keywords set over it."""
        base = keywords.pop("options", None)
        if base is not None and not isinstance(base, cls):
            raise TypeError(f"options must be a DeblurOptions, not {type(base).__name__}")
        given = dataclasses.asdict(base) if base is not None else {}
        return cls.from_kwargs(**{**given, **keywords})

    def video_only_given(self) -> list[str]:
        """The options given (set away from their defaults) that do nothing for a photo."""
        return self._given(_VIDEO_ONLY)

    def encoder_only_given(self) -> list[str]:
        """The options given that do nothing where the frames are written as images."""
        return self._given(_ENCODER_ONLY)

    def photo_only_given(self) -> list[str]:
        """The options given that do nothing for a video."""
        return self._given(_PHOTO_ONLY)

    def _given(self, flags: dict[str, str]) -> list[str]:
        default = DeblurOptions()
        return [flag for name, flag in flags.items()
                if getattr(self, name) != getattr(default, name)]


# options that only a video has a use for, by the option's name on the command line
_VIDEO_ONLY = {"codec": "--codec", "crf": "--crf", "preset": "--preset", "pix_fmt": "--pix-fmt",
               "audio": "--no-audio", "threshold": "--threshold", "window": "--window",
               "max_offset": "--max-offset", "all_frames": "--all-frames", "cuts": "--no-cuts",
               "reader": "--reader", "resume": "--resume",
               "segment_seconds": "--segment-seconds", "both_sides": "--one-reference",
               "motion_prior": "--no-motion-prior"}
# of those, the ones that only encoding a video file has a use for
_ENCODER_ONLY = {name: flag for name, flag in _VIDEO_ONLY.items()
                 if name in ("codec", "crf", "preset", "pix_fmt", "audio", "reader",
                             "segment_seconds")}
# options that only a photo has a use for
_PHOTO_ONLY = {"quality": "--quality"}


def sequence_rate(text: str | float) -> Fraction:
    """``--fps``'s frame rate: a number (``29.97``) or a ratio (``30000/1001``); 29.97,
    23.976 and 59.94 are taken as the NTSC rates they stand for."""
    try:
        rate = Fraction(str(text).strip()) if not isinstance(text, bool) else Fraction(0)
    except (ValueError, ZeroDivisionError):
        rate = Fraction(0)
    if not 0 < rate <= 1000:
        raise UserError(f"--fps must be a frame rate in (0, 1000], as 25, 29.97 or "
                        f"30000/1001 (not {text!r})")
    for ntsc in (24, 30, 60):  # the rounded names of 24000/1001, 30000/1001, 60000/1001
        exact = Fraction(ntsc * 1000, 1001)
        if rate != exact and abs(rate - exact) < Fraction(1, 100):
            return exact
    return rate

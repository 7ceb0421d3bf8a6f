"""How the network is run, apart from what it is: the inference settings.

:class:`~.config.ModelConfig` is the architecture, what a checkpoint's weights must match.
:class:`InferenceSettings` is how a network is run: how it searches the reference
(:class:`Matching`, read by :class:`~.net.RefDeblurNet`, in training too), the reference
check and pre-alignment (read by :class:`~.restorer.Restorer` only) and the reference
transfer's low-pass (read by the step after the network). A model YAML and a checkpoint's metadata
carry both, side by side under the same flat keys (:data:`KEYS`), so the settings a model
was shipped with are the defaults of inference with it. Each default is written here once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import UserError
from ..typed_fields import check_scalar_fields

MATCH_MODES = ("local", "global", "identity")
PREALIGN_CHOICES = (False, True, "flow", "homography")


@dataclass(frozen=True)
class Matching:
    """How the network finds each query patch in the reference (:func:`.matching.match`):
    ``mode`` local (within ``radius`` cells at 1/4 resolution) or global, in chunks of about
    ``memory_mb``; local matching chooses by similarity less ``prior`` times the displacement
    in radii."""

    mode: str
    radius: int
    memory_mb: int
    prior: float = 0.0

    def __post_init__(self) -> None:
        check_scalar_fields(self, lambda text: UserError(f"model config: match_{text}"))
        if self.mode not in MATCH_MODES:
            raise UserError(f"model config: match_mode must be one of {', '.join(MATCH_MODES)}")
        if self.radius < 1:
            raise UserError("model config: match_radius must be at least 1")
        if self.prior < 0:
            raise UserError("model config: match_prior must not be negative")


@dataclass(frozen=True)
class InferenceSettings:
    """The run-time settings a model YAML or checkpoint carries beside its architecture."""

    match_mode: str = "local"
    match_radius: int = 8
    match_memory_mb: int = 1024
    match_prior: float = 0.0
    # the reference is warped onto its frame before the network (a model trained on such
    # references; not in the paper): true or "flow" by the reference transfer's dense flow,
    # "homography" by the homography fitted to it (for match_mode "identity")
    prealign: bool | str = False
    # a reference whose mean match confidence is below this share of the frame's own (the
    # frame matched against itself) is replaced by the frame: it does not show the same
    # scene (0: off; not in the paper)
    reference_check: float = 0.0
    # the reference transfer after the network also aligns the reference on the network's
    # output low-passed with this Gaussian sigma, per pixel the more trusted alignment kept
    # (px at 720p; 0: only on the output as it is; the transfer's
    # TransferSettings.align_smoothing_px, via refine.transfer_for): a network whose
    # matches are good copies reference detail in whole 4 x 4 blocks, and a flow computed on
    # the sharp output locks onto those copies instead of the scene (not in the paper)
    transfer_smoothing: float = 0.0

    def __post_init__(self) -> None:
        check_scalar_fields(self, lambda text: UserError(f"model config: {text}"))
        self.matching  # noqa: B018 - validates the matching fields
        if self.prealign not in PREALIGN_CHOICES:
            raise UserError("model config: prealign must be false, true (flow) or homography")
        if not 0.0 <= self.reference_check <= 1.0:
            raise UserError("model config: reference_check must be in [0, 1]")
        if not 0.0 <= self.transfer_smoothing <= 32.0:
            raise UserError("model config: transfer_smoothing must be in [0, 32]")

    @property
    def matching(self) -> Matching:
        return Matching(self.match_mode, self.match_radius, self.match_memory_mb,
                        self.match_prior)

    @classmethod
    def of(cls, matching: Matching, reference_check: float | None = None,
           prealign: bool | str = False, transfer_smoothing: float = 0.0
           ) -> InferenceSettings:
        """The settings of a network matching per ``matching`` (reference check: given, or
        the default)."""
        check = {} if reference_check is None else {"reference_check": reference_check}
        return cls(matching.mode, matching.radius, matching.memory_mb, matching.prior,
                   prealign, transfer_smoothing=transfer_smoothing, **check)

    def replace(self, **changes: Any) -> InferenceSettings:
        """A copy with ``changes``; None values leave a setting as it is."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InferenceSettings:
        return cls(**data)


KEYS = tuple(f.name for f in dataclasses.fields(InferenceSettings))


def split_settings(data: dict[str, Any]) -> tuple[dict[str, Any], InferenceSettings]:
    """A flat mapping (model YAML, checkpoint metadata) as (the architecture's entries, the
    inference settings); settings it does not name take their defaults."""
    rest = {k: v for k, v in data.items() if k not in KEYS}
    return rest, InferenceSettings.from_dict({k: v for k, v in data.items() if k in KEYS})

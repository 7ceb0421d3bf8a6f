"""The step after the network for one frame: reference transfer, then rounding."""

from __future__ import annotations

import numpy as np

from ..image_files import from_float, to_float
from .transfer import DEFAULT_TRANSFER, TransferSettings, transfer_reference


class Refiner:
    """Finishes the network's output of one frame: blends in the flow-aligned reference
    (:func:`~.transfer.transfer_reference`) unless ``settings`` is None or the reference is
    the frame itself, and rounds to the frame's sample type."""

    def __init__(self, settings: TransferSettings | None = DEFAULT_TRANSFER) -> None:
        self.settings = settings

    def __call__(self, restored: np.ndarray, frame: np.ndarray,
                 reference: np.ndarray | None) -> np.ndarray:
        """``restored``: the network's H x W x 3 float32 output in [0, 1]; ``frame``: the
        blurry input; ``reference``: the image the network was given (None or the frame:
        nothing to transfer). Returns an image of ``frame``'s dtype."""
        if self.settings is not None and reference is not None and not (
                reference is frame or np.array_equal(reference, frame)):
            restored = transfer_reference(restored, to_float(reference), self.settings)
        return from_float(restored, frame.dtype)

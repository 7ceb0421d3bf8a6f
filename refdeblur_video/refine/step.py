"""The step after the network for one frame: reference transfer, then rounding."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..image_files import from_float, peak_value, to_float
from .transfer import DEFAULT_TRANSFER, TransferSettings, transfer_reference


class Refiner:
    """Finishes the network's output of one frame: blends in the flow-aligned reference
    (:func:`~.transfer.transfer_reference`) unless ``settings`` is None or the reference is
    the frame itself, then, given a ``second`` reference (the sharp frame on the other side
    of the blurry one), blends that into the result the same way, and rounds to the frame's
    sample type. A second reference fills in what the first does not show (content hidden
    or out of view in one neighbour is often visible in the other); the transfer's own
    confidence, now measured against the already improved result, keeps it out where it is
    no sharper or does not match.

    An output still on the network's device (:class:`~refdeblur_video.model.DeviceOutput`,
    from :meth:`Restorer.restore_on_device`) is finished there, by the PyTorch transfer
    (:mod:`.torch_transfer`), and only the finished frame comes back.
    """

    def __init__(self, settings: TransferSettings | None = DEFAULT_TRANSFER,
                 both_sides: bool = True) -> None:
        self.settings = settings
        self.both_sides = both_sides  # False: a ``second`` reference is ignored

    def takes_second(self, frame: np.ndarray, reference: np.ndarray | None,
                     second: np.ndarray | None) -> bool:
        """Whether a call with these images transfers from ``second`` (after
        ``reference``)."""
        return self._transfers(frame, reference) and self._second_usable(frame, second)

    def _second_usable(self, frame: np.ndarray, second: np.ndarray | None) -> bool:
        return self.both_sides and self._transfers(frame, second)

    def _transfers(self, frame: np.ndarray, reference: np.ndarray | None) -> bool:
        return self.settings is not None and reference is not None and not (
            reference is frame or np.array_equal(reference, frame))

    def __call__(self, restored, frame: np.ndarray, reference: np.ndarray | None,
                 second: np.ndarray | None = None) -> np.ndarray:
        """``restored``: the network's H x W x 3 float32 output in [0, 1] (or a
        ``DeviceOutput``); ``frame``: the blurry input; ``reference``: the image the network
        was given (None or the frame: nothing to transfer); ``second``: another reference
        to transfer from after it (used only where ``reference`` is). Returns an image of
        ``frame``'s dtype."""
        first = reference if self._transfers(frame, reference) else None
        if first is None or not self._second_usable(frame, second):
            second = None
        if not isinstance(restored, np.ndarray):
            return self._on_device(restored, frame, first, second)
        for image in (first, second):
            if image is not None:
                restored = transfer_reference(restored, to_float(image), self.settings)
        return from_float(restored, frame.dtype)

    def _on_device(self, output, frame: np.ndarray, reference: np.ndarray | None,
                   second: np.ndarray | None) -> np.ndarray:
        import torch

        from ..model.restorer import images_to_tensor
        from .torch_transfer import transfer_reference_torch

        restored = output.restored[None]
        if reference is not None:
            restored = transfer_reference_torch(restored, output.reference[None],
                                                self.settings)
        if second is not None:  # only ever given after a first reference
            restored = transfer_reference_torch(
                restored, images_to_tensor([second], restored.device), self.settings)
        peak = peak_value(frame.dtype)
        # rounded as from_float rounds (half to even), then one copy back in the frame's type
        samples = torch.round(restored[0].clamp(0.0, 1.0) * peak).permute(1, 2, 0)
        wide = torch.uint8 if frame.dtype == np.uint8 else torch.int32
        return samples.to(wide).cpu().numpy().astype(frame.dtype, copy=False)


def transfer_for(restorer: object) -> TransferSettings:
    """The transfer settings that finish ``restorer``'s outputs: the defaults, also aligned
    on the output low-passed where its model asks (``transfer_smoothing`` of
    :class:`~refdeblur_video.model.inference.InferenceSettings`)."""
    return replace(DEFAULT_TRANSFER,
                   align_smoothing_px=float(getattr(restorer, "transfer_smoothing", 0.0)))


def restore_step(restorer, on_device: bool = True):
    """The network call to pair with a :class:`Refiner`: on a GPU the outputs stay there
    (``restore_on_device``) and the refiner finishes them there; on a CPU, or with
    ``on_device`` False, they come back as float arrays (``restore_floats``) for the OpenCV
    transfer (many times faster than the PyTorch one on a CPU)."""
    device = getattr(restorer, "device", None)
    if (on_device and device is not None and device.type != "cpu"
            and hasattr(restorer, "restore_on_device")):
        return restorer.restore_on_device
    return restorer.restore_floats

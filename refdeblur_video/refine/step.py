"""The step after the network: reference transfer, then rounding to the frame's type."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ..image_files import from_float, peak_value, to_float
from .motion import interpolated_priors
from .noise import QuietEnough
from .transfer import DEFAULT_TRANSFER, TransferSettings, fitted_homography, transfer_reference

log = logging.getLogger("refdeblur_video")

# (the network's output: an array or a DeviceOutput, the blurry frame, its reference, the
# second reference, where the frame sits in time between the two: 0 at the reference, 1 at
# the second, or None)
Request = tuple[Any, np.ndarray, np.ndarray | None, np.ndarray | None, float | None]
Priors = tuple[np.ndarray | None, np.ndarray | None]


def reference_priors(first: np.ndarray | None, second: np.ndarray | None,
                     fraction: float | None, settings: TransferSettings | None,
                     motion_of=fitted_homography) -> Priors:
    """The homographies (frame -> ``first``, frame -> ``second``) that the camera's motion
    from the sharp frame ``first`` to the sharp frame ``second``, interpolated to
    ``fraction`` (where the frame sits in time between them), gives the transfer as its
    priors; (None, None) where there is no such motion to go by or ``settings`` take no
    prior. ``motion_of(first, second, settings)`` fits that motion."""
    if (first is None or second is None or fraction is None or settings is None
            or settings.prior_max_px <= 0 or settings.alignment != "homography"):
        return None, None
    motion = motion_of(first, second, settings)
    if motion is None:
        return None, None
    return interpolated_priors(motion, fraction, *first.shape[:2]) or (None, None)


class Refiner:
    """Finishes the network's output of one frame: blends in the flow-aligned reference
    (:func:`~.transfer.transfer_reference`) unless ``settings`` is None or the reference is
    the frame itself, then, given a ``second`` reference (the sharp frame on the other side
    of the blurry one), blends that into the result the same way, and rounds to the frame's
    sample type. A second reference fills in what the first does not show (content hidden
    or out of view in one neighbour is often visible in the other); the transfer's own
    confidence, now measured against the already improved result, keeps it out where it is
    no sharper or does not match. With both references and the frame's place in time
    between them (``fraction``), the camera's motion between the two sharp frames,
    interpolated to the frame, guides where each reference is warped to
    (:mod:`.motion`, ``TransferSettings.prior_max_px``).

    An output still on the network's device (:class:`~refdeblur_video.model.DeviceOutput`,
    from :meth:`Restorer.restore_on_device`) is finished there, by the PyTorch transfer
    (:mod:`.torch_transfer`), and only the finished frame comes back.
    """

    def __init__(self, settings: TransferSettings | None = DEFAULT_TRANSFER,
                 both_sides: bool = True, foreign: np.ndarray | None = None) -> None:
        self.settings = settings
        self.both_sides = both_sides  # False: a ``second`` reference is ignored
        # an image from outside the video (--ref): not transferred from where it is clearly
        # noisier than the frame. A sharp frame of the same video shares the frame's noise
        self._foreign_check = (None if foreign is None or settings is None
                               else QuietEnough(foreign, settings.noise_allowance))
        # the last sharp pair's motion: the blurry frames between two sharp ones share it
        self._last_pair: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None

    def _pair_motion(self, first: np.ndarray, second: np.ndarray,
                     settings: TransferSettings) -> np.ndarray | None:
        last = self._last_pair
        if last is None or last[0] is not first or last[1] is not second:
            last = self._last_pair = (first, second, fitted_homography(first, second,
                                                                       settings))
        return last[2]

    def takes_second(self, frame: np.ndarray, reference: np.ndarray | None,
                     second: np.ndarray | None) -> bool:
        """Whether a call with these images transfers from ``second`` (after
        ``reference``)."""
        return self._transfers(frame, reference) and self._second_usable(frame, second)

    def _second_usable(self, frame: np.ndarray, second: np.ndarray | None) -> bool:
        return self.both_sides and self._transfers(frame, second)

    def _transfers(self, frame: np.ndarray, reference: np.ndarray | None) -> bool:
        return self.settings is not None and reference is not None and not (
            reference is frame or np.array_equal(reference, frame)
        ) and self._quiet_enough(reference, frame)

    def _sides(self, frame: np.ndarray, reference: np.ndarray | None,
               second: np.ndarray | None, fraction: float | None
               ) -> tuple[np.ndarray | None, np.ndarray | None, Priors]:
        """The references actually transferred from (first or None, second or None) and
        their priors: the sharp pair's motion places the first reference also where the
        second is not transferred from (``both_sides`` off)."""
        first = reference if self._transfers(frame, reference) else None
        pair = second if first is not None and self._transfers(frame, second) else None
        priors = reference_priors(first, pair, fraction, self.settings, self._pair_motion)
        return first, pair if self.both_sides else None, priors

    def __call__(self, restored, frame: np.ndarray, reference: np.ndarray | None,
                 second: np.ndarray | None = None, fraction: float | None = None
                 ) -> np.ndarray:
        """``restored``: the network's H x W x 3 float32 output in [0, 1] (or a
        ``DeviceOutput``); ``frame``: the blurry input; ``reference``: the image the network
        was given (None or the frame: nothing to transfer); ``second``: another reference
        to transfer from after it (used only where ``reference`` is); ``fraction``: where
        the frame sits in time between the two (0 at ``reference``, 1 at ``second``).
        Returns an image of ``frame``'s dtype."""
        first, second, priors = self._sides(frame, reference, second, fraction)
        if not isinstance(restored, np.ndarray):
            return self._on_device([(restored, frame, first, second, priors)])[0]
        for image, prior in zip((first, second), priors, strict=True):
            if image is not None:
                restored = transfer_reference(restored, to_float(image), self.settings, prior)
        return from_float(restored, frame.dtype)

    def _quiet_enough(self, reference: np.ndarray, frame: np.ndarray) -> bool:
        """Whether ``reference``, where it is the ``foreign`` image, is no noisier than
        ``frame`` by more than the settings' ``noise_allowance`` (:mod:`.noise`); a
        warning the first time it is."""
        check = self._foreign_check
        if check is None or reference is not check.reference or check(frame):
            return True
        if check.refused == 1:
            peak = peak_value(frame.dtype)
            log.warning("the reference image is much noisier than the frame (noise %.1f "
                        "against %.1f of %d): the network still uses it, but its detail is "
                        "not copied in", check.level * peak, check.frame_level * peak, peak)
        return False

    def many(self, requests: Sequence[Request]) -> list[np.ndarray]:
        """The call on each ``(restored, frame, reference, second, fraction)`` of
        ``requests``, with the outputs still on the network's device finished together
        (those of one frame size and sample type): one batched transfer per side instead of
        one per frame, because on a GPU launching the transfer's many small operations
        takes longer than running them. The frames come out as the calls one by one would
        give them, up to the device's rounding (batch sizes may pick other kernels)."""
        # a request without its fraction (four items) has none
        requests = [(*request, None)[:5] for request in requests]
        finished: list[np.ndarray | None] = [None] * len(requests)
        alike: dict[tuple, list[int]] = {}  # frame shape and type -> request positions
        for k, (restored, frame, *rest) in enumerate(requests):
            if isinstance(restored, np.ndarray):
                finished[k] = self(restored, frame, *rest)
            else:
                alike.setdefault((frame.shape, frame.dtype), []).append(k)
        for positions in alike.values():
            chosen = [(requests[k][0], requests[k][1], *self._sides(*requests[k][1:5]))
                      for k in positions]
            for k, image in zip(positions, self._on_device(chosen), strict=True):
                finished[k] = image
        return finished  # type: ignore[return-value]

    def _on_device(self, requests: Sequence[tuple]) -> list[np.ndarray]:
        """Finish device outputs of one frame size and sample type: ``(output, frame,
        reference, second, priors)`` as :meth:`_sides` gives them, ``reference`` None where
        it is not transferred from, ``second`` None where it is not."""
        priors = [request[4] for request in requests]
        import torch

        from ..model.restorer import images_to_tensor
        from .torch_transfer import transfer_reference_torch

        restored = torch.stack([output.restored for output, *_ in requests])

        def transfer_rows(rows: list[int], references, side: int) -> None:
            chosen = [priors[k][side] for k in rows]
            if len(rows) == len(requests):  # the usual case: every frame, no gather
                restored[:] = transfer_reference_torch(restored, references, self.settings,
                                                       chosen)
                return
            index = torch.tensor(rows, device=restored.device)
            restored[index] = transfer_reference_torch(restored[index], references,
                                                       self.settings, chosen)

        firsts = [k for k, request in enumerate(requests) if request[2] is not None]
        if firsts:
            transfer_rows(firsts, torch.stack([requests[k][0].reference for k in firsts]), 0)
        seconds = [k for k in firsts if requests[k][3] is not None]
        if seconds:  # only ever given after a first reference
            transfer_rows(seconds, images_to_tensor([requests[k][3] for k in seconds],
                                                    restored.device), 1)
        dtype = requests[0][1].dtype
        peak = peak_value(dtype)
        # rounded as from_float rounds (half to even), then one copy back in the frame's type
        samples = torch.round(restored.clamp(0.0, 1.0) * peak).permute(0, 2, 3, 1)
        wide = torch.uint8 if dtype == np.uint8 else torch.int32
        return list(samples.to(wide).cpu().numpy().astype(dtype, copy=False))


def transfer_for(restorer: object, flow_alignment: bool = False,
                 motion_prior: bool = True) -> TransferSettings:
    """The transfer settings that finish ``restorer``'s outputs: the defaults, also aligned
    on the output low-passed where its model asks (``transfer_smoothing`` of
    :class:`~refdeblur_video.model.inference.InferenceSettings`), and with
    ``flow_alignment`` warped by the dense flow instead of its homography, and without
    ``motion_prior`` never guided by the camera's motion between the two references."""
    return replace(DEFAULT_TRANSFER,
                   align_smoothing_px=float(getattr(restorer, "transfer_smoothing", 0.0)),
                   alignment="flow" if flow_alignment else DEFAULT_TRANSFER.alignment,
                   prior_max_px=DEFAULT_TRANSFER.prior_max_px if motion_prior else 0.0)


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

"""The inference API: ``load_model(...)`` returns a :class:`Restorer`."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import UserError
from ..image_files import from_float, to_float
from .config import ModelConfig, load_model_yaml
from .device import autocast_dtype, resolve_device
from .inference import InferenceSettings
from .matching import MatchResult
from .net import RefDeblurNet
from .tiling import run_tiled, tile_regions
from .weights import (
    DEFAULT_WEIGHTS,
    PACKAGE_WEIGHTS,
    load_weights_into,
    read_checkpoint_config,
    read_checkpoint_settings,
)

UNTRAINED_WARNING = (
    "no trained weights are installed for this model: it returns its input unchanged "
    "(train one with refdeblur-train, or pass --model PATH.safetensors)"
)
NON_FINITE_OUTPUT = (
    "the model restored a frame to NaN or infinite values (broken weights, or a float16 "
    "overflow: try --fp32); stopped without writing the output"
)
# Rough activation memory per pixel of one frame, per channel of the first scale (bytes).
BYTES_PER_PIXEL_PER_CHANNEL = 4 * 14
# On a CPU, frames larger than 1080p run in tiles of this edge even where they fit in memory:
# the network's full-resolution feature maps then outgrow the processor's caches, and
# overlapping tiles run faster than the whole frame for the same result (docs/RESULTS.md,
# "The network in tiles on a CPU").
CPU_TILE_ABOVE_PIXELS = 1920 * 1088
CPU_TILE_EDGE = 768


@dataclass
class ModelSource:
    """Where a model came from: its config, its weights file (None: untrained) and the
    inference settings it comes with (a YAML's or checkpoint's; the defaults for a bare
    config)."""

    config: ModelConfig
    weights: Path | None
    settings: InferenceSettings = field(default_factory=InferenceSettings)


@dataclass
class DeviceOutput:
    """The network's output for one frame and the reference it was restored against (as
    given, before any placing: the step after aligns it itself, as on the CPU), both still on
    the network's device, for a step after the network that runs there too."""

    restored: Tensor  # (3, H, W) float32 in [0, 1]
    reference: Tensor  # (3, H, W) float32 in [0, 1]


def _checkpoint_source(path: Path) -> ModelSource:
    return ModelSource(read_checkpoint_config(path), path, read_checkpoint_settings(path))


def resolve_model(spec: str | Path | ModelConfig | None = None) -> ModelSource:
    """Turn ``default``, ``lite``, ``paper``, a .yaml or a .safetensors path into a source."""
    if isinstance(spec, ModelConfig):
        return ModelSource(spec, None)
    spec = "default" if spec is None else str(spec)
    if spec == "default":
        spec = "lite"
    path = Path(spec)
    if path.suffix == ".safetensors":
        return _checkpoint_source(path)
    if path.suffix in (".yaml", ".yml"):
        config, settings = load_model_yaml(path)
        return ModelSource(config, None, settings)
    if path.suffix or "/" in spec:
        raise UserError(
            f"--model must be default, lite, paper, a .yaml config or a .safetensors file: "
            f"{spec}"
        )
    config, settings = load_model_yaml(spec)
    shipped = PACKAGE_WEIGHTS / f"{spec}.safetensors"
    if not shipped.is_file():
        return ModelSource(config, None, settings)
    # the shipped weights carry their own config (the YAML is the recipe for new training)
    return _checkpoint_source(shipped)


class Restorer:
    """Deblurs frames with a :class:`RefDeblurNet` on one device.

    ``restore`` takes batched float tensors in [0, 1]; ``restore_images`` takes lists of
    H x W x 3 RGB uint8/uint16 arrays, ``restore_floats`` returns float arrays for a step
    after the network (:mod:`refdeblur_video.refine`), ``restore_on_device`` leaves them on
    the device for a step that runs there. Frames too large for the memory budget (or, on a
    CPU, larger than 1080p) run in overlapping tiles.
    ``reference_check`` (None: the default of :class:`~.inference.InferenceSettings`) is the
    reference check's share (:meth:`restore_checked`); the network's ``matching`` says how
    references are searched.
    """

    def __init__(
        self, model: RefDeblurNet, device: torch.device, *, trained: bool, amp: bool = True,
        tile: int | None = None, tile_overlap: int = 32, memory_mb: float | None = None,
        reference_check: float | None = None, prealign: bool | str = False,
        transfer_smoothing: float = 0.0,
    ) -> None:
        # channels-last runs the thin convolutions of this network faster (CPU and GPU)
        self.model = model.to(device).eval().to(memory_format=torch.channels_last)
        self.device = device
        self.trained = trained
        self.amp_dtype = autocast_dtype(device, amp)
        self.tile = tile
        self.tile_overlap = tile_overlap
        self.memory_mb = memory_mb if memory_mb is not None else _default_memory_mb(device)
        # validated together once, here (a bad value fails before any work is done)
        settings = InferenceSettings.of(model.matching, reference_check, prealign,
                                        transfer_smoothing)
        self.reference_check = settings.reference_check
        self.prealign = prealign
        # read by the step after the network (refdeblur_video.refine.transfer_for)
        self.transfer_smoothing = settings.transfer_smoothing
        self._on_step: Callable[[], None] | None = None  # see reporting()

    def steps_for(self, height: int, width: int) -> int:
        """How many steps :meth:`reporting` counts for one frame of this size: one per tile
        (one for a whole frame) of the reference check, and as many of the network."""
        tile = self.tile_size_for(height, width)
        tiles = 1 if tile is None else len(tile_regions(height, width, tile, self.tile_overlap))
        return tiles * (2 if self.reference_check > 0 else 1)

    @contextlib.contextmanager
    def reporting(self, step: Callable[[], None]) -> Iterator[None]:
        """Call ``step`` after each tile of the reference check and of the network (a large
        photo's progress), while the context lasts."""
        self._on_step = step
        try:
            yield
        finally:
            self._on_step = None

    def _step_done(self) -> None:
        if self._on_step is not None:
            self._on_step()

    @property
    def config(self) -> ModelConfig:
        """The network's architecture."""
        return self.model.config

    @property
    def settings(self) -> InferenceSettings:
        """How the network is run: its matching, the reference check, pre-alignment and the
        transfer's low-pass (what a checkpoint of it carries)."""
        return InferenceSettings.of(self.model.matching, self.reference_check, self.prealign,
                                    self.transfer_smoothing)

    def _prepared_references(self, blurry: list[np.ndarray], references: list[np.ndarray]
                             ) -> tuple[list[np.ndarray], Tensor | None]:
        """The references as the network takes them, and which of them are placed on their
        frames and matched in place ((B,) bool; None: none is). ``prealign``: warped onto
        their frames by the reference transfer's flow (searched near there), or by the
        camera's homography where that holds (:mod:`~refdeblur_video.refine.prealign`;
        matched in place, unless the model matches every reference in place anyway); else
        as given. A frame that is its own reference stays itself."""
        if not self.prealign:
            return references, None
        from ..refine.prealign import placed_reference
        from ..refine.transfer import PREALIGNERS

        by = "flow" if self.prealign is True else self.prealign
        pairs = list(zip(blurry, references, strict=True))
        own = [r is b or np.array_equal(r, b) for b, r in pairs]
        if by == "homography" and self.model.matching.mode != "identity":  # the gate
            placed = [(r, False) if mine else placed_reference(b, r)
                      for (b, r), mine in zip(pairs, own, strict=True)]
            return [r for r, _ in placed], torch.tensor([p for _, p in placed])
        # every reference warped (a model trained so; "identity": matched in place, too)
        return [r if mine else PREALIGNERS[by](b, r)
                for (b, r), mine in zip(pairs, own, strict=True)], None

    def tile_size_for(self, height: int, width: int, batch: int = 1) -> int | None:
        """The tile edge to use for frames of this size (None: whole frame)."""
        if self.tile is not None:
            return self.tile if self.tile > 0 and max(height, width) > self.tile else None
        per_pixel = BYTES_PER_PIXEL_PER_CHANNEL * self.config.channels[0] * batch
        max_pixels = self.memory_mb * 2**20 / per_pixel
        edge = None
        if height * width > max_pixels:
            edge = max(int(max_pixels**0.5) // 8 * 8, 2 * self.tile_overlap + 64)
        if self.device.type == "cpu" and height * width > CPU_TILE_ABOVE_PIXELS:
            edge = min(edge or CPU_TILE_EDGE, CPU_TILE_EDGE)
        return edge

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _forward(self, blurry: Tensor, reference: Tensor,
                 matched: MatchResult | None = None,
                 in_place: Tensor | None = None) -> Tensor:
        with self._autocast():
            blurry = blurry.contiguous(memory_format=torch.channels_last)
            reference = reference.contiguous(memory_format=torch.channels_last)
            return self.model(blurry, reference, matched, in_place).float().contiguous()

    def _check_references(self, blurry: Tensor, reference: Tensor, tile: int | None,
                          in_place: Tensor | None = None
                          ) -> tuple[Tensor, Tensor, list[MatchResult] | None]:
        """The reference check: (references to use, (B,) used flags, their match per tile in
        :func:`tile_regions` order, one for a whole frame, where reusable).

        Tiled frames add up both confidences over their tiles (weighted by area) and decide
        once per frame.
        """
        regions = ([(slice(None), slice(None))] if tile is None else
                   tile_regions(blurry.shape[-2], blurry.shape[-1], tile, self.tile_overlap))
        found = own = 0.0
        matched: list[MatchResult] | None = []
        with self._autocast():
            for rows, cols in regions:
                b = blurry[..., rows, cols].contiguous(memory_format=torch.channels_last)
                r = reference[..., rows, cols].contiguous(memory_format=torch.channels_last)
                scores = self.model.reference_scores(b, r, in_place)
                area = b.shape[-2] * b.shape[-1]
                found = found + scores.reference.float() * area
                own = own + scores.own.float() * area
                matched.append(scores.matched)
                self._step_done()
        used = found >= self.reference_check * own
        if not bool(used.all()):
            reference, matched = torch.where(used.view(-1, 1, 1, 1), reference, blurry), None
        return reference, used, matched

    @torch.inference_mode()
    def restore_checked(self, blurry: Tensor, reference: Tensor,
                        in_place: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Deblur a batch (B, 3, H, W) in [0, 1] after the reference check.

        A reference matching its frame less than ``reference_check`` times as well as
        the frame matches itself (:meth:`RefDeblurNet.reference_scores`) is replaced by the
        frame, one decision per frame (tiles included). Returns the output on the input's
        device and a (B,) bool tensor: True where the given reference was used. A non-finite
        output is a :class:`UserError`: written out it would be black.
        """
        out, _, used = self._restore_here(blurry, reference, in_place)
        return out.to(blurry.device), used.cpu()

    def _restore_here(self, blurry: Tensor, reference: Tensor, in_place: Tensor | None = None
                      ) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`restore_checked` on this restorer's device: (output, the references
        restored against, used flags), all there."""
        # channels-last once, for the check and the network alike
        b = blurry.to(self.device, torch.float32).contiguous(memory_format=torch.channels_last)
        r = reference.to(self.device, torch.float32).contiguous(
            memory_format=torch.channels_last)
        tile = self.tile_size_for(b.shape[-2], b.shape[-1], b.shape[0])
        used = torch.ones(b.shape[0], dtype=torch.bool, device=self.device)
        matched = None
        if in_place is not None:
            in_place = in_place.to(self.device)
        if self.reference_check > 0:
            r, used, matched = self._check_references(b, r, tile, in_place)
            if in_place is not None:  # a dropped reference's frame is searched, as before
                in_place = in_place & used
        if tile is None:
            out = self._forward(b, r, matched[0] if matched else None, in_place)
            self._step_done()
        else:  # each tile's match from the check, in the order run_tiled visits them
            tile_matches = iter(matched or [])

            def forward(bb: Tensor, rr: Tensor) -> Tensor:
                tile_out = self._forward(bb, rr, next(tile_matches, None), in_place)
                self._step_done()
                return tile_out

            out = run_tiled(forward, b, r, tile, self.tile_overlap)
        _require_finite(out)  # before the clamp, which would turn infinities into 0 or 1
        return out.clamp_(0.0, 1.0), r, used

    def restore(self, blurry: Tensor, reference: Tensor) -> Tensor:
        """Deblur a batch (B, 3, H, W) in [0, 1]; returns a tensor on the input's device."""
        return self.restore_checked(blurry, reference)[0]

    def restore_floats(
        self, blurry: list[np.ndarray], references: list[np.ndarray]
    ) -> tuple[list[np.ndarray], list[bool]]:
        """Deblur lists of RGB uint8/uint16 images (same sizes within the batch) into
        H x W x 3 float32 arrays in [0, 1]; also says, per image, whether its reference
        passed the check (False: the image was its own)."""
        if not _same_sizes(blurry, references):
            return [], []
        references, in_place = self._prepared_references(blurry, references)
        restored, used = self.restore_checked(images_to_tensor(blurry),
                                              images_to_tensor(references), in_place)
        return list(np.ascontiguousarray(restored.permute(0, 2, 3, 1).cpu().numpy())), \
            used.tolist()

    @torch.inference_mode()
    def restore_on_device(
        self, blurry: list[np.ndarray], references: list[np.ndarray]
    ) -> tuple[list[DeviceOutput], list[bool]]:
        """:meth:`restore_floats`, with each output and the reference it was restored
        against left on this restorer's device: the images go there once, as they are
        (uint8/uint16), and come back only as finished frames."""
        if not _same_sizes(blurry, references):
            return [], []
        prepared, in_place = self._prepared_references(blurry, references)
        b, r = (images_to_tensor(images, self.device) for images in (blurry, prepared))
        out, used_refs, used = self._restore_here(b, r, in_place)
        if prepared is not references:  # the step after gets the references as given
            given = images_to_tensor(references, self.device)
            used_refs = torch.where(used.view(-1, 1, 1, 1), given, used_refs)
        return [DeviceOutput(o, u) for o, u in zip(out, used_refs.float(), strict=True)], \
            used.tolist()

    def restore_images_checked(
        self, blurry: list[np.ndarray], references: list[np.ndarray]
    ) -> tuple[list[np.ndarray], list[bool]]:
        """:meth:`restore_floats`, rounded to the input's sample type."""
        restored, used = self.restore_floats(blurry, references)
        return [from_float(image, blurry[0].dtype) for image in restored], used

    def restore_images(
        self, blurry: list[np.ndarray], references: list[np.ndarray]
    ) -> list[np.ndarray]:
        """Deblur lists of RGB uint8/uint16 images (same sizes within the batch)."""
        return self.restore_images_checked(blurry, references)[0]


def _same_sizes(blurry: list[np.ndarray], references: list[np.ndarray]) -> bool:
    """False for empty lists; a :class:`UserError` where sizes differ."""
    if len(blurry) != len(references):
        raise ValueError("need one reference per blurry image")
    for image in (*blurry, *references):
        if image.shape != blurry[0].shape:
            raise UserError(
                f"image size {image.shape} differs from {blurry[0].shape}: a reference must "
                "have the same size as the frame it helps"
            )
    return bool(blurry)


def _require_finite(batch: Tensor) -> None:
    if not bool(batch.isfinite().all()):
        raise UserError(NON_FINITE_OUTPUT)


def images_to_tensor(images: list[np.ndarray], device: torch.device | None = None) -> Tensor:
    """Stack H x W x 3 uint8/uint16 arrays into a float (B, 3, H, W) tensor in [0, 1];
    with ``device``, the samples travel there as they are and are converted there."""
    if device is None:
        array = np.stack([to_float(image) for image in images])
        return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()
    stacked = np.stack(images)
    peak = float(np.iinfo(stacked.dtype).max)
    if stacked.dtype == np.uint16:  # sent as int16 (PyTorch's uint16 has few kernels)
        samples = torch.from_numpy(stacked.view(np.int16)).to(device).int() & 0xFFFF
    else:
        samples = torch.from_numpy(stacked).to(device)
    return (samples.float() / peak).permute(0, 3, 1, 2).contiguous()


def tensor_to_images(batch: Tensor, dtype: np.dtype = np.uint8) -> list[np.ndarray]:
    """Inverse of :func:`images_to_tensor`, rounding to the nearest integer."""
    array = batch.detach().float().cpu().permute(0, 2, 3, 1).numpy()
    return [from_float(frame, dtype) for frame in array]


def _default_memory_mb(device: torch.device) -> float:
    """The network's activation budget: 60 % of a GPU's free memory; on a CPU 4 GiB, or a
    sixth of the machine's memory where that is less (the frames in flight, the reference
    transfer and the encoder need the rest of an 8 GiB laptop at 4K)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free / 2**20 * 0.6
    try:
        physical_mb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (ValueError, OSError, AttributeError):  # not a POSIX system
        return 4096.0
    return min(4096.0, physical_mb / 6)


def load_model(
    config_or_checkpoint: str | Path | ModelConfig | None = "default",
    device: str | torch.device = "auto",
    *,
    amp: bool = True,
    tile: int | None = None,
    match_mode: str | None = None,
    match_radius: int | None = None,
    reference_check: float | None = None,
    memory_mb: float | None = None,
    warn_untrained: bool = True,
) -> Restorer:
    """Build a :class:`Restorer` from a shipped name, a YAML config or a safetensors checkpoint.

    ``default`` (or None) is the shipped lite model. An untrained network (no weights)
    returns its input unchanged, and a warning says so. ``match_mode``, ``match_radius`` and
    ``reference_check`` override the inference settings the model comes with (a
    checkpoint's or YAML's, :class:`~.inference.InferenceSettings`). The reference transfer
    after the network is a step of its own (:class:`refdeblur_video.refine.Refiner`).
    """
    source = resolve_model(config_or_checkpoint)
    config = source.config
    settings = source.settings.replace(match_mode=match_mode, match_radius=match_radius,
                                       reference_check=reference_check)
    model = RefDeblurNet(config, settings.matching)
    if source.weights is not None:
        load_weights_into(model, config, source.weights)
    elif warn_untrained:
        warnings.warn(UNTRAINED_WARNING, UserWarning, stacklevel=2)
    return Restorer(
        model, resolve_device(device), trained=source.weights is not None, amp=amp, tile=tile,
        memory_mb=memory_mb, reference_check=settings.reference_check,
        prealign=settings.prealign, transfer_smoothing=settings.transfer_smoothing,
    )


__all__ = ["DEFAULT_WEIGHTS", "Restorer", "load_model", "resolve_model"]

"""Fine-tuning a copy of the network within a time budget, and the held-back check.

The copy trains as the shipped recipe's last stage did: L1 + 0.1 FFT loss
(:func:`refdeblur_video.model.losses.reconstruction_loss`), Adam, the matching encoder phi
frozen (trained further, phi learns to raise its confidences rather than to match better;
docs/TRAINING.md, stage 8), a short warm-up and a cosine decay over the time left. Steps
stop while there is still time to score the copy on the held-back crops (or at
``max_steps``); the copy is
adopted only if it restores them better than the original by ``min_gain_db``.
"""

from __future__ import annotations

import copy
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..model.losses import LossWeights, reconstruction_loss
from .fit import StrengthFit
from .pseudo import PseudoTarget, pseudo_batch, weighted_l1
from .reservoir import Region
from .samples import make_batch
from .settings import AdaptSettings

LOSS_WEIGHTS = LossWeights(content=1.0, frequency=0.1, adversarial=0.0)
MIN_LR_SHARE = 0.05  # the cosine decay ends at this share of the learning rate


@dataclass
class TuneResult:
    """What the fine-tuning did and what the check found."""

    model: nn.Module  # the tuned copy (in eval mode)
    steps: int
    seconds: float
    psnr_before: float  # the original on the held-back crops (dB)
    psnr_after: float  # the copy on them
    loss: float  # mean training loss of the last steps
    check_seconds: float = 0.0  # one held-back check (the original's)
    step_seconds: float = 0.0  # one training step, lately

    @property
    def gain_db(self) -> float:
        return self.psnr_after - self.psnr_before


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def to_device(batch: dict[str, torch.Tensor], device: torch.device
              ) -> dict[str, torch.Tensor]:
    """A batch on ``device``, channels-last (as the network runs fastest)."""
    return {k: v.to(device).contiguous(memory_format=torch.channels_last)
            for k, v in batch.items()}


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer,
               batch: dict[str, torch.Tensor], lr: float, amp: torch.dtype | None,
               grad_clip: float = 1.0) -> float:
    """One optimiser step on a batch (already on the model's device); returns the loss.
    A batch with a ``weight`` (pseudo targets) learns the weighted L1 loss, others the
    reconstruction loss."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    device = batch["blur"].device
    with _autocast(device, amp):
        output = model(batch["blur"], batch["ref"])
    if "weight" in batch:
        loss = weighted_l1(output.float(), batch["sharp"], batch["weight"])
    else:
        loss = reconstruction_loss(output.float(), batch["sharp"], LOSS_WEIGHTS)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], grad_clip)
    optimizer.step()
    return float(loss.detach())


@torch.no_grad()
def held_psnr(model: nn.Module, batches: list[dict[str, torch.Tensor]],
              device: torch.device, amp: torch.dtype | None,
              stop_at: float | None = None) -> float:
    """PSNR (dB, peak 1) of ``model`` on the held-back batches, pooled: of the mean squared
    error over all their crops' pixels, as a whole frame's PSNR is. (The mean of per-crop
    PSNRs let flat crops, whose PSNR swings by dBs on tiny errors, outweigh the textured
    ones where deblurring shows: it ranked kept copies worse against their true gain,
    ``tools/experiments/held_check_variants.py``.) NaN where ``stop_at``
    (``time.monotonic()``) passes before the last batch: the budget ran out."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        if stop_at is not None and time.monotonic() >= stop_at:
            count = 0
            break
        batch = to_device(batch, device)
        with _autocast(device, amp):
            out = model(batch["blur"], batch["ref"]).float()
        if not bool(torch.isfinite(out).all()):  # clamping would hide an overflow
            total = math.inf
            break
        total += float((out.clamp(0, 1) - batch["sharp"]).double().pow(2).sum())
        count += out.numel()
    model.train(was_training)
    if not count or not math.isfinite(total):  # nothing to score, or the model broke down
        return float("nan")
    return -10 * math.log10(max(total / count, 1e-10))


def make_optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam on everything but phi (frozen: see the module docstring)."""
    phi = getattr(model, "phi", None)
    if phi is not None:
        phi.requires_grad_(False)
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)


def learning_rate(settings: AdaptSettings, step: int, progress: float) -> float:
    """Warm-up over the first steps, then a cosine decay over the time (0..1) spent."""
    if step < settings.warmup_steps:
        return settings.lr * (step + 1) / settings.warmup_steps
    share = MIN_LR_SHARE + (1 - MIN_LR_SHARE) * 0.5 * (1 + math.cos(math.pi * min(1, progress)))
    return settings.lr * share


class _Batches:
    """Training batches, made inline or (``workers`` > 0) by threads ahead of the network;
    OpenCV and NumPy release the GIL, so a GPU need not wait for its crops. A share
    ``pseudo_share`` of them are of the pseudo targets, where there are any."""

    def __init__(self, regions: list[Region], fit: StrengthFit, settings: AdaptSettings,
                 pseudo: list[PseudoTarget] | None = None) -> None:
        self.regions, self.fit, self.settings = regions, fit, settings
        self.pseudo = pseudo or []
        self.rng = np.random.default_rng(settings.seed + 7)
        self.stop = threading.Event()
        self.ready: queue.Queue = queue.Queue(maxsize=2 * max(1, settings.workers))
        self.threads = [threading.Thread(target=self._work, args=(k,), daemon=True,
                                         name=f"adapt-crops-{k}")
                        for k in range(settings.workers)]
        for thread in self.threads:
            thread.start()

    def _work(self, k: int) -> None:
        rng = np.random.default_rng([self.settings.seed, 11, k])
        while not self.stop.is_set():
            batch = self._make(rng)
            while not self.stop.is_set():
                try:
                    self.ready.put(batch, timeout=0.1)
                    break
                except queue.Full:
                    continue

    def _make(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        settings = self.settings
        if self.pseudo and rng.random() < settings.pseudo_share:
            return pseudo_batch(self.pseudo, settings.crop, settings.batch, rng)
        return make_batch(self.regions, settings.batch, self.fit, settings, rng)

    def next(self) -> dict[str, torch.Tensor]:
        if not self.threads:
            return self._make(self.rng)
        return self.ready.get()

    def close(self) -> None:
        self.stop.set()


def tune(model: nn.Module, regions: list[Region], held: list[dict[str, torch.Tensor]],
         fit: StrengthFit, settings: AdaptSettings, device: torch.device,
         amp: torch.dtype | None, deadline: float,
         progress: Callable[[int, float, float], None] | None = None,
         pseudo: list[PseudoTarget] | None = None) -> TuneResult:
    """Fine-tune a copy of ``model`` (left as it is) on crops of ``regions`` (and of the
    ``pseudo`` targets) until ``deadline`` (``time.monotonic()``), keeping time to score it
    on ``held``.

    ``progress(steps, loss, done)`` is called after each step; ``done`` is the share of the
    tuning behind it (of the time or of ``max_steps``, whichever is further on), the measure
    its learning-rate schedule follows.
    """
    start = time.monotonic()
    # on a busy machine the original's check alone can outlast the budget: stopped there,
    # no step is taken (the original is used), and the budget is kept
    before = held_psnr(model, held, device, amp, stop_at=deadline)
    check_s = time.monotonic() - start  # scoring the copy will take about as long
    if not math.isfinite(before):
        return TuneResult(model, 0, check_s, before, before, float("nan"), check_s)
    tuned = copy.deepcopy(model)
    optimizer = make_optimizer(tuned, settings.lr)
    tuned.train()
    batches = _Batches(regions, fit, settings, pseudo)
    first = time.monotonic()
    span = max(1e-6, deadline - check_s - first)
    steps, losses, step_s = 0, [], 0.0
    cap = settings.max_steps if settings.max_steps is not None else math.inf

    def done(at: float) -> float:  # the schedule ends at the deadline or the cap, if sooner
        return max((at - first) / span, steps / cap)

    try:
        while time.monotonic() + step_s + 1.2 * check_s < deadline and steps < cap:
            tick = time.monotonic()
            lr = learning_rate(settings, steps, done(tick))
            losses.append(train_step(tuned, optimizer, to_device(batches.next(), device), lr, amp,
                                     settings.grad_clip))
            steps += 1
            now = time.monotonic()
            step_s = now - tick if steps == 1 else 0.8 * step_s + 0.2 * (now - tick)
            if progress is not None:
                progress(steps, losses[-1], min(1.0, done(now)))
    finally:
        batches.close()
    tuned.eval()
    for p in tuned.parameters():
        p.requires_grad_(False)
    after = held_psnr(tuned, held, device, amp) if steps else before
    loss = float(np.mean(losses[-20:])) if losses else float("nan")
    return TuneResult(tuned, steps, time.monotonic() - start, before, after, loss, check_s,
                      step_s)


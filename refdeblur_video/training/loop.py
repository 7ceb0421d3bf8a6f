"""The training loop: single process, or DistributedDataParallel under ``torchrun``."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import signal
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..data.dataset import OnlineVideoTriplets, TripletDataset, finish_gpu_batch
from ..data.mixed_blur import BlurMix
from ..errors import UserError
from ..evaluate.metrics import psnr, ssim
from ..image_files import from_float, image_size, to_float
from ..model.config import load_model_yaml
from ..model.device import autocast_dtype
from ..model.discriminator import PatchDiscriminator
from ..model.inference import InferenceSettings
from ..model.losses import (
    LossWeights,
    discriminator_loss,
    generator_adversarial_loss,
    reconstruction_loss,
)
from ..model.net import RefDeblurNet
from ..model.phi import load_vgg19_weights
from ..model.restorer import resolve_model, tensor_to_images
from ..model.weights import load_weights_into, read_safetensors, save_checkpoint
from ..refine.step import transfer_for
from ..refine.transfer import TransferSettings, transfer_reference
from ..safe_output import atomic_output
from .config import TrainConfig
from .match_loss import matching_loss
from .resume_settings import resumed_config
from .state import load_training_state, save_training_state
from .transfer_loss import transferred_output


@dataclass
class Rank:
    """This process's place in a (possibly single-process) job."""

    rank: int = 0
    world: int = 1
    local: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_kind: str) -> Rank:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Rank()
    backend = "nccl" if device_kind == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return Rank(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def choose_device(rank: Rank) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", rank.local % torch.cuda.device_count())
    return torch.device("cpu")


def cosine_lr(step: int, cfg) -> float:
    """Linear warm-up, then cosine annealing from ``lr`` to ``lr_min`` over ``steps``."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, step / max(1, cfg.steps))
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * progress))


def blur_mix(values: dict[str, Any] | None) -> BlurMix | None:
    """The config's ``data.mix`` section as a :class:`BlurMix` (None: shake only)."""
    if values is None:
        return None
    known = {f.name for f in dataclasses.fields(BlurMix)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"train config: unknown keys in 'data.mix': {', '.join(unknown)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    try:
        return BlurMix(**values)
    except ValueError as exc:
        raise UserError(f"train config: data.mix: {exc}") from None


def build_datasets(cfg: TrainConfig) -> tuple[Dataset, list[dict[str, torch.Tensor]]]:
    """The training dataset and a fixed list of validation samples."""
    d = cfg.data
    if d.source == "manifest":
        blur_mix(d.mix)  # a mistake in it is one all the same, though no blur is made
        train = TripletDataset(d.manifest, crop=d.crop, split="train", augment=True,
                               ref_jitter=d.ref_jitter, unrelated_ref_prob=d.unrelated_ref_prob)
        _say_when_crops_outgrow(train.items[0].blur if train.items else None, d.crop)
        val_set = _validation_triplets(d)
    else:
        common = dict(dmin=d.dmin, dmax=d.dmax, max_side=d.max_side, max_frames=d.max_frames)
        train = OnlineVideoTriplets(
            d.train_videos, crop=d.crop, length=max(1000, d.batch * 1000),
            strength=tuple(d.strength), unrelated_ref_prob=d.unrelated_ref_prob,
            ref_jitter=d.ref_jitter, noise_sigma=d.noise_sigma, poisson_peak=d.poisson_peak,
            jpeg_quality=tuple(d.jpeg_quality) if d.jpeg_quality else None,
            mix=blur_mix(d.mix), blur_on=d.blur_on, **common,
        )
        val_videos = d.val_videos or d.train_videos
        val_set = OnlineVideoTriplets(
            val_videos, crop=d.val_crop, length=d.val_count, strength=d.val_strength,
            unrelated_ref_prob=0.0, augment=False, seed=1234, blur_on="cpu", **common,
        )
    count = min(len(val_set), d.val_count)
    return train, [val_set[i] for i in range(count)]


def _say_when_crops_outgrow(image: str | None, crop: int) -> None:
    """Warn where the training crops are larger than a triplet's frames: they would be
    mostly the reflected padding that fills them out."""
    if image is None or os.environ.get("RANK", "0") != "0":
        return
    width, height = image_size(image)
    if crop > min(width, height):
        print(f"warning: data.crop {crop} is larger than the triplets' frames ({width}x"
              f"{height}, e.g. {image}): the crops are filled out by reflection",
              file=sys.stderr)


def _check_batch(cfg: TrainConfig, count: int) -> None:
    """Refuse a batch larger than each process's share of the training set: the loader
    drops an incomplete batch, so it would never give one and the run would spin."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if math.ceil(count / world) < cfg.data.batch:
        raise UserError(f"data.batch is {cfg.data.batch}, but there are only {count} training "
                        "triplets" + (f" for {world} processes" if world > 1 else "")
                        + ": lower data.batch or build more")


def _validation_triplets(d) -> TripletDataset:
    """The manifest's ``val`` triplets, else its ``test`` ones (said: the run's best
    weights are then chosen on the test set, whose scores no longer measure them fairly)."""
    for split in ("val", "test"):
        try:
            found = TripletDataset(d.manifest, crop=d.val_crop, split=split, augment=False,
                                   seed=1234)
        except UserError:
            continue
        if split == "test" and os.environ.get("RANK", "0") == "0":
            print(f"warning: {d.manifest} has no val triplets: validating, and choosing "
                  "best.safetensors, on its test triplets (refdeblur-triplets "
                  "--val-sequences or --val-fraction keeps a val split apart)",
                  file=sys.stderr)
        return found
    raise UserError(f"manifest {d.manifest} has no validation triplets (split val or test): "
                    "build it with refdeblur-triplets and --val-videos or --val-sequences "
                    "NAMES, or --val-fraction F")


def _append_csv(path: Path, row: dict, checked: set[Path]) -> None:
    """Append ``row``; the first time in a run (``checked`` lacks ``path``), a file with
    other columns (an option switched on at a resume) is moved aside first."""
    new = not path.exists()
    if not new and path not in checked:
        with path.open(newline="") as handle:
            header = next(csv.reader(handle), [])
        if header != list(row):
            path.rename(path.with_name(f"{path.stem}.{len(header)}cols{path.suffix}"))
            new = True
    checked.add(path)
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


@torch.no_grad()
def validate(model: nn.Module, samples: list[dict[str, torch.Tensor]], device: torch.device,
             amp: torch.dtype | None,
             transfer: TransferSettings | None = None) -> dict[str, float]:
    """Mean PSNR/SSIM of the blurry input and of the model on the fixed validation samples;
    with ``transfer``, also the PSNR of the model's output finished by the reference transfer."""
    model.eval()
    scores = {"psnr_input": [], "psnr_model": [], "ssim_input": [], "ssim_model": []}
    if transfer is not None:
        scores["psnr_transfer"] = []
    for sample in samples:
        blur = sample["blur"][None].to(device)
        ref = sample["ref"][None].to(device)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            out = model(blur, ref).float().clamp(0, 1)
        sharp_img = tensor_to_images(sample["sharp"][None])[0]
        blur_img = tensor_to_images(sample["blur"][None])[0]
        out_img = tensor_to_images(out)[0]
        scores["psnr_input"].append(psnr(blur_img, sharp_img))
        scores["psnr_model"].append(psnr(out_img, sharp_img))
        scores["ssim_input"].append(ssim(blur_img, sharp_img))
        scores["ssim_model"].append(ssim(out_img, sharp_img))
        if transfer is not None:
            finished = transfer_reference(to_float(out_img),
                                          to_float(tensor_to_images(sample["ref"][None])[0]),
                                          transfer)
            scores["psnr_transfer"].append(psnr(from_float(finished, np.uint8), sharp_img))
    model.train()
    finite = {k: [v for v in vals if math.isfinite(v)] for k, vals in scores.items()}
    return {k: float(np.mean(v)) if v else float("inf") for k, v in finite.items()}


def _build_model(cfg: TrainConfig, initial_weights: bool = True
                 ) -> tuple[RefDeblurNet, InferenceSettings]:
    """The network of ``cfg.model`` (its initial weights per ``cfg`` where
    ``initial_weights``; a resumed run's come from its state, so its init file need not
    exist any more) and the model YAML's inference settings, which the run's checkpoints
    carry as their defaults."""
    if cfg.model == "default" or cfg.model.lower().endswith(".safetensors"):
        raise UserError(f"train config: model is the architecture to train (lite, paper or a "
                        f"model .yaml), not {cfg.model!r}: to start from a checkpoint's "
                        "weights give init=PATH")
    config, settings = load_model_yaml(cfg.model)
    model = RefDeblurNet(config, settings.matching)
    if not initial_weights:
        return model, settings
    if cfg.init:
        # warm start: the init weights may be of a smaller model that `model` grows
        source = resolve_model(cfg.init)
        if source.weights is None:
            raise UserError(f"init has no weights to start from: {cfg.init}")
        load_weights_into(model, config, source.weights, warm_start=True)
        return model, settings
    if cfg.vgg19_weights:
        load_vgg19_weights(model.phi, cfg.vgg19_weights)
    return model, settings


@dataclass
class _Run:
    """What one training run works on: the model, its optimisers and where it stands."""

    cfg: TrainConfig
    rank: Rank
    device: torch.device
    model: RefDeblurNet
    settings: InferenceSettings
    optimizer: torch.optim.Optimizer
    disc: nn.Module | None
    optimizer_d: torch.optim.Optimizer | None
    out_dir: Path
    step: int = 0
    best: float | None = None
    # the matching loss's draws, apart from the data's (same data with it on or off)
    match_rng: torch.Generator | None = None
    logs_checked: set[Path] = field(default_factory=set)  # logs whose columns were checked
    ema: AveragedModel | None = None  # the moving average of the weights (train.ema_decay)
    config_written: bool = False  # train_config.json: once the run has trained or saves

    def transfer(self, crop: int) -> TransferSettings:
        """The reference transfer that finishes this model's outputs at inference (without
        the camera-motion prior, which needs the video's sharp pair), for crops of ``crop``
        pixels: they are cut from frames of about the transfer's reference height (720p
        clips, photos filmed at 720p), so its extents apply unscaled, not shrunk to the
        crop as they would be for a whole frame that small."""
        return replace(transfer_for(self.settings, motion_prior=False), reference_height=crop)

    def record_settings(self) -> None:
        """The run's settings (train_config.json), and its folder, once it has trained a
        step or saves: a run that fails before then leaves no folder of its own, and an
        earlier run's settings as they were."""
        if not self.config_written:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with atomic_output(self.out_dir / "train_config.json", overwrite=True) as partial:
                partial.write_text(json.dumps(self.cfg.to_dict(), indent=2))
            self.config_written = True

    def save(self) -> None:
        """The resumable state (last.safetensors), the weights (model.safetensors) and,
        where the run keeps one, the weights' moving average (ema.safetensors)."""
        self.record_settings()
        config = self.model.config
        save_training_state(self.out_dir / "last.safetensors", self.model, config,
                            self.optimizer, self.step, self.cfg.to_dict(), self.disc,
                            self.optimizer_d, self.best, self.ema)
        save_checkpoint(self.out_dir / "model.safetensors", self.model, config,
                        extra={"step": str(self.step)}, settings=self.settings)
        if self.ema is not None:
            save_checkpoint(self.out_dir / "ema.safetensors", self.ema.module, config,
                            settings=self.settings,
                            extra={"step": str(self.step),
                                   "ema_decay": repr(self.cfg.train.ema_decay)})


# what a run writes into its folder besides train_config.json: a fresh run starts none of
# them over an earlier run's unasked, and with --overwrite removes them all, so that an
# interrupted new run never leaves the old run's best checkpoint beside its own
RUN_FILES = ("last.safetensors", "model.safetensors", "best.safetensors", "ema.safetensors",
             "train_log.csv", "val_log.csv")


def _check_out(out_dir: Path, resume: bool, overwrite: bool) -> Path:
    """The run's state file; refused before anything is written when ``resume`` finds none,
    or when a fresh run would replace an earlier one's checkpoints or logs (``overwrite``
    allows)."""
    state_path = out_dir / "last.safetensors"
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"out {out_dir} is a file; give a folder for the run")
    if resume and not state_path.is_file():
        raise UserError(f"--resume: no training state at {state_path}")
    earlier = [name for name in RUN_FILES if (out_dir / name).is_file()]
    if not resume and not overwrite and earlier:
        how = ("--resume continues it, " if state_path.is_file() else "")
        raise UserError(f"{out_dir} holds an earlier run ({', '.join(earlier)}): {how}"
                        "--overwrite starts again over it, or give another out")
    return state_path


def _resumed(cfg: TrainConfig, state_path: Path, explicit: Collection[str] | None,
             quiet: bool) -> tuple[TrainConfig, bool]:
    """The settings a resumed run goes on with (:func:`.resume_settings.resumed_config`),
    saying what of the config is not used and what the command changed; and whether the
    validation set changed (its best score so far is then no measure)."""
    saved = read_safetensors(state_path, None, "training state")[1].get("train_config")
    resumed = resumed_config(cfg, saved, explicit)
    if not quiet and os.environ.get("RANK", "0") == "0":
        if resumed.unused:
            print("--resume goes on with the run's own settings: the config's "
                  f"{', '.join(resumed.unused)} (which differ from them) are not used")
        if resumed.changed:
            print("--resume with changed settings: " + "; ".join(
                f"{key} {_setting(was)} -> {_setting(now)}"
                for key, (was, now) in resumed.changed.items()))
        if resumed.kept_average:
            print(f"the run keeps its moving average of the weights (ema_decay "
                  f"{resumed.kept_average})")
        if resumed.validation_changed:
            print("the validation set changed: best.safetensors is chosen afresh from here")
    return resumed.config, resumed.validation_changed


def _setting(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _start_run(cfg: TrainConfig, resume: bool, quiet: bool, state_path: Path) -> _Run:
    """Model, optimisers and output folder of a run, resumed from its state if asked."""
    opt = cfg.train
    out_dir = Path(cfg.out)
    rank = init_distributed("cuda" if torch.cuda.is_available() else "cpu")
    device = choose_device(rank)
    torch.manual_seed(opt.seed + 1000 * rank.rank)
    # the model YAML and the init weights are checked before the run's folder is touched
    model, settings = _build_model(cfg, initial_weights=not resume)
    if rank.main and not resume:  # a fresh run mixes in nothing of an overwritten run's
        for name in RUN_FILES:
            (out_dir / name).unlink(missing_ok=True)
    # channels-last runs this network's thin convolutions faster on CPUs and GPUs
    model = model.to(device).to(memory_format=torch.channels_last)
    if opt.freeze_phi:  # matching features as initialised: the confidences cannot drift
        model.phi.requires_grad_(False)
    if opt.match_weight > 0:
        if rank.world > 1:  # its backward pass bypasses DDP: gradients would not be averaged
            raise UserError("train.match_weight: not supported under torchrun")
        model.phi.requires_grad_(True)  # with freeze_phi: by the matching loss alone
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=opt.lr, betas=(0.9, 0.999))
    use_gan = opt.gan_start is not None and opt.adversarial_weight > 0
    disc = PatchDiscriminator().to(device) if use_gan else None
    optimizer_d = torch.optim.Adam(disc.parameters(), lr=opt.lr) if disc is not None else None
    run = _Run(cfg, rank, device, model, settings, optimizer, disc, optimizer_d, out_dir,
               match_rng=torch.Generator().manual_seed(opt.seed + 1000 * rank.rank))
    if opt.ema_decay > 0:
        run.ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(opt.ema_decay),
                                use_buffers=True)
    if resume:
        run.step, run.best = load_training_state(state_path, model, optimizer, disc,
                                                 optimizer_d, run.ema)
        # new draws from here on: the start's seed would replay the data of step 1
        resumed_seed = opt.seed + 1000 * rank.rank + 1_000_003 * run.step
        torch.manual_seed(resumed_seed)
        run.match_rng.manual_seed(resumed_seed)
        if rank.main and not quiet:
            print(f"resumed from {state_path} at step {run.step}")
    return run


def _ignore_stop_signals(worker_id: int) -> None:
    """In a data worker: a stop signal sent to the whole process group (``kill -- -PGID``,
    a closed terminal, a service manager) is left to the main process, which saves the
    state and then ends its workers; a worker killed first would break that save."""
    for signum in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if signum is not None:
            signal.signal(signum, signal.SIG_IGN)


def _end_workers(loader: DataLoader) -> None:
    """Stop the loader's data workers now (each after the batch it is making): they ignore
    stop signals (:func:`_ignore_stop_signals`), and at exit Python waits for every child
    process, so a worker left to the loader's garbage collection can hold an interrupted
    run open long after its state was saved."""
    shutdown = getattr(getattr(loader, "_iterator", None), "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()


def _make_loader(run: _Run, train_set: Dataset) -> tuple[DataLoader, DistributedSampler | None]:
    """Batches of the training set; under torchrun each rank draws its own share."""
    cfg, rank = run.cfg, run.rank
    # a resumed run's shuffles differ from the start's (which would replay its batches)
    sampler = DistributedSampler(train_set, rank.world, rank.rank, shuffle=True,
                                 seed=cfg.train.seed + run.step) if rank.world > 1 else None
    loader = DataLoader(train_set, batch_size=cfg.data.batch, shuffle=sampler is None,
                        sampler=sampler, num_workers=cfg.data.workers, drop_last=True,
                        pin_memory=run.device.type == "cuda",
                        persistent_workers=cfg.data.workers > 0,
                        worker_init_fn=_ignore_stop_signals if cfg.data.workers > 0 else None)
    return loader, sampler


def _train_step(run: _Run, net: nn.Module, batch: dict[str, torch.Tensor], lr: float,
                amp: torch.dtype | None, weights: LossWeights) -> dict[str, torch.Tensor]:
    """One optimiser step of the network (and of the discriminator once the GAN is on)."""
    opt, device = run.cfg.train, run.device
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    gan_on = run.disc is not None and run.step >= (opt.gan_start or 0)
    phi_from_matching_only = opt.match_weight > 0 and opt.freeze_phi
    if phi_from_matching_only:  # no reconstruction gradient through phi at all
        run.model.phi.requires_grad_(False)
    with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
        # placed references (the gated training mix) take the one in their place
        output = net(batch["blur"], batch["ref"], None, batch.get("in_place"))
    output = output.float()
    loss_rec = reconstruction_loss(output, batch["sharp"], weights)
    after: dict[str, torch.Tensor] = {}
    if opt.transfer_loss_share > 0:
        finished = transferred_output(output, batch["ref"],
                                      run.transfer(min(output.shape[-2:])))
        loss_after = reconstruction_loss(finished, batch["sharp"], weights)
        share = opt.transfer_loss_share
        loss_rec = (1.0 - share) * loss_rec + share * loss_after
        after = {"after_transfer": loss_after.detach()}
    loss = loss_rec
    loss_adv = torch.zeros((), device=device)
    if gan_on:
        loss_adv = generator_adversarial_loss(run.disc(batch["sharp"]), run.disc(output))
        loss = loss + weights.adversarial * loss_adv
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    match_losses: dict[str, torch.Tensor] = {}
    if opt.match_weight > 0:
        run.model.phi.requires_grad_(True)
        loss_match, accuracy = matching_loss(run.model, batch["blur"], batch["sharp"],
                                             opt.match_radius, opt.match_temperature,
                                             run.match_rng)
        (opt.match_weight * loss_match).backward()
        match_losses = {"matching": loss_match.detach(), "match_accuracy": accuracy}
    if opt.grad_clip:
        # phi's matching gradient is clipped on its own, so that it cannot shrink the
        # network's reconstruction gradient
        phi = set(run.model.phi.parameters()) if phi_from_matching_only else set()
        rest = [p for p in run.model.parameters() if p not in phi]
        nn.utils.clip_grad_norm_(rest, opt.grad_clip)
        if phi:
            nn.utils.clip_grad_norm_(list(phi), opt.grad_clip)
    run.optimizer.step()
    if run.ema is not None:
        run.ema.update_parameters(run.model)
    if gan_on:
        for group in run.optimizer_d.param_groups:
            group["lr"] = lr
        loss_d = discriminator_loss(run.disc(batch["sharp"]), run.disc(output.detach()))
        run.optimizer_d.zero_grad(set_to_none=True)
        loss_d.backward()
        run.optimizer_d.step()
    return {"loss": loss, "reconstruction": loss_rec, "adversarial": loss_adv, **after,
            **match_losses}


def _log_step(run: _Run, losses: dict[str, torch.Tensor], lr: float, seconds: float,
              quiet: bool) -> None:
    row = {"step": run.step, **{k: f"{v.item():.5f}" for k, v in losses.items()},
           "lr": f"{lr:.3e}", "seconds_per_step": f"{seconds / run.cfg.train.log_every:.3f}"}
    _append_csv(run.out_dir / "train_log.csv", row, run.logs_checked)
    if not quiet:
        print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)


def _validate_and_keep_best(run: _Run, val_samples: list[dict[str, torch.Tensor]],
                            amp: torch.dtype | None, quiet: bool) -> dict[str, float]:
    """Score the validation samples; a new best is saved as best.safetensors."""
    transfer = (run.transfer(run.cfg.data.val_crop)
                if run.cfg.train.transfer_loss_share > 0 else None)
    scores = validate(run.model, val_samples, run.device, amp, transfer)
    if run.ema is not None:
        averaged = validate(run.ema.module, val_samples, run.device, amp, transfer)
        scores.update({f"{k}_ema": v for k, v in averaged.items() if k.endswith("_model")
                       or k == "psnr_transfer"})
    _append_csv(run.out_dir / "val_log.csv",
                {"step": run.step, **{k: f"{v:.4f}" for k, v in scores.items()}},
                run.logs_checked)
    if not quiet:
        shown = " ".join(f"{k}={v:.3f}" for k, v in scores.items())
        print(f"val step={run.step} {shown}", flush=True)
    if run.best is None or scores["psnr_model"] > run.best:
        run.best = scores["psnr_model"]
        save_checkpoint(run.out_dir / "best.safetensors", run.model, run.model.config,
                        extra={"step": str(run.step), "val_psnr": f"{run.best:.4f}"},
                        settings=run.settings)
    return scores


def train(cfg: TrainConfig, resume: bool = False, max_steps: int | None = None,
          quiet: bool = False, time_limit: float | None = None,
          overwrite: bool = False, explicit: Collection[str] | None = None
          ) -> dict[str, float]:
    """Train per ``cfg``; checkpoints go to ``cfg.out``. Returns the last validation scores.

    ``max_steps`` and ``time_limit`` (seconds) end this run early, after saving a state that
    ``resume=True`` continues from; the learning-rate schedule always spans ``train.steps``.
    A resumed run goes on with its own settings: of ``cfg``, only the ``explicit`` ones
    (None: all) among :data:`.resume_settings.CHANGEABLE` apply, and another explicit one
    that differs is refused. A fresh run into a folder that holds an earlier run's state
    is refused unless ``overwrite``.
    """
    started = time.monotonic()
    # before the data, which may take minutes to load
    state_path = _check_out(Path(cfg.out), resume, overwrite)
    fresh_best = False
    if resume:
        cfg, fresh_best = _resumed(cfg, state_path, explicit, quiet)
    opt = cfg.train
    if (cfg.data.source == "videos" and cfg.data.blur_on == "gpu"
            and not torch.cuda.is_available() and os.environ.get("RANK", "0") == "0"):
        print("warning: data.blur_on is gpu but there is no GPU: the batched blur runs on "
              "the CPU", file=sys.stderr)
    # the data is checked before the run's folder is touched (--overwrite clears its logs)
    train_set, val_samples = build_datasets(cfg)
    _check_batch(cfg, len(train_set))
    if opt.warmup_steps >= opt.steps and not resume and os.environ.get("RANK", "0") == "0":
        print(f"warning: train.warmup_steps ({opt.warmup_steps}) is not below train.steps "
              f"({opt.steps}): the learning rate never reaches train.lr", file=sys.stderr)
    run = _start_run(cfg, resume, quiet, state_path)
    if fresh_best:
        run.best = None
    first_step = run.step
    rank, device = run.rank, run.device
    net: nn.Module = run.model
    if rank.world > 1:
        net = DistributedDataParallel(run.model, device_ids=[device.index]
                                      if device.index is not None and device.type == "cuda"
                                      else None)
    loader, sampler = _make_loader(run, train_set)
    amp = autocast_dtype(device, opt.amp)
    weights = LossWeights(opt.content_weight, opt.frequency_weight, opt.adversarial_weight)
    margin = getattr(train_set, "margin", 0)
    last_step = opt.steps if max_steps is None else min(opt.steps, run.step + max_steps)
    if run.step >= opt.steps and rank.main and not quiet:
        print(f"the run is already at step {run.step} of train.steps {opt.steps}: nothing "
              "to do (a larger train.steps goes on)")
    scores: dict[str, float] = {}
    epoch = run.step // max(1, len(loader))
    run.model.train()
    tick = time.perf_counter()
    try:
        while run.step < last_step:
            if sampler is not None:
                sampler.set_epoch(epoch)
            for batch in loader:
                if run.step >= last_step:
                    break
                batch = {k: _to_device(v, device) for k, v in batch.items()}
                if "sharp_padded" in batch:
                    low, high = cfg.data.strength
                    strengths = torch.empty(len(batch["ref"])).uniform_(low, high).tolist()
                    batch = finish_gpu_batch(batch, margin, None, strengths,
                                             noise_sigma=cfg.data.noise_sigma)
                lr = cosine_lr(run.step, opt)
                losses = _train_step(run, net, batch, lr, amp, weights)
                run.step += 1
                if time_limit is not None and _agree(time.monotonic() - started > time_limit,
                                                     rank, device):
                    last_step = run.step
                if not rank.main:
                    continue
                run.record_settings()
                if run.step % opt.log_every == 0 or run.step == last_step:
                    now = time.perf_counter()
                    _log_step(run, losses, lr, now - tick, quiet)
                    tick = now
                if run.step % opt.val_every == 0 or run.step == last_step:
                    scores = _validate_and_keep_best(run, val_samples, amp, quiet)
                if run.step % opt.ckpt_every == 0 or run.step == last_step:
                    run.save()
            epoch += 1
        if run.step < opt.steps and rank.main and not quiet:
            print(f"stopped at step {run.step} of {opt.steps} (--max-steps or "
                  "--time-limit): state saved; continue with --resume")
        elif run.step > first_step and rank.main and not quiet:
            print(_finished_line(run))
    except KeyboardInterrupt as exc:
        if run.step == first_step:  # nothing trained: an untrained state would look like a run
            raise
        if rank.main:
            run.save()
            print(f"interrupted: state saved at step {run.step}; continue with --resume")
        exc.state_saved = True  # the command line says nothing more
        raise
    finally:
        try:
            _end_workers(loader)
        finally:
            if rank.world > 1 and dist.is_initialized():
                dist.barrier()
                dist.destroy_process_group()
    return scores


def _finished_line(run: _Run) -> str:
    """What a run that has reached its last step leaves, and where."""
    made = [f"{run.out_dir / 'model.safetensors'} (the last weights)"]
    if run.ema is not None:
        made.append(f"{run.out_dir / 'ema.safetensors'} (their moving average)")
    if run.best is not None:
        made.append(f"{run.out_dir / 'best.safetensors'} (the best on validation, "
                    f"{run.best:.2f} dB)")
    return f"finished at step {run.step}: " + ", ".join(made)


def _to_device(value: torch.Tensor, device: torch.device) -> torch.Tensor:
    value = value.to(device, non_blocking=True)
    return value.contiguous(memory_format=torch.channels_last) if value.dim() == 4 else value


def _agree(flag: bool, rank: Rank, device: torch.device) -> bool:
    """True on every rank as soon as it is true on rank 0 (so all ranks stop together)."""
    if rank.world == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.broadcast(value, src=0)
    return bool(value.item())


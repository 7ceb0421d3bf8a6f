"""The knobs of test-time adaptation (``--adapt``), chosen per device."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

CPU_SECONDS = 300.0  # a 2-core CPU gets a few hundred steps of 4 crops of 128 px in this
GPU_SECONDS = 60.0  # a GPU does the same number of (larger) steps in a fraction of it


@dataclass(frozen=True)
class AdaptSettings:
    """What one adaptation does; :func:`settings_for` picks them per device."""

    seconds: float = CPU_SECONDS  # wall-clock budget of the whole adaptation
    crop: int = 128  # training crop edge, pixels (less in frames smaller than that)
    batch: int = 4  # crops per step
    # the peak learning rate, kept low: a copy that moves far fits the synthetic blur rather
    # than the video's, and one that the checks misjudge stays near the original
    # (docs/RESULTS.md)
    lr: float = 3e-5
    warmup_steps: int = 10
    # at most this many steps (None: as many as the budget allows): more steps fit the
    # synthetic blur rather than the video's, and the cap makes a budget mean the same on a
    # CPU with bf16 (three times the steps) as on one without
    max_steps: int | None = 330
    grad_clip: float = 1.0
    read_share: float = 0.4  # the reading pass stops once it has used this share of the budget
    capacity: int = 96  # training regions kept (reservoir sampling over the sharp frames)
    held_capacity: int = 16  # held-back regions kept for the check
    held_every: int = 4  # one block of frames in this many is held back
    held_samples: int = 16  # synthetic crops the check scores both models on
    min_gain_db: float = 0.05  # the adapted copy must beat the original by this on them
    # and must finish the video's real blurry frames better by this (:mod:`.crosscheck`; a
    # margin, since copies that were in truth a little worse came out near 0 there)
    min_crosscheck_gain_db: float = 0.1
    # where each crop's blur comes from: the generators of the training data (never rs6dof,
    # the left-out test of generalisation): the camera shake and jagged random-trajectory
    # kernels, both fitted to this video's blur, the mean of consecutive real frames and a
    # moving object; and "own", the video's own kernels (estimated from its blurry frames
    # and their references; the camera shake stands in where there are none). "own" is
    # off: the copies it taught finished the video's frames worse after the reference
    # transfer. The trajectories taught copies that harmed less where they harmed
    # (docs/RESULTS.md)
    generators: dict[str, float] = field(
        default_factory=lambda: {"shake": 0.35, "trajectory": 0.35, "average": 0.2,
                                 "object": 0.1})
    # the share of steps that learn the video's own blurry frames against their aligned
    # reference (pseudo targets, :mod:`.pseudo`) rather than synthetic crops, where the
    # video has such frames
    pseudo_share: float = 0.5
    self_ref_prob: float = 0.2  # crops restored with no reference (the frame stands in)
    defocus_prob: float = 0.1
    seed: int = 0
    workers: int = 0  # threads making crops ahead of the network (0: inline)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def settings_for(device_type: str, seconds: float | None = None,
                 cpu_count: int = 1) -> AdaptSettings:
    """The settings for a device type (``cpu``, ``cuda``, ``mps``) and an optional budget."""
    if device_type == "cpu":
        base = AdaptSettings()
    else:  # a GPU would wait on the CPU for crops: bigger steps, crops made by threads
        # (the same step cap; not yet measured on a GPU)
        base = AdaptSettings(seconds=GPU_SECONDS, crop=192, batch=16,
                             workers=max(1, min(4, cpu_count // 2)))
    return base if seconds is None else dataclasses.replace(base, seconds=float(seconds))

"""Evaluation: full-reference metrics (PSNR/SSIM), no-reference sharpness and per-frame reports.

- :mod:`.metrics` -- ``psnr``, ``ssim`` (NumPy) and ``psnr_torch``, ``ssim_torch`` (batched).
- :mod:`.compare`, :mod:`.triplets`, :mod:`.noref` -- the three evaluation modes, each
  returning an :class:`Evaluation` that :func:`write_report` turns into a report folder.
"""

from refdeblur_video.evaluate.compare import evaluate_compare
from refdeblur_video.evaluate.metrics import (
    convention_label,
    psnr,
    psnr_torch,
    rgb_to_y,
    ssim,
    ssim_torch,
)
from refdeblur_video.evaluate.noref import evaluate_noref
from refdeblur_video.evaluate.report import Evaluation, write_report
from refdeblur_video.evaluate.triplets import evaluate_triplets

__all__ = [
    "Evaluation",
    "convention_label",
    "evaluate_compare",
    "evaluate_noref",
    "evaluate_triplets",
    "psnr",
    "psnr_torch",
    "rgb_to_y",
    "ssim",
    "ssim_torch",
    "write_report",
]

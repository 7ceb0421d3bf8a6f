"""Evaluation: full-reference metrics (PSNR/SSIM), no-reference sharpness and per-frame reports.

- :mod:`.metrics` -- ``psnr``, ``ssim`` (NumPy) and ``psnr_torch``, ``ssim_torch`` (batched).
- :mod:`.compare`, :mod:`.triplets`, :mod:`.noref` -- the three evaluation modes, each
  returning an :class:`Evaluation` that :func:`write_report` turns into a report folder.

The names below load on first use, so that a module needing only a metric (training, for
one) does not import the report's plotting library.
"""

from __future__ import annotations

from ..lazy import lazy_exports

_WHERE = {
    "Evaluation": "report",
    "convention_label": "metrics",
    "evaluate_compare": "compare",
    "evaluate_noref": "noref",
    "evaluate_triplets": "triplets",
    "psnr": "metrics",
    "psnr_torch": "metrics",
    "rgb_to_y": "metrics",
    "ssim": "metrics",
    "ssim_torch": "metrics",
    "write_report": "report",
}

__all__ = sorted(_WHERE)

__getattr__ = lazy_exports(__name__, _WHERE)

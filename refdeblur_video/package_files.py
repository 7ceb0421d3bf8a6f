"""Where the package keeps its model configs and shipped weights (no PyTorch imported to find
them: the command line checks a model name before anything slow loads)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["MODEL_CONFIGS", "PACKAGE_WEIGHTS"]

_PACKAGE = Path(__file__).resolve().parent

#: ``<name>.yaml`` per model configuration (``lite``, ``paper``)
MODEL_CONFIGS = _PACKAGE / "configs" / "model"
#: ``<name>.safetensors`` per configuration whose trained weights ship with the package
PACKAGE_WEIGHTS = _PACKAGE / "weights"

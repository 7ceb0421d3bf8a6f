#!/usr/bin/env bash
# Set up a virtual environment in .venv with everything the project needs.
# PyTorch: a CPU build (torch==2.13.0) is installed first when the venv has no torch;
# with a CUDA machine, install the torch build you want into .venv before running this.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
fi
.venv/bin/python -m pip install --quiet -e ".[dev]"
.venv/bin/python -c "import refdeblur_video, torch, av, cv2; print('refdeblur-video', refdeblur_video.__version__, '| torch', torch.__version__, '| PyAV', av.__version__)"

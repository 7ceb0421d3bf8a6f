#!/usr/bin/env bash
# Set up a virtual environment in .venv with everything the project needs.
#
# PyTorch, when .venv has none: without an NVIDIA GPU, the CPU-only build from PyTorch's own
# index ($CPU_INDEX below; the default index would bring the CUDA build and several GB of
# NVIDIA libraries), or from the default index when that one cannot be reached; with an
# NVIDIA GPU, the default index's build (CUDA, on Linux). A torch already in .venv is kept.
# Choose another build:
#   TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 tools/setup.sh   (any pip index)
#   TORCH_INDEX_URL=default tools/setup.sh                 (pip's default index, as configured)
#   TORCH_SPEC='torch==2.13.0' tools/setup.sh              (the requirement; this is the default)
# To replace an installed build: .venv/bin/python -m pip uninstall -y torch, then rerun.
# tools/setup.sh --dry-run prints the commands that would install torch, and does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
CPU_INDEX=https://download.pytorch.org/whl/cpu
PIP=(.venv/bin/python -m pip install --quiet)
DRY_RUN=0
[ "${1:-}" = "--dry-run" ] && DRY_RUN=1

has_nvidia_gpu() {
  nvidia-smi -L >/dev/null 2>&1 || compgen -G "/proc/driver/nvidia/gpus/*" >/dev/null
}

# The index to install torch from: an URL, or "default" for pip's own.
torch_index() {
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    echo "$TORCH_INDEX_URL"
  elif has_nvidia_gpu; then
    echo default
  else
    echo "$CPU_INDEX"
  fi
}

# Sets CMD to the pip command that installs $TORCH_SPEC from index $1.
torch_command() {
  CMD=("${PIP[@]}")
  [ "$1" = default ] || CMD+=(--index-url "$1")
  CMD+=("$TORCH_SPEC")
}

# Whether index $1 answers within 5 s: an offline machine (or one whose firewall drops the
# packets) falls back at once instead of waiting out pip's retries.
reachable() {
  .venv/bin/python - "$1" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=5).close()
EOF
}

describe_torch() {
  # numpy may not be installed yet: torch warns about it, harmlessly
  .venv/bin/python -W ignore::UserWarning -c "import torch; v = torch.version; hip = getattr(v, 'hip', None)
build = f'CUDA {v.cuda}' if v.cuda else f'ROCm {hip}' if hip else 'CPU-only'
print(f'torch {torch.__version__} ({build} build)')"
}

install_torch() {
  local index
  index=$(torch_index)
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    echo "torch: from TORCH_INDEX_URL=$TORCH_INDEX_URL"
  elif [ "$index" = default ]; then
    echo "torch: NVIDIA GPU found, the default index's build"
  else
    echo "torch: no NVIDIA GPU found, the CPU-only build from $CPU_INDEX"
  fi
  local fallback=0
  [ "$index" = "$CPU_INDEX" ] && [ -z "${TORCH_INDEX_URL:-}" ] && fallback=1
  torch_command "$index"
  if [ "$DRY_RUN" = 1 ]; then
    echo "would run: ${CMD[*]}"
    torch_command default
    [ "$fallback" = 1 ] && echo "or, if $CPU_INDEX cannot be reached: ${CMD[*]}"
    return 0
  fi
  if [ "$fallback" = 1 ]; then
    if ! reachable "$CPU_INDEX"; then
      echo "torch: $CPU_INDEX cannot be reached; installing from the default index"
    elif ! "${CMD[@]}"; then
      echo "torch: installing from $CPU_INDEX failed; trying the default index"
    else
      return 0
    fi
    torch_command default
  fi
  "${CMD[@]}"
}

if [ "$DRY_RUN" = 1 ]; then
  install_torch
  exit 0
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  install_torch
  echo "torch: installed $(describe_torch)"
else
  echo "torch: keeping the installed $(describe_torch)"
fi
.venv/bin/python -m pip install --quiet -e ".[dev]"
.venv/bin/python -c "import refdeblur_video, torch, av, cv2; print('refdeblur-video', refdeblur_video.__version__, '| torch', torch.__version__, '| PyAV', av.__version__)"

#!/usr/bin/env bash
# Keep a training run's latest weights in the repository: runs/ is not part of a checkout,
# and a session that ends (or a machine that is replaced) loses it. Writes
# tools/recipes/in_progress/NAME_fp16_1.safetensors (fp16, the run's metadata and step),
# from which tools/recipes/train_general.sh restarts NAME when runs/NAME/ is missing.
#
#   bash tools/recipes/carry.sh general_prealigned && git add tools/recipes/in_progress
set -euo pipefail
cd "$(dirname "$0")/../.."
NAME=${1:?usage: carry.sh NAME (a run folder under ${RUNS:-runs}/)}
RUNS=${RUNS:-runs}
PY=${PY:-.venv/bin/python}
[ -f "$RUNS/$NAME/model.safetensors" ] || { echo "carry.sh: no $RUNS/$NAME/model.safetensors" >&2; exit 2; }
"$PY" tools/recipes/gpu_session.py split "$RUNS/$NAME/model.safetensors" \
  "tools/recipes/in_progress/${NAME}_fp16" --parts 1

#!/usr/bin/env bash
# The held-out validation sets that measure generalisation (issue 17): three blur generators,
# each on its own held-out sources, none of which is ever trained on.
#
#   bash tools/recipes/make_validation.sh [OUTDIR]     # default OUTDIR: runs/validation
#   .venv/bin/python -m refdeblur_video.evaluate.cli generators runs/validation \
#       --model refdeblur_video/weights/lite.safetensors --report runs/eval_generators
#
# Generators (refdeblur_video/data/validation.py):
#   rs6dof   rolling-shutter 6-DoF hand-held camera, noise, H.264 (data/shake6dof.py); left
#            out of training: its table decides what ships. juggle frames 128-246, bedroom
#            frames 100-199, photos Altai, Cascade, Canopee; 3 triplets each.
#   shake    the training synthesis: juggle frames 0-119, photos Storm and Aqua; 5 each.
#   average  5-9 consecutive real frames averaged in linear light: bedroom frames 0-99 (8),
#            Canopee (6).
# Held-out material: ../shared/data/videos/{05_default_juggle,bedroom}.mp4 and five photos of
# the Debian packages mate-backgrounds and plasma-workspace-wallpapers (the training photos of
# tools/recipes/get_photos.sh are other files of the same packages). Deterministic (SEED, 0).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-runs/validation}
videos=${VIDEOS:-../shared/data/videos}
photos=${VAL_PHOTOS:-.data/val_photos}
PY=${PY:-.venv/bin/python}
MATE="Storm Aqua" PLASMA="Canopee Altai Cascade" bash tools/recipes/get_photos.sh "$photos" \
  >/dev/null
nice "$PY" -m refdeblur_video.data.cli validation "$out" --videos "$videos" --photos "$photos" \
  --seed "${SEED:-0}"

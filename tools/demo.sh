#!/usr/bin/env bash
# Set everything up, generate a small sample clip (some frames motion-blurred, with audio)
# and deblur it with the default model. Output in demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
mkdir -p demo
.venv/bin/python -m refdeblur_video.video.synthetic demo/sample.mp4
.venv/bin/refdeblur-video demo/sample.mp4 demo/sample_deblurred.mp4 --overwrite \
  --log demo/frames.csv "$@"
.venv/bin/refdeblur-eval noref --input demo/sample.mp4 --output demo/sample_deblurred.mp4 \
  --log demo/frames.csv --report demo/report --overwrite --quiet
echo "done: demo/sample_deblurred.mp4, per-frame log demo/frames.csv, report demo/report/report.html"

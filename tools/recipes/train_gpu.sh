#!/usr/bin/env bash
# Train the lite and paper configurations side by side on one GPU for BUDGET seconds,
# resuming where a previous run stopped. With FINAL=1 the cosine schedule is shortened
# so that it ends with this run (measured seconds per step from the log).
#   VIDEOS=../shared/data/videos RUNS=runs bash tools/recipes/train_gpu.sh 540
set -euo pipefail
BUDGET=${1:-540}
VIDEOS=${VIDEOS:-../shared/data/videos}
RUNS=${RUNS:-runs}
cd "$(dirname "$0")/../.."
# the project's environment where it is set up (tools/setup.sh), else the system's
PY=${PY:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
mkdir -p "$RUNS"
train_list="[$VIDEOS/01_dog.mp4, $VIDEOS/02_cups.mp4, $VIDEOS/03_blocks.mp4]"
val_list="[$VIDEOS/05_default_juggle.mp4, $VIDEOS/bedroom.mp4]"

planned_steps() {  # steps that end the schedule within this run's budget
  "$PY" - "$RUNS/$1/train_log.csv" "$BUDGET" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
rate = sorted(float(r["seconds_per_step"]) for r in rows[-20:])[len(rows[-20:]) // 2]
print(int(rows[-1]["step"]) + int((float(sys.argv[2]) - 60) / rate))
PY
}

launch() {
  local name=$1; shift
  local extra=()
  if [ -f "$RUNS/$name/last.safetensors" ]; then
    extra+=(--resume)
    if [ "${FINAL:-0}" = 1 ]; then
      local steps; steps=$(planned_steps "$name")
      extra+=(--set "train.steps=$steps" --set "train.gan_start=$((steps * 3 / 4))")
    fi
  fi
  "$PY" -m refdeblur_video.training.cli --config "configs/train/$name.yaml" \
    --set "out=$RUNS/$name" --set "data.train_videos=$train_list" \
    --set "data.val_videos=$val_list" --set data.blur_on=gpu --time-limit "$BUDGET" \
    "${extra[@]}" "$@" >>"$RUNS/$name.log" 2>&1 &
}

launch lite --set data.workers=6 --set data.batch=16 --set data.crop=256 --set train.steps=40000
launch paper --set data.workers=6 --set data.batch=12 --set data.crop=192 --set train.steps=20000
wait
tail -n 3 "$RUNS/lite.log" "$RUNS/paper.log"

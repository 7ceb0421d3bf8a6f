#!/usr/bin/env bash
# One short GPU session (under 10 minutes on one H100/H200), in one command:
#  1. tools/bench/bench_stages.py: frames per second with every frame restored, lite and
#     paper, autocast and fp32, 720p and 1080p, and the share of each stage;
#  2. the default model's recipe (tools/recipes/train_general.sh) continued at GPU batch
#     sizes for TRAIN_SECONDS from $GPU_DATA/init_fp16_1.safetensors (else the shipped
#     weights), the mixed blur rendered by CPU workers;
#  3. the main job on a real clip on the GPU, as a user runs it.
# Everything lands in $RESULTS: logs and reports packed in results.tar.gz, and the trained
# weights (model.safetensors, best.safetensors). Judge the weights on the CPU afterwards
# (docs/VALIDATION.md): the validation that decides what ships is not run here.
#
# The lent machine has PyTorch and OpenCV but no PyAV, and ../shared does not travel: the
# working tree, the wheels and the data together must stay under 64 MiB. Prepare them here:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 -d .whl av==18.1.0
#   mkdir -p .data/gpu/videos && cp ../shared/data/videos/0[1235]_*.mp4 .data/gpu/videos/
#   python tools/recipes/gpu_session.py shrink .data/photos/* .data/gpu/photos
#   python tools/recipes/gpu_session.py shrink .data/photos_lomiri/* .data/gpu/photos_lomiri
#   python tools/recipes/gpu_session.py split runs/general_strong/model.safetensors \
#     .data/gpu/init_fp16 --parts 1
#   (move tools/recipes/in_progress/ aside for the call: it is tracked, so it travels)
# then run, carrying .whl, .data/gpu and .data/bikes.mp4:
#   pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
#   PYTHONPATH=/tmp/site:$PWD RESULTS=$OUT bash tools/recipes/gpu_session.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
GPU_DATA=${GPU_DATA:-.data/gpu}
V=${VIDEOS:-$GPU_DATA/videos}
RUNS=${RUNS:-runs/gpu}
RESULTS=${RESULTS:-$RUNS/results}
TRAIN_SECONDS=${TRAIN_SECONDS:-220}
# the project's environment where it is set up (tools/setup.sh), else the system's
PY=${PY:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
mkdir -p "$RUNS" "$RESULTS"
started=$SECONDS
stamp() { echo "[gpu_session $((SECONDS - started)) s] $*"; }
pack() { tar -czf "$RESULTS/results.tar.gz" -C "$RUNS" --exclude='*.safetensors' \
  --exclude="$(basename "$RESULTS")" . || echo "gpu_session: could not pack $RUNS" >&2; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$RUNS/gpu.txt" 2>&1
if ! "$PY" -c 'import torch, cv2, av; print("torch", torch.__version__, "cuda",
torch.cuda.is_available(), "cv2", cv2.__version__, "av", av.__version__)' >>"$RUNS/gpu.txt"; then
  echo "gpu_session: $PY lacks torch, cv2 or av (set PY, or run tools/setup.sh)" >&2; exit 1
fi
tail -n 1 "$RUNS/gpu.txt"
nproc >>"$RUNS/gpu.txt"
if [ "${DEVICE:-cuda}" = cuda ] && ! "$PY" -c 'import sys, torch
sys.exit(not torch.cuda.is_available())'; then
  echo "gpu_session: no CUDA device (set DEVICE=cpu to try the script without one)" >&2; exit 1
fi

stamp "stage benchmark"
# shellcheck disable=SC2086  # BENCH_ARGS: extra options, split on spaces
timeout -k 30 "${BENCH_SECONDS:-170}" "$PY" tools/bench/bench_stages.py --device "${DEVICE:-cuda}" \
  --repeats 1 --clip "$V/02_cups.mp4" --json "$RESULTS/stages.json" ${BENCH_ARGS:-} \
  >"$RESULTS/stages.log" 2>&1
echo "bench_stages rc $?" >>"$RESULTS/stages.log"
pack

stamp "training for $TRAIN_SECONDS s"
init=$RUNS/init.safetensors
if ! "$PY" tools/recipes/gpu_session.py join "$GPU_DATA/init_fp16_1.safetensors" "$init" \
  >/dev/null; then
  init=refdeblur_video/weights/lite.safetensors
  stamp "no $GPU_DATA/init_fp16_1.safetensors: training from the shipped weights"
fi
timeout -k 30 $((TRAIN_SECONDS + 90)) env FOREGROUND=1 PY="$PY" VIDEOS="$V" RUNS="$RUNS" \
  NAME=${NAME:-gpu_strong} INIT="$init" PHOTOS="$GPU_DATA/photos" \
  PHOTOS_MORE="$GPU_DATA/photos_lomiri" VAL="[$V/05_default_juggle.mp4]" \
  WORKERS=${WORKERS:-$(( $(nproc) > 3 ? $(nproc) - 2 : 1 ))} BATCH=${BATCH:-32} \
  WEAKEST=${WEAKEST:-0.6} STRONGEST=${STRONGEST:-2.4} MODEL=${MODEL:-tools/recipes/lite_prior.yaml} \
  MATCH_WEIGHT=${MATCH_WEIGHT:-0.1} STEPS=${STEPS:-1000} LR=${LR:-2.0e-5} WARMUP=${WARMUP:-50} \
  TIME_LIMIT="$TRAIN_SECONDS" bash tools/recipes/train_general.sh >"$RUNS/train.out" 2>&1
echo "train rc $?" >>"$RUNS/train.out"
for file in model best; do
  [ -f "$RUNS/${NAME:-gpu_strong}/$file.safetensors" ] \
    && cp "$RUNS/${NAME:-gpu_strong}/$file.safetensors" "$RESULTS/$file.safetensors"
done
pack

stamp "the main job on 02_cups (${DEVICE:-cuda})"
begin=$(date +%s.%N)
timeout -k 10 60 "$PY" -m refdeblur_video.cli "$V/02_cups.mp4" "$RUNS/cups.mp4" \
  --device "${DEVICE:-cuda}" --log "$RUNS/cups.csv" --overwrite >"$RUNS/cups.log" 2>&1
echo "rc $? wall $(awk "BEGIN {print $(date +%s.%N) - $begin}") s" >>"$RUNS/cups.log"
rm -f "$RUNS/cups.mp4"
pack
stamp "done"

#!/usr/bin/env bash
# One short GPU session (about 9 minutes on one H100), in one command:
#  0. tools/bench/bench_stages.py: frames per second with every frame restored, lite and
#     paper, autocast and fp32, 720p and 1080p, and the share of each stage (issue 19);
#  1. the held-out validation triplets (the same seed-7 set as `train_default.sh eval`);
#  2. side by side, for TRAIN_SECONDS: the paper configuration from scratch, and the shipped
#     lite model fine-tuned at GPU batch sizes (phi frozen, as stage 8; "stage 9");
#  3. the validation table of both, with the reference transfer and every ablation, and of
#     the shipped model on the GPU;
#  4. tools/bench/bench_model.py on the GPU and the main job on a real clip (cuda).
# Everything lands in $RESULTS: logs, reports, the fine-tuned lite weights, and the paper
# weights in fp16, split in two files of under 16 MB (join with
# tools/recipes/gpu_session.py join).
#   VIDEOS=../shared/data/videos RESULTS=out bash tools/recipes/gpu_session.sh
# (relative paths in VIDEOS, PHOTOS, BIKES, RUNS and RESULTS are from the repository root)
# On a lent machine without PyAV (2026-11-26): copy the clips into an ignored .data/videos,
# download PyAV's cp312 manylinux wheel into .whl, carry both (the stage checkpoints then
# tracked in tools/ were moved aside for that call to stay under 64 MiB), and run
#   pip install --no-index --no-deps --target /tmp/site .whl/*.whl; export \
#   PYTHONPATH=/tmp/site:$PWD; VIDEOS=.data/videos RESULTS=$OUT bash tools/recipes/gpu_session.sh
# The timeouts below keep the whole command under 10 minutes (it ran 461 s).
set -uo pipefail
cd "$(dirname "$0")/../.."
V=${VIDEOS:-../shared/data/videos}
PHOTOS=${PHOTOS:-.data/photos}
BIKES=${BIKES:-.data/bikes.mp4}
RUNS=${RUNS:-runs/gpu}
RESULTS=${RESULTS:-$RUNS/results}
TRAIN_SECONDS=${TRAIN_SECONDS:-180}
EVAL_SECONDS=${EVAL_SECONDS:-150}
PY=${PY:-python3}
mkdir -p "$RUNS" "$RESULTS"
started=$SECONDS
stamp() { echo "[gpu_session $((SECONDS - started)) s] $*"; }
pack() { tar -czf "$RESULTS/results.tar.gz" -C "$RUNS" --exclude='*.safetensors' \
  --exclude='val_triplets/val' --exclude="$(basename "$RESULTS")" . \
  || echo "gpu_session: could not pack $RUNS" >&2; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$RUNS/gpu.txt" 2>&1
"$PY" -c 'import torch, cv2, av; print("torch", torch.__version__, "cuda",
torch.cuda.is_available(), "cv2", cv2.__version__, "av", av.__version__)' | tee -a "$RUNS/gpu.txt"
if [ "${DEVICE:-cuda}" = cuda ] && ! "$PY" -c 'import sys, torch
sys.exit(not torch.cuda.is_available())'; then
  echo "gpu_session: no CUDA device (set DEVICE=cpu to try the script without one)" >&2; exit 1
fi

stamp "stage benchmark"
clip=$(realpath -m "$V/02_cups.mp4") results=$(realpath -m "$RESULTS")
(cd tools/bench && timeout 200 "$PY" bench_stages.py --device "${DEVICE:-cuda}" --repeats 1 \
  --clip "$clip" --json "$results/stages.json") >"$RESULTS/stages.log" 2>&1

stamp "validation triplets"
VIDEOS=$V RUNS=$RUNS PY=$PY bash tools/recipes/train_default.sh val_triplets \
  >"$RUNS/triplets.log" 2>&1
manifest=${EVAL_MANIFEST:-$RUNS/val_triplets/manifest.jsonl}
[ -f "$manifest" ] || { echo "gpu_session: no $manifest (see $RUNS/triplets.log)" >&2; exit 1; }

stamp "training for $TRAIN_SECONDS s"
photos=$(find "$PHOTOS" -maxdepth 1 -type f 2>/dev/null | sort | paste -sd, | sed 's/,/, /g')
bikes=; [ -f "$BIKES" ] && bikes=", $BIKES"
material="[$V/01_dog.mp4, $V/02_cups.mp4, $V/03_blocks.mp4$bikes${photos:+, $photos}]"
common=(--set "data.val_videos=[$V/05_default_juggle.mp4, $V/bedroom.mp4]"
        --set "data.blur_on=${BLUR_ON:-gpu}" --set data.workers=6 --time-limit "$TRAIN_SECONDS")
train() {  # NAME CONFIG [--set ...]
  local name=$1 config=$2; shift 2
  timeout $((TRAIN_SECONDS + 150)) "$PY" -m refdeblur_video.training.cli --config "$config" \
    --set "out=$RUNS/$name" "${common[@]}" "$@" >"$RUNS/$name.log" 2>&1
}
train paper configs/train/paper.yaml --set "data.train_videos=[$V/01_dog.mp4, \
$V/02_cups.mp4, $V/03_blocks.mp4]" --set data.batch=12 --set data.crop=192 --set train.val_every=500 &
train lite_stage9 configs/train/lite.yaml --set "data.train_videos=$material" \
  --set model=refdeblur_video/configs/model/lite.yaml \
  --set init=refdeblur_video/weights/lite.safetensors --set train.freeze_phi=true \
  --set data.batch=32 --set data.crop=192 --set data.unrelated_ref_prob=0.3 \
  --set train.lr=5.0e-5 --set train.warmup_steps=100 --set train.steps=1500 \
  --set train.gan_start=null --set train.val_every=250 --set train.ckpt_every=250 &
wait
pack

stamp "validation table"
evaluate() {  # NAME MODEL [options]
  local name=$1 model=$2; shift 2
  [ -f "$model" ] || [ "$model" = lite ] || { echo "no $model" >"$RUNS/eval_$name.log"; return; }
  timeout "$EVAL_SECONDS" "$PY" -m refdeblur_video.evaluate.cli triplets "$manifest" \
    --model "$model" --device "${DEVICE:-cuda}" --ablation-self-ref --ablation-unrelated-ref \
    --ablation-network-only --report "$RUNS/eval_$name" --quiet "$@" >"$RUNS/eval_$name.log" 2>&1
}
evaluate shipped lite &
evaluate stage9 "$RUNS/lite_stage9/best.safetensors" &
evaluate paper "$RUNS/paper/best.safetensors" &
evaluate paper_check "$RUNS/paper/best.safetensors" --reference-check 0.85 &
wait
pack
[ -f "$RUNS/lite_stage9/best.safetensors" ] && cp "$RUNS/lite_stage9/best.safetensors" \
  "$RESULTS/lite_stage9.safetensors"
[ -f "$RUNS/paper/best.safetensors" ] && "$PY" tools/recipes/gpu_session.py split \
  "$RUNS/paper/best.safetensors" "$RESULTS/paper_fp16"

stamp "benchmarks"
timeout 120 "$PY" tools/bench/bench_model.py --gpu-only --json "$RUNS/bench_model.json" \
  >"$RUNS/bench_model.log" 2>&1
pack
stamp "the main job on 02_cups (cuda)"
for variant in transfer no-transfer; do
  flag=(); [ "$variant" = no-transfer ] && flag=(--no-transfer)
  begin=$(date +%s.%N)
  timeout 40 "$PY" -m refdeblur_video.cli "$V/02_cups.mp4" "$RUNS/cups_$variant.mp4" \
    --device "${DEVICE:-cuda}" --quiet --log "$RUNS/cups_$variant.csv" "${flag[@]}" \
    >"$RUNS/cups_$variant.log" 2>&1
  rc=$?
  echo "rc $rc wall $(awk "BEGIN {print $(date +%s.%N) - $begin}") s" >>"$RUNS/cups_$variant.log"
  rm -f "$RUNS/cups_$variant.mp4"
done
pack
stamp "done"

#!/usr/bin/env bash
# The recipe of the shipped default model (refdeblur_video/weights/lite.safetensors), two stages:
#
#   bash tools/train_default.sh gpu    # stage 1: one H100, ~4.5 min -> runs/lite_gpu/best.safetensors
#   bash tools/train_default.sh cpu    # stage 2: a 2-core CPU, 2 h in the background (resumable)
#                                      #   -> runs/lite_cpu/best.safetensors, the shipped weights
#   bash tools/train_default.sh eval   # validation table on held-out videos (both ablations)
#
# Data: ../shared/data/videos (Apache-2.0 clips). Split by video: 01_dog, 02_cups and
# 03_blocks train; 05_default_juggle and bedroom are never trained on (validation). Stage 2
# adds 18 real photos (tools/get_photos.sh), filmed as 24-frame clips by a virtual camera.
# Blur: synthetic hand-held camera shake per sample (paths up to 40 px at 720p and 2 degrees
# of rotation at strength 1, strengths drawn in [0.3, 1.2]), references are real
# neighbouring frames 1-4 frames away; 15 % (stage 1) / 30 % (stage 2) of samples get an
# unrelated reference. Stage 2 adds the fusion gates (configs/model/lite.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-gpu}
mkdir -p "${RUNS:-runs}"
V=${VIDEOS:-../shared/data/videos}
RUNS=${RUNS:-runs}
PY=${PY:-python3}
TRAIN="[$V/01_dog.mp4, $V/02_cups.mp4, $V/03_blocks.mp4]"
VAL="[$V/05_default_juggle.mp4, $V/bedroom.mp4]"
common=(--config configs/train/lite.yaml --set "data.train_videos=$TRAIN"
        --set "data.val_videos=$VAL")

case "$MODE" in
  gpu)  # stage 1 exactly: 2600-step cosine schedule, stopped by the time limit; no gates yet
    mkdir -p "$RUNS/stage1"
    sed 's/^fusion_gate: true/fusion_gate: false/' refdeblur_video/configs/model/lite.yaml \
      >"$RUNS/stage1/lite.yaml"
    "$PY" -m refdeblur_video.training.cli "${common[@]}" --set "out=$RUNS/lite_gpu" \
      --set "model=$RUNS/stage1/lite.yaml" \
      --set data.blur_on=gpu --set data.workers=12 --set data.batch=16 --set data.crop=256 \
      --set train.steps=2600 --set train.warmup_steps=200 --set train.gan_start=1950 \
      --set train.val_every=500 --time-limit 265
    echo "stage 1 done: $RUNS/lite_gpu/best.safetensors; next: $0 cpu"
    ;;
  cpu)  # stage 2, on a 2-core CPU: warm-start from stage 1, add the fusion gates and real
        # photos (tools/get_photos.sh), twice as many unrelated references, no GAN.
        # Re-run the same command to resume.
    photos=${PHOTOS:-.data/photos}
    bash tools/get_photos.sh "$photos"
    list=$(find "$photos" -maxdepth 1 -type f | sort | paste -sd, | sed 's/,/, /g')
    common+=(--set "data.train_videos=[$V/01_dog.mp4, $V/02_cups.mp4, $V/03_blocks.mp4, $list]")
    out="$RUNS/lite_cpu"
    resume=()
    [ -f "$out/last.safetensors" ] && resume=(--resume)
    # stage 1's output if you ran it, else the stage-1 weights kept in tools/ (no GPU needed)
    init=${INIT:-$RUNS/lite_gpu/best.safetensors}
    [ -f "$init" ] || init=tools/lite_stage1.safetensors
    nohup "$PY" -m refdeblur_video.training.cli "${common[@]}" --set "out=$out" \
      --set "init=$init" --set data.workers=1 --set data.batch=8 --set data.crop=192 \
      --set data.unrelated_ref_prob=0.3 --set train.lr=1.0e-4 --set train.steps=10000 \
      --set train.warmup_steps=200 --set train.gan_start=null --set train.val_every=500 \
      --set train.ckpt_every=250 --time-limit "${TIME_LIMIT:-7200}" "${resume[@]}" \
      >>"$out.log" 2>&1 &
    echo "training in the background (pid $!); log: $out.log, state: $out/last.safetensors"
    echo "when it ends: cp $out/best.safetensors refdeblur_video/weights/lite.safetensors"
    ;;
  eval)
    model=${MODEL:-refdeblur_video/weights/lite.safetensors}
    [ -f "$RUNS/val_triplets/manifest.jsonl" ] || "$PY" -m refdeblur_video.data.cli video \
      "$V/05_default_juggle.mp4" "$V/bedroom.mp4" "$RUNS/val_triplets" --frames-per-video 16 \
      --val-videos 05_default_juggle,bedroom --seed 7
    "$PY" -m refdeblur_video.evaluate.cli triplets "$RUNS/val_triplets/manifest.jsonl" \
      --model "$model" --ablation-self-ref --ablation-unrelated-ref --report "$RUNS/eval_lite"
    ;;
  *) echo "usage: $0 gpu|cpu|eval" >&2; exit 2 ;;
esac

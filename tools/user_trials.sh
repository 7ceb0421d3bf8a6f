#!/usr/bin/env bash
# The tool tried from the outside, as a user would: real signals, real files, the exit codes
# and the one line each case prints. Run before a session's work lands.
#
#   bash tools/user_trials.sh ../shared/data/videos/bedroom.mp4
#   KEEP=2 B=../cleanclone/.venv/bin/refdeblur-video bash tools/user_trials.sh CLIP
#
# 1. an uninterrupted --all-frames run into FFV1 (lossless, so frames compare exactly);
# 2. the same command stopped by SIGINT from a shell with job control (as Ctrl-C) a few
#    seconds after it has committed KEEP segments (1): exit 130, one "interrupted" line
#    naming what is kept;
# 3. the same command again without --resume: exit 2, one line that names --resume;
# 4. with --resume: exit 0, and the decoded frames equal (md5) those of run 1;
# 5. an existing output: exit 2, one line; 6. random bytes as the input: exit 2, one line,
#    nothing left behind; 7. the default run (the closing line and its seconds).
# Prints PASS/FAIL per check; exits 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
CLIP=$(realpath "${1:?usage: user_trials.sh CLIP}")
B=$(realpath "${B:-.venv/bin/refdeblur-video}")
PY=$(dirname "$B")/python
KEEP=${KEEP:-1}
W=$(mktemp -d /tmp/user_trials.XXXXXX)
trap 'rm -rf "$W"' EXIT
failed=0
check() {  # check NAME CONDITION...
  local name=$1; shift
  if "$@"; then echo "PASS $name"; else echo "FAIL $name"; failed=1; fi
}
frames_md5() {
  "$PY" - "$1" <<'EOF'
import hashlib, sys
import av
digest = hashlib.md5()
with av.open(sys.argv[1]) as container:
    for frame in container.decode(video=0):
        for plane in frame.planes:
            digest.update(bytes(plane))
print(digest.hexdigest())
EOF
}

ALL=(--all-frames --codec ffv1 -q)
"$B" "$CLIP" "$W/full.mkv" "${ALL[@]}" > "$W/full.log" 2>&1
check "uninterrupted run (rc $?)" [ -s "$W/full.mkv" ]
full=$(frames_md5 "$W/full.mkv")

set -m  # job control: the background run gets its own process group, as in a terminal
"$B" "$CLIP" "$W/cut.mkv" "${ALL[@]}" > "$W/cut.log" 2>&1 &
pid=$!
state="$W/.cut.mkv.refdeblur"
until [ "$(ls "$state" 2>/dev/null | grep -c '^[0-9]*\.json$')" -ge "$KEEP" ]; do
  kill -0 "$pid" 2>/dev/null || break  # finished (or failed) before that: checks below fail
  sleep 0.5
done
kill -0 "$pid" 2>/dev/null ||
  echo "   the run ended before $KEEP segments were committed: a longer clip or a smaller KEEP"
sleep 3
kill -INT "$pid" 2>/dev/null
wait "$pid"; rc=$?
set +m
echo "   $(cat "$W/cut.log")"
check "SIGINT: exit 130" [ "$rc" -eq 130 ]
check "SIGINT: one interrupted line" grep -q "^interrupted" "$W/cut.log"
check "SIGINT: no output" [ ! -e "$W/cut.mkv" ]

"$B" "$CLIP" "$W/cut.mkv" "${ALL[@]}" > "$W/again.log" 2>&1; rc=$?
echo "   $(cat "$W/again.log")"
check "again without --resume: exit 2, one line naming --resume" \
  bash -c "[ $rc -eq 2 ] && grep -q -- --resume '$W/again.log' && [ \$(wc -l < '$W/again.log') -eq 1 ]"

"$B" "$CLIP" "$W/cut.mkv" "${ALL[@]}" --resume > "$W/resume.log" 2>&1; rc=$?
check "--resume: exit 0" [ "$rc" -eq 0 ]
resumed=$(frames_md5 "$W/cut.mkv" 2>/dev/null)
echo "   frames md5: uninterrupted $full, resumed $resumed"
check "--resume: the same frames as the uninterrupted run" [ "$full" = "$resumed" ]

"$B" "$CLIP" "$W/full.mkv" -q > "$W/exists.log" 2>&1; rc=$?
echo "   $(cat "$W/exists.log")"
check "existing output: exit 2, one line" bash -c "[ $rc -eq 2 ] && [ \$(wc -l < '$W/exists.log') -eq 1 ]"

head -c 200000 /dev/urandom > "$W/bad.mp4"
"$B" "$W/bad.mp4" "$W/bad_out.mp4" -q > "$W/bad.log" 2>&1; rc=$?
echo "   $(cat "$W/bad.log")"
check "random bytes: exit 2, one line" bash -c "[ $rc -eq 2 ] && [ \$(wc -l < '$W/bad.log') -eq 1 ]"
check "random bytes: nothing left behind" \
  bash -c "[ -z \"\$(ls -A '$W' | grep -i bad_out)\" ]"

start=$(date +%s%N)
"$B" "$CLIP" "$W/default.mp4" > "$W/default.log" 2>&1; rc=$?
millis=$(( ($(date +%s%N) - start) / 1000000 ))
echo "   $(tail -n 1 "$W/default.log") (wall $((millis / 1000)).$(printf %03d $((millis % 1000))) s)"
check "default run: exit 0" [ "$rc" -eq 0 ]
exit $failed

#!/usr/bin/env bash
# kill_resume_sample.sh: dit sample --npz killed with SIGKILL at random points
# (and at batch boundaries, DIT_TEST_ABORT_AFTER_BATCHES) and run again with
# the same command ends with the .npz of a run that went straight through,
# byte for byte, and leaves no partial folder and no stale temporary
# (issue 16). Seeded: KILL_SEED (default 1), KILL_ROUNDS kills (default 12).
source "$(dirname "$0")/lib.sh" "$1"
robust_tiny_pixel 4
cd "$work"
seed=${KILL_SEED:-1}
rounds=${KILL_ROUNDS:-12}
s=("$dit" sample px.plan --weights px.safetensors --steps 100 --cfg-scale 2 --seed 5 --num-samples 30 --threads 1)

start=$(date +%s%N)
"${s[@]}" --npz straight.npz
span_ms=$((($(date +%s%N) - start) / 1000000))

# at batch boundaries: 1, 2, ... batches, then the rest
for b in 1 2 3; do DIT_TEST_ABORT_AFTER_BATCHES=1 "${s[@]}" --npz boundary.npz && { echo "FAIL: no abort"; exit 1; } || true; done
[ -d boundary.npz.partial ] || { echo "FAIL: no partial folder after an abort"; exit 1; }
"${s[@]}" --npz boundary.npz
cmp straight.npz boundary.npz || { echo "FAIL: the .npz after batch-boundary aborts differs"; exit 1; }

# at random points
RANDOM=$seed
kills=0
for ((i = 0; i < rounds; i++)); do
  [ -e killed.npz ] && [ ! -e killed.npz.partial ] && break
  "${s[@]}" --npz killed.npz 2>"$work/kill.err" &
  pid=$!
  have=$(ls killed.npz.partial 2>/dev/null | grep -c '^batch_' || true) # of 15
  ms=$((span_ms * (15 - have) / 15 * (5 + RANDOM % 90) / 100))
  sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
  kill -9 "$pid" 2>/dev/null && kills=$((kills + 1))
  wait "$pid" 2>/dev/null || true
  grep -q "error" "$work/kill.err" && { echo "FAIL: round $i: $(cat "$work/kill.err")"; exit 1; }
done
# a kill after the .npz was renamed into place but before the partial folder
# went leaves both; the same command then finishes (the same bytes again)
[ -e killed.npz ] && [ ! -e killed.npz.partial ] || "${s[@]}" --npz killed.npz
cmp straight.npz killed.npz || { echo "FAIL: the .npz after kills differs (seed $seed)"; exit 1; }
for p in boundary.npz.partial killed.npz.partial; do [ ! -e "$p" ] || { echo "FAIL: $p left"; exit 1; }; done
no_stale_tmp "$work"
echo "ok: $kills kills: .npz byte-identical with a straight run"

#!/usr/bin/env bash
# kill_resume_train.sh: dit train killed with SIGKILL at random points and
# resumed, again and again, ends with the files of a run that went straight
# through (issue 16): every checkpoint byte-identical, loss.tsv byte-identical
# (each step once, none lost), and no stale temporaries. Seeded:
# KILL_SEED (default 1), KILL_ROUNDS kills (default 12).
source "$(dirname "$0")/lib.sh" "$1"
robust_tiny_pixel 4
robust_dataset
cd "$work"
seed=${KILL_SEED:-1}
rounds=${KILL_ROUNDS:-12}
"$ditc" "$root/specs/tests/tiny_pixel.dit" --mode train --batch 4 -o t.plan
t=("$dit" train t.plan --data px.ditdata --steps 400 --ckpt-every 7 --log-every 10 --threads 1)

start=$(date +%s%N)
"${t[@]}" -o straight >/dev/null
span_ms=$((($(date +%s%N) - start) / 1000000)) # how long a whole run takes here (ASan or not)

RANDOM=$seed
kills=0 resumes=0
for ((i = 0; i < rounds; i++)); do
  done_steps=0
  if [ -e killed/checkpoints/latest ]; then args=(--resume killed); resumes=$((resumes + 1)); done_steps=$(cat killed/checkpoints/latest)
  else args=(-o killed --overwrite); fi
  "${t[@]}" "${args[@]}" >/dev/null 2>"$work/kill.err" &
  pid=$!
  ms=$((span_ms * (400 - done_steps) / 400 * (5 + RANDOM % 90) / 100)) # somewhere in what is left
  sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
  if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "$pid" 2>/dev/null || true
  grep -q "error" "$work/kill.err" && { echo "FAIL: round $i: $(cat "$work/kill.err")"; exit 1; }
  [ -e killed/checkpoints/latest ] && [ "$(cat killed/checkpoints/latest)" -ge 400 ] && break
done
# finish the run
if [ -e killed/checkpoints/latest ]; then "${t[@]}" --resume killed >/dev/null; else "${t[@]}" -o killed --overwrite >/dev/null; fi

for f in $(cd straight/checkpoints && ls); do
  cmp "straight/checkpoints/$f" "killed/checkpoints/$f" || { echo "FAIL: $f differs (seed $seed)"; exit 1; }
done
[ "$(cd straight/checkpoints && ls)" = "$(cd killed/checkpoints && ls)" ] || { echo "FAIL: the checkpoint lists differ"; exit 1; }
cmp straight/loss.tsv killed/loss.tsv || { echo "FAIL: loss.tsv differs (seed $seed)"; diff straight/loss.tsv killed/loss.tsv | head; exit 1; }
no_stale_tmp "$work"
echo "ok: $kills kills, $resumes resumes: checkpoints and loss.tsv byte-identical with a straight run"

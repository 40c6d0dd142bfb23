#!/usr/bin/env bash
# file_size_limit.sh: past `ulimit -f` a write fails with EFBIG; every command
# reports it and exits 1 (never killed by SIGXFSZ, exit 153) and leaves no
# temporary behind (issue 16). Temporaries that a killed writer left
# (".NAME.tmp.PID.XXXXXX" of a dead PID, or the older ".NAME.tmp.XXXXXX") are
# removed by the next write of NAME and at the start of dit train; those of a
# live writer are left alone.
source "$(dirname "$0")/lib.sh" "$1"
robust_tiny_pixel 4
robust_dataset
spec=$root/specs/tests/tiny_pixel.dit
cd "$work"
mkdir out
# runs CMD under ulimit -f LIMIT (KiB); its stdout and stderr go through pipes,
# which the limit does not cover, so its messages reach expect_fail's files
limited() {
  local limit=$1 rc
  shift
  { (ulimit -f "$limit"; "$@" 2>&1 1>&3 3>&-) 3>&1 | cat >&2; } 3>&1 | cat
  rc=${PIPESTATUS[0]}
  return "$rc"
}
"$ditc" "$spec" --mode train --batch 4 -o t.plan

# 4 KiB: the 11 KB plan, a 200 KB checkpoint do not fit
expect_fail 1 "out/p.plan: error: cannot write: File too large" limited 4 "$ditc" "$spec" --batch 4 -o out/p.plan
expect_fail 1 "out/ir.txt: error: cannot write: File too large" limited 1 "$ditc" "$spec" --dump-ir -o out/ir.txt
# no byte at all
s=("$dit" sample px.plan --weights px.safetensors -n 4 --cfg-scale 1 --steps 3)
expect_fail 1 "out/o.npy: cannot write: File too large" limited 0 "${s[@]}" -o out/o.npy
expect_fail 1 "out/g.png: cannot write: File too large" limited 0 "${s[@]}" --png out/g.png
expect_fail 1 "cannot write: File too large" limited 0 "${s[@]}" --npz out/s.npz --num-samples 8
expect_fail 1 "File too large" limited 0 "$dit" data fashion-mnist --images images.idx --labels labels.idx -o out/d.ditdata
expect_fail 1 "checkpoints/0000002-ema.safetensors: cannot write: File too large" \
  limited 100 "$dit" train t.plan --data px.ditdata --steps 4 --ckpt-every 2 -o out/run
for f in out/p.plan out/ir.txt out/o.npy out/g.png out/s.npz out/s.npz.partial out/d.ditdata out/run/checkpoints/latest; do
  [ ! -e "$f" ] || { echo "FAIL: $f was written past the limit"; exit 1; }
done
no_stale_tmp out

# stale temporaries: a dead writer's go, a live writer's stay
dead=4194305 # above any pid_max: no such process
sleep 300 & live=$!
touch out/.p.plan.tmp.$dead.AbC123 out/.p.plan.tmp.XyZ789 out/.p.plan.tmp.$live.KeEp00 out/.other.tmp.$dead.Other1
"$ditc" "$spec" --batch 4 -o out/p.plan
[ ! -e out/.p.plan.tmp.$dead.AbC123 ] && [ ! -e out/.p.plan.tmp.XyZ789 ] ||
  { echo "FAIL: ditc left a dead writer's temporaries of p.plan"; ls -a out; exit 1; }
[ -e out/.p.plan.tmp.$live.KeEp00 ] || { echo "FAIL: ditc removed a live writer's temporary"; exit 1; }
[ -e out/.other.tmp.$dead.Other1 ] || { echo "FAIL: ditc removed another name's temporary"; exit 1; }
kill $live; wait $live 2>/dev/null || true
rm out/.p.plan.tmp.$live.KeEp00 out/.other.tmp.$dead.Other1
# dit train sweeps its run folder, checkpoints/ and samples/ when it starts or resumes
"$dit" train t.plan --data px.ditdata --steps 2 --ckpt-every 2 -o out/run2 >/dev/null
touch out/run2/.loss.tsv.tmp.$dead.AAAAAA out/run2/checkpoints/.0000004.safetensors.tmp.$dead.BBBBBB \
      out/run2/checkpoints/.latest.tmp.CCCCCC
"$dit" train t.plan --data px.ditdata --steps 3 --resume out/run2 >/dev/null
no_stale_tmp out
echo "ok: file size limit and stale temporaries"

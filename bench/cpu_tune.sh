#!/usr/bin/env bash
# CPU autotuning: dit tune's plan against the untuned one, forward at batch
# 8, in the same run (each timed in turn, ROUNDS times, best median of each),
# for DiT-S/2 and DiT-B/4 at 256 px by default. The tuning itself is timed too.
# Usage: bench/cpu_tune.sh [BUILD_DIR] [BATCH] [ITERS] [ROUNDS] [SPEC...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
batch=${2:-8}
iters=${3:-10}
rounds=${4:-3}
shift $(( $# < 4 ? $# : 4 ))
specs=("$@")
[ ${#specs[@]} -gt 0 ] || specs=(specs/S2_256.dit specs/B4_256.dit)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
median_of() { sed 's/.*"median_ms": \([0-9.]*\).*/\1/'; }
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) threads; $(date -u +%F)"
for spec in "${specs[@]}"; do
  name=$(basename "$spec" .dit)
  "$build/compiler/ditc" "$root/$spec" -o "$work/$name.plan" --batch "$batch"
  t0=$(date +%s.%N)
  "$build/runtime/dit" tune "$work/$name.plan" -o "$work/$name.tuned" --seed 1 >"$work/$name.tune.txt"
  t1=$(date +%s.%N)
  grep '^forward:' "$work/$name.tune.txt" | sed "s/^/$name dit tune's own figures: /"
  changed=$(grep -c 'x  [^d]' "$work/$name.tune.txt" || true)
  best_u="" best_t=""
  for r in $(seq 1 "$rounds"); do
    u=$("$build/bench/bench_forward" "$work/$name.plan" --random-weights 1 --batch "$batch" --iters "$iters" | median_of)
    t=$("$build/bench/bench_forward" "$work/$name.tuned" --random-weights 1 --batch "$batch" --iters "$iters" | median_of)
    echo "$name round $r: untuned $u ms, tuned $t ms"
    if [ -z "$best_u" ] || awk "BEGIN{exit !($u < $best_u)}"; then best_u=$u; fi
    if [ -z "$best_t" ] || awk "BEGIN{exit !($t < $best_t)}"; then best_t=$t; fi
  done
  awk -v n="$name" -v b="$batch" -v u="$best_u" -v t="$best_t" -v s="$(echo "$t1 - $t0" | bc)" -v c="$changed" \
    'BEGIN{printf "%s batch %d: untuned %.1f ms, tuned %.1f ms: %.3fx (dit tune took %.0f s, %d ops changed)\n", n, b, u, t, u/t, s, c}'
done

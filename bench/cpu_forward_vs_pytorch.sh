#!/usr/bin/env bash
# CPU forward throughput of a compiled plan against PyTorch on the same
# machine, in the same run: DiT-S/2 at 256 px, batch 8 by default. Both sides
# get every thread count from 1 to the number of cores and keep their best.
# Prints both medians and the ratio (>1 means ditc is faster).
# Usage: bench/cpu_forward_vs_pytorch.sh [BUILD_DIR] [SPEC] [BATCH] [ITERS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
spec=${2:-specs/S2_256.dit}
batch=${3:-8}
iters=${4:-10}
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cores=$(nproc)
threads=$(seq -s, 1 "$cores")

"$build/compiler/ditc" "$root/$spec" --info --json >"$work/cfg.json"
"$build/compiler/ditc" "$root/$spec" -o "$work/model.plan" --batch "$batch"
$py "$root/tests/ref/dit_ref.py" weights "$work/cfg.json" --seed 1 --out-dir "$work/w" >/dev/null

best_ditc=""
for t in $(seq 1 "$cores"); do
  line=$("$build/bench/bench_forward" "$work/model.plan" "$work/w/bare.pt" --batch "$batch" --iters "$iters" --threads "$t")
  ms=$(echo "$line" | sed 's/.*"median_ms": \([0-9.]*\).*/\1/')
  echo "ditc     threads $t: median $ms ms"
  if [ -z "$best_ditc" ] || awk "BEGIN{exit !($ms < $best_ditc)}"; then best_ditc=$ms; fi
done
# PyTorch's GEMMs go through OpenBLAS, whose own thread count is separate from
# torch's: try every pair and keep PyTorch's best.
best_torch=""
for ob in $(seq 1 "$cores"); do
  torch_json=$(OPENBLAS_NUM_THREADS=$ob $py "$root/tests/ref/dit_ref.py" bench "$work/cfg.json" \
               --batch "$batch" --threads-list "$threads" --iters "$iters" --warmup 2 |
               sed "s/^threads/PyTorch  OpenBLAS threads $ob, torch threads/" | tee /dev/stderr | tail -1)
  ms=$(echo "$torch_json" | sed 's/.*"best_ms": \([0-9.]*\).*/\1/')
  if [ -z "$best_torch" ] || awk "BEGIN{exit !($ms < $best_torch)}"; then best_torch=$ms; fi
done
model=$(sed 's/.*"model":"\([^"]*\)".*/\1/' "$work/cfg.json")
echo
echo "$model forward, batch $batch, $(nproc) cores: ditc $best_ditc ms, PyTorch $best_torch ms," \
     "ditc/PyTorch speed ratio $(awk "BEGIN{printf \"%.2f\", $best_torch / $best_ditc}")"

#!/usr/bin/env bash
# CPU training throughput of a compiled training plan against PyTorch on the
# same machine, in the same run: train.py's step (the official loss, its
# backward, AdamW, the EMA update) on one batch. ditc is timed by `dit train`
# itself (its Train Steps/Sec, excluding the first logged interval); PyTorch
# by tests/ref/train_ref.py bench, at every torch x OpenBLAS thread count,
# keeping its best. Prints both and the ratio (>1 means ditc is faster).
# Usage: bench/cpu_train_vs_pytorch.sh [BUILD_DIR] [SPEC] [BATCH] [STEPS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
spec=${2:-examples/fashion_mnist/dit_fashion_mnist.dit}
batch=${3:-128}
steps=${4:-30}
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cores=$(nproc)
threads=$(seq -s, 1 "$cores")

"$build/compiler/ditc" "$root/$spec" --info --json >"$work/cfg.json"
"$build/compiler/ditc" "$root/$spec" --mode train --batch "$batch" -o "$work/train.plan"
# a synthetic data set of the model's shape
$py - "$work" "$work/cfg.json" <<'PY'
import sys, json, struct, numpy as np
work, cfg = sys.argv[1], json.load(open(sys.argv[2]))
L, C, n = cfg["latent_size"], cfg["in_channels"], 1024
assert C == 1, "this bench builds 1-channel pixel data"
rng = np.random.default_rng(0)
open(work + "/img.idx", "wb").write(struct.pack(">IIII", 2051, n, L, L) + rng.integers(0, 256, (n, L, L), dtype=np.uint8).tobytes())
open(work + "/lab.idx", "wb").write(struct.pack(">II", 2049, n) + (np.arange(n) % cfg["num_classes"]).astype(np.uint8).tobytes())
PY
"$build/runtime/dit" data fashion-mnist --images "$work/img.idx" --labels "$work/lab.idx" -o "$work/d.ditdata" >/dev/null
warm=$((steps / 3))
"$build/runtime/dit" train "$work/train.plan" --data "$work/d.ditdata" --steps "$steps" --log-every "$warm" \
  -o "$work/run" | tee "$work/log.txt"
# steps/s over the logged intervals after the first (warm-up)
ditc_sps=$(grep "Train Steps/Sec" "$work/log.txt" | tail -n +2 | sed 's/.*Steps\/Sec: //' |
           awk '{s += $1; n++} END {printf "%.4f", s / n}')
best_torch=""
for ob in $(seq 1 "$cores"); do
  json=$(OPENBLAS_NUM_THREADS=$ob $py "$root/tests/ref/train_ref.py" bench "$work/cfg.json" --batch "$batch" \
         --threads-list "$threads" --iters 5 --warmup 1 |
         sed "s/^threads/PyTorch  OpenBLAS threads $ob, torch threads/" | tee /dev/stderr | tail -1)
  ms=$(echo "$json" | sed 's/.*"best_ms": \([0-9.]*\).*/\1/')
  if [ -z "$best_torch" ] || awk "BEGIN{exit !($ms < $best_torch)}"; then best_torch=$ms; fi
done
model=$(sed 's/.*"model":"\([^"]*\)".*/\1/' "$work/cfg.json")
ditc_ms=$(awk "BEGIN{printf \"%.1f\", 1000 / $ditc_sps}")
echo
echo "$model training step, batch $batch, $cores cores: ditc $ditc_ms ms, PyTorch $best_torch ms," \
     "ditc/PyTorch speed ratio $(awk "BEGIN{printf \"%.2f\", $best_torch / $ditc_ms}")"

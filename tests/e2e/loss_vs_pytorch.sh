#!/usr/bin/env bash
# End-to-end check of training plans against the PyTorch reference
# (tests/ref/train_ref.py: autograd of the official loss, Debian's torch):
# compile SPEC with --mode train under both --recompute modes, make random
# weights (every layer randomised) and a batch with t = 0 (the NLL branch),
# t = 999 and the null class, run `dit loss --grads-out`, and require
#   |loss - ref| / |ref| <= 1e-5, and per tensor ||g - ref|| / ||ref|| <= 1e-4,
# with every trainable weight present and nothing else.
# Usage: loss_vs_pytorch.sh BUILD_DIR SPEC BATCH [PLAN_BATCH]
set -euo pipefail
build=$1 spec=$2 batch=$3 plan_batch=${4:-8}
root=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$build/compiler/ditc" "$root/$spec" --info --json >"$work/cfg.json"
$py "$root/tests/ref/dit_ref.py" weights "$work/cfg.json" --seed 21 --out-dir "$work/w" >/dev/null
$py "$root/tests/ref/train_ref.py" inputs "$work/cfg.json" --seed 22 --batch "$batch" \
  --t-values 0,999,1 --null-labels --out-dir "$work/in" >/dev/null
args=(--weights "$work/w/official.safetensors" --x0 "$work/in/x0.npy" --t "$work/in/t.npy"
      --y "$work/in/y.npy" --noise "$work/in/noise.npy")
$py "$root/tests/ref/train_ref.py" loss "$work/cfg.json" "${args[@]}" --grads-out "$work/ref.safetensors" \
  >"$work/ref.txt"

fails=0
for mode in none block; do
  "$build/compiler/ditc" "$root/$spec" --mode train --recompute $mode --batch "$plan_batch" -o "$work/train.plan"
  "$build/runtime/dit" loss "$work/train.plan" "${args[@]}" --grads-out "$work/g.safetensors" >"$work/out.txt"
  $py - "$root" "$work" "$spec --recompute $mode (batch $batch)" <<'PY' || fails=$((fails + 1))
import sys
sys.path.insert(0, sys.argv[1] + "/tests/ref")
import dit_ref
work, label = sys.argv[2], sys.argv[3]
last = lambda p: open(p).read().strip().splitlines()[-1].split()
out, ref = last(work + "/out.txt"), last(work + "/ref.txt")
assert out[0] == "loss" and ref[0] == "loss", (out, ref)
lo, lr = float(out[1]), float(ref[1])
ok = abs(lo - lr) <= 1e-5 * abs(lr)
print(f"{label:45s} loss {lo:.9g} ref {lr:.9g} rel {abs(lo - lr) / abs(lr):.2e}")
g, _ = dit_ref.read_safetensors(work + "/g.safetensors")
r, _ = dit_ref.read_safetensors(work + "/ref.safetensors")
if set(g) != set(r):
    print("  gradient names differ:", sorted(set(g) ^ set(r)))
    ok = False
worst, name = 0.0, ""
for k in r:
    if k not in g: continue
    a, b = g[k].double(), r[k].double()
    if a.shape != b.shape or not bool(a.isfinite().all()):
        print("  bad gradient", k); ok = False; continue
    rel = float((a - b).norm() / b.norm().clamp_min(1e-30))
    if rel > worst: worst, name = rel, k
    if rel > 1e-4:
        print(f"  {k}: rel {rel:.3e}"); ok = False
print(f"  {len(r)} gradients, worst rel {worst:.2e} ({name})")
sys.exit(0 if ok else 1)
PY
done
echo "$spec: $fails failed runs"
[ "$fails" -eq 0 ]

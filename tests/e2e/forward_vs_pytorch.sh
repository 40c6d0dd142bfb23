#!/usr/bin/env bash
# End-to-end check of the CPU backend against the PyTorch reference of the
# official DiT (tests/ref/dit_ref.py, Debian's torch): compile a spec, make
# random weights (every layer randomised) in all four checkpoint forms plus
# fp16 and bf16 copies, run `dit forward` with and without --cfg-scale, and
# require ||out - ref|| / ||ref|| <= 1e-5 for each.
# Usage: forward_vs_pytorch.sh BUILD_DIR SPEC BATCH T_VALUES [PLAN_BATCH]
set -euo pipefail
build=$1 spec=$2 batch=$3 tvals=$4 plan_batch=${5:-8}
root=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
ref="$py $root/tests/ref/dit_ref.py"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$build/compiler/ditc" "$root/$spec" --info --json >"$work/cfg.json"
"$build/compiler/ditc" "$root/$spec" -o "$work/model.plan" --batch "$plan_batch"
$ref weights "$work/cfg.json" --seed 11 --out-dir "$work/w" --dtypes f32,f16,bf16 >/dev/null
$ref inputs "$work/cfg.json" --seed 12 --batch "$batch" --t-values "$tvals" --null-labels --out-dir "$work/in" >/dev/null
$ref inputs "$work/cfg.json" --seed 13 --batch "$batch" --t-values "$tvals" --int32 --out-dir "$work/in32" >/dev/null

compare() { # out ref label
  $py - "$1" "$2" "$3" <<'PY'
import sys, numpy as np
out, ref, label = np.load(sys.argv[1]), np.load(sys.argv[2]), sys.argv[3]
assert out.shape == ref.shape, f"{label}: shape {out.shape} != {ref.shape}"
assert np.isfinite(out).all(), f"{label}: non-finite output"
rel = float(np.linalg.norm(out - ref) / np.linalg.norm(ref))
print(f"{label:55s} rel err {rel:.3e}")
sys.exit(0 if rel <= 1e-5 else 1)
PY
}

fails=0
for w in bare.pt train.pt official.safetensors diffusers.safetensors \
         official_f16.safetensors official_bf16.safetensors bare_f16.pt bare_bf16.pt; do
  for mode in plain cfg; do
    for inputs in in in32; do
      [ "$inputs" = in32 ] && [ "$w" != bare.pt ] && continue
      extra=()
      [ "$mode" = cfg ] && extra=(--cfg-scale 4.0)
      args=(--x "$work/$inputs/x.npy" --t "$work/$inputs/t.npy" --y "$work/$inputs/y.npy")
      $ref forward "$work/cfg.json" --weights "$work/w/$w" "${args[@]}" -o "$work/ref.npy" "${extra[@]}" >/dev/null
      "$build/runtime/dit" forward "$work/model.plan" --weights "$work/w/$w" "${args[@]}" -o "$work/out.npy" "${extra[@]}"
      compare "$work/out.npy" "$work/ref.npy" "$spec $w $mode $inputs (batch $batch)" || fails=$((fails + 1))
    done
  done
done
echo "$spec: $fails comparisons above 1e-5"
[ "$fails" -eq 0 ]

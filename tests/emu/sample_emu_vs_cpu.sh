#!/usr/bin/env bash
# sample_emu_vs_cpu.sh: `dit sample PLAN --device emu` reproduces `--device
# cpu` with the same seed (issue #8): the real CUDA backend and its kernels,
# on the emulated device, against the CPU backend. For the tiny test models
# (latent, head dim 72, pixel space) at fp32, TF32 and bf16, DDPM and DDIM
# with guidance: ||emu - cpu|| / ||cpu|| of the final latents at most 1e-4
# (fp32), 3e-2 (TF32) or 0.16 (bf16: 10 x 2^-6), the sampling tolerances of
# tests/gpu/test_gpu_vs_cpu.c (10x a forward's). Random weights on every
# tensor (dit_ref.py).
set -euo pipefail
build=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$py -c 'import torch, numpy, safetensors' 2>/dev/null || $py -c 'import torch, numpy' 2>/dev/null ||
  { echo "FAIL: python3-torch/python3-numpy missing (tools/deps.sh test)"; exit 1; }
export DIT_EMU_CACHE=${DIT_EMU_CACHE:-$build/emu-cache}
fails=0
for spec in tiny tiny_hd72 tiny_pixel; do
  s=$root/specs/tests/$spec.dit
  "$build/compiler/ditc" "$s" --info --json >"$work/$spec.json"
  $py "$root/tests/ref/dit_ref.py" weights "$work/$spec.json" --seed 3 --out-dir "$work/w_$spec" >/dev/null
  w=$(ls "$work/w_$spec"/*.safetensors | head -1)
  for dtype in fp32 tf32 bf16; do
    tol=1e-4
    [ $dtype = tf32 ] && tol=3e-2
    [ $dtype = bf16 ] && tol=0.16
    "$build/compiler/ditc" "$s" --batch 4 --dtype $dtype --arch emu -o "$work/p.plan"
    for sampler in "--sampler ddpm --steps 10" "--sampler ddim --steps ddim10"; do
      args=(sample "$work/p.plan" --weights "$w" -n 2 $sampler --cfg-scale 4 --seed 7)
      "$build/runtime/dit" "${args[@]}" --device cpu -o "$work/cpu.npy" >/dev/null
      t0=$(date +%s.%N)
      "$build/runtime/dit" "${args[@]}" --device emu -o "$work/emu.npy" >/dev/null
      t1=$(date +%s.%N)
      if ! $py - "$work/cpu.npy" "$work/emu.npy" "$tol" "$spec/$dtype ${sampler}" "$t0" "$t1" <<'PY'
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
rel = float(np.linalg.norm(b - a) / np.linalg.norm(a))
ok = np.isfinite(b).all() and rel <= float(sys.argv[3])
print(f"{sys.argv[4]:<40} emu vs cpu: rel {rel:.2e} (tol {sys.argv[3]})  {float(sys.argv[6]) - float(sys.argv[5]):.1f} s  {'ok' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
PY
      then fails=$((fails + 1)); fi
    done
  done
done
[ $fails -eq 0 ] || { echo "$fails comparisons failed"; exit 1; }

#!/usr/bin/env bash
# sample_steps.sh: how many DPM-Solver++ steps a user needs (issue #11). On
# the Fashion-MNIST DiT that ditc trained (examples/fashion_mnist), 16 images
# (every class, guidance 3) from the same initial noise: the mean squared
# distance of the final images (pixels in [-1, 1]) from DDPM-250 (the
# official sampler, stochastic) and from the converged probability-flow ODE
# (DPM++ at 250 steps), for DPM++ (order 2, the default) and DDIM at 10, 15,
# 20, 25 and 50 steps, with the seconds each run took on this machine.
# Usage: bench/sample_steps.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ex=$root/examples/fashion_mnist
dit=$build/runtime/dit
"$build/compiler/ditc" "$ex/dit_fashion_mnist.dit" --batch 32 -o "$work/p.plan" >/dev/null
$py -c "import numpy as np; np.save('$work/z.npy', np.random.default_rng(0).standard_normal((16, 1, 28, 28)).astype(np.float32))"
args=(sample "$work/p.plan" --weights "$ex/dit_fashion_mnist_ema.safetensors" -n 16
      --labels 0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5 --cfg-scale 3 --noise "$work/z.npy" --seed 0)
run() { # name args...
  local name=$1 t0 t1
  shift
  t0=$(date +%s.%N)
  "$dit" "${args[@]}" "$@" -o "$work/$name.npy" 2>/dev/null
  t1=$(date +%s.%N)
  echo "$name $(echo "$t1 - $t0" | bc)" >>"$work/times.txt"
}
run ddpm250 --sampler ddpm --steps 250
run ode --sampler dpm++ --steps 250
for n in 10 15 20 25 50; do
  run dpm$n --sampler dpm++ --steps $n
  run ddim$n --sampler ddim --steps ddim$n
done
$py - "$work" <<'PY'
import sys, numpy as np
d = sys.argv[1]
times = dict(l.split() for l in open(d + "/times.txt"))
ref, ode = np.load(d + "/ddpm250.npy"), np.load(d + "/ode.npy")
mse = lambda a, b: float(np.mean((a - b) ** 2))
print(f"DDPM-250 took {float(times['ddpm250']):.1f} s; DPM++-250 (the ODE's end) {float(times['ode']):.1f} s;"
      f" their images differ by {mse(ref, ode):.4f} (mean squared)")
print("| steps | DPM++ vs DDPM-250 | DDIM vs DDPM-250 | DPM++ vs ODE | DDIM vs ODE | DPM++ s | DDIM s |")
print("|---|---|---|---|---|---|---|")
for n in (10, 15, 20, 25, 50):
    p, q = np.load(f"{d}/dpm{n}.npy"), np.load(f"{d}/ddim{n}.npy")
    print(f"| {n} | {mse(p, ref):.4f} | {mse(q, ref):.4f} | {mse(p, ode):.5f} | {mse(q, ode):.5f} |"
          f" {float(times[f'dpm{n}']):.2f} | {float(times[f'ddim{n}']):.2f} |")
PY

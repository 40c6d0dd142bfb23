#!/usr/bin/env bash
# End-to-end check of `dit sample` against the PyTorch reference of the
# official sampler (tests/ref/sample_ref.py) fed the same injected noise:
# final latents within 1e-4 relative error. Then the seed's reproducibility
# across thread counts, the PNG grid, and an interrupted --npz run that
# resumes to exactly the set of an uninterrupted one.
# Usage: sample_vs_pytorch.sh BUILD_DIR
set -euo pipefail
build=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
ref="$py $root/tests/ref/dit_ref.py"
sref="$py $root/tests/ref/sample_ref.py"
dit=$build/runtime/dit
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

setup() { # spec -> $work/<name>/{cfg.json,p.plan,w/}
  local spec=$1 d=$work/$(basename "$1" .dit)
  mkdir -p "$d"
  "$build/compiler/ditc" "$root/$spec" --info --json >"$d/cfg.json"
  "$build/compiler/ditc" "$root/$spec" -o "$d/p.plan" --batch 8
  $ref weights "$d/cfg.json" --seed 21 --out-dir "$d/w" >/dev/null
}

fails=0
check() { # name spec sampler steps n_steps cfg eta weights
  local name=$1 spec=$2 sampler=$3 steps=$4 nsteps=$5 cfg=$6 eta=$7 w=$8
  local d=$work/$(basename "$spec" .dit)
  $sref noise "$d/cfg.json" --batch 3 --steps-count "$nsteps" --seed 31 --out-dir "$d/n_$name" >/dev/null
  local labels
  labels=$($py -c "import numpy as np; print(','.join(str(int(v)) for v in np.load('$d/n_$name/labels.npy')))")
  local common=(--noise "$d/n_$name/z.npy" --step-noise "$d/n_$name/step_noise.npy" --sampler "$sampler"
                --steps "$steps" --cfg-scale "$cfg")
  [ "$sampler" = ddim ] && common+=(--eta "$eta") # DDPM's variance is the model's: no --eta
  $sref sample "$d/cfg.json" --weights "$d/w/$w" --labels "$d/n_$name/labels.npy" "${common[@]}" -o "$d/ref.npy" >/dev/null
  "$dit" sample "$d/p.plan" --weights "$d/w/$w" --labels "$labels" "${common[@]}" -o "$d/out.npy"
  $py - "$d/out.npy" "$d/ref.npy" "$name" <<'PY' || fails=$((fails + 1))
import sys, numpy as np
out, ref = np.load(sys.argv[1]), np.load(sys.argv[2])
assert out.shape == ref.shape and np.isfinite(out).all()
rel = float(np.linalg.norm(out - ref) / np.linalg.norm(ref))
print(f"{sys.argv[3]:45s} rel err {rel:.3e}")
sys.exit(0 if rel <= 1e-4 else 1)
PY
}

setup specs/tests/tiny.dit
setup specs/tests/tiny_pixel.dit
check "DDPM-25, cfg 4, latent model" specs/tests/tiny.dit ddpm 25 25 4.0 0 bare.pt
check "DDIM-20 (ddim20), cfg 1.5" specs/tests/tiny.dit ddim ddim20 20 1.5 0 official.safetensors
check "DDIM-20 (ddim20), eta 0.5, no guidance" specs/tests/tiny.dit ddim ddim20 20 1.0 0.5 train.pt
check "DDPM-250, cfg 4, tiny model" specs/tests/tiny.dit ddpm 250 250 4.0 0 diffusers.safetensors
check "DDPM-50, pixel model, fixed variance, cfg 2" specs/tests/tiny_pixel.dit ddpm 50 50 2.0 0 bare.pt
check "DDPM 10,20,30, pixel model, no guidance" specs/tests/tiny_pixel.dit ddpm 10,20,30 60 1.0 0 bare.pt

# the same seed gives the same bits whatever the thread count
d=$work/tiny
"$dit" sample "$d/p.plan" --weights "$d/w/bare.pt" -n 3 --steps 10 --seed 7 --threads 1 -o "$d/s1.npy"
"$dit" sample "$d/p.plan" --weights "$d/w/bare.pt" -n 3 --steps 10 --seed 7 --threads 2 -o "$d/s2.npy"
if cmp -s "$d/s1.npy" "$d/s2.npy"; then echo "seed 7: bit-identical with 1 and 2 threads"; else
  echo "seed 7: results differ between thread counts"; fails=$((fails + 1)); fi

# a PNG grid and a resumable evaluation set for the pixel model
d=$work/tiny_pixel
"$dit" sample "$d/p.plan" --weights "$d/w/bare.pt" -n 4 --steps 10 --png "$d/grid.png" -o "$d/g.npy"
$py -c "
import struct
b = open('$d/grid.png', 'rb').read()
assert b[:8] == b'\x89PNG\r\n\x1a\n'
w, h = struct.unpack('>II', b[16:24])
assert (w, h) == (2 * 10 + 2, 2 * 10 + 2), (w, h)
print('grid.png', w, 'x', h)"
set_args=(sample "$d/p.plan" --weights "$d/w/bare.pt" -n 2 --steps 10 --cfg-scale 2 --seed 3 --num-samples 5)
"$dit" "${set_args[@]}" --npz "$d/full.npz"
if DIT_TEST_ABORT_AFTER_BATCHES=1 "$dit" "${set_args[@]}" --npz "$d/resumed.npz"; then
  echo "the interrupted run did not stop"; fails=$((fails + 1)); fi
[ -e "$d/resumed.npz" ] && { echo "an interrupted run left an .npz"; fails=$((fails + 1)); }
ls "$d/resumed.npz.partial" >/dev/null
"$dit" "${set_args[@]}" --npz "$d/resumed.npz"
[ -e "$d/resumed.npz.partial" ] && { echo "the partial folder was not removed"; fails=$((fails + 1)); }
$py - "$d/full.npz" "$d/resumed.npz" <<'PY' || fails=$((fails + 1))
import sys, numpy as np
a, b = np.load(sys.argv[1])["arr_0"], np.load(sys.argv[2])["arr_0"]
assert a.dtype == np.uint8 and a.shape == (5, 8, 8, 3), (a.dtype, a.shape)
assert (a[..., 0] == a[..., 2]).all(), "a 1-channel model repeats its channel"
assert np.array_equal(a, b), "the resumed set differs"
print("resumed .npz equals the uninterrupted one:", a.shape, a.dtype)
PY
echo "$fails sampler checks failed"
[ "$fails" -eq 0 ]

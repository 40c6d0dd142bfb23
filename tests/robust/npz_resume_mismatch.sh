#!/usr/bin/env bash
# npz_resume_mismatch.sh: a --npz set resumed by a command that would make
# other samples is refused, naming what differs (issue 16): other weights of
# the same shapes (one tensor scaled by 1.0001), other labels, seed, cfg,
# sampler, steps, eta, or another plan. Nothing of the partial set changes;
# the original command then completes it, equal to a straight run.
source "$(dirname "$0")/lib.sh" "$1"
robust_tiny_pixel 4
cd "$work"
$py "$root/tests/robust/st_edit.py" px.safetensors b.safetensors final_layer.linear.weight scale=1.0001
"$ditc" "$root/specs/tests/tiny_pixel.dit" --batch 8 -o p8.plan
base=(--steps 5 --num-samples 12 --labels 1,2,3)
s=("$dit" sample px.plan --weights px.safetensors "${base[@]}")
"${s[@]}" --npz straight.npz
DIT_TEST_ABORT_AFTER_BATCHES=2 "${s[@]}" --npz m.npz && { echo "FAIL: no abort"; exit 1; } || true
before=$(cd m.npz.partial && sha256sum *)
refused() { # what-differs args...
  local what=$1
  shift
  expect_fail 1 "m.npz.partial was started by a different run (what differs: $what)" "$@" --npz m.npz
}
refused weights "$dit" sample px.plan --weights b.safetensors "${base[@]}"
refused labels "$dit" sample px.plan --weights px.safetensors --steps 5 --num-samples 12 --labels 1,2,4
refused labels "$dit" sample px.plan --weights px.safetensors --steps 5 --num-samples 12
refused seed "${s[@]}" --seed 1
refused cfg_scale "${s[@]}" --cfg-scale 2
refused "sampler, steps" "${s[@]}" --sampler ddim --steps ddim5
refused sampler "${s[@]}" --sampler ddim
refused steps "${s[@]}" --steps 6
refused "sampler, eta" "${s[@]}" --sampler ddim --steps 5 --eta 0.5
refused num_samples "${s[@]}" --num-samples 14
refused "plan, per_batch" "$dit" sample p8.plan --weights px.safetensors "${base[@]}"
refused "weights, seed" "$dit" sample px.plan --weights b.safetensors "${base[@]}" --seed 3
[ "$before" = "$(cd m.npz.partial && sha256sum *)" ] || { echo "FAIL: a refused resume changed the partial set"; exit 1; }
[ ! -e m.npz ] || { echo "FAIL: a refused resume wrote m.npz"; exit 1; }
"${s[@]}" --npz m.npz
cmp straight.npz m.npz || { echo "FAIL: the resumed set differs from a straight run"; exit 1; }
[ ! -e m.npz.partial ] || { echo "FAIL: the partial folder stayed"; exit 1; }
echo "ok: mismatched resumes refused"

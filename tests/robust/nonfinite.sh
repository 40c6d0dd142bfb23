#!/usr/bin/env bash
# nonfinite.sh: NaN and infinity are reported, never written as results
# (issue 16). A NaN or infinite weight is refused when bound, naming the
# tensor; a huge weight that overflows in the forward names the first op that
# produced non-finite values, in dit forward, dit sample (with its step) and
# dit loss; DDIM with eta > 1 (a negative variance, NaN in the official code
# too) names the sampler step; a dit train whose loss diverges (--lr 1e3)
# stops at the step, exit 1, with the reason in log.txt. No output is written.
source "$(dirname "$0")/lib.sh" "$1"
robust_tiny_pixel 4
robust_dataset
cd "$work"
edit() { $py "$root/tests/robust/st_edit.py" px.safetensors "$@"; }
edit nan.st blocks.1.mlp.fc1.weight nan 7
edit inf.st x_embedder.proj.bias inf 0
edit big.st blocks.0.attn.qkv.weight scale=1e30
robust_inputs # x.npy, noise.npy, t.npy, y.npy in $work
s=("$dit" sample px.plan --steps 3 -n 2)
f=("$dit" forward px.plan --x x.npy --t t.npy --y y.npy -o out.npy)
"$ditc" "$root/specs/tests/tiny_pixel.dit" --mode train --batch 4 -o t.plan
l=("$dit" loss t.plan --x0 x.npy --t t.npy --y y.npy --noise noise.npy --losses-out losses.npy)

# bad weights are refused at load, naming the tensor and the element
for cmd in s f l; do
  eval "c=(\"\${$cmd[@]}\")"
  expect_fail 1 "nan.st: weight 'blocks.1.mlp.fc1.weight' holds NaN at element 7" "${c[@]}" --weights nan.st
  expect_fail 1 "weight 'x_embedder.proj.bias' holds +inf at element 0" "${c[@]}" --weights inf.st
done
# overflow in the forward: the first op that produced it, with its weight where it has one
expect_fail 1 "sampling step 1 of 3 (timestep 999) is not finite: op 12 (attention) is the first" \
  "${s[@]}" --weights big.st -o o.npy
expect_fail 1 "op 12 (attention) is the first to produce NaN or infinity" "${f[@]}" --weights big.st
expect_fail 1 "not finite" "${l[@]}" --weights big.st
# DDIM's eta > 1: the sampler step
expect_fail 1 "DDIM with eta 5 > 1 asks for a negative variance: sampling step 1 of 10 (timestep 900) is not finite: op 28 (diffusion_step)" \
  "${s[@]}" --weights px.safetensors --sampler ddim --steps ddim10 --eta 5 -o o.npy
expect_fail 1 "op 28 (diffusion_step)" \
  "${s[@]}" --weights px.safetensors --sampler ddim --steps ddim10 --eta 5 --npz s.npz --num-samples 4
expect_fail 1 "op 28 (diffusion_step)" \
  "${s[@]}" --weights px.safetensors --sampler ddim --steps ddim10 --eta 5 --png g.png
for out in o.npy out.npy losses.npy s.npz s.npz.partial g.png; do
  [ ! -e "$out" ] || { echo "FAIL: $out was written from non-finite values"; exit 1; }
done
# the same commands with sound weights succeed (the checks do not misfire)
"${s[@]}" --weights px.safetensors -o o.npy >/dev/null
"${f[@]}" --weights px.safetensors >/dev/null
"${l[@]}" --weights px.safetensors >/dev/null
"${s[@]}" --weights px.safetensors --sampler ddim --steps ddim10 --eta 1 -o o.npy >/dev/null

# training that diverges stops at its step, exit 1, and says so in log.txt too
expect_fail 1 "the loss is not finite" "$dit" train t.plan --data px.ditdata --steps 300 --lr 1e3 -o run
grep -q "^error: step [0-9]*: the loss is not finite" run/log.txt || { echo "FAIL: log.txt lacks the error"; cat run/log.txt; exit 1; }
rows=$(wc -l <run/loss.tsv)
step=$(sed -n 's/^dit: error: step \([0-9]*\):.*/\1/p' "$work/.err")
[ "$rows" -eq $((step - 1)) ] || { echo "FAIL: loss.tsv has $rows rows, the run failed at step $step"; exit 1; }
[ ! -e run/checkpoints/latest ] || { echo "FAIL: a diverged run wrote a checkpoint"; exit 1; }
echo "ok: non-finite values reported"

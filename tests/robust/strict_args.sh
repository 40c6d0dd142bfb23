#!/usr/bin/env bash
# strict_args.sh: mistakes that lenient parsing used to hide are refused with
# a clear message (issue 16): an -n that does not fit the plan (it was
# clamped), labels that do not match the image count or hold an empty item,
# an empty --steps, --eta without DDIM, DPM-Solver++'s options without it or
# with a respacing or per-step noise, --label-names not one per class,
# --mode train without --batch, and dit train's --sample-every alone. Each
# must exit 1 or 2 (never 0, never a signal) and write nothing.
source "$(dirname "$0")/lib.sh" "$1"
robust_tiny_pixel 4
robust_dataset
s=("$dit" sample "$work/px.plan" --weights "$work/px.safetensors" --steps 3)
o=$work/o.npy

# -n: batch 4 holds 4 unguided or 2 guided images; the default cfg is 4
expect_fail 1 "5 images with guidance need 10 rows, but the plan runs at most 4; compile it with ditc --batch 10" "${s[@]}" -n 5 -o "$o"
# the size is checked before the checkpoint is read: a missing one is not what fails
expect_fail 1 "compile it with ditc --batch 10" "$dit" sample "$work/px.plan" --weights "$work/nonexistent.safetensors" -n 5 -o "$o"
"$ditc" "$root/specs/tests/tiny_pixel.dit" --batch 1 -o "$work/b1.plan"
expect_fail 1 "1 image with guidance needs 2 rows, but the plan runs at most 1; compile it with ditc --batch 2" \
  "$dit" sample "$work/b1.plan" --weights "$work/px.safetensors" -o "$o"
expect_fail 1 "3 images with guidance need 6 rows" "${s[@]}" -n 3 --cfg-scale 4 -o "$o"
expect_fail 1 "5 images need 5 rows" "${s[@]}" -n 5 --cfg-scale 1 -o "$o"
expect_fail 1 "1099511627776 images with guidance" "${s[@]}" -n 1099511627776 -o "$o"
expect_fail 2 "-n takes an integer" "${s[@]}" -n 1099511627777 -o "$o"
expect_fail 2 "-n takes an integer" "${s[@]}" -n 0 -o "$o"
expect_fail 2 "-n takes an integer" "${s[@]}" -n 2x -o "$o"
# labels
expect_fail 2 "--labels takes comma-separated integers" "${s[@]}" --labels 1,2, --cfg-scale 1 -o "$o"
expect_fail 2 "--labels takes comma-separated integers" "${s[@]}" --labels 1,,2 --cfg-scale 1 -o "$o"
expect_fail 2 "--labels takes comma-separated integers" "${s[@]}" --labels '' -o "$o"
expect_fail 2 "-n 3, but --labels gives 2 labels" "${s[@]}" -n 3 --labels 1,2 --cfg-scale 1 -o "$o"
expect_fail 2 "-n 1, but --labels gives 2 labels" "${s[@]}" -n 1 --labels 1,2 -o "$o"
expect_fail 1 "label 11 of row 1 is out of range [0, 10]" "${s[@]}" --labels 1,11 -o "$o"
# steps and samplers
expect_fail 2 "--steps takes a respacing" "${s[@]}" --steps '' -o "$o"
expect_fail 1 "steps '10,': expected counts like" "${s[@]}" --steps 10, -o "$o"
expect_fail 2 "--eta is DDIM's" "${s[@]}" --eta 0.5 -o "$o"
expect_fail 2 "--eta is DDIM's" "${s[@]}" --sampler ddpm --eta 0 -o "$o"
# --label-names: exactly one per class (10)
names9=a,b,c,d,e,f,g,h,i names11=$names9,j,k
expect_fail 1 "--label-names gives 11 names, but the model has 10 classes" "${s[@]}" -n 2 --label-names "$names11" --png "$work/g.png"
expect_fail 1 "--label-names gives 9 names, but the model has 10 classes" "${s[@]}" -n 2 --label-names "$names9" --png "$work/g.png"
[ ! -e "$o" ] && [ ! -e "$work/g.png" ] || { echo "FAIL: a refused dit sample wrote an output"; exit 1; }
no_stale_tmp "$work"
# the same with a correct count works
"${s[@]}" -n 2 --label-names "$names9,j" --png "$work/g.png" -o "$o" >/dev/null
[ -s "$o" ] && [ -s "$work/g.png" ]

# ditc: a training plan needs its batch
expect_fail 2 "--mode train needs --batch N" "$ditc" "$root/specs/tests/tiny_pixel.dit" --mode train -o "$work/t.plan"
[ ! -e "$work/t.plan" ] || { echo "FAIL: ditc wrote t.plan"; exit 1; }

# dit train: periodic samples need both the plan and the period; --sample-steps needs them
"$ditc" "$root/specs/tests/tiny_pixel.dit" --mode train --batch 4 -o "$work/t.plan"
t=("$dit" train "$work/t.plan" --data "$work/px.ditdata" --steps 2)
expect_fail 2 "--sample-plan and --sample-every go together" "${t[@]}" --sample-every 1 -o "$work/run1"
expect_fail 2 "--sample-plan and --sample-every go together" "${t[@]}" --sample-plan "$work/px.plan" -o "$work/run1"
expect_fail 2 "--sample-steps" "${t[@]}" --sample-steps 5 -o "$work/run1"
expect_fail 2 "unknown option '--bogus'" "${t[@]}" --bogus -o "$work/run1"
expect_fail 2 "--lr needs a value" "${t[@]}" -o "$work/run1" --lr
[ ! -e "$work/run1" ] || { echo "FAIL: a refused dit train created its run folder"; exit 1; }
# DPM-Solver++'s options: only with its sampler, a plain step count, no per-step noise
rm -f "$o"
expect_fail 2 "--order and --karras are DPM-Solver++'s; give --sampler dpm++" "${s[@]}" -n 1 --order 3 -o "$o"
expect_fail 2 "--order and --karras are DPM-Solver++'s" "${s[@]}" -n 1 --sampler ddim --karras -o "$o"
expect_fail 2 "--order takes 1, 2 or 3" "${s[@]}" -n 1 --sampler dpm++ --order 4 -o "$o"
expect_fail 2 "--steps with dpm++ takes a step count from 1 to 1000 (no respacing), got 'ddim20'" \
  "${s[@]}" -n 1 --sampler dpm++ --steps ddim20 -o "$o"
expect_fail 2 "--step-noise: DPM-Solver++ draws no noise after the initial latents" \
  "${s[@]}" -n 1 --sampler dpm++ --step-noise "$work/none.npy" -o "$o"
expect_fail 2 "--sampler takes ddpm, ddim or dpm++, got 'dpm'" "${s[@]}" -n 1 --sampler dpm -o "$o"
[ ! -e "$o" ] || { echo "FAIL: a refused dpm++ run wrote $o"; exit 1; }
echo "ok: strict arguments"

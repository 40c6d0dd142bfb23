#!/usr/bin/env bash
# info_train_plan.sh: `dit info` on a training plan segfaulted (cmd_info read
# the PlanIO section, which only inference plans have). For tiny.dit and
# tiny_pixel.dit under --recompute none and block: exit 0 with the training
# fields (recompute, loss, gradients, memory peaks, op counts), the dit train
# peak equal to ditc --info --json's train_peak_bytes_<mode>, and no '?' op.
source "$(dirname "$0")/lib.sh" "$1"

field() { # json key -> its integer value
  grep -o "\"$2\":[0-9]*" "$1" | cut -d: -f2
}

for spec in tiny tiny_pixel; do
  "$ditc" "$root/specs/tests/$spec.dit" --mode train --batch 2 --info --json >"$work/$spec.json"
  case $spec in tiny) loss="mse + vb (learned sigma), 1000 timesteps" ;; *) loss="mse (fixed variance), 1000 timesteps" ;; esac
  for mode in none block; do
    plan=$work/$spec-$mode.plan
    "$ditc" "$root/specs/tests/$spec.dit" --mode train --batch 2 --recompute "$mode" -o "$plan"
    rc=0
    "$dit" info "$plan" >"$work/info.txt" 2>"$work/err.txt" || rc=$?
    if [ "$rc" -ne 0 ] || [ -s "$work/err.txt" ]; then
      echo "FAIL: dit info $spec --recompute $mode exited $rc:"; cat "$work/err.txt"; exit 1
    fi
    peak=$(field "$work/$spec.json" "train_peak_bytes_$mode")
    for want in "plan        dit training plan, dtype fp32, batch 1 to 2 rows" "recompute   $mode (" \
      "io          x0 in [N," "], t in [N], y in [N], noise in [N," "], loss out [N]" \
      "loss        the official training loss: $loss" "gradients   31 trainable tensors" \
      "(1 frozen: pos_embed); gradient buffer" "bytes in dit loss (weights, gradients, arena), $peak bytes in" \
      "to the loss: patchify x1" "backward:" "attention_grad x2"; do
      grep -qF -- "$want" "$work/info.txt" || {
        echo "FAIL: dit info $spec --recompute $mode lacks '$want':"; cat "$work/info.txt"; exit 1
      }
    done
    if grep -q '?' "$work/info.txt"; then echo "FAIL: an unnamed op kind:"; cat "$work/info.txt"; exit 1; fi
  done
  # the inference plan still describes itself (ditc's default batch: 16 rows)
  "$ditc" "$root/specs/tests/$spec.dit" -o "$work/$spec.plan"
  "$dit" info "$work/$spec.plan" | grep -q "plan        dit inference plan, dtype fp32, batch 1 to 16 rows"
done
echo "dit info describes training plans of tiny and tiny_pixel under both --recompute modes"

#!/usr/bin/env bash
# official_flags.sh: the official scripts' flag names that dit takes as
# aliases (README, "Official flags") give exactly what dit's own names give;
# a flag that means something else in the official scripts is no alias and
# stays an unknown option.
source "$(dirname "$0")/lib.sh" "$1"
robust_tiny_pixel 4
robust_dataset
cd "$work"
"$dit" sample px.plan --ckpt px.safetensors --num-sampling-steps 5 --global-seed 3 --per-proc-batch-size 2 -o a.npy
"$dit" sample px.plan --weights px.safetensors --steps 5 --seed 3 -n 2 -o b.npy
cmp a.npy b.npy || { echo "FAIL: sample.py's flags give other samples"; exit 1; }
"$dit" sample px.plan --ckpt px.safetensors --num-fid-samples 6 --steps 5 --npz a.npz
"$dit" sample px.plan --weights px.safetensors --num-samples 6 --steps 5 --npz b.npz
cmp a.npz b.npz || { echo "FAIL: sample_ddp.py's --num-fid-samples"; exit 1; }
# sample_ddp.py's --sample-dir: the folder of PNGs, and FOLDER.npz beside it, the same images
"$dit" sample px.plan --ckpt px.safetensors --num-fid-samples 6 --steps 5 --sample-dir samples >/dev/null
cmp a.npz samples.npz || { echo "FAIL: --sample-dir's .npz differs from --npz's"; exit 1; }
$py - <<'PY'
import numpy as np
from PIL import Image
arr = np.load("samples.npz")["arr_0"]
assert arr.shape == (6, 8, 8, 3), arr.shape
for i in range(6):
    im = np.array(Image.open("samples/%06d.png" % i).convert("RGB"))
    assert (im == arr[i]).all(), i
assert not __import__("os").path.exists("samples/000006.png")
print("--sample-dir: 6 PNGs equal to the .npz's images")
PY
[ ! -e samples.npz.partial ] || { echo "FAIL: the partial folder stayed"; exit 1; }
expect_fail 2 "--num-samples goes with --npz or --sample-dir" "$dit" sample px.plan --weights px.safetensors --sample-dir s2
"$ditc" "$root/specs/tests/tiny_pixel.dit" --mode train --batch 4 -o t.plan
"$dit" train t.plan --data px.ditdata --steps 3 --global-batch-size 4 --global-seed 7 -o ra >/dev/null
"$dit" train t.plan --data px.ditdata --steps 3 --global-batch 4 --seed 7 -o rb >/dev/null
cmp ra/loss.tsv rb/loss.tsv && cmp ra/checkpoints/0000003.safetensors rb/checkpoints/0000003.safetensors ||
  { echo "FAIL: train.py's flags train otherwise"; exit 1; }
expect_fail 2 "unknown option '--results-dir'" "$dit" train t.plan --data px.ditdata --results-dir r
expect_fail 2 "--ckpt needs a value" "$dit" sample px.plan --ckpt
echo "ok: official flag names"

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
# the defaults are sample.py's: on a plan of ditc's defaults, `dit sample PLAN --weights W`
# is DDPM-250 with cfg 4.0, seed 0, and the eight official labels (a tiny ImageNet-class
# latent model, so that the 2 x 250 steps are quick; random weights)
sed 's/num_classes *= *10/num_classes = 1000/; s/model "tiny"/model "tiny-imagenet"/' "$root/specs/tests/tiny.dit" >in1k.dit
grep -q "num_classes = 1000" in1k.dit || { echo "FAIL: could not make the 1000-class spec"; exit 1; }
"$ditc" in1k.dit -o s8.plan
"$ditc" in1k.dit --info --json >s8.json
$py "$root/tests/ref/dit_ref.py" weights s8.json --seed 2 --out-dir s8w >/dev/null
"$dit" sample s8.plan --weights s8w/official.safetensors -o defaults.npy >/dev/null
"$dit" sample s8.plan --weights s8w/official.safetensors --sampler ddpm --steps 250 --cfg-scale 4.0 --seed 0 \
  --labels 207,360,387,974,88,979,417,279 -n 8 -o explicit.npy >/dev/null
cmp defaults.npy explicit.npy || { echo "FAIL: dit sample's defaults are not sample.py's"; exit 1; }
$py -c "import numpy as np; a = np.load('defaults.npy'); assert a.shape == (8, 4, 8, 8) and np.isfinite(a).all()"
echo "ok: official flag names"

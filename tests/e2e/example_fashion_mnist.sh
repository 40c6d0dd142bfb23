#!/usr/bin/env bash
# The shipped Fashion-MNIST DiT (examples/fashion_mnist, trained by dit
# train): its spec compiles, its checkpoint binds, and its class-conditional
# samples look like their class. The check: a nearest-class-mean classifier
# built from the real training images (Debian's dataset-fashion-mnist) must
# label at least 60% of 40 samples (4 per class, DDIM-25, guidance 3) with
# the class they were sampled for; chance is 10%, and the same classifier
# gets about 67% on the real test images. Also writes the labelled grid.
# Skips (77) when the dataset package is absent. Usage: example_fashion_mnist.sh BUILD_DIR
set -euo pipefail
build=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
data=/usr/share/datasets/fashion-mnist
[ -f "$data/train-images-idx3-ubyte.gz" ] || { echo "SKIP: $data missing (dataset-fashion-mnist)"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ex=$root/examples/fashion_mnist
"$build/compiler/ditc" "$ex/dit_fashion_mnist.dit" --batch 80 -o "$work/fm.plan"
"$build/runtime/dit" sample "$work/fm.plan" --weights "$ex/dit_fashion_mnist_ema.safetensors" \
  --per-class 4 --sampler ddim --steps ddim25 --cfg-scale 3 --seed 1 \
  --label-names "$(cat "$ex/classes.txt")" --png "$work/grid.png" -o "$work/s.npy" >/dev/null
test -s "$work/grid.png"
/usr/bin/python3 - "$work/s.npy" "$data" <<'PY'
import sys, gzip, numpy as np
s, d = np.load(sys.argv[1])[:, 0], sys.argv[2]
img = np.frombuffer(gzip.open(d + "/train-images-idx3-ubyte.gz").read()[16:], np.uint8).reshape(-1, 28, 28)
lab = np.frombuffer(gzip.open(d + "/train-labels-idx1-ubyte.gz").read()[8:], np.uint8)
means = np.stack([(img[lab == c].astype(np.float32) / 127.5 - 1).mean(0) for c in range(10)])
want = np.repeat(np.arange(10), 4)
got = ((s[:, None] - means[None]) ** 2).sum((2, 3)).argmin(1)
acc = float((got == want).mean())
print(f"samples {s.shape}, finite {bool(np.isfinite(s).all())}, nearest-class-mean accuracy {acc:.2f}")
sys.exit(0 if np.isfinite(s).all() and acc >= 0.6 else 1)
PY

#!/usr/bin/env bash
# The main job, end to end on the CPU: install what it needs, build ditc and
# dit, print the report of the flagship model, then compile the Fashion-MNIST
# DiT that ships in examples/fashion_mnist (a model trained by ditc itself,
# `dit train` on the CPU; examples/fashion_mnist/README.md has the exact
# commands) and sample a labelled grid of every class from its checkpoint.
# Then the official latent pipeline, sample.py's, on the CPU: DiT-S/2 samples
# latents that the compiled Stable Diffusion VAE decodes into a PNG. No
# pretrained weights can be downloaded here, so both have random weights
# (--random-weights): the picture is noise; README.md gives the commands for
# DiT-XL-2-256x256.pt and sd-vae-ft-mse.
# Usage: tools/demo.sh [OUT_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/out/demo}
"$root/tools/deps.sh" demo
# its own build folder without the test suite (no CMocka needed)
cmake -S "$root" -B "$root/build-demo" -DCMAKE_BUILD_TYPE=Release -DDIT_TESTS=OFF >/dev/null
cmake --build "$root/build-demo" --target ditc dit -j"$(nproc)" >/dev/null
mkdir -p "$out"
ditc=$root/build-demo/compiler/ditc
dit=$root/build-demo/runtime/dit
ex=$root/examples/fashion_mnist

"$ditc" "$root/specs/XL2_256.dit" --info
echo
# 8 images of each of the 10 classes, with guidance: 160 rows per forward
"$ditc" "$ex/dit_fashion_mnist.dit" -o "$out/fashion_mnist.plan" --batch 160
"$dit" info "$out/fashion_mnist.plan"
time "$dit" sample "$out/fashion_mnist.plan" --weights "$ex/dit_fashion_mnist_ema.safetensors" \
  --per-class 8 --sampler ddim --steps ddim50 --cfg-scale 3 --seed 0 \
  --label-names "$(cat "$ex/classes.txt")" --png-scale 3 --png "$out/fashion_mnist.png" \
  -o "$out/fashion_mnist.npy"
echo "wrote $out/fashion_mnist.png (one row per class) and $out/fashion_mnist.npy"

echo
echo "== the official latent pipeline (random weights: the images are noise)"
"$ditc" "$root/specs/S2_256.dit" -o "$out/s2.plan" --batch 8
"$ditc" "$root/specs/vae/sd-vae-ft-mse.dit" -o "$out/vae.plan" --batch 4
"$ditc" "$root/specs/vae/sd-vae-ft-mse.dit" --info | sed -n '5,6p'
time "$dit" sample "$out/s2.plan" --random-weights 0 --labels 207,360,387,974 --sampler ddim --steps ddim10 \
  --cfg-scale 4 --vae "$out/vae.plan" --vae-random-weights 0 --png "$out/latent_pipeline.png" \
  -o "$out/latent_pipeline.npy"
echo "wrote $out/latent_pipeline.png (4 decoded 256x256 samples) and the latents $out/latent_pipeline.npy"

#!/usr/bin/env bash
# The main job, end to end on the CPU: install what it needs, build ditc and
# dit, print the report of the flagship model, then compile a shipped spec,
# bind weights and sample a grid of images with the official sampler.
# Until a trained checkpoint ships (issue #6) the weights are random (made by
# the PyTorch reference, tests/ref/dit_ref.py), so the samples are noise.
# Usage: tools/demo.sh [OUT_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/out/demo}
"$root/tools/deps.sh" demo
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$root/build" --target ditc dit -j"$(nproc)" >/dev/null
mkdir -p "$out"
ditc=$root/build/compiler/ditc
dit=$root/build/runtime/dit

"$ditc" "$root/specs/XL2_256.dit" --info
echo
spec=$root/specs/tests/tiny_pixel.dit
"$ditc" "$spec" -o "$out/model.plan" --batch 16
"$ditc" "$spec" --info --json >"$out/model.json"
/usr/bin/python3 "$root/tests/ref/dit_ref.py" weights "$out/model.json" --seed 0 --out-dir "$out/weights" >/dev/null
"$dit" info "$out/model.plan"
time "$dit" sample "$out/model.plan" --weights "$out/weights/official.safetensors" -n 8 \
  --labels 0,1,2,3,4,5,6,7 --steps 50 --cfg-scale 4 --seed 0 -o "$out/samples.npy" --png "$out/samples.png"
echo "wrote $out/samples.npy and $out/samples.png"

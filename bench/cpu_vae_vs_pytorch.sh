#!/usr/bin/env bash
# The compiled VAE's decode and encode on the CPU against PyTorch in the same
# run: diffusers' AutoencoderKL (0.25.1, the pinned pure-Python install of
# tests/ref/vae_ref.py) or, when it cannot be had, tests/ref/vae_ref.py's own
# PyTorch model; sd-vae-ft-mse at 256x256 by default, batch 1, random weights,
# float32. Each side runs at every thread count from 1 to the cores and keeps
# its best median; ratios > 1 mean ditc is faster.
# Usage: bench/cpu_vae_vs_pytorch.sh [BUILD_DIR] [IMAGE_SIZE] [BATCH] [ITERS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
size=${2:-256}
batch=${3:-1}
iters=${4:-3}
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cores=$(nproc)
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $cores threads; $(date -u +%F)"
"$build/compiler/ditc" "$root/specs/vae/sd-vae-ft-mse.dit" --part both --image-size "$size" --batch "$batch" \
  -o "$work/vae.plan"
declare -A best
for t in $(seq 1 "$cores"); do
  while read -r line; do
    mode=$(echo "$line" | sed 's/.*"mode": "\([a-z_]*\)".*/\1/')
    ms=$(echo "$line" | sed 's/.*"median_ms": \([0-9.]*\).*/\1/')
    echo "ditc     $mode threads $t: median $ms ms"
    if [ -z "${best[$mode]:-}" ] || awk "BEGIN{exit !($ms < ${best[$mode]})}"; then best[$mode]=$ms; fi
  done < <("$build/bench/bench_forward" "$work/vae.plan" --random-weights 0 --batch "$batch" --iters "$iters" \
             --threads "$t" 2>/dev/null)
done
threads=$(seq -s, 1 "$cores")
$py - "$root" "$size" "$batch" "$iters" "$threads" >"$work/torch.json" <<'PY'
import json, os, statistics, sys, time
root, size, batch, iters, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
sys.path.insert(0, os.path.join(root, "tests", "ref"))
import torch
import vae_ref
import vae_check
cfg = {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "block_out_channels": [128, 256, 512, 512],
       "layers_per_block": 2, "norm_num_groups": 32, "act_fn": "silu", "sample_size": size,
       "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4}
diffusers, why = vae_check.import_diffusers(vae_check.default_pydeps(), True)
torch.manual_seed(0)
z = torch.randn(batch, 4, size // 8, size // 8) * 0.18215
x = torch.rand(batch, 3, size, size) * 2 - 1
if diffusers is not None:
    peer = "diffusers %s AutoencoderKL" % diffusers.__version__
    vae = diffusers.AutoencoderKL(**cfg).eval()
    dec = lambda: vae.decode(z / 0.18215).sample
    enc = lambda: vae.encode(x).latent_dist.sample().mul_(0.18215)
else:
    peer = "tests/ref/vae_ref.py (diffusers unavailable: %s)" % why
    P = vae_ref.random_state_dict(cfg, 0)
    e = torch.randn(batch, 4, size // 8, size // 8)
    dec = lambda: vae_ref.run_decode(cfg, P, z.numpy(), "float32")
    enc = lambda: vae_ref.run_encode(cfg, P, x.numpy(), e.numpy(), "float32")
out = {"peer": peer, "torch": torch.__version__}
with torch.no_grad():
    for mode, fn in (("vae_decode", dec), ("vae_encode", enc)):
        for t in [int(v) for v in threads.split(",")]:
            torch.set_num_threads(t)
            fn()
            ts = []
            for _ in range(iters):
                t0 = time.perf_counter(); fn(); ts.append((time.perf_counter() - t0) * 1e3)
            med = statistics.median(ts)
            print("torch    %s threads %d: median %.1f ms" % (mode, t, med), file=sys.stderr)
            out[mode] = min(out.get(mode, med), med)
print(json.dumps(out))
PY
peer=$($py -c "import json,sys; print(json.load(open('$work/torch.json'))['peer'])")
for mode in vae_decode vae_encode; do
  tm=$($py -c "import json; print(json.load(open('$work/torch.json'))['$mode'])")
  awk -v m="$mode" -v d="${best[$mode]}" -v t="$tm" -v s="$size" -v b="$batch" -v p="$peer" \
    'BEGIN{printf "%s %dx%d batch %d: ditc %.0f ms, PyTorch (%s) %.0f ms: ditc/PyTorch speed %.2fx\n", m, s, s, b, d, p, t, t/d}'
done

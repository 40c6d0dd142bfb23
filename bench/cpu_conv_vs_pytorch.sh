#!/usr/bin/env bash
# One conv2d of the CPU backend (bench_conv: runtime/cpu/cpu_conv.c) against
# torch.nn.functional.conv2d (oneDNN) on the same machine, in the same run,
# for the VAE decoder's typical shapes: 3x3 512->512 at 64x64, 3x3 256->256
# at 256x256, 3x3 128->128 at 256x256, the upsampling conv 512->512 from
# 64x64 to 128x128 (nearest x2 fused; PyTorch upsamples first, as diffusers
# does), the stride-2 downsampler 128->128 at 256x256, and a 1x1 512->256 at
# 128x128. Both sides run at the given thread counts and keep their best.
# The two sides alternate ROUNDS times per case, each keeping its best
# median, so that load from other processes hits both alike.
# Prints each best median and the ratio (>1 means ditc is faster).
# Usage: bench/cpu_conv_vs_pytorch.sh [BUILD_DIR] [THREADS,...] [ITERS] [ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
threads=${2:-$(nproc)}
iters=${3:-5}
rounds=${4:-3}
py=/usr/bin/python3
# name N CIN H W COUT K STRIDE UP PAD_T PAD_L PAD_B PAD_R
cases=(
  "3x3_512_64      1 512 64 64 512 3 1 1 1 1 1 1"
  "3x3_256_256     1 256 256 256 256 3 1 1 1 1 1 1"
  "3x3_128_256     1 128 256 256 128 3 1 1 1 1 1 1"
  "up3x3_512_64    1 512 64 64 512 3 1 2 1 1 1 1"
  "down3x3_128_256 1 128 256 256 128 3 2 1 0 0 1 1"
  "1x1_512_256_128 1 512 128 128 256 1 1 1 0 0 0 0"
)
printf "%-16s %12s %12s %8s\n" case "ditc ms" "torch ms" ratio
for c in "${cases[@]}"; do
  read -r name args <<<"$c"
  best_d=""
  best_t=""
  for round in $(seq 1 "$rounds"); do
  for t in ${threads//,/ }; do
    ms=$("$build/bench/bench_conv" $args --threads "$t" --iters "$iters" | sed 's/.*"median_ms": \([0-9.]*\).*/\1/')
    if [ -z "$best_d" ] || awk "BEGIN{exit !($ms < $best_d)}"; then best_d=$ms; fi
  done
  ms=$($py - "$threads" "$iters" $args <<'PY'
import sys, time, torch
import torch.nn.functional as F
ths = [int(t) for t in sys.argv[1].split(",")]
iters = int(sys.argv[2])
n, cin, h, w, cout, k, s, up, pt, pl, pb, pr = map(int, sys.argv[3:15])
torch.manual_seed(0)
x = torch.randn(n, cin, h, w)
wt = torch.randn(cout, cin, k, k) * 0.05
b = torch.randn(cout)
def run():
    y = F.interpolate(x, scale_factor=up, mode="nearest") if up > 1 else x
    if (pt, pl, pb, pr) == (1, 1, 1, 1):
        return F.conv2d(y, wt, b, stride=s, padding=1)
    if (pt, pl, pb, pr) != (0, 0, 0, 0):
        y = F.pad(y, (pl, pr, pt, pb))
    return F.conv2d(y, wt, b, stride=s)
best = None
with torch.no_grad():
    for t in ths:
        torch.set_num_threads(t)
        run()
        times = []
        for _ in range(iters):
            t0 = time.perf_counter()
            run()
            times.append((time.perf_counter() - t0) * 1e3)
        times.sort()
        med = times[len(times) // 2]
        best = med if best is None or med < best else best
print("%.3f" % best)
PY
)
  if [ -z "$best_t" ] || awk "BEGIN{exit !($ms < $best_t)}"; then best_t=$ms; fi
  done
  printf "%-16s %12.1f %12.1f %8.2f\n" "$name" "$best_d" "$best_t" "$(awk "BEGIN{print $best_t / $best_d}")"
done

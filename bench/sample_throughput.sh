#!/usr/bin/env bash
# sample_throughput.sh: images per second of `dit sample --npz` (an
# evaluation set) on this machine's CPU, for the shipped Fashion-MNIST DiT
# (examples/fashion_mnist, pixel space, guidance 3), at DDPM-250, DDIM-50 and
# DPM++-20, on 1 rank (all cores) and on 2 MPI ranks (half the cores each).
# Prints a table for bench/RESULTS.md. Usage: bench/sample_throughput.sh BUILD_DIR [IMAGES]
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
images=${2:-32}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
ex=$root/examples/fashion_mnist
dit=$build/runtime/dit
"$build/compiler/ditc" "$ex/dit_fashion_mnist.dit" --batch 32 -o "$work/p.plan" >/dev/null
echo "| sampler | ranks | images | seconds | images/s |"
echo "|---|---|---|---|---|"
for sampler in "ddpm 250" "ddim ddim50" "dpm++ 20"; do
  read -r name steps <<<"$sampler"
  for ranks in 1 2; do
    launch=()
    [ "$ranks" -gt 1 ] && launch=(mpirun -np "$ranks")
    rm -rf "$work/set.npz" "$work/set.npz.partial"
    t0=$(date +%s.%N)
    "${launch[@]}" "$dit" sample "$work/p.plan" --weights "$ex/dit_fashion_mnist_ema.safetensors" -n 16 \
      --num-samples "$images" --npz "$work/set.npz" --sampler "$name" --steps "$steps" --cfg-scale 3 --seed 0 2>/dev/null
    t1=$(date +%s.%N)
    s=$(echo "$t1 - $t0" | bc)
    printf "| %s-%s | %d | %d | %.1f | %.2f |\n" "$name" "${steps#ddim}" "$ranks" "$images" "$s" "$(echo "$images / $s" | bc -l)"
  done
done

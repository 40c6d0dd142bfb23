#!/usr/bin/env bash
# Compiles the GPU kernels of every shipped spec for sm_80 and sm_90 with
# NVRTC (no GPU needed) and fails on any compile error, register spill or
# shared memory over 48 KiB; then plans with kernel images (ditc --arch) that
# dit info loads and lists. Exits 77 (skipped) where NVRTC is missing.
set -euo pipefail
build=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
probe=$("$build/compiler/ditc" "$root/specs/tests/tiny.dit" --kernel-report 2>&1 || true)
if echo "$probe" | grep -q "NVRTC is not available"; then
  echo "skipped: NVRTC is not available on this machine"
  exit 77
fi
n=0
for spec in "$root"/specs/*.dit "$root"/specs/tests/*.dit; do
  "$build/compiler/ditc" "$spec" --kernel-report --arch sm_80,sm_90 >"$build/kernel_report.txt"
  n=$((n + $(grep -c '^sm_' "$build/kernel_report.txt")))
done
echo "compiled $n kernel images without spills"
for spec in specs/tests/tiny.dit specs/XL2_256.dit; do
  "$build/compiler/ditc" "$root/$spec" -o "$build/kernels.plan" --arch sm_80,sm_90,sm_90a
  "$build/runtime/dit" info "$build/kernels.plan" >"$build/kernels_info.txt"
  grep -q "cubins sm_80 sm_90 sm_90a, PTX sm_80" "$build/kernels_info.txt"
done
rm -f "$build/kernels.plan" "$build/kernels_info.txt"
echo "compiled plans with kernel images for sm_80, sm_90 and sm_90a"

#!/usr/bin/env bash
# Compiles the GPU kernels of every shipped spec (the VAEs' --part both), fp32 and bf16 plans, for
# sm_80 and sm_90 with NVRTC (no GPU needed) and fails on any compile error,
# register spill or shared memory over 48 KiB; then plans with kernel images
# (ditc --arch) that dit info loads and lists, the bf16 ones running their
# attention (head dims 64 and 72) on the tensor-core kernel. Exits 77
# (skipped) where NVRTC is missing.
set -euo pipefail
build=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
probe=$("$build/compiler/ditc" "$root/specs/tests/tiny.dit" --kernel-report 2>&1 || true)
if echo "$probe" | grep -q "NVRTC is not available"; then
  echo "skipped: NVRTC is not available on this machine"
  exit 77
fi
n=0
for spec in "$root"/specs/*.dit "$root"/specs/tests/*.dit "$root"/specs/vae/*.dit; do
  # a VAE spec (family "vae"): both parts; its plans keep fp32 values (pass_bf16), so no tensor-core attention
  vae=0; part=()
  if grep -qE '^ *family *= *"vae"' "$spec"; then vae=1; part=(--part both); fi
  for dtype in fp32 bf16; do
    "$build/compiler/ditc" "$spec" "${part[@]}" --dtype $dtype --kernel-report --arch sm_80,sm_90 >"$build/kernel_report.txt"
    n=$((n + $(grep -c '^sm_' "$build/kernel_report.txt")))
    if [ $vae = 1 ] && ! grep -q 'conv2d_kernel<' "$build/kernel_report.txt"; then
      echo "FAIL: $spec --part both has no conv2d kernel:"; cat "$build/kernel_report.txt"; exit 1
    fi
    if [ $vae = 0 ] && [ $dtype = bf16 ] && ! grep -q 'attention_mma_kernel<' "$build/kernel_report.txt"; then
      echo "FAIL: $spec --dtype bf16 has no tensor-core attention:"; cat "$build/kernel_report.txt"; exit 1
    fi
  done
done
echo "compiled $n kernel images (fp32 and bf16 plans) without spills"
for spec in specs/tests/tiny.dit specs/XL2_256.dit; do
  "$build/compiler/ditc" "$root/$spec" -o "$build/kernels.plan" --arch sm_80,sm_90,sm_90a
  "$build/runtime/dit" info "$build/kernels.plan" >"$build/kernels_info.txt"
  grep -q "cubins sm_80 sm_90 sm_90a, PTX sm_80" "$build/kernels_info.txt"
done
for spec in specs/S2_256.dit specs/XL2_256.dit; do # head dims 64 and 72
  "$build/compiler/ditc" "$root/$spec" --dtype bf16 -o "$build/kernels.plan" --arch sm_80,sm_90
  "$build/runtime/dit" info "$build/kernels.plan" >"$build/kernels_info.txt"
  grep -qE "attention_mma_kernel<(64|72), .* attention x(12|28)$" "$build/kernels_info.txt" ||
    { echo "FAIL: $spec --dtype bf16: its attention ops do not all run attention_mma_kernel:"; cat "$build/kernels_info.txt"; exit 1; }
done
rm -f "$build/kernels.plan" "$build/kernels_info.txt"
echo "compiled plans with kernel images for sm_80, sm_90 and sm_90a; bf16 plans run the tensor-core attention"

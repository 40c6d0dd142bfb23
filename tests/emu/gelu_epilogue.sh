#!/usr/bin/env bash
# gelu_epilogue.sh: an fp32 plan does not depend on whether cuBLASLt's GELU
# epilogue computes an exact or an approximate tanh (issue #8). The emulated
# cuBLASLt's DIT_EMU_GELU=approx keeps 11 bits of the epilogue's tanh, as a
# hardware tanh.approx may. `dit forward --device emu` against --device cpu,
# ||emu - cpu|| / ||cpu||:
#   fp32, default (--gelu-epilogue auto = kernel: BIAS GEMM + gelu_tanh_kernel),
#         approximate epilogue                                  <= 1e-5
#   fp32, --gelu-epilogue cublaslt, exact epilogue               <= 1e-5
#   fp32, --gelu-epilogue cublaslt, approximate epilogue         >  1e-5 (the check can tell)
#   tf32, default (auto = cublaslt), approximate epilogue        <= 3e-3
set -euo pipefail
build=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DIT_EMU_CACHE=${DIT_EMU_CACHE:-$build/emu-cache}
spec=$root/specs/tests/tiny.dit
"$build/compiler/ditc" "$spec" --info --json >"$work/cfg.json"
$py "$root/tests/ref/dit_ref.py" weights "$work/cfg.json" --seed 3 --out-dir "$work/w" >/dev/null
$py "$root/tests/ref/dit_ref.py" inputs "$work/cfg.json" --seed 6 --batch 4 --t-values 0,250,600,999 --out-dir "$work/in" >/dev/null
io=(--weights "$work/w/official.safetensors" --x "$work/in/x.npy" --t "$work/in/t.npy" --y "$work/in/y.npy")
fails=0
check() { # name dtype gelu-flag emu-gelu op tol
  "$build/compiler/ditc" "$spec" --batch 4 --dtype "$2" --arch emu ${3:+--gelu-epilogue $3} -o "$work/p.plan"
  "$build/runtime/dit" forward "$work/p.plan" "${io[@]}" --device cpu -o "$work/cpu.npy" >/dev/null
  DIT_EMU_GELU=$4 "$build/runtime/dit" forward "$work/p.plan" "${io[@]}" --device emu -o "$work/emu.npy" 2>/dev/null >/dev/null
  $py - "$work/cpu.npy" "$work/emu.npy" "$1" "$5" "$6" <<'PY' || fails=$((fails + 1))
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
rel = float(np.linalg.norm(b - a) / np.linalg.norm(a))
ok = rel <= float(sys.argv[5]) if sys.argv[4] == "<=" else rel > float(sys.argv[5])
print(f"{sys.argv[3]:<58} rel {rel:.2e} {sys.argv[4]} {sys.argv[5]}  {'ok' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
PY
}
check "fp32, default plan, approximate epilogue tanh" fp32 "" approx "<=" 1e-5
check "fp32, --gelu-epilogue cublaslt, exact epilogue tanh" fp32 cublaslt "" "<=" 1e-5
check "fp32, --gelu-epilogue cublaslt, approximate epilogue tanh" fp32 cublaslt approx ">" 1e-5
check "tf32, default plan, approximate epilogue tanh" tf32 "" approx "<=" 3e-3
[ $fails -eq 0 ]

#!/usr/bin/env bash
# fault_sweep.sh: every driver and cuBLASLt call that `dit sample --device emu`
# makes is made to fail in turn (DIT_EMU_FAIL=fn:N, tools/emu/README.md), and
# each failure must end cleanly: either the run completes (a failure the
# backend may ignore, in its cleanup) with the same output as the clean run,
# or it exits 1 with a message naming the failed call, leaves no output and
# no temporary file; and in every case nothing is leaked (the emulated
# driver reports device memory, streams, events, graphs and modules that
# were never freed; under the ASan build LeakSanitizer checks the host side)
# and no sanitizer fires. A failing free or destroy call itself is exempt
# from the leak check: what it should have freed is then the driver's.
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
w=$(ls "$work/w"/*.safetensors | head -1)
"$build/compiler/ditc" "$spec" --batch 4 --arch emu -o "$work/p.plan"
mkdir "$work/out"
args=(sample "$work/p.plan" --weights "$w" -n 2 --steps 3 --cfg-scale 4 --seed 7 --device emu)
DIT_EMU_CALLS=$work/calls.txt "$build/runtime/dit" "${args[@]}" -o "$work/clean.npy" 2>"$work/clean.err" ||
  { echo "FAIL: the clean run failed:"; cat "$work/clean.err"; exit 1; }
if grep -q "never freed\|never destroyed" "$work/clean.err"; then echo "FAIL: the clean run leaks:"; cat "$work/clean.err"; exit 1; fi
total=0 failed=0 completed=0
while read -r fn count; do
  case $fn in cuGetError*|cublasLtGetStatus*) continue ;; esac # the error reporting itself
  for ((n = 1; n <= count; n++)); do
    total=$((total + 1))
    rm -rf "$work/out"/*
    set +e
    DIT_EMU_FAIL=$fn:$n "$build/runtime/dit" "${args[@]}" -o "$work/out/s.npy" >"$work/o.txt" 2>"$work/e.txt"
    rc=$?
    set -e
    why=""
    if [ $rc -eq 0 ]; then
      completed=$((completed + 1))
      cmp -s "$work/out/s.npy" "$work/clean.npy" || why="completed with another output"
    elif [ $rc -ne 1 ]; then
      why="exit $rc"
    elif ! grep -q "dit: error: .*$fn" "$work/e.txt"; then
      why="the message does not name $fn"
    elif [ -n "$(ls -A "$work/out")" ]; then
      why="left $(ls -A "$work/out" | head -3 | tr '\n' ' ')"
    fi
    case $fn in
    cuMemFree*|cuStreamDestroy|cuEventDestroy|cuModuleUnload|cuGraphDestroy|cuGraphExecDestroy|cuDevicePrimaryCtxRelease|cublasLt*Destroy) ;;
    *) grep -q "never freed\|never destroyed" "$work/e.txt" && why="${why:+$why; }leaks: $(grep never "$work/e.txt" | head -2 | tr '\n' ' ')" ;;
    esac
    grep -q "Sanitizer\|runtime error:" "$work/e.txt" && why="${why:+$why; }sanitizer: $(grep -m1 "Sanitizer\|runtime error:" "$work/e.txt")"
    if [ -n "$why" ]; then
      failed=$((failed + 1))
      echo "FAIL $fn:$n: $why"
      sed 's/^/    /' "$work/e.txt" | head -8
    fi
  done
done <"$work/calls.txt"
echo "$total injected failures ($(wc -l <"$work/calls.txt") functions): $completed completed cleanly, $((total - completed - failed)) stopped with a clean error, $failed wrong"
[ $failed -eq 0 ]

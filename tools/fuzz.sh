#!/usr/bin/env bash
# Builds the libFuzzer targets with clang, ASan and UBSan, and fuzzes the spec
# front end. New interesting inputs land in tests/fuzz/corpus/spec; a crash
# leaves crash-* in tests/fuzz/. Usage: tools/fuzz.sh [SECONDS] [JOBS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-600}
jobs=${2:-1}
build=$root/build-fuzz
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DDIT_FUZZ=ON \
      -DDIT_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target fuzz_spec
corpus=$root/tests/fuzz/corpus/spec
mkdir -p "$corpus"
cd "$root/tests/fuzz"
# -rss_limit_mb: a spec that makes the compiler use more than this is a finding too
"$build/tests/fuzz_spec" "$corpus" "$root/specs" "$root/tests/golden/errors" \
  -dict="$root/tests/fuzz/spec.dict" -max_total_time="$seconds" -timeout=10 \
  -rss_limit_mb=2048 -max_len=4096 -jobs="$jobs" -workers="$jobs" -print_final_stats=1

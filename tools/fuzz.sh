#!/usr/bin/env bash
# Builds the libFuzzer targets with clang, ASan and UBSan, and fuzzes one of
# them. New interesting inputs land in tests/fuzz/corpus/<target>; a crash
# leaves crash-* in tests/fuzz/. CTest replays the committed corpora.
# Usage: tools/fuzz.sh [spec|plan] [SECONDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${1:-spec}
seconds=${2:-600}
build=$root/build-fuzz
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DDIT_FUZZ=ON \
      -DDIT_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target "fuzz_$target"
corpus=$root/tests/fuzz/corpus/$target
mkdir -p "$corpus"
case $target in
  spec) seeds=("$root/specs" "$root/tests/golden/errors"); dict=(-dict="$root/tests/fuzz/spec.dict") ;;
  plan) seeds=(); dict=() ;;
  *) echo "unknown target $target" >&2; exit 2 ;;
esac
cd "$root/tests/fuzz"
# -rss_limit_mb: an input that makes ditc use more than this is a finding too
"$build/tests/fuzz_$target" "$corpus" "${seeds[@]}" "${dict[@]}" -max_total_time="$seconds" \
  -timeout=10 -rss_limit_mb=2048 -max_len=32768 -print_final_stats=1

#!/usr/bin/env bash
# Builds and runs every test: a warnings-as-errors build, then the same suite
# under AddressSanitizer and UBSan. Installs the Debian packages it needs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)
"$root/tools/deps.sh" test

run_suite() { # build-dir, extra cmake args...
  local dir=$1; shift
  cmake -S "$root" -B "$dir" -DDIT_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  (cd "$dir" && ctest --output-on-failure -j"$jobs")
}

echo "== build + tests (warnings as errors)"
run_suite "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo "== build + tests under ASan + UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite "$root/build-asan" -DCMAKE_BUILD_TYPE=Debug -DDIT_SANITIZE=ON

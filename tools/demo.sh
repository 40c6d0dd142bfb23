#!/usr/bin/env bash
# The main job: installs what the build needs, builds ditc and compiles a
# shipped spec, printing its model report. Usage: tools/demo.sh [SPEC]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
spec=${1:-specs/XL2_256.dit}
"$root/tools/deps.sh" build
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release -DDIT_TESTS=OFF >/dev/null
cmake --build "$root/build" --target ditc -j"$(nproc)" >/dev/null
cd "$root"
build/compiler/ditc "$spec" --info

#!/usr/bin/env bash
# generated/ keeps the CUDA source ditc emits for every shipped spec; this
# test fails when any of them is stale (regenerate: tools/update_golden.sh).
set -euo pipefail
build=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
stale=0
cd "$root"
for spec in specs/*.dit; do
  name=$(basename "$spec" .dit)
  if ! "$build/compiler/ditc" "$spec" --emit-cuda | cmp -s - "generated/$name.cu"; then
    echo "generated/$name.cu is stale: run tools/update_golden.sh and review the diff"
    stale=$((stale + 1))
  fi
done
[ "$(ls generated/*.cu | wc -l)" -eq "$(ls specs/*.dit | wc -l)" ] || { echo "generated/ and specs/ differ"; stale=1; }
echo "$stale stale files in generated/"
[ "$stale" -eq 0 ]

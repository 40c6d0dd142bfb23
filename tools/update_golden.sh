#!/usr/bin/env bash
# Regenerates the golden files under tests/golden/ from the current ditc.
# Review `git diff tests/golden` before committing: these files are the spec
# of ditc's messages and IR dumps.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ditc=${DITC:-$root/build/compiler/ditc}
cd "$root/tests/golden/errors"
for f in *.dit; do
  "$ditc" "$f" >/dev/null 2>"${f%.dit}.expected" || true
done
cd "$root"
for spec in tiny tiny_pixel; do
  "$ditc" "specs/tests/$spec.dit" --dump-ir --dump-after lower --batch 2 >"tests/golden/ir/$spec.ir"
  "$ditc" "specs/tests/$spec.dit" --dump-ir --batch 2 >"tests/golden/ir/$spec.fused.ir"
done
for spec in specs/*.dit; do
  "$ditc" "$spec" --emit-cuda >"generated/$(basename "$spec" .dit).cu"
done
echo "golden files regenerated; review with: git diff tests/golden generated"

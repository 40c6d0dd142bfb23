#!/usr/bin/env bash
# Runs examples/sample_dit on the tiny model with random weights: it must
# sample, print four finite statistics lines, and give the same numbers for
# the same seed and different ones for another seed.
set -euo pipefail
build=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$build/compiler/ditc" "$root/specs/tests/tiny.dit" -o "$work/tiny.plan" --batch 8
"$build/compiler/ditc" "$root/specs/tests/tiny.dit" --info --json >"$work/cfg.json"
/usr/bin/python3 "$root/tests/ref/dit_ref.py" weights "$work/cfg.json" --seed 3 --out-dir "$work/w" >/dev/null
a=$("$build/examples/sample_dit" "$work/tiny.plan" "$work/w/official.safetensors" 1)
b=$("$build/examples/sample_dit" "$work/tiny.plan" "$work/w/official.safetensors" 1)
c=$("$build/examples/sample_dit" "$work/tiny.plan" "$work/w/official.safetensors" 2)
echo "$a"
[ "$(echo "$a" | grep -c 'class .*: mean -\?[0-9.]* std [0-9.]*$')" -eq 4 ]
! echo "$a" | grep -qi nan
[ "$a" = "$b" ]
[ "$a" != "$c" ]
echo "example_sample_dit: ok"

#!/usr/bin/env bash
# cfg_official_channels.sh: ditc guides the channels the official
# forward_with_cfg guides, model_out[:, :3] (issue 17). On tiny_mnist (one
# input channel, learned sigma: 2 output channels) that is both the eps and
# the variance channel. `dit forward --cfg-scale 4` of a default plan is
# compared with the reference run with the official slicing (its config
# without guided_channels, so dit_ref.py slices [:, :3]); a plan compiled
# with `guided_channels = 1` (the documented option) must match the
# reference with 1 guided channel, and differ from the official one in the
# variance channel, so that the check can tell them apart.
set -euo pipefail
build=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
ref="$py $root/tests/ref/dit_ref.py"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$py -c 'import torch, numpy' 2>/dev/null || { echo "SKIP: python3-torch/python3-numpy missing"; exit 77; }
spec=$root/specs/tests/tiny_mnist.dit
"$build/compiler/ditc" "$spec" --info --json >"$work/cfg.json"
grep -q '"guided_channels":2' "$work/cfg.json" || { echo "FAIL: tiny_mnist's default guided_channels is not 2"; exit 1; }
"$build/compiler/ditc" "$spec" --batch 8 -o "$work/p.plan"
sed 's/model "tiny-mnist" {/model "tiny-mnist" {\n    guided_channels = 1/' "$spec" >"$work/one.dit"
"$build/compiler/ditc" "$work/one.dit" --batch 8 -o "$work/one.plan"
# the official config: no guided_channels, so the reference slices model_out[:, :3]
$py - "$work/cfg.json" "$work/official.json" "$work/one.json" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
off = dict(cfg); off.pop("guided_channels")
one = dict(cfg); one["guided_channels"] = 1
json.dump(off, open(sys.argv[2], "w")); json.dump(one, open(sys.argv[3], "w"))
PY
$ref weights "$work/official.json" --seed 5 --out-dir "$work/w" >/dev/null
$ref inputs "$work/official.json" --seed 6 --batch 4 --t-values 0,250,600,999 --out-dir "$work/in" >/dev/null
args=(--x "$work/in/x.npy" --t "$work/in/t.npy" --y "$work/in/y.npy")
w=$work/w/official.safetensors
$ref forward "$work/official.json" --weights "$w" "${args[@]}" --cfg-scale 4.0 -o "$work/ref_official.npy" >/dev/null
$ref forward "$work/one.json" --weights "$w" "${args[@]}" --cfg-scale 4.0 -o "$work/ref_one.npy" >/dev/null
"$build/runtime/dit" forward "$work/p.plan" --weights "$w" "${args[@]}" --cfg-scale 4.0 -o "$work/out.npy" >/dev/null
"$build/runtime/dit" forward "$work/one.plan" --weights "$w" "${args[@]}" --cfg-scale 4.0 -o "$work/out_one.npy" >/dev/null
$py - "$work" <<'PY'
import sys, numpy as np
d = sys.argv[1]
rel = lambda a, b: float(np.linalg.norm(a - b) / np.linalg.norm(b))
out, ro = np.load(d + "/out.npy"), np.load(d + "/ref_official.npy")
one, r1 = np.load(d + "/out_one.npy"), np.load(d + "/ref_one.npy")
e_off, e_one = rel(out, ro), rel(one, r1)
var_gap = rel(r1[:, 1], ro[:, 1])  # the variance channel: guided (official) or not
print(f"default plan vs official forward_with_cfg: rel err {e_off:.3e}")
print(f"guided_channels = 1 plan vs reference with 1 guided channel: rel err {e_one:.3e}")
print(f"the two references' variance channels differ by {var_gap:.3e} (relative)")
ok = e_off <= 1e-5 and e_one <= 1e-5 and var_gap > 1e-3 and rel(out[:, 0], ro[:, 0]) <= 1e-5
sys.exit(0 if ok else 1)
PY

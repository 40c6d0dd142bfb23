#!/usr/bin/env bash
# Data parallelism end to end: 4 steps of `dit train` on specs/tests/tiny_pixel.dit
# (8x8x1 pixels, 10 classes) with global batch 8, once as one process with a
# batch-8 plan and once as `mpirun -np 2` with a batch-4 plan per rank, on the
# same tiny dataset (32 random 8x8 IDX images through `dit data fashion-mnist`).
# The two runs must agree: loss.tsv (`step<TAB>loss`) per step, and every
# tensor of checkpoints/0000004.safetensors (model.*, ema.*, opt.*) as
# ||a - b|| / ||b||, both within TOL (default 1e-5; env LOSS_TOL, CKPT_TOL).
# Skips (77) when mpirun is missing. Usage: train_2rank.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
command -v mpirun >/dev/null || { echo "SKIP: mpirun missing (Debian's openmpi-bin)"; exit 77; }
$py -c 'import numpy' 2>/dev/null || { echo "SKIP: python3-numpy missing"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ditc=$build/compiler/ditc dit=$build/runtime/dit spec=$root/specs/tests/tiny_pixel.dit

# OpenMPI: CI runs as root on few cores; no core binding, so that each rank's
# OpenMP threads are not all pinned to one core (the results do not depend
# on the thread count).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_hwloc_base_binding_policy=none

"$ditc" "$spec" --mode train --batch 4 -o "$work/p4.plan"
"$ditc" "$spec" --mode train --batch 8 -o "$work/p8.plan"

# 32 samples of 8x8 u8 (tiny_pixel's image size, no padding), labels 0..9.
$py - "$work" <<'PY'
import sys, numpy as np
work = sys.argv[1]
rng = np.random.default_rng(11)
n, h, w = 32, 8, 8
imgs = rng.integers(0, 256, size=(n, h, w), dtype=np.uint8)
labels = (np.arange(n) * 7 % 10).astype(np.uint8)
with open(work + "/images.idx", "wb") as f:
    f.write(np.array([0x0803, n, h, w], dtype=">u4").tobytes() + imgs.tobytes())
with open(work + "/labels.idx", "wb") as f:
    f.write(np.array([0x0801, n], dtype=">u4").tobytes() + labels.tobytes())
PY
"$dit" data fashion-mnist --images "$work/images.idx" --labels "$work/labels.idx" -o "$work/d.ditdata" >/dev/null

args=(--data "$work/d.ditdata" --steps 4 --global-batch 8 --seed 3 --log-every 1 --ckpt-every 4)
"$dit" train "$work/p8.plan" "${args[@]}" -o "$work/run1"
mpirun -np 2 "$dit" train "$work/p4.plan" "${args[@]}" -o "$work/run2"

$py - "$work/run1" "$work/run2" "${LOSS_TOL:-1e-5}" "${CKPT_TOL:-1e-5}" <<'PY'
import json, struct, sys
import numpy as np

run1, run2, loss_tol, ckpt_tol = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
ok = True

def losses(path):  # {step: loss}; lines that do not start with an integer step (a header) are skipped
    out = {}
    for line in open(path):
        f = line.split("\t")
        if len(f) >= 2 and f[0].strip().isdigit():
            out[int(f[0])] = float(f[1])
    return out

l1, l2 = losses(run1 + "/loss.tsv"), losses(run2 + "/loss.tsv")
if sorted(l1) != sorted(l2) or len(l1) != 4:
    print(f"loss.tsv steps differ or are not 4: {sorted(l1)} vs {sorted(l2)}"); ok = False
for s in sorted(set(l1) & set(l2)):
    a, b = l2[s], l1[s]
    rel = abs(a - b) / max(abs(b), 1e-30)
    print(f"step {s}: loss 1 rank {b:.9g}, 2 ranks {a:.9g}, rel {rel:.2e}")
    if not rel <= loss_tol:
        print(f"  step {s}: rel {rel:.3e} > {loss_tol}"); ok = False

DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "U8": "u1", "I8": "i1"}

def read_safetensors(path):  # {name: float64 array}, by the format: u64 header size, JSON header, data
    raw = open(path, "rb").read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    header.pop("__metadata__", None)
    base, out = 8 + hlen, {}
    for name, t in header.items():
        lo, hi = t["data_offsets"]
        buf = raw[base + lo:base + hi]
        if t["dtype"] == "BF16":
            a = (np.frombuffer(buf, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            a = np.frombuffer(buf, DTYPES[t["dtype"]])
        out[name] = a.astype(np.float64).reshape(t["shape"])
    return out

c1 = read_safetensors(run1 + "/checkpoints/0000004.safetensors")
c2 = read_safetensors(run2 + "/checkpoints/0000004.safetensors")
if set(c1) != set(c2):
    print("checkpoint tensor names differ:", sorted(set(c1) ^ set(c2))); ok = False
for prefix in ("model.", "ema.", "opt."):
    if not any(k.startswith(prefix) for k in c1):
        print(f"checkpoint has no {prefix}* tensors"); ok = False
worst, worst_name = 0.0, ""
for k in sorted(set(c1) & set(c2)):
    a, b = c2[k], c1[k]
    if a.shape != b.shape or not np.isfinite(a).all():
        print(f"  {k}: shape {a.shape} vs {b.shape} or not finite"); ok = False; continue
    nb = np.linalg.norm(b)
    rel = np.linalg.norm(a - b) / nb if nb > 0 else float(np.abs(a).max(initial=0.0))
    if rel > worst: worst, worst_name = rel, k
    if not rel <= ckpt_tol:
        print(f"  {k}: rel {rel:.3e} > {ckpt_tol}"); ok = False
print(f"{len(c1)} checkpoint tensors, worst rel {worst:.2e} ({worst_name})")
print("train_2rank:", "ok" if ok else "FAILED")
sys.exit(0 if ok else 1)
PY

#!/usr/bin/env bash
# dit train end to end, on a small synthetic Fashion-MNIST-shaped set:
#  1. three AdamW + EMA steps from random weights (every layer randomised)
#     against tests/ref/train_ref.py train (torch.optim.AdamW, train.py's EMA)
#     on the very rows dit drew (--dump-batches): each step's mean loss within
#     1e-5, AdamW moments within 1e-4, and model and EMA weights within 1e-4
#     where the gradient is well above Adam's eps (where it is not, as for
#     the key bias, whose exact gradient is 0, Adam's update amplifies
#     rounding noise in either implementation);
#  2. --resume: 2 steps, then resumed to 4, gives the same loss curve and a
#     byte-identical checkpoint as 4 uninterrupted steps; and the official
#     initialisation (no --weights) trains too.
# Usage: train_vs_pytorch.sh BUILD_DIR
set -euo pipefail
build=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ditc=$build/compiler/ditc dit=$build/runtime/dit spec=$root/specs/tests/tiny_mnist.dit

# 96 random 28x28 images with labels 0..9, as IDX files
$py - "$work" <<'PY'
import sys, struct, numpy as np
rng = np.random.default_rng(5)
n, d = 96, sys.argv[1]
img = (rng.random((n, 28, 28)) ** 2 * 255).astype(np.uint8)
open(d + "/img.idx", "wb").write(struct.pack(">IIII", 2051, n, 28, 28) + img.tobytes())
open(d + "/lab.idx", "wb").write(struct.pack(">II", 2049, n) + (np.arange(n) % 10).astype(np.uint8).tobytes())
PY
"$dit" data fashion-mnist --images "$work/img.idx" --labels "$work/lab.idx" -o "$work/d.ditdata" >/dev/null
"$ditc" "$spec" --info --json >"$work/cfg.json"
"$ditc" "$spec" --mode train --batch 8 -o "$work/p.plan"
$py "$root/tests/ref/dit_ref.py" weights "$work/cfg.json" --seed 9 --out-dir "$work/w" >/dev/null

common=(--data "$work/d.ditdata" --lr 1e-3 --ema 0.9 --seed 5 --log-every 1)
"$dit" train "$work/p.plan" "${common[@]}" --weights "$work/w/official.safetensors" --steps 3 \
  --dump-batches "$work/b" -o "$work/run" >/dev/null
$py "$root/tests/ref/train_ref.py" train "$work/cfg.json" --weights "$work/w/official.safetensors" \
  --batches "$work/b" --steps 3 --lr 1e-3 --ema 0.9 --out-dir "$work/ref" >/dev/null
$py - "$work" <<'PY'
import sys, json, struct, numpy as np
w = sys.argv[1]
def read(path):
    b = open(path, "rb").read(); n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n]); d = b[8 + n:]; h.pop("__metadata__", None)
    dt = {"F32": "<f4", "I64": "<i8", "F64": "<f8"}
    return {k: np.frombuffer(d[v["data_offsets"][0]:v["data_offsets"][1]], dtype=dt[v["dtype"]])
              .reshape(v["shape"]).astype(np.float64) for k, v in h.items()}
ok = True
ours = [float(l.split()[1]) for l in open(w + "/run/loss.tsv")]
ref = np.load(w + "/ref/losses.npy")
for s, (a, b) in enumerate(zip(ours, ref)):
    rel = abs(a - b) / abs(b)
    print(f"step {s + 1}: loss {a:.9g} ref {b:.9g} rel {rel:.2e}")
    ok &= rel <= 1e-5 and len(ours) == len(ref) == 3
ck = read(w + "/run/checkpoints/0000003.safetensors")
assert list(ck["train.state"]) == [3, 5, 8], ck["train.state"]
opt = read(w + "/ref/opt.safetensors")
def rel(a, b): return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)
worst = max(rel(ck["opt." + k], v) for k, v in opt.items())
print(f"AdamW moments: {len(opt)} tensors, worst rel {worst:.2e}"); ok &= worst <= 1e-4
for kind in ("model", "ema"):
    ref_w = read(w + f"/ref/{kind}.safetensors")
    worst = 0.0
    for k, v in ref_w.items():
        sq = opt.get(k + ".exp_avg_sq")
        mask = np.ones(v.shape, bool) if sq is None else np.sqrt(sq / (1 - 0.999 ** 3)) > 1e-6
        worst = max(worst, rel(ck[kind + "." + k][mask], v[mask]))
    print(f"{kind} weights: {len(ref_w)} tensors, worst rel {worst:.2e}"); ok &= worst <= 1e-4
sys.exit(0 if ok else 1)
PY

# resume: 4 steps in one go, or 2 then --resume to 4 (official init, no --weights)
"$dit" train "$work/p.plan" "${common[@]}" --steps 4 --ckpt-every 2 -o "$work/a" >/dev/null
"$dit" train "$work/p.plan" "${common[@]}" --steps 2 --ckpt-every 2 -o "$work/r" >/dev/null
"$dit" train "$work/p.plan" --data "$work/d.ditdata" --steps 4 --resume "$work/r" >/dev/null
diff "$work/a/loss.tsv" "$work/r/loss.tsv"
cmp "$work/a/checkpoints/0000004.safetensors" "$work/r/checkpoints/0000004.safetensors"
cmp "$work/a/checkpoints/0000004-ema.safetensors" "$work/r/checkpoints/0000004-ema.safetensors"
cmp "$work/a/checkpoints/0000004.pt" "$work/r/checkpoints/0000004.pt"
echo "resume: the loss curve and the step-4 checkpoint are identical to an uninterrupted run"
# the EMA checkpoint samples through an inference plan of the same spec
"$ditc" "$spec" --batch 4 -o "$work/s.plan"
"$dit" sample "$work/s.plan" --weights "$work/a/checkpoints/0000004-ema.safetensors" -n 2 --steps 5 \
  --cfg-scale 2 --png "$work/g.png" -o "$work/s.npy" >/dev/null
test -s "$work/g.png"
echo "ok"

#!/usr/bin/env bash
# dit train's torch.save checkpoint (NNNNNNN.pt, runtime/weights/torch_save.h)
# loads in PyTorch as DiT's sample.py loads a train.py checkpoint: one step on
# a small synthetic Fashion-MNIST-shaped set, then with Debian's torch
#  1. torch.load(path, map_location=...) (and weights_only=True), "model" and
#     "ema" present, find_model's "ema" pick loaded strictly into the
#     reference DiT (tests/ref/dit_ref.py) built from the spec;
#  2. "ema" bit for bit equal to NNNNNNN-ema.safetensors, "model" to the
#     model.* tensors of NNNNNNN.safetensors, every key of the model;
# and dit sample gives the same bytes from the .pt as from -ema.safetensors.
# Usage: torch_save_load.sh BUILD_DIR
set -euo pipefail
build=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
$py -c "import torch" 2>/dev/null || { echo "no torch for $py: skipped"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ditc=$build/compiler/ditc dit=$build/runtime/dit spec=$root/specs/tests/tiny_mnist.dit

# 32 random 28x28 images with labels 0..9, as IDX files
$py - "$work" <<'PY'
import sys, struct, numpy as np
rng = np.random.default_rng(7)
n, d = 32, sys.argv[1]
img = (rng.random((n, 28, 28)) * 255).astype(np.uint8)
open(d + "/img.idx", "wb").write(struct.pack(">IIII", 2051, n, 28, 28) + img.tobytes())
open(d + "/lab.idx", "wb").write(struct.pack(">II", 2049, n) + (np.arange(n) % 10).astype(np.uint8).tobytes())
PY
"$dit" data fashion-mnist --images "$work/img.idx" --labels "$work/lab.idx" -o "$work/d.ditdata" >/dev/null
"$ditc" "$spec" --info --json >"$work/cfg.json"
"$ditc" "$spec" --mode train --batch 8 -o "$work/p.plan"
"$dit" train "$work/p.plan" --data "$work/d.ditdata" --steps 1 --lr 1e-3 --ema 0.9 --seed 3 \
  -o "$work/run" >/dev/null
ck=$work/run/checkpoints
test -s "$ck/0000001.pt"

$py - "$root" "$work/cfg.json" "$ck" <<'PY'
import sys, json, struct, numpy as np, torch
sys.path.insert(0, sys.argv[1] + "/tests/ref")
import dit_ref
cfg, ck = dit_ref.load_config(sys.argv[2]), sys.argv[3]
def read_f32(path):  # the float32 tensors of a safetensors file, as their raw bytes
    b = open(path, "rb").read(); n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n]); d = b[8 + n:]; h.pop("__metadata__", None)
    return {k: torch.from_numpy(np.frombuffer(d[v["data_offsets"][0]:v["data_offsets"][1]],
                                              dtype="<f4").reshape(v["shape"]).copy())
            for k, v in h.items() if v["dtype"] == "F32"}
path = ck + "/0000001.pt"
# DiT's sample.py, find_model:
checkpoint = torch.load(path, map_location=lambda storage, loc: storage)
assert "ema" in checkpoint and "model" in checkpoint, list(checkpoint)
assert sorted(checkpoint) == ["ema", "model"], list(checkpoint)
model = dit_ref.build_model(cfg)
model.load_state_dict(checkpoint["ema"])  # strict
keys = list(model.state_dict())
ema, full = read_f32(ck + "/0000001-ema.safetensors"), read_f32(ck + "/0000001.safetensors")
for kind, ref in (("ema", ema), ("model", {k: full["model." + k] for k in keys})):
    sd = checkpoint[kind]
    assert sorted(sd) == sorted(keys), (kind, sorted(set(sd) ^ set(keys)))  # order: the plan's
    for k in keys:
        t = sd[k]
        assert t.dtype == torch.float32 and t.is_contiguous() and not t.requires_grad, k
        assert t.shape == ref[k].shape, (kind, k, t.shape, ref[k].shape)
        assert torch.equal(t.view(torch.int32), ref[k].view(torch.int32)), (kind, k)
    print(f"{kind}: {len(keys)} tensors bit-exact, pos_embed {tuple(sd['pos_embed'].shape)}")
assert not torch.equal(checkpoint["ema"]["final_layer.linear.weight"],
                       checkpoint["model"]["final_layer.linear.weight"])
try:
    safe = torch.load(path, map_location="cpu", weights_only=True)
except TypeError:  # torch < 1.13 has no weights_only
    safe = None
if safe is not None:
    assert all(torch.equal(safe["ema"][k], checkpoint["ema"][k]) for k in keys)
    print("weights_only=True loads it too")
PY

# dit itself reads the .pt (its "ema") as it reads the EMA safetensors
"$ditc" "$spec" --batch 4 -o "$work/s.plan" # 2 images with guidance: 4 rows
for w in 0000001.pt 0000001-ema.safetensors; do
  "$dit" sample "$work/s.plan" --weights "$ck/$w" -n 2 --steps 3 --seed 1 -o "$work/$w.npy" >/dev/null
done
cmp "$work/0000001.pt.npy" "$work/0000001-ema.safetensors.npy"
echo "ok"

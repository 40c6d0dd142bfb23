#!/usr/bin/env bash
# The compiled VAE (issue #10) against tests/ref/vae_ref.py, the PyTorch
# reference of diffusers' AutoencoderKL written from the architecture, in
# float64, with random weights on every layer (GroupNorm affine included):
#  - the small configuration (block_out_channels [32, 64, 64, 64]) compiled
#    from the reference's diffusers config.json, decoder and encoder in one
#    plan: decode, encode with injected noise and encode --mean within 1e-4
#    relative (observed ~1e-6), from diffusers safetensors and .bin, legacy
#    attention names, LDM names (with and without first_stage_model.), and
#    fp16/bf16 files (the reference computes from the same rounded values);
#  - the full sd-vae-ft-mse configuration at 256² from specs/vae (decode and
#    encode, batch 1, from diffusers .safetensors and .bin and an LDM .ckpt
#    under first_stage_model.; not in the sanitizer build, where it is slow
#    and adds no code path);
#  - the PNG bytes of dit decode --png against sample.py's save_image mapping;
#  - diffusers' AutoencoderKL as a second reference of the reference, when
#    the pinned pure-Python install works (else a SKIP line);
#  - clear errors: a checkpoint of another configuration, a missing and an
#    unexpected tensor, latents of the wrong size, a DiT plan as the VAE, an
#    encode on a decoder-only plan.
# Usage: vae_vs_reference.sh BUILD_DIR
source "$(dirname "$0")/lib.sh" "$1"
V="$py $root/tests/ref/vae_ref.py"
sanitized=0
grep -q '^DIT_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null && sanitized=1

echo "== small configuration"
s=$work/small
mkdir -p "$s"
$V config --small --out "$s/config.json"
$V weights "$s/config.json" --seed 3 --out-dir "$s/w" --naming diffusers,legacy,ldm --format safetensors,bin \
  --dtype fp32 >/dev/null
$V weights "$s/config.json" --seed 3 --out-dir "$s/w" --naming ldm --prefix first_stage_model. \
  --format safetensors,ckpt --dtype fp32,bf16 >/dev/null
$V weights "$s/config.json" --seed 3 --out-dir "$s/w" --naming legacy --format safetensors --dtype fp16 >/dev/null
$V inputs "$s/config.json" --seed 4 --batch 2 --out-dir "$s/in" >/dev/null
"$ditc" "$s/config.json" --part both --batch 2 -o "$s/vae.plan"
"$ditc" "$s/config.json" --batch 2 -o "$s/dec.plan" # the decoder alone, the default part
for f in diffusion_pytorch_model.safetensors diffusion_pytorch_model.bin diffusion_pytorch_model.legacy.safetensors \
         vae-ldm.safetensors vae-ldm.prefixed.safetensors vae-ldm.prefixed.ckpt vae-ldm.prefixed.bf16.safetensors \
         diffusion_pytorch_model.legacy.fp16.safetensors; do
  w=$s/w/$f
  [ -e "$w" ] || { fail "the reference wrote no $f"; continue; }
  $V decode "$s/config.json" "$w" "$s/in" --out "$s/x_ref.npy"
  $V encode "$s/config.json" "$w" "$s/in" --out "$s/z_ref.npy"
  $V encode "$s/config.json" "$w" "$s/in" --mean --out "$s/zm_ref.npy"
  "$dit" decode "$s/vae.plan" --weights "$w" --z "$s/in/z.npy" -o "$s/x.npy"
  "$dit" encode "$s/vae.plan" --weights "$w" --x "$s/in/x.npy" --noise "$s/in/e.npy" -o "$s/z.npy"
  "$dit" encode "$s/vae.plan" --weights "$w" --x "$s/in/x.npy" --mean -o "$s/zm.npy"
  rel "$s/x.npy" "$s/x_ref.npy" "decode, $f" 1e-4
  rel "$s/z.npy" "$s/z_ref.npy" "encode, $f" 1e-4
  rel "$s/zm.npy" "$s/zm_ref.npy" "encode --mean, $f" 1e-4
done
"$dit" decode "$s/dec.plan" --weights "$s/w/vae-ldm.safetensors" --z "$s/in/z.npy" -o "$s/xd.npy"
"$dit" decode "$s/vae.plan" --weights "$s/w/vae-ldm.safetensors" --z "$s/in/z.npy" -o "$s/xb.npy"
rel "$s/xd.npy" "$s/xb.npy" "a decoder-only plan with a whole VAE's file, against the plan of both" 1e-6

echo "== the PNG: sample.py's save_image mapping, 4 per row, 2-pixel black padding"
"$dit" decode "$s/vae.plan" --weights "$s/w/diffusion_pytorch_model.safetensors" --z "$s/in/z.npy" -o "$s/xp.npy" \
  --png "$s/grid.png"
$py - "$s/xp.npy" "$s/grid.png" <<'PY' || fails=$((fails + 1))
import sys, numpy as np
from PIL import Image
x = np.load(sys.argv[1]).astype(np.float32)            # [N,3,H,W]
v = np.clip(x, np.float32(-1), np.float32(1))
v = (v - np.float32(-1)) / np.float32(2)
v = v * np.float32(255) + np.float32(0.5)
v = np.clip(v, 0, 255).astype(np.uint8)                # torch's .to(uint8): truncation
n, _, h, w = x.shape
cols = min(4, n); rows = (n + cols - 1) // cols; p = 2
grid = np.zeros((rows * (h + p) + p, cols * (w + p) + p, 3), np.uint8)
for i in range(n):
    r, c = divmod(i, cols)
    grid[p + r * (h + p):p + r * (h + p) + h, p + c * (w + p):p + c * (w + p) + w] = v[i].transpose(1, 2, 0)
got = np.asarray(Image.open(sys.argv[2]).convert("RGB"))
ok = got.shape == grid.shape and (got == grid).all()
print("%s the PNG's bytes equal save_image's (%s)" % ("ok  " if ok else "FAIL", got.shape))
sys.exit(0 if ok else 1)
PY

echo "== diffusers' AutoencoderKL, a second reference"
set +e
$V check-diffusers "$s/config.json" "$s/w/diffusion_pytorch_model.safetensors" "$s/in" >"$work/diffusers.txt" 2>&1
r=$?
set -e
case $r in
  0) echo "ok   the reference agrees with diffusers: $(tail -1 "$work/diffusers.txt")" ;;
  77) echo "SKIP diffusers is not available here: $(grep -m1 SKIP "$work/diffusers.txt")" ;;
  *) fail "the reference and diffusers disagree:"; cat "$work/diffusers.txt" ;;
esac

echo "== errors"
f=$work/full
mkdir -p "$f"
$V config --full --out "$f/config.json"
$V weights "$f/config.json" --seed 5 --out-dir "$f/w" --naming diffusers --format safetensors --dtype fp32 >/dev/null
refuses "another configuration's checkpoint" "has shape" \
  "$dit" decode "$s/vae.plan" --weights "$f/w/diffusion_pytorch_model.safetensors" --z "$s/in/z.npy" -o "$work/e.npy"
$py - "$s/w/diffusion_pytorch_model.safetensors" "$work" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
h = json.loads(raw[8:8 + n])
def write(path, hdr):
    b = json.dumps(hdr).encode()
    b += b" " * (-len(b) % 8)
    open(path, "wb").write(struct.pack("<Q", len(b)) + b + raw[8 + n:])
key = "decoder.up_blocks.1.resnets.0.conv2.weight"
miss = dict(h); del miss[key]
write(sys.argv[2] + "/missing.safetensors", miss)
extra = dict(h); extra["decoder.up_blocks.1.resnets.9.conv2.weight"] = h[key]
write(sys.argv[2] + "/extra.safetensors", extra)
PY
refuses "a missing tensor" "missing VAE tensor 'decoder.up_blocks.1.resnets.0.conv2.weight'" \
  "$dit" decode "$s/vae.plan" --weights "$work/missing.safetensors" --z "$s/in/z.npy" -o "$work/e.npy"
refuses "an unexpected tensor" "unexpected VAE tensor 'decoder.up_blocks.1.resnets.9.conv2.weight'" \
  "$dit" decode "$s/vae.plan" --weights "$work/extra.safetensors" --z "$s/in/z.npy" -o "$work/e.npy"
$py -c "import numpy as np; np.save('$work/z16.npy', np.zeros((1, 4, 16, 16), np.float32))"
refuses "latents of another size" "compile the VAE for this resolution: ditc ... --image-size 128" \
  "$dit" decode "$s/vae.plan" --weights "$s/w/vae-ldm.safetensors" --z "$work/z16.npy" -o "$work/e.npy"
"$ditc" "$root/specs/tests/tiny.dit" -o "$work/dit.plan"
refuses "a DiT plan as the VAE" "is a DiT plan, not a VAE plan" \
  "$dit" decode "$work/dit.plan" --weights "$s/w/vae-ldm.safetensors" --z "$s/in/z.npy" -o "$work/e.npy"
refuses "an encode on a decoder plan" "has no encoder: compile it with --part encoder or --part both" \
  "$dit" encode "$s/dec.plan" --weights "$s/w/vae-ldm.safetensors" --x "$s/in/x.npy" -o "$work/e.npy"
refuses "a VAE plan in dit forward" "is a VAE plan: it decodes and encodes images" \
  "$dit" forward "$s/vae.plan" --weights "$s/w/vae-ldm.safetensors" --x "$s/in/z.npy" --t "$s/in/z.npy" \
  --y "$s/in/z.npy" -o "$work/e.npy"
refuses "a VAE plan in dit sample" "is a VAE plan: sample with a DiT plan" \
  "$dit" sample "$s/vae.plan" --random-weights 0 -n 1 -o "$work/e.npy"
[ -e "$work/e.npy" ] && fail "a refused command wrote its output"

if [ $sanitized = 1 ]; then
  echo "== the full configuration: not in the sanitizer build (slow, no other code path)"
else
  echo "== the full sd-vae-ft-mse configuration at 256x256, batch 1"
  $V inputs "$f/config.json" --seed 6 --batch 1 --out-dir "$f/in" >/dev/null
  "$ditc" "$root/specs/vae/sd-vae-ft-mse.dit" --part both --batch 1 -o "$f/vae.plan"
  "$ditc" "$f/config.json" --part both --batch 1 -o "$f/cfg.plan"
  cmp -s "$f/vae.plan" "$f/cfg.plan" && echo "ok   specs/vae/sd-vae-ft-mse.dit and its config.json give the same plan" ||
    echo "note: the reference's config.json names the model otherwise: the plans differ in their name only"
  w=$f/w/diffusion_pytorch_model.safetensors
  $V decode "$f/config.json" "$w" "$f/in" --out "$f/x_ref.npy"
  $V encode "$f/config.json" "$w" "$f/in" --out "$f/z_ref.npy"
  # the same values in the other formats and namings: the same reference outputs
  $V weights "$f/config.json" --seed 5 --out-dir "$f/w" --naming diffusers --format bin --dtype fp32 >/dev/null
  $V weights "$f/config.json" --seed 5 --out-dir "$f/w" --naming ldm --prefix first_stage_model. --format ckpt \
    --dtype fp32 >/dev/null
  for wf in diffusion_pytorch_model.safetensors diffusion_pytorch_model.bin vae-ldm.prefixed.ckpt; do
    "$dit" decode "$f/vae.plan" --weights "$f/w/$wf" --z "$f/in/z.npy" -o "$f/x.npy"
    "$dit" encode "$f/vae.plan" --weights "$f/w/$wf" --x "$f/in/x.npy" --noise "$f/in/e.npy" -o "$f/z.npy"
    rel "$f/x.npy" "$f/x_ref.npy" "full decode at 256, $wf" 1e-4
    rel "$f/z.npy" "$f/z_ref.npy" "full encode at 256, $wf" 1e-4
    rm -f "$f/w/$wf" # 330 MB each
  done
fi
finish

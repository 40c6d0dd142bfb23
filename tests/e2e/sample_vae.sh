#!/usr/bin/env bash
# dit sample --vae (issue #10): a latent DiT's samples decoded by a compiled
# VAE, as sample.py (a PNG grid) and sample_ddp.py (an .npz of uint8 images)
# do; and dit data images --vae, the latents of an image folder:
#  - the PNG of `dit sample --vae` is byte for byte the PNG of `dit decode` of
#    the latents it wrote with -o, and that decode matches the reference;
#  - the .npz holds [M, H, W, 3] uint8 images, and a run killed after one
#    batch and resumed writes the same bytes as an uninterrupted one; a resume
#    with other VAE weights is refused;
#  - `dit data images --vae ... --mean` writes the reference encoder's means
#    of the ADM-cropped images; --flips adds the mirrored images' latents.
# The DiT has random weights (--random-weights); the VAE is tests/ref/vae_ref.py's
# small configuration with its random weights.
# Usage: sample_vae.sh BUILD_DIR
source "$(dirname "$0")/lib.sh" "$1"
V="$py $root/tests/ref/vae_ref.py"
# the VAE: latents 8x8x4 <-> 64x64 images, as the tiny DiT's latents
$V config --small --out "$work/config.json"
$V weights "$work/config.json" --seed 3 --out-dir "$work/w" --naming diffusers --format safetensors --dtype fp32 >/dev/null
$V weights "$work/config.json" --seed 9 --out-dir "$work/w9" --naming diffusers --format safetensors --dtype fp32 >/dev/null
vw=$work/w/diffusion_pytorch_model.safetensors
"$ditc" "$work/config.json" --part both --batch 4 -o "$work/vae.plan"
"$ditc" "$root/specs/tests/tiny.dit" --batch 8 -o "$work/dit.plan"
common=(--random-weights 1 --steps 5 --seed 3 --vae "$work/vae.plan")

echo "== sample.py: a PNG grid of the decoded samples"
"$dit" sample "$work/dit.plan" "${common[@]}" --vae-weights "$vw" -n 4 --png "$work/grid.png" -o "$work/lat.npy"
"$dit" decode "$work/vae.plan" --weights "$vw" --z "$work/lat.npy" -o "$work/x.npy" --png "$work/grid2.png"
cmp -s "$work/grid.png" "$work/grid2.png" && echo "ok   dit sample --vae --png == dit decode --png of its latents" ||
  fail "the two PNGs differ"
mkdir -p "$work/in"
cp "$work/lat.npy" "$work/in/z.npy"
$V decode "$work/config.json" "$vw" "$work/in" --out "$work/x_ref.npy"
rel "$work/x.npy" "$work/x_ref.npy" "the samples' decode against the reference" 1e-4

echo "== sample_ddp.py: a resumable .npz of decoded images"
set_args=("${common[@]}" --cfg-scale 1 --num-samples 6 -n 2)
"$dit" sample "$work/dit.plan" "${set_args[@]}" --vae-weights "$vw" --npz "$work/full.npz"
if DIT_TEST_ABORT_AFTER_BATCHES=1 "$dit" sample "$work/dit.plan" "${set_args[@]}" --vae-weights "$vw" \
     --npz "$work/resumed.npz" 2>/dev/null; then fail "the run did not abort"; fi
if "$dit" sample "$work/dit.plan" "${set_args[@]}" --vae-weights "$work/w9/diffusion_pytorch_model.safetensors" \
     --npz "$work/resumed.npz" 2>"$work/mismatch.err"; then fail "a resume with other VAE weights was accepted"
else grep -q "vae_weights" "$work/mismatch.err" && echo "ok   a resume with other VAE weights is refused: $(head -c 160 "$work/mismatch.err")" ||
  { fail "the refusal does not name the VAE weights:"; cat "$work/mismatch.err"; }; fi
"$dit" sample "$work/dit.plan" "${set_args[@]}" --vae-weights "$vw" --npz "$work/resumed.npz"
cmp -s "$work/full.npz" "$work/resumed.npz" && echo "ok   the resumed .npz equals the uninterrupted one" ||
  fail "the resumed .npz differs"
$py - "$work/full.npz" <<'PY' || fails=$((fails + 1))
import sys, numpy as np
a = np.load(sys.argv[1])["arr_0"]
ok = a.dtype == np.uint8 and a.shape == (6, 64, 64, 3) and a.std() > 1
print("%s the .npz holds %s %s images (std %.1f)" % ("ok  " if ok else "FAIL", a.shape, a.dtype, a.std()))
sys.exit(0 if ok else 1)
PY

echo "== dit data images --vae: latents of an image folder"
$py - "$work/images" <<'PY'
import os, sys, numpy as np
from PIL import Image
rng = np.random.default_rng(5)
for c in ("cat", "dog"):
    os.makedirs(os.path.join(sys.argv[1], c))
    for i in range(3):  # 80x72: the ADM center crop resizes and crops it to 64x64
        Image.fromarray(rng.integers(0, 256, (72, 80, 3), dtype=np.uint8)).save(os.path.join(sys.argv[1], c, "%d.png" % i))
PY
"$dit" data images --root "$work/images" --image-size 64 -o "$work/pixels.ditdata" >/dev/null
"$dit" data images --root "$work/images" --image-size 64 --vae "$work/vae.plan" --vae-weights "$vw" --mean \
  -o "$work/latents.ditdata" >/dev/null
"$dit" data images --root "$work/images" --image-size 64 --vae "$work/vae.plan" --vae-weights "$vw" --flips \
  --seed 2 -o "$work/flips.ditdata" >"$work/flips.txt"
grep -q "flip" "$work/flips.txt" || { fail "--flips: no flip variants in:"; cat "$work/flips.txt"; }
$py - "$work" <<'PY' || fails=$((fails + 1))
import os, struct, sys, numpy as np
w = sys.argv[1]
def load(path):  # DITDATA: 64-byte header, labels (int64, 64-aligned), samples (64-aligned)
    b = open(path, "rb").read()
    count, C, H, W, dtype, ncls, flags = struct.unpack_from("<QIIIIII", b, 16)
    lab_off = 64
    labels = np.frombuffer(b, np.int64, count, lab_off)
    s_off = (lab_off + 8 * count + 63) // 64 * 64
    v = 2 if flags & 1 else 1
    dt = np.uint8 if dtype == 1 else np.float32
    x = np.frombuffer(b, dt, count * v * C * H * W, s_off).reshape(count, v, C, H, W)
    return labels, x
lab, px = load(os.path.join(w, "pixels.ditdata"))
x = (px[:, 0].astype(np.float32) / 255 - 0.5) / 0.5
os.makedirs(os.path.join(w, "din"), exist_ok=True)
np.save(os.path.join(w, "din", "x.npy"), x)
np.save(os.path.join(w, "din", "z.npy"), np.zeros((len(x), 4, 8, 8), np.float32))
np.save(os.path.join(w, "din", "e.npy"), np.zeros((len(x), 4, 8, 8), np.float32))
lab2, lat = load(os.path.join(w, "latents.ditdata"))
np.save(os.path.join(w, "lat_data.npy"), lat[:, 0])
_, fl = load(os.path.join(w, "flips.ditdata"))
ok = (lab == lab2).all() and lat.shape == (6, 1, 4, 8, 8) and fl.shape == (6, 2, 4, 8, 8) and list(lab) == [0, 0, 0, 1, 1, 1]
print("%s the latent sets' labels and shapes (%s, %s)" % ("ok  " if ok else "FAIL", lat.shape, fl.shape))
sys.exit(0 if ok else 1)
PY
$V encode "$work/config.json" "$vw" "$work/din" --mean --out "$work/lat_ref.npy"
rel "$work/lat_data.npy" "$work/lat_ref.npy" "dit data images --vae --mean against the reference encoder" 1e-4
finish

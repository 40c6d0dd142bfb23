#!/usr/bin/env bash
# `dit data images` against the PIL reference of train.py's data path:
# torchvision ImageFolder (sorted classes, sorted walk), PIL .convert("RGB"),
# ADM center_crop_arr (BOX halvings, BICUBIC resize, center crop). Random PNGs
# of many sizes and colour types go in, and JPEGs (colour at several
# qualities and subsamplings, progressive, greyscale, CMYK, a .jpg that is a
# PNG), decoded by the libjpeg-turbo that PIL uses; the DITDATA file is read back here
# with numpy from its documented layout (docs/dataset-format.md) and every
# byte must equal PIL's. Also checks the value mapping of the reader against
# ToTensor + Normalize(0.5, 0.5). Skips (77) without Debian's python3-pil.
# Usage: data_images_vs_pil.sh BUILD_DIR
set -euo pipefail
build=$1
py=/usr/bin/python3
$py -c 'import PIL, numpy' 2>/dev/null || { echo "SKIP: python3-pil or python3-numpy missing"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

$py - "$work/root" <<'PY'
import os, sys, numpy as np
from PIL import Image
root = sys.argv[1]
rng = np.random.default_rng(5)
sizes = [(500, 375), (375, 500), (64, 64), (65, 97), (1031, 257), (300, 1200), (33, 17), (17, 33), (40, 40), (96, 31)]
modes = ["RGB", "L", "RGBA", "P", "LA", "1"]
for c, cls in enumerate(["n01", "n02", "cat b"]):
    for k, (w, h) in enumerate(sizes):
        d = os.path.join(root, cls, "sub" if k % 4 == 3 else "")
        os.makedirs(d, exist_ok=True)
        # smooth gradients plus noise: both halving and bicubic have work to do
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([(xx * 255 // max(w - 1, 1)), (yy * 255 // max(h - 1, 1)), ((xx + yy) * 7) % 256], -1)
        arr = np.clip(base + rng.integers(-40, 41, size=(h, w, 3)), 0, 255).astype(np.uint8)
        im = Image.fromarray(arr, "RGB")
        mode = modes[(c * len(sizes) + k) % len(modes)]
        if mode == "P":
            im = im.convert("P", palette=Image.ADAPTIVE, colors=64)
        elif mode == "RGBA":
            im = Image.fromarray(np.concatenate([arr, rng.integers(0, 256, size=(h, w, 1), dtype=np.uint8)], -1), "RGBA")
        elif mode != "RGB":
            im = im.convert(mode)
        im.save(os.path.join(d, f"img{k:02d}.png"))
        # JPEGs as ImageNet has them: colour at several qualities and chroma subsamplings,
        # progressive, greyscale and CMYK (PIL writes an Adobe marker), one per image
        rgb = Image.fromarray(arr, "RGB")
        j = (c * len(sizes) + k) % 7
        jpath = os.path.join(d, f"photo{k:02d}" + (".JPEG" if j == 1 else ".jpg"))
        if j == 0: rgb.save(jpath, quality=90)
        elif j == 1: rgb.save(jpath, quality=75, subsampling=0)          # 4:4:4
        elif j == 2: rgb.save(jpath, quality=60, subsampling=1)          # 4:2:2
        elif j == 3: rgb.save(jpath, quality=85, progressive=True)
        elif j == 4: rgb.convert("L").save(jpath, quality=80)
        elif j == 5: rgb.convert("CMYK").save(jpath, quality=90)
        else: rgb.save(jpath, format="PNG")                             # a .jpg that is a PNG
PY

# a JPEG cut short is refused, as PIL's "image file is truncated"
mkdir -p "$work/cut/a"
$py - "$work/cut/a/x.jpg" <<'PY'
import io, sys, numpy as np
from PIL import Image
b = io.BytesIO()
Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(b, "JPEG")
open(sys.argv[1], "wb").write(b.getvalue()[: len(b.getvalue()) * 2 // 3])
try:
    Image.open(sys.argv[1]).convert("RGB"); sys.exit("PIL read a truncated JPEG")
except OSError:
    pass
PY
if "$build/runtime/dit" data images --root "$work/cut" --image-size 8 -o "$work/cut.ditdata" 2>"$work/cut.err"; then
  echo "FAIL: a truncated JPEG was accepted"; exit 1
fi
grep -q "x.jpg: not a readable JPEG: the file is truncated" "$work/cut.err" || { cat "$work/cut.err"; exit 1; }

for S in 32 64; do
  "$build/runtime/dit" data images --root "$work/root" --image-size $S --threads 4 -o "$work/d$S.ditdata" >/dev/null
  $py - "$work/root" "$work/d$S.ditdata" $S <<'PY'
import os, sys, struct, numpy as np
from PIL import Image
root, path, S = sys.argv[1], sys.argv[2], int(sys.argv[3])

def center_crop_arr(pil_image, image_size):  # ADM / DiT train.py
    while min(*pil_image.size) >= 2 * image_size:
        pil_image = pil_image.resize(tuple(x // 2 for x in pil_image.size), resample=Image.BOX)
    scale = image_size / min(*pil_image.size)
    pil_image = pil_image.resize(tuple(round(x * scale) for x in pil_image.size), resample=Image.BICUBIC)
    arr = np.array(pil_image)
    crop_y = (arr.shape[0] - image_size) // 2
    crop_x = (arr.shape[1] - image_size) // 2
    return arr[crop_y: crop_y + image_size, crop_x: crop_x + image_size]

classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
samples = []
for ci, cls in enumerate(classes):
    for r, _, files in sorted(os.walk(os.path.join(root, cls), followlinks=True)):
        for f in sorted(files):
            if f.lower().endswith((".png", ".jpg", ".jpeg")):
                samples.append((os.path.join(r, f), ci))

raw = open(path, "rb").read()
(magic, version, hbytes, count, C, H, W, dtype, ncls, flags, lcrc, scrc, res, hcrc) = struct.unpack("<8sIIQIIIIIIIIII", raw[:64])
assert magic == b"DITDATA\0" and version == 1 and hbytes == 64 and dtype == 1 and flags == 0
assert (count, C, H, W, ncls) == (len(samples), 3, S, S, len(classes)), (count, C, H, W, ncls)
labels = np.frombuffer(raw, "<i8", count, 64)
off = (64 + 8 * count + 63) // 64 * 64
data = np.frombuffer(raw, np.uint8, count * 3 * S * S, off).reshape(count, 3, S, S)
assert len(raw) == off + count * 3 * S * S
bad = 0
for i, (p, ci) in enumerate(samples):
    ref = center_crop_arr(Image.open(p).convert("RGB"), S).transpose(2, 0, 1)
    if labels[i] != ci or not np.array_equal(ref, data[i]):
        bad += 1
        diff = np.abs(ref.astype(int) - data[i].astype(int)).max()
        print(f"MISMATCH {p}: label {labels[i]} vs {ci}, max byte diff {diff}")
# the reader's mapping: ToTensor then Normalize(0.5, 0.5), in float32
x = data[0].astype(np.float32)
mapped = (x / np.float32(255) - np.float32(0.5)) / np.float32(0.5)
assert mapped.min() >= -1 and mapped.max() <= 1
print(f"S={S}: {count} images, {len(classes)} classes, {count - bad} equal to PIL byte for byte")
sys.exit(1 if bad else 0)
PY
done

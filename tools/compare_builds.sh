#!/usr/bin/env bash
# compare_builds.sh OLD_DIR NEW_DIR: checks that two builds of ditc and dit
# (each dir holds both binaries) give bit-identical results: dit forward (with
# and without guidance), dit sample (DDPM, DDIM, --npz), dit loss (losses and
# gradients) and 6 steps of dit train (checkpoints, loss.tsv) on the test
# specs, with random weights on every layer. For refactors that must not
# change numerics (issue 10). Plans are compiled by each build's own ditc.
set -euo pipefail
old=$(cd "$1" && pwd) new=$(cd "$2" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
same() { # what a b
  if cmp -s "$2" "$3"; then echo "same: $1"; else echo "DIFFERENT: $1"; fails=$((fails + 1)); fi
}
for spec in tiny tiny_pixel tiny_hd72; do
  d=$work/$spec
  mkdir -p "$d"
  "$new/ditc" "$root/specs/tests/$spec.dit" --info --json >"$d/cfg.json"
  $py "$root/tests/ref/dit_ref.py" weights "$d/cfg.json" --seed 3 --out-dir "$d/w" >/dev/null
  w=$d/w/official.safetensors
  for b in old new; do
    bin=${!b}
    "$bin/ditc" "$root/specs/tests/$spec.dit" --batch 4 -o "$d/$b.plan"
    "$bin/ditc" "$root/specs/tests/$spec.dit" --mode train --batch 4 -o "$d/$b.tplan"
  done
  read -r C L K <<<"$($py -c "
import json; c = json.load(open('$d/cfg.json')); print(c['in_channels'], c['latent_size'], c['num_classes'])")"
  $py - "$d" "$C" "$L" "$K" <<'PY'
import sys, numpy as np
d, C, L, K = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
r = np.random.default_rng(9)
np.save(d + "/x.npy", r.standard_normal((4, C, L, L)).astype(np.float32))
np.save(d + "/x2.npy", r.standard_normal((2, C, L, L)).astype(np.float32))
np.save(d + "/noise.npy", r.standard_normal((4, C, L, L)).astype(np.float32))
np.save(d + "/t.npy", np.array([0, 1, 500, 999], dtype=np.int64))
np.save(d + "/t2.npy", np.array([3, 700], dtype=np.int64))
np.save(d + "/y.npy", np.array([0, 1, K - 1, K], dtype=np.int64))
np.save(d + "/y2.npy", np.array([1, 2], dtype=np.int64))
imgs = r.integers(0, 256, size=(16, L, L), dtype=np.uint8)
open(d + "/img.idx", "wb").write(np.array([0x0803, 16, L, L], dtype=">u4").tobytes() + imgs.tobytes())
open(d + "/lab.idx", "wb").write(np.array([0x0801, 16], dtype=">u4").tobytes() + (np.arange(16) % K).astype(np.uint8).tobytes())
PY
  for b in old new; do
    bin=${!b}
    "$bin/dit" forward "$d/$b.plan" --weights "$w" --x "$d/x.npy" --t "$d/t.npy" --y "$d/y.npy" -o "$d/$b.fwd.npy"
    "$bin/dit" forward "$d/$b.plan" --weights "$w" --x "$d/x2.npy" --t "$d/t2.npy" --y "$d/y2.npy" --cfg-scale 3 -o "$d/$b.cfg.npy"
    "$bin/dit" sample "$d/$b.plan" --weights "$w" -n 2 --steps 20 --seed 4 -o "$d/$b.ddpm.npy" >/dev/null
    "$bin/dit" sample "$d/$b.plan" --weights "$w" -n 4 --cfg-scale 1 --sampler ddim --steps ddim10 --eta 0.5 -o "$d/$b.ddim.npy" >/dev/null
    "$bin/dit" loss "$d/$b.tplan" --weights "$w" --x0 "$d/x.npy" --t "$d/t.npy" --y "$d/y.npy" --noise "$d/noise.npy" \
      --losses-out "$d/$b.losses.npy" --grads-out "$d/$b.grads.safetensors" >/dev/null
  done
  for f in fwd cfg ddpm ddim losses; do same "$spec $f" "$d/old.$f.npy" "$d/new.$f.npy"; done
  same "$spec grads" "$d/old.grads.safetensors" "$d/new.grads.safetensors"
  if [ "$C" = 1 ]; then # pixel models with one channel train on an IDX set; --npz needs a pixel model
    "$new/dit" data fashion-mnist --images "$d/img.idx" --labels "$d/lab.idx" -o "$d/set.ditdata" >/dev/null
    for b in old new; do
      bin=${!b}
      "$bin/dit" train "$d/$b.tplan" --data "$d/set.ditdata" --steps 6 --ckpt-every 3 --seed 2 -o "$d/$b.run" >/dev/null
      "$bin/dit" sample "$d/$b.plan" --weights "$w" --steps 10 --num-samples 6 --npz "$d/$b.npz" >/dev/null
    done
    for f in 0000003.safetensors 0000006.safetensors 0000006-ema.safetensors; do
      same "$spec train $f" "$d/old.run/checkpoints/$f" "$d/new.run/checkpoints/$f"
    done
    same "$spec train loss.tsv" "$d/old.run/loss.tsv" "$d/new.run/loss.tsv"
    same "$spec npz" "$d/old.npz" "$d/new.npz"
  fi
done
# the shipped specs: the plans and reports each build compiles, and DiT-S/8's forward
for spec in "$root"/specs/*.dit; do
  n=$(basename "$spec" .dit)
  for b in old new; do
    bin=${!b}
    "$bin/ditc" "$spec" --batch 2 -o "$work/$n.$b.plan"
    "$bin/ditc" "$spec" --mode train --batch 2 -o "$work/$n.$b.tplan"
    "$bin/ditc" "$spec" --info --json >"$work/$n.$b.json"
  done
  for f in plan tplan json; do
    if ! cmp -s "$work/$n.old.$f" "$work/$n.new.$f"; then echo "DIFFERENT: $n $f"; fails=$((fails + 1)); fi
  done
done
echo "compared the plans, training plans and reports of $(ls "$root"/specs/*.dit | wc -l) shipped specs"
d=$work/S8
mkdir -p "$d"
cp "$work/S8_256.new.json" "$d/cfg.json"
$py "$root/tests/ref/dit_ref.py" weights "$d/cfg.json" --seed 3 --out-dir "$d/w" >/dev/null
$py -c "
import numpy as np; r = np.random.default_rng(2)
np.save('$d/x.npy', r.standard_normal((2, 4, 32, 32)).astype(np.float32))
np.save('$d/t.npy', np.array([10, 900], dtype=np.int64)); np.save('$d/y.npy', np.array([207, 1000], dtype=np.int64))"
for b in old new; do
  bin=${!b}
  "$bin/dit" forward "$work/S8_256.$b.plan" --weights "$d/w/official.safetensors" --x "$d/x.npy" --t "$d/t.npy" \
    --y "$d/y.npy" -o "$d/$b.npy"
done
same "DiT-S/8 256 forward" "$d/old.npy" "$d/new.npy"
[ "$fails" -eq 0 ] && echo "all bit-identical" || { echo "$fails different"; exit 1; }

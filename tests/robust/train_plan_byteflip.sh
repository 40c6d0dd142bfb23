#!/usr/bin/env bash
# train_plan_byteflip.sh: one random byte flipped in a training plan
# (tiny_pixel, --mode train --batch 4), through dit info, dit loss and
# dit train --steps 1. Half the mutants keep the flip's broken checksum (the
# loader's CRC check), half get every section's and the header's CRC
# recomputed, so the structural checks of the loader see the flip. Every run
# must exit 0, or 1 or 2 with "error" on stderr: never a signal (exit >= 128,
# an ASan abort included), a hang (timeout 60: exit 124), or a sanitizer
# report. Seeded: BYTEFLIP_SEED (default 1), BYTEFLIP_N mutants (default 200)
# through info and loss, every BYTEFLIP_TRAIN_EVERY-th (default 2) also
# through train. A failure prints the seed, the mutant and its offset.
source "$(dirname "$0")/lib.sh" "$1"
seed=${BYTEFLIP_SEED:-1}
count=${BYTEFLIP_N:-200}
train_every=${BYTEFLIP_TRAIN_EVERY:-2}

robust_tiny_pixel 4 # px.safetensors: the inference plan's names are the training plan's tensors
robust_dataset
plan=$work/train.plan
"$ditc" "$root/specs/tests/tiny_pixel.dit" --mode train --batch 4 -o "$plan"
$py - "$work" "$plan" "$seed" "$count" <<'PY'
import struct, sys, zlib, numpy as np
work, plan, seed, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(7)
np.save(work + "/x0.npy", rng.standard_normal((4, 1, 8, 8)).astype(np.float32))
np.save(work + "/noise.npy", rng.standard_normal((4, 1, 8, 8)).astype(np.float32))
np.save(work + "/t.npy", np.array([0, 1, 500, 999], dtype=np.int64))
np.save(work + "/y.npy", np.array([0, 3, 9, 10], dtype=np.int64))
good = open(plan, "rb").read()
rng = np.random.default_rng(seed)
with open(work + "/mutants.txt", "w") as listing:
    for i in range(count):
        b = bytearray(good)
        off = int(rng.integers(0, len(b)))
        b[off] ^= int(rng.integers(1, 256))
        recrc = i % 2 == 1
        if recrc:  # recompute the section CRCs (table at header+56, n at +64) and the header's
            table, n = struct.unpack_from("<QI", b, 56)
            for s in range(n if table + 32 * n <= len(b) else 0):
                _, _, so, sb, _, _ = struct.unpack_from("<IIQQII", b, table + 32 * s)
                if so + sb <= len(b):
                    struct.pack_into("<I", b, table + 32 * s + 24, zlib.crc32(bytes(b[so:so + sb])))
            struct.pack_into("<I", b, 80, 0)
            struct.pack_into("<I", b, 80, zlib.crc32(bytes(b[:112])))
        open("%s/m%03d.plan" % (work, i), "wb").write(b)
        listing.write("%d %d %s\n" % (i, off, "recrc" if recrc else "raw"))
PY

failures=0
check() { # what rc mutant offset kind
  local what=$1 rc=$2 i=$3 off=$4 kind=$5 bad=""
  if [ "$rc" -ge 124 ]; then bad="exit $rc (a signal or the timeout)"
  elif grep -qE 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:' "$work/err"; then bad="a sanitizer report"
  elif [ "$rc" -ne 0 ] && { [ "$rc" -gt 2 ] || ! grep -q error "$work/err"; }; then bad="exit $rc without 'error' on stderr"
  fi
  if [ -n "$bad" ]; then
    echo "FAIL: $what on mutant $i (seed $seed, offset $off, $kind): $bad; stderr:"
    head -20 "$work/err"
    failures=$((failures + 1))
  fi
}

# the unmutated plan works with all three
"$dit" info "$plan" >/dev/null
loss=(loss "$plan" --weights "$work/px.safetensors" --x0 "$work/x0.npy" --t "$work/t.npy" --y "$work/y.npy"
      --noise "$work/noise.npy" --threads 1)
"$dit" "${loss[@]}" | grep -q '^loss '
"$dit" train "$plan" --data "$work/px.ditdata" --steps 1 --threads 1 -o "$work/run_good" >/dev/null

loaded=0
while read -r i off kind; do
  m=$(printf '%s/m%03d.plan' "$work" "$i")
  rc=0; timeout 60 "$dit" info "$m" >/dev/null 2>"$work/err" || rc=$?
  check "dit info" "$rc" "$i" "$off" "$kind"
  [ "$rc" -eq 0 ] && loaded=$((loaded + 1))
  rc=0; timeout 60 "$dit" "${loss[@]/#$plan/$m}" >/dev/null 2>"$work/err" || rc=$?
  check "dit loss" "$rc" "$i" "$off" "$kind"
  if [ $((i % train_every)) -eq 0 ]; then
    rc=0
    timeout 60 "$dit" train "$m" --data "$work/px.ditdata" --steps 1 --threads 1 -o "$work/run$i" \
      >/dev/null 2>"$work/err" || rc=$?
    check "dit train" "$rc" "$i" "$off" "$kind"
    rm -rf "$work/run$i"
  fi
  rm -f "$m"
done <"$work/mutants.txt"
[ "$failures" -eq 0 ] || { echo "FAIL: $failures runs of $count mutants (seed $seed)"; exit 1; }
echo "$count one-byte mutants of a training plan (seed $seed; $loaded still load): every dit info, loss and train run exited 0, 1 or 2 with an error message"

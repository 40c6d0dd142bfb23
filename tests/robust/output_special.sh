#!/usr/bin/env bash
# output_special.sh: no command replaces a device file, a FIFO, a link or one
# of its own inputs (issue 16). Outputs to /dev/null and to a FIFO with a
# reader are written through (the node stays what it was); a FIFO without a
# reader fails at once (never a hang); a link stays a link and its target gets
# the file; an output that names an input, a folder, or a missing folder is
# refused before anything is written; a failed --png leaves no -o behind.
source "$(dirname "$0")/lib.sh" "$1"
robust_tiny_pixel 4
spec=$root/specs/tests/tiny_pixel.dit
s=("$dit" sample "$work/px.plan" --weights "$work/px.safetensors" --steps 3 -n 2)
cd "$work"

is_char_dev() { [ -c "$1" ] || { echo "FAIL: $1 is no longer a character device"; exit 1; }; }
is_fifo() { [ -p "$1" ] || { echo "FAIL: $1 is no longer a FIFO"; exit 1; }; }

"$ditc" "$spec" --batch 2 -o b2.plan
# /dev/null: written through by ditc and every dit writer
"$ditc" "$spec" --batch 2 -o /dev/null
"$ditc" "$spec" --info --json -o /dev/null
"${s[@]}" -o /dev/null >/dev/null
"${s[@]}" --png /dev/null >/dev/null
is_char_dev /dev/null

# a FIFO with a reader gets the bytes; the FIFO stays
mkfifo fifo
# fifo_read FIFO CMD...: opens FIFO for reading first (no race with the writer),
# runs CMD, then prints the bytes it wrote there
fifo_read() {
  $py - "$@" <<'PY'
import os, subprocess, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)  # a reader before the writer starts
rc = subprocess.call(sys.argv[2:], stdout=subprocess.DEVNULL)
data = b""
while True:
    try:
        chunk = os.read(fd, 1 << 16)
    except BlockingIOError:
        break
    if not chunk:
        break
    data += chunk
sys.stdout.buffer.write(data)
sys.exit(rc)
PY
}
fifo_read fifo "$ditc" "$spec" --batch 2 -o fifo >got.plan
cmp got.plan b2.plan || { echo "FAIL: the FIFO's reader did not get the plan"; exit 1; }
fifo_read fifo "${s[@]}" -o fifo >got.npy
[ "$(head -c 6 got.npy | tail -c 5)" = NUMPY ] || { echo "FAIL: the FIFO's reader got no .npy from dit sample"; exit 1; }
is_fifo fifo
# ... and one without a reader fails at once, for ditc and dit
expect_fail 1 "no process is reading the FIFO" timeout 30 "$ditc" "$spec" --batch 2 -o fifo
expect_fail 1 "no process is reading the FIFO" timeout 30 "${s[@]}" -o fifo
is_fifo fifo
# a failed --png (the FIFO) leaves no .npy: the outputs of one command go together
expect_fail 1 "no process is reading the FIFO" timeout 30 "${s[@]}" -o o.npy --png fifo
[ ! -e o.npy ] || { echo "FAIL: dit sample wrote o.npy although its --png failed"; exit 1; }
no_stale_tmp "$work"

# a link stays a link; its target is written (atomically), also through a chain
ln -s target.plan link.plan
ln -s link.plan link2.plan
"$ditc" "$spec" --batch 2 -o link2.plan
[ -L link.plan ] && [ -L link2.plan ] && [ -f target.plan ] && cmp -s target.plan b2.plan ||
  { echo "FAIL: -o through links"; ls -la; exit 1; }
ln -s target.npy link.npy
"${s[@]}" -o link.npy >/dev/null
[ -L link.npy ] && [ -f target.npy ] || { echo "FAIL: dit sample -o link"; ls -la; exit 1; }
ln -s loop1 loop2; ln -s loop2 loop1
expect_fail 1 "too many levels of symbolic links" "$ditc" "$spec" --batch 2 -o loop1

# an output that is an input: ditc's spec, an included spec (through a link too), dit's plan and weights
cp "$root/specs/families/dit.dit" fam.dit
printf 'include "fam.dit"\nmodel "DiT-S/8" : "DiT-S" {\n  image_size = 64\n  patch_size = 8\n}\n' >inc.dit
cp inc.dit own.dit
ln -s own.dit own_link.dit
before=$(sha256sum own.dit inc.dit fam.dit px.plan px.safetensors)
expect_fail 1 "-o names an input of this compilation" "$ditc" own.dit -o own.dit
expect_fail 1 "-o names an input of this compilation" "$ditc" own.dit -o own_link.dit
"$ditc" inc.dit -o inc.plan # the spec compiles
expect_fail 1 "-o names an input of this compilation (fam.dit)" "$ditc" inc.dit -o fam.dit
expect_fail 1 "is also an input of this command" "${s[@]}" -o px.plan
expect_fail 1 "is also an input of this command" "${s[@]}" --png px.safetensors
expect_fail 1 "given as two outputs" "${s[@]}" -o o.npy --png o.npy
"$ditc" "$spec" --mode train --batch 4 -o t.plan
robust_inputs # x.npy, noise.npy, t.npy, y.npy in $work
before_t=$(sha256sum t.plan x.npy t.npy)
l=("$dit" loss t.plan --weights px.safetensors --x0 x.npy --t t.npy --y y.npy --noise noise.npy)
expect_fail 1 "is also an input of this command" "${l[@]}" --grads-out px.safetensors
expect_fail 1 "is also an input of this command" "${l[@]}" --losses-out t.npy
f=("$dit" forward px.plan --weights px.safetensors --x x.npy --t t.npy --y y.npy)
expect_fail 1 "is also an input of this command" "${f[@]}" -o x.npy
[ "$before" = "$(sha256sum own.dit inc.dit fam.dit px.plan px.safetensors)" ] && [ "$before_t" = "$(sha256sum t.plan x.npy t.npy)" ] ||
  { echo "FAIL: an input was changed"; exit 1; }

# folders: an output that is a folder, or in a missing one, is refused before any work
mkdir adir
expect_fail 1 "is a directory" "$ditc" "$spec" --batch 2 -o adir
expect_fail 1 "is a folder" "${s[@]}" -o adir
expect_fail 1 "folder nodir does not exist" "${s[@]}" -o nodir/o.npy
mkdir d.npz
expect_fail 1 "d.npz: cannot write: is a folder" "${s[@]}" --npz d.npz --num-samples 4
[ -z "$(ls -A d.npz)" ] && [ ! -e d.npz.partial ] || { echo "FAIL: --npz at a folder left files"; exit 1; }
expect_fail 1 "folder nodir does not exist" "${s[@]}" --npz nodir/s.npz --num-samples 4
[ ! -e nodir ] || { echo "FAIL: nodir was created"; exit 1; }
no_stale_tmp "$work"
echo "ok: special outputs"

# lib.sh: shared setup of the robust regression tests (sourced, not run).
# Usage in a test: source "$(dirname "$0")/lib.sh" "$1"  (BUILD_DIR)
# Gives: $build $root $work (removed at exit) $ditc $dit $py, and
#   robust_tiny_pixel [BATCH]  -> $work/px.plan, $work/px.safetensors (random
#                                  weights on every layer), $work/px.json
#   robust_dataset            -> $work/px.ditdata (32 random 8x8 images, 10 classes)
#   robust_inputs             -> $work/{x,noise}.npy f32 [4,1,8,8], {t,y}.npy i64 [4] (tiny_pixel's)
#   expect_fail CODE TEXT CMD...  CMD must exit CODE (no signal) with TEXT on stderr
#   no_stale_tmp DIR          DIR holds no .NAME.tmp.* files
set -euo pipefail
build=$(cd "$1" && pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
py=/usr/bin/python3
ditc=$build/compiler/ditc
dit=$build/runtime/dit
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# MPI singleton init leaks inside libmpi's plugins (see tests/CMakeLists.txt)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
case "$ASAN_OPTIONS" in *detect_leaks=1*) ASAN_OPTIONS=${ASAN_OPTIONS/detect_leaks=1/detect_leaks=0} ;; esac
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

need_numpy() { $py -c 'import numpy, torch' 2>/dev/null || { echo "SKIP: python3-numpy/python3-torch missing"; exit 77; }; }

robust_tiny_pixel() { # [batch]
  need_numpy
  "$ditc" "$root/specs/tests/tiny_pixel.dit" -o "$work/px.plan" --batch "${1:-4}"
  "$ditc" "$root/specs/tests/tiny_pixel.dit" --info --json >"$work/px.json"
  $py "$root/tests/ref/dit_ref.py" weights "$work/px.json" --seed 3 --out-dir "$work/pxw" >/dev/null
  cp "$work/pxw/official.safetensors" "$work/px.safetensors"
}

robust_dataset() {
  need_numpy
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
  "$dit" data fashion-mnist --images "$work/images.idx" --labels "$work/labels.idx" -o "$work/px.ditdata" >/dev/null
}

robust_inputs() {
  need_numpy
  $py - "$work" <<'PY'
import sys, numpy as np
work = sys.argv[1]
rng = np.random.default_rng(5)
np.save(work + "/x.npy", rng.standard_normal((4, 1, 8, 8)).astype(np.float32))
np.save(work + "/noise.npy", rng.standard_normal((4, 1, 8, 8)).astype(np.float32))
np.save(work + "/t.npy", np.array([0, 10, 500, 999], dtype=np.int64))
np.save(work + "/y.npy", np.array([0, 1, 2, 3], dtype=np.int64))
PY
}

expect_fail() { # code text cmd...
  local code=$1 text=$2 rc=0
  shift 2
  "$@" >"$work/.out" 2>"$work/.err" || rc=$?
  if [ "$rc" -ne "$code" ] || ! grep -qF -- "$text" "$work/.err"; then
    echo "FAIL: $* exited $rc (want $code) with stderr:"; cat "$work/.err"; echo "want: $text"; exit 1
  fi
}

no_stale_tmp() { # dir
  local left
  left=$(find "$1" -name '.*.tmp.*' | head -5)
  [ -z "$left" ] || { echo "FAIL: stale temporaries in $1: $left"; exit 1; }
}

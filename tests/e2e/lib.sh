# lib.sh: shared setup of the e2e tests that compare against references
# (sourced, not run). Usage in a test: source "$(dirname "$0")/lib.sh" "$1"  (BUILD_DIR)
# Gives: $build $root $work (removed at exit) $ditc $dit $py $fails, and
#   fail MSG...                    counts a failure and says it
#   rel A.npy B.npy LABEL BOUND    ||A - B|| / ||B|| <= BOUND (in float64), or a failure
#   has FILE PATTERN LABEL         grep PATTERN in FILE, or a failure that shows FILE
#   refuses LABEL TEXT CMD...      CMD must fail with TEXT on stderr
#   finish                         "ALL OK" and exit 0, or the count and exit 1
set -euo pipefail
build=$(cd "$1" && pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
py=/usr/bin/python3
ditc=$build/compiler/ditc
dit=$build/runtime/dit
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
rel() { # a.npy b.npy label bound
  $py - "$@" <<'PY' || fails=$((fails + 1))
import sys, numpy as np
a, b = np.load(sys.argv[1]).astype(np.float64), np.load(sys.argv[2]).astype(np.float64)
e = np.linalg.norm(a - b) / np.linalg.norm(b) if a.shape == b.shape else float("inf")
ok = e <= float(sys.argv[4])
print("%s %s: rel %.3g (bound %s)" % ("ok  " if ok else "FAIL", sys.argv[3], e, sys.argv[4]))
sys.exit(0 if ok else 1)
PY
}
has() { grep -q -- "$2" "$1" || { fail "$3: '$2' not in:"; cat "$1"; }; }
refuses() { # label expected-substring command...
  local label=$1 want=$2
  shift 2
  if "$@" >"$work/refused.out" 2>"$work/refused.err"; then fail "$label: accepted"; return; fi
  grep -q -- "$want" "$work/refused.err" && echo "ok   $label: $(head -c 200 "$work/refused.err")" ||
    { fail "$label: '$want' not in:"; cat "$work/refused.err"; }
}
finish() { [ $fails = 0 ] && echo "ALL OK" || { echo "$fails failure(s)"; exit 1; }; }

#!/usr/bin/env bash
# docs_ops.sh: every op is documented. Each IR op of compiler/ops.def has a
# row "| `name` |" in docs/ir.md, and each plan op of
# runtime/include/dit/plan_ops.h a row "| NUMBER | name |" in
# docs/plan-format.md, so a new op that skips its documentation fails here
# (docs/adding-an-op.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
fails=0
while read -r name; do
  grep -qF "| \`$name\` |" "$root/docs/ir.md" || { echo "docs/ir.md: no row for IR op '$name'"; fails=$((fails + 1)); }
done < <(sed -n 's/^OP([A-Z_0-9]*, *"\([a-z_0-9]*\)".*/\1/p' "$root/compiler/ops.def")
while read -r value name; do
  grep -qE "^\| $value \| $name \|" "$root/docs/plan-format.md" ||
    { echo "docs/plan-format.md: no row '| $value | $name |' for plan op $name"; fails=$((fails + 1)); }
done < <(sed -n 's/^ *X([A-Z_0-9]*, \([0-9]*\), \([a-z_0-9]*\),.*/\1 \2/p' "$root/runtime/include/dit/plan_ops.h")
n_ir=$(grep -c '^OP(' "$root/compiler/ops.def")
n_plan=$(grep -cE '^ *X\([A-Z_0-9]+, [0-9]+, ' "$root/runtime/include/dit/plan_ops.h")
[ "$n_ir" -gt 30 ] && [ "$n_plan" -gt 20 ] || { echo "parsed only $n_ir IR ops and $n_plan plan ops"; exit 1; }
[ "$fails" -eq 0 ] || exit 1
echo "ok: $n_ir IR ops and $n_plan plan ops documented"

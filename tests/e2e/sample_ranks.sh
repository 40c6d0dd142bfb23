#!/usr/bin/env bash
# sample_ranks.sh: `mpirun -np K dit sample ... --num-samples M --npz OUT.npz`
# (issue #11, sample_ddp.py's job): the ranks split the batches, and each
# image's noise and label come from its index and the seed, so the .npz is
# byte-identical for K = 1, 2 and 3, and with DPM-Solver++ as with DDIM; a
# 2-rank run killed after a batch per rank, resumed by 1 rank, gives the same
# bytes too. Skips (77) when mpirun is missing. Usage: sample_ranks.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
command -v mpirun >/dev/null || { echo "SKIP: mpirun missing (Debian's openmpi-bin)"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
dit=$build/runtime/dit
spec=$root/specs/tests/tiny_pixel.dit
"$build/compiler/ditc" "$spec" --info --json >"$work/cfg.json"
$py "$root/tests/ref/dit_ref.py" weights "$work/cfg.json" --seed 3 --out-dir "$work/w" >/dev/null
"$build/compiler/ditc" "$spec" --batch 4 -o "$work/p.plan"
fails=0
for sampler in "--sampler ddim --steps ddim5" "--sampler dpm++ --steps 5 --order 3"; do
  args=(sample "$work/p.plan" --weights "$work/w/official.safetensors" -n 2 --num-samples 9 $sampler --seed 5)
  "$dit" "${args[@]}" --npz "$work/k1.npz" 2>/dev/null
  for k in 2 3; do
    mpirun -np $k "$dit" "${args[@]}" --npz "$work/k$k.npz" 2>/dev/null
    if cmp -s "$work/k1.npz" "$work/k$k.npz"; then echo "$sampler: $k ranks == 1 rank (bytes)  ok"
    else echo "$sampler: $k ranks differ from 1 rank  FAIL"; fails=$((fails + 1)); fi
  done
  # killed: each of 2 ranks stops after its first batch; then 1 rank resumes the rest
  DIT_TEST_ABORT_AFTER_BATCHES=1 mpirun -np 2 "$dit" "${args[@]}" --npz "$work/kill.npz" >/dev/null 2>&1 || true
  [ -d "$work/kill.npz.partial" ] && [ ! -e "$work/kill.npz" ] || { echo "$sampler: the killed run left no partial set  FAIL"; fails=$((fails + 1)); }
  "$dit" "${args[@]}" --npz "$work/kill.npz" 2>/dev/null
  if cmp -s "$work/k1.npz" "$work/kill.npz"; then echo "$sampler: killed 2-rank run resumed by 1 rank == 1 rank  ok"
  else echo "$sampler: the resumed set differs  FAIL"; fails=$((fails + 1)); fi
  rm -rf "$work"/*.npz "$work"/*.partial
done
# one -o written by every rank is refused
if mpirun -np 2 "$dit" sample "$work/p.plan" --weights "$work/w/official.safetensors" -n 2 -o "$work/x.npy" 2>"$work/e.txt"; then
  echo "mpirun without --npz: accepted  FAIL"; fails=$((fails + 1))
elif grep -q "splits an evaluation set" "$work/e.txt"; then echo "mpirun without --npz: refused  ok"
else echo "mpirun without --npz: wrong message  FAIL"; cat "$work/e.txt"; fails=$((fails + 1)); fi
[ $fails -eq 0 ]

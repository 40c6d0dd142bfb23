#!/usr/bin/env bash
# tools/gpu_bundle.sh: prepares a GPU visit (issue #5). Run it HERE, on the
# development machine: it builds a Release tree in build-gpu/ and assembles
# bundle/ (ignored by git) that the device machine receives as a carried path:
#   bundle/bin/    ditc, dit, bench_forward and the GPU test binaries (test_gpu*)
#   bundle/lib/    every shared library they need that is neither glibc nor the
#                  CUDA toolkit / driver (OpenBLAS, gfortran, quadmath, png, z, gomp, cmocka)
#   bundle/plans/  plans compiled here for --arch sm_90 (fp32, tf32, bf16) of
#                  DiT-XL/2-256 at batch 256 and of the tiny test spec, plus the
#                  model report (XL2_256.info.json) whose gmacs give the FLOP count;
#                  plans/test/ those of tests/gpu/test_gpu_vs_cpu (DIT_TEST_PLAN_DIR)
#   bundle/MANIFEST.txt  commit, date, options, sizes, ldd of every binary
#   bundle/COMMIT        the commit (HEAD, "+dirty" when the tree had changes)
# Then it prints the exact `run` call. tools/gpu_check.sh runs there.
#   tools/gpu_bundle.sh [--jobs N] [--no-build]
# Environment: GPU_BUNDLE_ARCH (default sm_90), GPU_BUNDLE_CMAKE_ARGS (extra),
# GPU_BUNDLE_MAX_MIB (default 56).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=1
build=1
while [ $# -gt 0 ]; do
  case $1 in
    --jobs) jobs=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "usage: tools/gpu_bundle.sh [--jobs N] [--no-build]" >&2; exit 2 ;;
  esac
done
arch=${GPU_BUNDLE_ARCH:-sm_90}
max_mib=${GPU_BUNDLE_MAX_MIB:-56}
bdir=$root/build-gpu
out=$root/bundle

# Both output folders must be ignored by git: the device gets bundle/ only as a carried path.
for p in build-gpu bundle; do
  if ! git check-ignore -q "$p/"; then
    echo "gpu_bundle: $p/ is not ignored by git: add '/$p/' to .gitignore" >&2
    exit 1
  fi
done

# ---- configure ------------------------------------------------------------------------------
# The GPU tests (CTest label "gpu") are CMocka programs inside the test suite: build the suite
# only when such tests exist; otherwise the tests stay off (the device has no CMocka).
tests=OFF
if grep -rqsE 'LABELS[^)]*\bgpu\b|dit_test\([A-Za-z0-9_]+ +gpu\b|test_gpu' tests/CMakeLists.txt tests/*/CMakeLists.txt; then
  tests=ON
fi
# Any CUDA switch of the build (option(DIT_..CUDA.. ...)) is turned on.
cuda_opts=()
for o in $(grep -rhoE 'option\( *DIT_[A-Z0-9_]*CUDA[A-Z0-9_]*' CMakeLists.txt runtime compiler cmake tests 2>/dev/null \
           | sed 's/option( *//' | sort -u); do
  cuda_opts+=("-D$o=ON")
done
cmake_args=(-S "$root" -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDIT_TESTS=$tests
            -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON "${cuda_opts[@]}")
# shellcheck disable=SC2206
[ -n "${GPU_BUNDLE_CMAKE_ARGS:-}" ] && cmake_args+=(${GPU_BUNDLE_CMAKE_ARGS})
echo "== configure: cmake ${cmake_args[*]}"
cmake "${cmake_args[@]}" >"$root/build-gpu.configure.log.tmp.txt" 2>&1 || {
  cat "$root/build-gpu.configure.log.tmp.txt" >&2; exit 1; }
rm -f "$root/build-gpu.configure.log.tmp.txt"

# ---- build ----------------------------------------------------------------------------------
targets=(ditc dit bench_forward)
if [ "$tests" = ON ]; then
  while read -r t; do targets+=("$t"); done < <(ninja -C "$bdir" -t targets all 2>/dev/null \
    | sed -n 's/^\(test_gpu[A-Za-z0-9_]*\): phony$/\1/p' | sort -u)
fi
if [ $build = 1 ]; then
  echo "== build (-j$jobs): ${targets[*]}"
  cmake --build "$bdir" -j"$jobs" --target "${targets[@]}"
fi

# ---- assemble -------------------------------------------------------------------------------
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib" "$out/plans"
find_bin() { find "$bdir" -type f -name "$1" -perm -u+x ! -path '*/CMakeFiles/*' | head -1; }
for t in "${targets[@]}"; do
  f=$(find_bin "$t")
  if [ -z "$f" ]; then echo "gpu_bundle: built target $t not found under build-gpu/" >&2; exit 1; fi
  cp "$f" "$out/bin/"
done
gpu_tests=$(cd "$out/bin" && ls test_gpu* 2>/dev/null | tr '\n' ' ' || true)

# Shared libraries: all that ldd resolves, less glibc's own, the dynamic loader, the CUDA
# toolkit and the NVIDIA driver (those come from the device machine).
skip_re='^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|libdl\.so|librt\.so|libresolv|libutil\.so|libmvec|libcuda|libnvidia-|libcudart|libcublas|libnvrtc|libnvJitLink|libnvptxcompiler|libcufft|libcurand|libcusparse|libcusolver|libnvToolsExt|libcupti|libnvvm)'
missing=""
for b in "$out"/bin/*; do
  while read -r line; do
    name=$(echo "$line" | awk '{print $1}')
    path=$(echo "$line" | awk '$2 == "=>" {print $3}')
    [ -z "$name" ] && continue
    if echo "$name" | grep -qE "$skip_re"; then continue; fi
    if [ "$path" = "not" ] || [ -z "$path" ]; then
      case $name in /*) continue ;; esac   # the loader, listed by path
      missing="$missing $name($(basename "$b"))"
      continue
    fi
    [ -e "$out/lib/$name" ] || cp -L "$path" "$out/lib/$name"
  done < <(ldd "$b" 2>/dev/null | sed 's/^[[:space:]]*//')
done
if [ -n "$missing" ]; then
  echo "gpu_bundle: libraries that are not found here (the CUDA toolkit's are expected there):$missing"
fi

# ---- plans ----------------------------------------------------------------------------------
ditc=$out/bin/ditc
"$ditc" specs/XL2_256.dit --info --json >"$out/plans/XL2_256.info.json"
"$ditc" specs/tests/tiny.dit --info --json >"$out/plans/tiny.info.json"
plan_arch=$arch
arch_why=""
if ! arch_why=$("$ditc" specs/tests/tiny.dit -o "$out/plans/probe.plan" --arch "$arch" 2>&1); then
  echo "gpu_bundle: NOTE: this ditc does not compile plans for --arch $arch:"
  echo "    $arch_why"
  echo "  the plans are compiled with --arch none (CPU only) instead; the GPU stages of"
  echo "  tools/gpu_check.sh will then report what the runtime says about them. Rerun this"
  echo "  script once ditc compiles GPU plans."
  plan_arch=none
else
  arch_why=""
fi
rm -f "$out/plans/probe.plan"
for dt in fp32 tf32 bf16; do
  # kernel candidates for dit tune there (25_tune): the bf16 plan, the one that can beat PyTorch
  cand=""
  [ "$dt" = bf16 ] && [ "$plan_arch" != none ] && cand="--tune-candidates 4"
  if ! "$ditc" specs/XL2_256.dit -o "$out/plans/XL2_256_$dt.plan" --batch 256 --dtype $dt --arch $plan_arch $cand \
       >"$out/plans/ditc_$dt.log.txt" 2>&1; then
    echo "gpu_bundle: XL2_256 --dtype $dt --arch $plan_arch does not compile: $(head -3 "$out/plans/ditc_$dt.log.txt")"
  fi
  rm -f "$out/plans/ditc_$dt.log.txt"
  "$ditc" specs/tests/tiny.dit -o "$out/plans/tiny_$dt.plan" --batch 16 --dtype $dt --arch $plan_arch $cand \
    >/dev/null 2>&1 || true
done
# tests/gpu/test_gpu_vs_cpu's plans (its specs and dtypes, --batch 4), so that the test need not
# compile them there ($DIT_TEST_PLAN_DIR; it compiles any that are missing or do not load)
if [ "$plan_arch" != none ]; then
  mkdir -p "$out/plans/test"
  for sp in tiny tiny_hd72 tiny_pixel S2_256; do
    case $sp in tiny*) f=specs/tests/$sp.dit ;; *) f=specs/$sp.dit ;; esac
    for dt in fp32 tf32 bf16; do
      "$ditc" "$f" -o "$out/plans/test/${sp}_$dt.plan" --batch 4 --dtype $dt --arch "$plan_arch" >/dev/null 2>&1 \
        || echo "gpu_bundle: test plan $sp --dtype $dt does not compile (the test will compile it there)"
    done
  done
fi
echo "$plan_arch" >"$out/plans/ARCH"
[ -n "$arch_why" ] && echo "$arch_why" >"$out/plans/ARCH_WHY"
ls "$out"/plans/XL2_256_*.plan >/dev/null 2>&1 || { echo "gpu_bundle: no XL2_256 plan compiled" >&2; exit 1; }

# ---- manifest -------------------------------------------------------------------------------
commit=$(git rev-parse HEAD)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$commit+dirty"; fi
echo "$commit" >"$out/COMMIT"
{
  echo "# GPU visit bundle (tools/gpu_bundle.sh)"
  echo "commit      $commit ($(git log -1 --format='%h %s' | cut -c1-80))"
  echo "date        $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "host        $(uname -srm), $(ldd --version | head -1)"
  echo "srcdir      $root"
  echo "cmake       ${cmake_args[*]}"
  echo "gpu tests   ${gpu_tests:-none (no test labelled gpu in tests/CMakeLists.txt)}"
  echo "plan arch   $plan_arch${arch_why:+ (asked $arch: $arch_why)}"
  if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    echo "changed files in the tree when built:"
    git status --porcelain --untracked-files=no | sed 's/^/    /'
  fi
  echo
  echo "## files (bytes)"
  (cd "$out" && find . -type f ! -name MANIFEST.txt -printf '%s\t%p\n' | sort -k2)
  echo
  echo "## ldd (here)"
  for b in "$out"/bin/*; do
    echo "$(basename "$b"):"
    LD_LIBRARY_PATH=$out/lib ldd "$b" | sed 's/^[[:space:]]*/    /'
  done
} >"$out/MANIFEST.txt"

bytes=$(du -sb "$out" | cut -f1)
mib=$(awk -v b="$bytes" 'BEGIN{printf "%.1f", b/1048576}')
echo "== bundle/: $mib MiB ($bytes bytes), plans for --arch $plan_arch"
(cd "$out" && find . -type f -printf '%10s  %p\n' | sort -k2)
if [ "$bytes" -gt $((max_mib * 1048576)) ]; then
  echo "gpu_bundle: bundle/ is $mib MiB, over the ${max_mib} MiB limit (the device takes 64 MiB with the tree)" >&2
  exit 1
fi
tree_kib=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
echo "   working tree that travels with it: $((tree_kib / 1048576)) MiB"

cat <<EOF

== the device call (one run; tools/gpu_check.sh stops itself within GPU_CHECK_BUDGET, default 480 s):
run(command="GPU_CHECK_BUDGET=480 bash tools/gpu_check.sh",
    carry=["bundle"], timeout_s=560)
results come back as \$OUT/results.md, \$OUT/results.json and the stage logs.
EOF

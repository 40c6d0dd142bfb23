#!/usr/bin/env bash
# install.sh: `cmake --install` into a fresh prefix gives a library that
# programs outside the tree use (issue 17): the installed ditc finds the
# shipped specs by official name, examples/sample_dit.c builds against the
# installed libditrt.so through pkg-config, against libditrt.a through
# pkg-config --static, and through find_package(ditrt), and all three print
# the same numbers as the in-tree build for the Fashion-MNIST DiT that
# examples/fashion_mnist ships (its EMA checkpoint).
set -euo pipefail
build=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(cd "$(mktemp -d)" && pwd -P) # physical: no symlink in the prefix
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/ditc bin/dit lib/libditrt.so lib/libditrt.a include/dit/dit.h include/dit/status.h \
         lib/pkgconfig/ditrt.pc lib/cmake/ditrt/ditrtConfig.cmake share/ditc/specs/XL2_256.dit \
         share/ditc/specs/families/dit.dit; do
  [ -e "$prefix/$f" ] || { echo "FAIL: the install lacks $f"; exit 1; }
done
# the installed ditc finds the installed specs by name (not the source tree's)
(cd "$work" && env -u DITC_SPEC_PATH "$prefix/bin/ditc" DiT-S/8 --info --json) >"$work/s8.json"
grep -q "\"spec\":\"$prefix/share/ditc/specs/S8_256.dit\"" "$work/s8.json" ||
  { echo "FAIL: the installed ditc did not use its own specs:"; head -c 300 "$work/s8.json"; exit 1; }

fm=$root/examples/fashion_mnist
"$prefix/bin/ditc" "$fm/dit_fashion_mnist.dit" --batch 8 -o "$work/fm.plan"
want=$("$build/examples/sample_dit" "$work/fm.plan" "$fm/dit_fashion_mnist_ema.safetensors" 3)
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
# an ASan/UBSan build installs instrumented code: programs built on it need the same flags
san=()
grep -q '^DIT_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" && san=(-fsanitize=address,undefined)
# shared, through pkg-config
cc -std=c11 -O2 "${san[@]}" "$root/examples/sample_dit.c" $(pkg-config --cflags --libs ditrt) -lm -o "$work/sample_so"
# the libditrt.so.0 the loader picks (by ldd, without the caller's LD_LIBRARY_PATH, which
# outranks a RUNPATH) is the installed file, compared by resolved path, not by spelling
loaded=$(env -u LD_LIBRARY_PATH ldd "$work/sample_so" 2>&1 | awk '$1 == "libditrt.so.0" { print $3 }')
if [ -z "$loaded" ] || [ "$(readlink -f "$loaded")" != "$(readlink -f "$prefix/lib/libditrt.so.0")" ]; then
  echo "FAIL: not linked to the installed .so ($prefix/lib/libditrt.so.0); the loader picks '${loaded:-nothing}'"
  echo "pkg-config --libs ditrt: $(pkg-config --libs ditrt)"
  readelf -d "$work/sample_so" | grep -E 'NEEDED|RPATH|RUNPATH' || true
  echo "LD_LIBRARY_PATH='${LD_LIBRARY_PATH:-}'"
  env -u LD_LIBRARY_PATH ldd "$work/sample_so" || true
  exit 1
fi
# static, through pkg-config --static: the archive and its Libs.private
static_libs=$(pkg-config --static --libs ditrt | sed 's/-lditrt//')
cc -std=c11 -O2 "${san[@]}" "$root/examples/sample_dit.c" $(pkg-config --cflags ditrt) "$prefix/lib/libditrt.a" $static_libs \
  -o "$work/sample_a"
! ldd "$work/sample_a" | grep -q libditrt || { echo "FAIL: the static build loads libditrt.so"; exit 1; }
# a CMake project, through find_package(ditrt)
mkdir -p "$work/proj"
cat >"$work/proj/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.20)
project(use_ditrt C)
find_package(ditrt REQUIRED)
add_executable(sample_cmake $root/examples/sample_dit.c)
target_link_libraries(sample_cmake PRIVATE ditrt::ditrt m)
CM
cmake -S "$work/proj" -B "$work/proj/b" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_FLAGS="${san[*]}" \
  -DCMAKE_EXE_LINKER_FLAGS="${san[*]}" >/dev/null
cmake --build "$work/proj/b" >/dev/null
for exe in "$work/sample_so" "$work/sample_a" "$work/proj/b/sample_cmake"; do
  got=$("$exe" "$work/fm.plan" "$fm/dit_fashion_mnist_ema.safetensors" 3)
  [ "$got" = "$want" ] || { echo "FAIL: $exe printed"; echo "$got"; echo "want"; echo "$want"; exit 1; }
done
echo "$want"
echo "ok: installed ditc, dit, specs and libditrt (.so, .a, pkg-config, CMake) work outside the tree"

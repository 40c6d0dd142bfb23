#!/usr/bin/env bash
# Installs the Debian packages that building, the demo and testing ditc need,
# skipping those already installed. Usage: tools/deps.sh build|demo|test
set -euo pipefail
what=${1:-build}
pkgs=(build-essential cmake flex bison pkg-config libopenblas-dev libpng-dev libjpeg62-turbo-dev zlib1g-dev)
# OpenMPI: `dit train` across ranks (optional: without it, one process alone)
pkgs+=(libopenmpi-dev)
if [ "$what" = test ]; then
  # Debian's PyTorch (CPU) and numpy: the numerical oracle of the tests and benchmarks
  pkgs+=(python3-torch python3-numpy)
  pkgs+=(libcmocka-dev)
  # PIL: the reference of `dit data images`; Fashion-MNIST: the IDX importer's real data
  pkgs+=(python3-pil dataset-fashion-mnist)
  # mpiexec: test_dist runs on 2 ranks
  pkgs+=(openmpi-bin)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
echo "tools/deps.sh: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

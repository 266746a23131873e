#!/usr/bin/env bash
# scripts/setup.sh: installs what convlab needs to build and test, from Debian 12's packages.
# Idempotent and fast when everything is present (it only asks dpkg). Non-interactive.
set -euo pipefail

# clang, libclang-rt-14-dev (libFuzzer and clang's sanitizer runtimes; only "recommended" by clang-14, so listed)
# and libomp-dev (OpenMP for clang) build the fuzzers of scripts/fuzz.sh; GCC's ASan/UBSan come with g++.
# openmpi-bin and libopenmpi-dev: data-parallel training under mpirun (README "More than one machine").
PACKAGES=(g++ make cmake libeigen3-dev nlohmann-json3-dev libgtest-dev libcli11-dev libbenchmark-dev libstb-dev libjpeg62-turbo-dev
          clang libclang-rt-14-dev libomp-dev openmpi-bin libopenmpi-dev)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

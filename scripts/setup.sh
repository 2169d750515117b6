#!/usr/bin/env bash
# Installs the Debian packages weir builds with, and nothing else. Idempotent:
# when every package is already installed it does not touch apt at all.
set -euo pipefail

packages=(
  cmake g++ make pkg-config ccache
  libcaf-dev libzmq3-dev cppzmq-dev capnproto libcapnp-dev
  libboost-test-dev libspdlog-dev libcli11-dev libtomlplusplus-dev
  clang libclang-rt-14-dev
  graphviz
  pybind11-dev python3-dev python3-pytest
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing Debian packages: ${missing[*]}" >&2
  echo "setup: run as root (or install them with apt-get) and try again" >&2
  exit 1
fi

echo "setup: installing ${missing[*]}" >&2
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"

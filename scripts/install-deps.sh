#!/usr/bin/env bash
# Installs the Debian packages kedge's build, tests and benchmarks need, only
# those missing. Called by make; safe to run again.
set -euo pipefail
want=(busybox-static runc nftables iproute2 qemu-user-static gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf
      libc6-dev-arm64-cross libc6-dev-armhf-cross docker-registry
      pkg-config libseccomp-dev libseccomp-dev:arm64 libseccomp-dev:armhf "$@")
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "kedge: missing Debian packages: ${missing[*]}" >&2
  echo "kedge: run as root, or install them first: apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "kedge: installing ${missing[*]}" >&2
stamp=/var/lib/apt/periodic/kedge-update-stamp
# The seccomp build links libseccomp.a of each target: arm64 and armhf
# packages come through Debian multiarch.
for arch in arm64 armhf; do
  if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
    dpkg --add-architecture "$arch"
    rm -f "$stamp"
  fi
done
if [ ! -f "$stamp" ] || [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ]; then
  apt-get update -qq || echo "kedge: apt-get update reported errors (a mirror in sync?); installing from the lists it has" >&2
  mkdir -p "$(dirname "$stamp")" && touch "$stamp"
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

#!/usr/bin/env bash
# Install the Debian packages the boot tests need (CI starts from a fresh machine): QEMU for
# the guests, and the compilers, kernel source and build tools for the kernels built here
# (big-endian ppc64, arm64 with 64K pages, x86_64, and their mutants: the host gcc, patch).
# Does nothing when all are there. A failed install is reported, not fatal: the boot tests
# then report what they lack as SKIP with the reason.
set -uo pipefail

PKGS=(
    qemu-system-x86 qemu-system-arm qemu-system-ppc
    gcc-powerpc64-linux-gnu binutils-powerpc64-linux-gnu linux-source
    gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu
    make bc flex bison libelf-dev libssl-dev xz-utils python3 patch gcc
)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "boot-deps: all installed"
    exit 0
fi
echo "boot-deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "boot-deps: not root, cannot install; the boot tests will skip what is missing" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 -qq update || echo "boot-deps: apt-get update failed" >&2
apt-get -o DPkg::Lock::Timeout=600 -qq install -y --no-install-recommends "${missing[@]}" >/dev/null ||
    echo "boot-deps: apt-get install failed; the boot tests will skip what is missing" >&2
exit 0

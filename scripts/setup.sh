#!/usr/bin/env bash
# What `make test` needs beyond Rust and make, in one place: the Debian packages (cross
# linker, qemu-user and qemu-system, the cross compilers and kernel source for the kernels
# built here, LAVA's dispatcher, and the tools the tests run) and the rustup targets.
#
#   scripts/setup.sh [TARGET...]      TARGET: the rustup targets to have (make passes all)
#
# Missing packages: as root on Debian, installs them with apt-get, saying so in one line;
# otherwise fails at once with the exact command to run. Missing rustup targets: added with
# `rustup target add`, one line. Then one line on the boot kernels: which are cached, and
# which a cold run will build (and about how long that takes).
#
# For checking this script itself: HUGERACE_SETUP_DRY_RUN=1 installs nothing and prints the
# commands it would run; HUGERACE_SETUP_PRETEND_MISSING="pkg..." treats those packages as
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target

# Package, then a command it provides ("-" when dpkg is the only way to tell).
PKGS=(
    # tests/cross.rs: qemu-user and GNU ld for big-endian ppc64 (rust-lld links the rest)
    qemu-user-static:qemu-x86_64-static binutils-powerpc64-linux-gnu:powerpc64-linux-gnu-ld
    # scripts/boot.py: the guests; scripts/kernels.sh: the kernels built here (their
    # variants, the mutants, are applied with `patch`)
    qemu-system-x86:qemu-system-x86_64 qemu-system-arm:qemu-system-aarch64 qemu-system-ppc:qemu-system-ppc64
    gcc-powerpc64-linux-gnu:powerpc64-linux-gnu-gcc gcc-aarch64-linux-gnu:aarch64-linux-gnu-gcc
    binutils-aarch64-linux-gnu:aarch64-linux-gnu-ld linux-source:-
    bc:bc flex:flex bison:bison libelf-dev:- libssl-dev:- xz-utils:xz patch:patch make:make
    # scripts/lava.py (make lava, make lava-test): LAVA's own dispatcher, lava-run, and with
    # it Debian's python3-jinja2 and python3-yaml, which lava.py uses too
    lava-dispatcher:lava-run
    # the tests' helpers and tools
    gcc:cc libc6-dev:- binutils:readelf python3:python3 strace:strace groff-base:groff
    procps:pgrep util-linux:setpriv mount:mount gzip:gzip bsdutils:script
)

say() { printf 'setup: %s\n' "$*"; }
fail() { printf 'setup: %s\n' "$*" >&2; exit 1; }
dry=${HUGERACE_SETUP_DRY_RUN:-}
pretend=" ${HUGERACE_SETUP_PRETEND_MISSING:-} "

# ---- Debian packages ----
missing=() tools=()
debian=$(command -v dpkg-query >/dev/null && command -v apt-get >/dev/null && echo yes || true)
for entry in "${PKGS[@]}"; do
    pkg=${entry%%:*} cmd=${entry#*:}
    if [[ $pretend == *" $pkg "* ]]; then
        missing+=("$pkg")
    elif [ -n "$debian" ]; then
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    elif [ "$cmd" != - ] && ! command -v "$cmd" >/dev/null; then
        missing+=("$pkg") tools+=("$cmd")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    install="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
    if [ -z "$debian" ]; then
        fail "not a Debian system: install what provides ${tools[*]} (Debian: ${missing[*]}), then run make test again"
    elif [ "$(id -u)" -ne 0 ]; then
        fail "missing Debian packages; run as root: $install"
    elif [ -n "$dry" ]; then
        say "would install ${#missing[@]} Debian package(s): $install"
    else
        say "installing ${#missing[@]} Debian package(s) with apt-get: ${missing[*]}"
        mkdir -p target
        log=target/setup-apt.log
        export DEBIAN_FRONTEND=noninteractive
        if ! { apt-get -o DPkg::Lock::Timeout=600 -q update &&
               apt-get -o DPkg::Lock::Timeout=600 -q install -y --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
            tail -n 5 "$log" | sed 's/^/setup:   /' >&2
            fail "apt-get failed (whole log: $log); fix that, or run as root: $install"
        fi
        # lava-dispatcher's package enables lava-worker, a daemon that polls a LAVA server
        # (none here: lava.py runs lava-run by itself); on a systemd host, stop it again.
        if [[ " ${missing[*]} " == *" lava-dispatcher "* ]] && [ -d /run/systemd/system ] &&
           systemctl disable --now lava-worker.service >>"$log" 2>&1; then
            say "lava-worker.service disabled: make lava runs lava-run alone, with no LAVA server"
        fi
    fi
fi

# ---- rustup targets ----
if [ $# -gt 0 ]; then
    command -v rustup >/dev/null || fail "rustup is not installed: see https://rustup.rs, then: rustup target add $*"
    installed=" $(rustup target list --installed | tr '\n' ' ') "
    want=()
    for t in "$@"; do [[ $installed == *" $t "* ]] || want+=("$t"); done
    if [ ${#want[@]} -gt 0 ]; then
        if [ -n "$dry" ]; then
            say "would run: rustup target add ${want[*]}"
        else
            say "adding rustup targets: ${want[*]}"
            rustup target add "${want[@]}" >target/setup-rustup.log 2>&1 ||
                fail "rustup target add failed (log: target/setup-rustup.log); run: rustup target add ${want[*]}"
        fi
    fi
fi

# ---- the kernels built here: say up front what a cold run builds (scripts/kernels.sh --plan,
# which knows them from the machine table, scripts/machines.py) ----
cache=${HUGERACE_CACHE:-/var/cache/hugerace}
plan=$(scripts/kernels.sh --plan 2>/dev/null || true)
read -ra build <<<"$(sed -n 's/^kernels: will build \(.*\) from .*$/\1/p' <<<"$plan" | tr '\n' ' ')"
mins=$(sed -n 's/^kernels: about \([0-9]*\) min .*/\1/p' <<<"$plan")
if [ ${#build[@]} -gt 0 ]; then
    say "the boot tests will build ${#build[@]} kernel(s) from linux-source first: ${build[*]} (about $mins minutes on 2 cores, once; cached in $cache)"
elif grep -q 'linux-source is not installed' <<<"$plan"; then
    say "the boot tests will build kernels from linux-source, once it is installed, unless they are cached in $cache"
else
    say "packages, rustup targets and built kernels all present"
fi

#!/usr/bin/env bash
# `make lava-test` (part of `make test`, issue 21): hugerace's LAVA job run by LAVA's own
# dispatcher on two kernels built here from the same configuration (scripts/kernels.sh):
#   x86_64         the unpatched twin: LAVA must record shared_2m and private_2m pass
#   x86_64-mutant  boot/hugetlb-mutant.patch, the race put back: LAVA must record both fail,
#                  in a job it completed (scripts/lava.py --expect fail: its exit 0 means
#                  LAVA's job result is pass and every case LAVA recorded is fail)
#   not-a-kernel   4 KiB of zeros: the job must end incomplete, lava.py's exit 2
# Needs target/x86_64-unknown-linux-gnu/initramfs.cpio.gz (make initramfs), lava-run
# (lava-dispatcher, `make setup`) and root, which lava-run demands. What cannot be had is a
# SKIP, logged to the skip log; under CI (CI, HUGERACE_REQUIRE_ROOT or HUGERACE_REQUIRE_QEMU
# set) a SKIP fails.
set -uo pipefail
cd "$(dirname "$0")/.."
SKIP_LOG=${HUGERACE_SKIP_LOG:-target/skips.log}
PY=/usr/bin/python3

under_ci() {
    local v
    for v in "${CI:-}" "${HUGERACE_REQUIRE_ROOT:-}" "${HUGERACE_REQUIRE_QEMU:-}"; do
        case ${v,,} in ''|0|false) ;; *) return 0 ;; esac
    done
    return 1
}

failed=0
run() {   # run NAME KERNEL-NAME EXPECT
    local name=$1 kname=$2 expect=$3 why="" kernel rc t0 dt
    if [ ! -x /usr/bin/lava-run ]; then
        why="lava-run is not installed (apt-get install --no-install-recommends lava-dispatcher, or make setup as root)"
    elif [ "$(id -u)" -ne 0 ]; then
        why="not root (lava-run runs jobs as root only)"
    elif ! kernel=$(scripts/kernels.sh "$kname" 2>"target/lava-kernel-$kname.log"); then
        if [[ $kernel == SKIP:* ]]; then
            why=${kernel#SKIP: }
        else
            echo "== lava $name: FAIL: no $kname kernel: $(tail -n1 "target/lava-kernel-$kname.log")"
            failed=$((failed + 1))
            return
        fi
    fi
    if [ -n "$why" ]; then
        if under_ci; then
            echo "== lava $name: FAIL: $why (a SKIP fails under CI)"
            failed=$((failed + 1))
        else
            echo "== lava $name: SKIP: $why"
            echo "SKIP: lava::$name: $why" >>"$SKIP_LOG"
        fi
        return
    fi
    t0=$(date +%s.%N)
    $PY scripts/lava.py --name "$name" --expect "$expect" "$kernel" | sed 's/^/   /'
    rc=${PIPESTATUS[0]}
    printf -v dt '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)"
    # What LAVA recorded, from the results lava.py wrote: both modes, with the expected word.
    for c in shared_2m private_2m; do
        grep -qx "$c $expect" "target/lava/$name/results.txt" 2>/dev/null ||
            { echo "   LAVA did not record '$c $expect'"; rc=1; }
    done
    if [ "$rc" -eq 0 ]; then
        echo "== lava $name (kernel $kname, every case must $expect): PASS in ${dt}s"
    else
        echo "== lava $name (kernel $kname, every case must $expect): FAIL (lava.py exit $rc) in ${dt}s"
        failed=$((failed + 1))
    fi
}

# The judge's own negative control, with LAVA: a "kernel" QEMU cannot boot ends the job
# incomplete (the console closes before hugerace's first line), which must be exit 2.
incomplete() {
    local rc junk=target/lava/not-a-kernel
    [ -x /usr/bin/lava-run ] && [ "$(id -u)" -eq 0 ] || return 0  # skipped above already
    mkdir -p target/lava && head -c 4096 /dev/zero >"$junk"
    $PY scripts/lava.py --name incomplete "$junk" | sed 's/^/   /'
    rc=${PIPESTATUS[0]}
    if [ "$rc" -eq 2 ] && grep -q '^job incomplete (LAVA: ' target/lava/incomplete/results.txt; then
        echo "== lava incomplete (no bootable kernel, must be incomplete: exit 2): PASS"
    else
        echo "== lava incomplete (no bootable kernel, must be incomplete: exit 2): FAIL (lava.py exit $rc)"
        failed=$((failed + 1))
    fi
}

mkdir -p target
run x86_64-built x86_64 pass
run x86_64-mutant x86_64-mutant fail
incomplete
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Boot tests: real kernels under QEMU (TCG, 2 vCPUs) with hugerace as /init, the only file of
# the initramfs. Each boot races every hugepage size the guest has, prints KTAP on the console
# and powers the guest off.
#
#   scripts/boot.sh [MACHINE...]      default: every machine below
#
# Needs target/<triple>/initramfs.cpio.gz (`make initramfs TARGET=<triple>`) and a kernel from
# scripts/kernels.sh (cached under /var/cache/hugerace). A machine whose kernel or QEMU cannot
# be had is reported SKIP with the reason, never counted as passed.
#
# What a positive boot must show on its console:
#   - an `ok` line (not `# SKIP`) for each expected size in both modes, shared and private;
#   - hugerace's `base page <size>` (from AT_PAGESZ) as the machine expects;
#   - no `not ok` line;
#   - `hugerace: exit 0` as the last line hugerace printed;
#   - the kernel's `reboot: Power down`, and QEMU ending by itself within the time limit.
# The negative boot (--leave-free 0 --noreserve) must show `not ok`, a non-zero exit line, and
# still power off.
#
# Consoles land in target/boot/<machine>.console, QEMU's own messages in <machine>.qemu.
set -uo pipefail

cd "$(dirname "$0")/.."
OUT=target/boot
TIMEOUT=${BOOT_TIMEOUT:-300}
mkdir -p "$OUT"
# One boot suite at a time per clone: two would overwrite each other's consoles and share
# the 2 cores, slowing every boot toward its time limit.
exec 8>"$OUT/.lock"
flock 8

# Under CI (CI, HUGERACE_REQUIRE_ROOT or HUGERACE_REQUIRE_QEMU set, as for the cargo tests)
# everything is installed, so a SKIP is a failure. Every SKIP is also logged, one line, to the
# log `make test` counts at its end.
under_ci() {
    local v
    for v in "${CI:-}" "${HUGERACE_REQUIRE_ROOT:-}" "${HUGERACE_REQUIRE_QEMU:-}"; do
        case ${v,,} in ''|0|false) ;; *) return 0 ;; esac
    done
    return 1
}
SKIP_LOG=${HUGERACE_SKIP_LOG:-target/skips.log}

ALL=(x86_64 x86_64-negative arm64 arm64-64k ppc64le-radix ppc64le-hash ppc64be)

# Sets, for one machine: TRIPLE KARCH QEMU (array) CONSOLE APPEND ARGS SIZES EXPECT BASEPAGE
# (the base page size hugerace must report, so that a kernel of the wrong page size fails).
# Each 1G hugepage fault zeroes 1G, about 2s under TCG: the machines with 1G pages run 3
# iterations (each of the 1G sizes is reserved at boot, two pages: the one taken and the last
# free one). The others run PID-1 mode's defaults, with no arguments at all.
machine() {
    local pseries=(qemu-system-ppc64 -M pseries,cap-hpt-max-page-size=16M)
    EXPECT=pass APPEND="" ARGS="" BASEPAGE=""
    case $1 in
        x86_64)
            TRIPLE=x86_64-unknown-linux-gnu KARCH=amd64 CONSOLE=ttyS0
            # 6G: with 4G, the PCI hole, the kernel and the initrd leave one free 1G range.
            QEMU=(qemu-system-x86_64 -cpu max -m 6144)
            APPEND="hugepagesz=1G hugepages=2" ARGS="-i 3" SIZES="2M 1G" BASEPAGE=4K ;;
        x86_64-negative)
            TRIPLE=x86_64-unknown-linux-gnu KARCH=amd64 CONSOLE=ttyS0
            QEMU=(qemu-system-x86_64 -cpu max -m 1024)
            ARGS="--leave-free 0 --noreserve -s 2M" SIZES="2M" EXPECT=fail BASEPAGE=4K ;;
        arm64)
            TRIPLE=aarch64-unknown-linux-gnu KARCH=arm64 CONSOLE=ttyAMA0
            # pauth-impdef: the same pointer authentication, far cheaper to emulate.
            # 6G: with 4G, the kernel and the initrd leave one free 1G range.
            QEMU=(qemu-system-aarch64 -M virt -cpu max,pauth-impdef=on -m 6144)
            APPEND="hugepagesz=1G hugepages=2" ARGS="-i 3" SIZES="64K 2M 32M 1G" BASEPAGE=4K ;;
        arm64-64k)
            # 64K base pages, as RHEL's aarch64 kernels and many arm64 servers run: a kernel
            # built here (boot/arm64-64k.config). Its sizes are 2M (contiguous PTEs), 512M (PMD)
            # and 16G (contiguous PMDs). Each 512M fault zeroes 512M under TCG: 3 iterations,
            # two 512M pages reserved at boot. 16G cannot be had in this guest (and the kernel
            # has no runtime gigantic pages): the run reports it TCONF, `ok ... # SKIP`, which
            # is not one of SIZES and does not change the exit status.
            TRIPLE=aarch64-unknown-linux-gnu KARCH=arm64-64k CONSOLE=ttyAMA0
            QEMU=(qemu-system-aarch64 -M virt -cpu max,pauth-impdef=on -m 3072)
            APPEND="hugepagesz=512M hugepages=2" ARGS="-i 3" SIZES="2M 512M" BASEPAGE=64K ;;
        ppc64le-radix)
            TRIPLE=powerpc64le-unknown-linux-gnu KARCH=ppc64el CONSOLE=hvc0
            QEMU=("${pseries[@]}" -m 4096)
            APPEND="hugepagesz=1G hugepages=2" ARGS="-i 3" SIZES="2M 1G" BASEPAGE=64K ;;
        ppc64le-hash)
            TRIPLE=powerpc64le-unknown-linux-gnu KARCH=ppc64el CONSOLE=hvc0
            QEMU=("${pseries[@]}" -m 1024)
            APPEND="disable_radix" SIZES="16M" BASEPAGE=64K ;;
        ppc64be)
            TRIPLE=powerpc64-unknown-linux-gnu KARCH=ppc64be CONSOLE=hvc0
            QEMU=("${pseries[@]}" -m 1024)
            SIZES="16M" BASEPAGE=64K ;;
        *) echo "unknown machine $1" >&2; return 1 ;;
    esac
}

# The console with carriage returns and terminal escapes gone.
clean() { tr -d '\r\000' <"$1" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g'; }

# Kernel messages start with a [ timestamp ]; everything else on the console is hugerace's
# (or firmware's, before the kernel).
user_lines() { clean "$1" | grep -a -Ev '^\[ *[0-9]+\.[0-9]+\]'; }

# Check one console; prints the reasons it fails, one per line; no output means it passed.
verdict() {
    local log=$1 rc=$2 last code s m
    [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && echo "QEMU did not end within ${TIMEOUT}s (killed)"
    [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] && echo "QEMU exited with status $rc"
    clean "$log" | grep -a -q 'Kernel panic' && echo "the kernel panicked: $(clean "$log" | grep -a -m1 'Kernel panic')"
    clean "$log" | grep -a -q 'reboot: Power down' || echo "no 'reboot: Power down' on the console"
    last=$(user_lines "$log" | grep -a -v '^[[:space:]]*$' | tail -n1)
    if [[ $last =~ ^hugerace:\ exit\ (-?[0-9]+)$ ]]; then
        code=${BASH_REMATCH[1]}
    else
        echo "the last line hugerace printed is not 'hugerace: exit N': '$last'"
        code=""
    fi
    # KTAP: the version line (firmware may leave junk before it on its line), a plan, and as
    # many results as the plan announced.
    clean "$log" | grep -a -q 'KTAP version 1$' || echo "no 'KTAP version 1' line"
    local plan results
    plan=$(user_lines "$log" | sed -n 's/^1\.\.\([0-9][0-9]*\)$/\1/p' | head -n1)
    results=$(user_lines "$log" | grep -a -cE '^(not )?ok [0-9]+ ')
    [ -n "$plan" ] || echo "no KTAP plan (1..N)"
    [ -n "$plan" ] && [ "$plan" != "$results" ] && echo "the plan announced $plan results, $results came"
    [ -n "$BASEPAGE" ] && ! user_lines "$log" | grep -a -qE "^# hugerace .*, base page $BASEPAGE\$" &&
        echo "hugerace did not report 'base page $BASEPAGE': the kernel's base page size is not the machine's"
    if [ "$EXPECT" = pass ]; then
        [ "$code" = 0 ] || { [ -n "$code" ] && echo "hugerace: exit $code, wanted 0"; }
        clean "$log" | grep -a -E '^not ok ' | sed 's/^/failed: /'
        for s in $SIZES; do
            for m in shared private; do
                clean "$log" | grep -a -E "^ok [0-9]+ " | grep -a -v '# SKIP' | grep -a -w -- "$m" | grep -a -qw -- "$s" ||
                    echo "no passing '$m $s' result"
            done
        done
    else
        clean "$log" | grep -a -qE '^not ok ' || echo "no 'not ok' line: the negative control did not fail"
        [ -n "$code" ] && [ "$code" = 0 ] && echo "hugerace: exit 0, wanted a failure status"
    fi
}

# One kernel lookup per arch and run (several machines share one). Sets `kernel` to its path,
# or to `SKIP: why`, and KLOG to the lookup's log; returns the lookup's status.
declare -A KERNEL KERNEL_RC KERNEL_LOG
kernel_for() {
    if [ -z "${KERNEL[$1]+set}" ]; then
        KERNEL_LOG[$1]=$OUT/kernel-$1.log
        KERNEL[$1]=$(scripts/kernels.sh "$1" 2>"${KERNEL_LOG[$1]}")
        KERNEL_RC[$1]=$?
    fi
    kernel=${KERNEL[$1]} KLOG=${KERNEL_LOG[$1]}
    return "${KERNEL_RC[$1]}"
}

passed=0 failed=0 skipped=0
summary=()
for name in "${@:-${ALL[@]}}"; do
    machine "$name" || { failed=$((failed + 1)); continue; }
    console="$OUT/$name.console"
    rm -f "$console" "$OUT/$name.qemu"
    initrd="target/$TRIPLE/initramfs.cpio.gz"
    t0=$(date +%s.%N)
    if ! command -v "${QEMU[0]}" >/dev/null; then
        # CI installs QEMU itself (HUGERACE_REQUIRE_QEMU=1): there its absence is a failure.
        result="SKIP" why="${QEMU[0]} is not installed (make setup)"
    elif ! kernel_for "$KARCH"; then
        if [[ $kernel == SKIP:* ]]; then
            result="SKIP" why="${kernel#SKIP: }"
        else
            result="FAIL" why="no kernel: $(tail -n1 "$KLOG")"
        fi
    elif [ ! -r "$initrd" ]; then
        result="FAIL" why="$initrd is missing (make initramfs TARGET=$TRIPLE)"
    else
        t0=$(date +%s.%N)
        append="console=$CONSOLE quiet panic=-1 $APPEND${ARGS:+ -- $ARGS}"
        timeout -k 10 "$TIMEOUT" "${QEMU[@]}" -accel tcg -smp 2 -nographic -no-reboot \
            -monitor none -serial "file:$console" \
            -kernel "$kernel" -initrd "$initrd" -append "$append" \
            </dev/null >"$OUT/$name.qemu" 2>&1
        rc=$?
        reasons=$(verdict "$console" "$rc")
        if [ -z "$reasons" ]; then result="PASS" why=""; else result="FAIL" why=$reasons; fi
    fi
    if [ "$result" = SKIP ]; then
        if under_ci; then result="FAIL" why="$why (a SKIP fails under CI)"; else echo "SKIP: boot::$name: $why" >>"$SKIP_LOG"; fi
    fi
    dt=$(echo "$(date +%s.%N) - $t0" | bc)
    printf -v dt '%.1f' "$dt"
    echo "== boot $name ($TRIPLE, kernel $KARCH): $result in ${dt}s"
    [ -n "${kernel:-}" ] && [ -e "${kernel:-/nonexistent}" ] && echo "   kernel: $kernel"
    [ -n "$why" ] && printf '%s\n' "$why" | sed 's/^/   reason: /'
    if [ -e "$console" ]; then
        echo "   console ($console), hugerace's lines:"
        # (firmware or early kernel output may share the KTAP version line: show it from there on)
        user_lines "$console" | sed 's/^.*\(KTAP version 1\)$/\1/' |
            grep -a -E '^(KTAP|1\.\.|ok |not ok |# |hugerace:)' | sed 's/^/     | /'
        clean "$console" | grep -a -E 'reboot: Power down|Kernel panic' | sed 's/^/     | /'
    fi
    case $result in
        PASS) passed=$((passed + 1)) ;;
        SKIP) skipped=$((skipped + 1)) ;;
        *) failed=$((failed + 1)) ;;
    esac
    summary+=("$(printf '%-16s %-4s %6ss' "$name" "$result" "$dt")")
    unset kernel
done
echo
printf '%s\n' "${summary[@]}"
echo "boot: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Boot tests: real kernels under QEMU (TCG, 2 vCPUs) with hugerace as /init, the only file of
# the initramfs. Each boot races every hugepage size the guest has, prints KTAP on the console
# and powers the guest off.
#
#   scripts/boot.sh [MACHINE...]            default: every machine of ALL below
#   scripts/boot.sh --detect [MACHINE...]   `make detect`: failure rates on the mutants
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
# A mutant boot (a kernel with boot/hugetlb-mutant.patch: the alloc-instantiate race put back)
# must fail the race in both modes for each expected size: a `not ok` line right after the
# TFAIL diagnostic `# <mode> <size>: racer N on CPU N got SIGBUS ...` (not TBROK, not
# "inconclusive"), `hugerace: exit 1`, and still power off. Its unpatched twin (x86_64-built,
# the same configuration) is an ordinary positive boot.
#
# --detect boots each machine with target/<triple>/detect.cpio.gz instead (examples/detect.rs
# as /init, with /hugerace and /forkspin): DETECT_BLOCKS blocks (default 4) of DETECT_RACES
# races (default 50) per mode on 2M pages (16M on ppc64be, the machine's DETECT_SIZE),
# hugerace then forkspin in each block, and prints
# per machine, mode and size how many races failed for each. Asserted: every race ran and
# nothing broke; on a mutant, hugerace failed at least once per mode; on an unpatched kernel,
# never.
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

ALL=(x86_64 x86_64-negative arm64 arm64-64k ppc64le-radix ppc64le-hash ppc64be
     x86_64-built x86_64-mutant arm64-64k-mutant ppc64be-mutant
     x86_64-races x86_64-races-noreserve x86_64-dontneed x86_64-6.12-dontneed)
DETECT_ALL=(x86_64-built x86_64-mutant x86_64-narrow arm64-64k-mutant ppc64be-mutant x86_64-dontneed)
DETECT=""
if [ "${1:-}" = --detect ]; then
    DETECT=1
    shift
    set -- "${@:-${DETECT_ALL[@]}}"
    TIMEOUT=${BOOT_TIMEOUT:-1200}
fi

# Sets, for one machine: TRIPLE KARCH QEMU (array) CONSOLE APPEND ARGS SIZES EXPECT BASEPAGE
# (the base page size hugerace must report, so that a kernel of the wrong page size fails).
# Each 1G hugepage fault zeroes 1G, about 2s under TCG: the machines with 1G pages run 3
# iterations (each of the 1G sizes is reserved at boot, two pages: the one taken and the last
# free one). The others run PID-1 mode's defaults, with no arguments at all.
machine() {
    local pseries=(qemu-system-ppc64 -M pseries,cap-hpt-max-page-size=16M)
    EXPECT=pass APPEND="" ARGS="" BASEPAGE="" DETECT_SIZE=2M DETECT_KIND=alloc MODES="shared private" RACES="" STATE=""
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
        # The mutants (issue 13): kernels built here from linux-source, the plain one and the
        # same configuration with a boot/hugetlb-*.patch (scripts/kernels.sh). 2M pages only.
        # The wide window fails most first races (`make detect`: 70-97% of single races on a
        # busy host), and a failure ends the run: 20 iterations make a pass on the mutant out
        # of reach, and cost the unpatched twin a fraction of a second.
        x86_64-built)
            TRIPLE=x86_64-unknown-linux-gnu KARCH=x86_64 CONSOLE=ttyS0
            QEMU=(qemu-system-x86_64 -cpu max -m 1024)
            ARGS="-s 2M -i 20" SIZES="2M" BASEPAGE=4K ;;
        x86_64-mutant)
            TRIPLE=x86_64-unknown-linux-gnu KARCH=x86_64-mutant CONSOLE=ttyS0
            QEMU=(qemu-system-x86_64 -cpu max -m 1024)
            ARGS="-s 2M -i 20" SIZES="2M" EXPECT=mutant BASEPAGE=4K ;;
        x86_64-narrow)
            # The narrow window fails some races, not all: not a pass/fail boot of `make
            # test`; `make detect` measures it. Booted alone, it must report both modes
            # without breaking.
            TRIPLE=x86_64-unknown-linux-gnu KARCH=x86_64-narrow CONSOLE=ttyS0
            QEMU=(qemu-system-x86_64 -cpu max -m 1024)
            ARGS="-s 2M -i 50" SIZES="2M" EXPECT=either BASEPAGE=4K ;;
        arm64-64k-mutant)
            # 512M (a PMD on 64K base pages): its clear, the window, takes ~150 ms under TCG,
            # far beyond the racers' start skew here. A 2M page (contiguous PTEs) clears in
            # ~0.6 ms, less than the skew of some boots: 2M can pass 3 races on this mutant
            # (`make detect` measures it).
            TRIPLE=aarch64-unknown-linux-gnu KARCH=arm64-64k-mutant CONSOLE=ttyAMA0
            QEMU=(qemu-system-aarch64 -M virt -cpu max,pauth-impdef=on -m 3072)
            APPEND="hugepagesz=512M hugepages=2" ARGS="-s 512M -i 10" SIZES="512M" EXPECT=mutant BASEPAGE=64K ;;
        ppc64be-mutant)
            # Big-endian, hash MMU, 16M pages: ppc64be's kernel with the patch. Under this
            # TCG the racers start ms apart (skew p50 ~2 ms, about a 16M clear), so a private
            # race overlaps in some iterations only (the first failure came by iteration 11
            # in the boots measured): up to 200, each ~7 ms, and a failure ends the run.
            TRIPLE=powerpc64-unknown-linux-gnu KARCH=ppc64be-mutant CONSOLE=hvc0
            QEMU=("${pseries[@]}" -m 1024)
            ARGS="-s 16M -i 200" SIZES="16M" EXPECT=mutant BASEPAGE=64K DETECT_SIZE=16M ;;
        # Issue 11 on a kernel without the 2024 reservation-restore fix: Debian 12's own 6.1.
        # hugerace checks before every race that the pool reads as before race 1, and ends
        # TBROK if not: 200 races per mode that pass, from the state the judge reads too.
        x86_64-races)
            TRIPLE=x86_64-unknown-linux-gnu KARCH=amd64 CONSOLE=ttyS0
            QEMU=(qemu-system-x86_64 -cpu max -m 1024)
            ARGS="-s 2M -i 200" SIZES="2M" BASEPAGE=4K RACES=200 STATE="1 free, 1 reserved" ;;
        x86_64-races-noreserve)
            TRIPLE=x86_64-unknown-linux-gnu KARCH=amd64 CONSOLE=ttyS0
            QEMU=(qemu-system-x86_64 -cpu max -m 1024)
            ARGS="-s 2M -i 200 --noreserve" SIZES="2M" BASEPAGE=4K RACES=200 STATE="1 free, 0 reserved" ;;
        # Issue 15: MADV_DONTNEED against a fault. Debian 12's 6.1 still has the race and must
        # fail it with a writer's SIGBUS (not TBROK, not inconclusive); its 6.12 has the fix
        # and must pass 200 races.
        x86_64-dontneed)
            TRIPLE=x86_64-unknown-linux-gnu KARCH=amd64 CONSOLE=ttyS0
            QEMU=(qemu-system-x86_64 -cpu max -m 1024)
            ARGS="--race dontneed -s 2M -i 1000" SIZES="2M" MODES=dontneed EXPECT=mutant BASEPAGE=4K DETECT_KIND=dontneed ;;
        x86_64-6.12-dontneed)
            TRIPLE=x86_64-unknown-linux-gnu KARCH=amd64-6.12 CONSOLE=ttyS0
            QEMU=(qemu-system-x86_64 -cpu max -m 1024)
            ARGS="--race dontneed -s 2M -i 200" SIZES="2M" MODES=dontneed BASEPAGE=4K RACES=200 STATE="0 free, 0 reserved" ;;
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
    # `clean | grep -q` stops reading early, and under pipefail the writer's SIGPIPE would
    # make a line that is there look missing: here a pipeline's status is its last command's.
    local -
    set +o pipefail
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
    if [ "$EXPECT" = mutant ] || [ "$EXPECT" = either ]; then
        [ "$EXPECT" = mutant ] && [ "$code" != 1 ] && [ -n "$code" ] && echo "hugerace: exit $code, wanted 1 (TFAIL)"
        user_lines "$log" | grep -a -i 'inconclusive' | sed 's/^/inconclusive, not a TFAIL: /'
        for s in $SIZES; do
            for m in $MODES; do
                # The result line and the diagnostic right before it (KTAP puts a failure's
                # reason on the line above its `not ok`).
                local res
                res=$(user_lines "$log" | awk -v m="$m" -v s="$s" '
                    $0 ~ "^(not )?ok [0-9]+ " m " " s "$" { print (prev ~ "^# " m " " s ": racer [0-9]+ on CPU [0-9]+ got SIGBUS") ? "sigbus" : ($1 == "ok" ? "ok" : "other " prev); exit }
                    { prev = $0 }')
                case $EXPECT/$res in
                    mutant/sigbus | either/sigbus | either/ok) ;;
                    */"") echo "no result for '$m $s'" ;;
                    mutant/ok) echo "'$m $s' passed: the mutant's race did not fail" ;;
                    *) echo "'$m $s' failed without a racer's SIGBUS (TBROK?): ${res#other }" ;;
                esac
            done
        done
    elif [ "$EXPECT" = pass ]; then
        [ "$code" = 0 ] || { [ -n "$code" ] && echo "hugerace: exit $code, wanted 0"; }
        clean "$log" | grep -a -E '^not ok ' | sed 's/^/failed: /'
        for s in $SIZES; do
            for m in $MODES; do
                clean "$log" | grep -a -E "^ok [0-9]+ " | grep -a -v '# SKIP' | grep -a -w -- "$m" | grep -a -qw -- "$s" ||
                    echo "no passing '$m $s' result"
                # Races that counted, and the state each started from, as hugerace read it.
                [ -n "$RACES" ] && ! user_lines "$log" | grep -a -qE "^# $m $s: $RACES races, 0 failed," &&
                    echo "'$m $s' did not report $RACES races, 0 failed"
                [ -n "$STATE" ] && ! user_lines "$log" | grep -a -qE "^# $m $s: took .*; each race starts with $STATE\$" &&
                    echo "'$m $s' did not start each race with $STATE"
            done
        done
    else
        clean "$log" | grep -a -qE '^not ok ' || echo "no 'not ok' line: the negative control did not fail"
        [ -n "$code" ] && [ "$code" = 0 ] && echo "hugerace: exit 0, wanted a failure status"
    fi
}

# --detect: sum a console's result lines per tool, mode and size into table rows (appended to
# DETECT_TABLE); prints the reasons the boot fails, one per line. hugerace's lines are its
# `-f json` output, one object per run ("results": "mode", "pagesize_kb", "iterations" =
# races, "failed" = failed races, "broken"); forkspin's are `forkspin: mode=M size=S races=N
# failed=F broken=B`.
detect_verdict() {
    local log=$1 rc=$2 name=$3 want=$4 expect=$5
    local -
    set +o pipefail
    [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && echo "QEMU did not end within ${TIMEOUT}s (killed)"
    clean "$log" | grep -a -q 'Kernel panic' && echo "the kernel panicked: $(clean "$log" | grep -a -m1 'Kernel panic')"
    clean "$log" | grep -a -q 'reboot: Power down' || echo "no 'reboot: Power down' on the console"
    user_lines "$log" | grep -a -q '^detect: done$' || echo "no 'detect: done': the schedule did not finish"
    user_lines "$log" | grep -a -E '^detect: (exec|fork|wait4|mount|panic)|killed by signal' | sed 's/^/detect: /'
    user_lines "$log" | python3 -c '
import json, re, sys
name, want, expect = sys.argv[1], int(sys.argv[2]), sys.argv[3]
kind, loops = sys.argv[6], int(sys.argv[7])
tally = {}  # (mode, size) -> {tool: [races, failed, broken, seconds]}
def add(mode, size, tool, races, failed, broken, secs=0.0):
    t = tally.setdefault((mode, size), {}).setdefault(tool, [0, 0, 0, 0.0])
    t[0] += races; t[1] += failed; t[2] += broken; t[3] += secs
for line in sys.stdin:
    line = line.strip()
    if line.startswith("{"):
        try:
            doc = json.loads(line)
        except ValueError:
            print("a JSON line does not parse: " + line[:80]); continue
        for r in doc.get("results", []) if doc.get("tool") == "hugerace" else []:
            if "mode" not in r or "pagesize_kb" not in r:
                print("hugerace: %s: %s" % (r.get("result"), r.get("message")))
                continue
            size = "%dM" % (r["pagesize_kb"] // 1024) if r["pagesize_kb"] % 1024 == 0 else "%dK" % r["pagesize_kb"]
            add(r["mode"], size, "hugerace", r["iterations"], r["failed"], r["broken"], r.get("elapsed_s", 0.0))
    m = re.match(r"forkspin: mode=(\w+) size=(\S+) races=(\d+) failed=(\d+) broken=(\d+)$", line)
    if m:
        add(m[1], m[2], "forkspin", int(m[3]), int(m[4]), int(m[5]))
    elif line.startswith("forkspin: TBROK") or line.startswith("madvrace: TBROK"):
        print(line)
    m = re.match(r"madvrace: size=(\S+) loops=(\d+) failed=(\d+) broken=(\d+) elapsed_ms=(\d+)$", line)
    if m:
        add("dontneed", m[1], "madvrace", int(m[2]), int(m[3]), int(m[4]), int(m[5]) / 1000.0)
rows = []
modes, tools = (("dontneed",), ("hugerace", "madvrace")) if kind == "dontneed" else (("shared", "private"), ("hugerace", "forkspin"))
for mode in modes:
    sizes = [s for (m, s) in tally if m == mode] or [sys.argv[5]]
    for size in sizes:
        cell = []
        for tool in tools:
            races, failed, broken, secs = tally.get((mode, size), {}).get(tool, [0, 0, 0, 0.0])
            wanted = loops if tool == "madvrace" else want
            if races != wanted:
                print("%s %s %s: %d races ran, wanted %d" % (tool, mode, size, races, wanted))
            if broken:
                print("%s %s %s: %d broken" % (tool, mode, size, broken))
            if tool == "hugerace" and expect == "mutant" and failed == 0:
                print("hugerace %s %s: no failed race on a mutant" % (mode, size))
            if expect == "pass" and failed:
                print("%s %s %s: %d failed races on an unpatched kernel" % (tool, mode, size, failed))
            pct = 100.0 * failed / races if races else 0.0
            if kind == "dontneed":
                # Failures per race (a madvrace loop is 100 madvises against 100 writes) and per
                # second of racing: what a tester pays to see the bug.
                cell.append("%4d/%-5d %5.1f%% %7.3f/s" % (failed, races, pct, failed / secs if secs else 0.0))
            else:
                cell.append("%4d/%-4d %5.1f%%" % (failed, races, pct))
        rows.append("%-18s %-8s %-5s %-18s %-18s" % (name, mode, size, cell[0], cell[1]) +
                    ("   (hugerace | madvrace: failed/races, per second)" if kind == "dontneed" else ""))
with open(sys.argv[4], "a") as f:
    f.write("\n".join(rows) + "\n")
' "$name" "$want" "$expect" "$DETECT_TABLE" "$DETECT_SIZE" "${DETECT_KIND:-alloc}" "$((DETECT_BLOCKS * DETECT_LOOPS))" 2>&1
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

# A cold run builds kernels first: say which, and about how long, before anything else.
scripts/kernels.sh --plan 2>/dev/null | grep -v 'every built kernel is cached'

if [ -n "$DETECT" ]; then
    DETECT_BLOCKS=${DETECT_BLOCKS:-4} DETECT_RACES=${DETECT_RACES:-50} DETECT_LOOPS=${DETECT_LOOPS:-750}
    DETECT_TABLE=$OUT/detect.table
    : >"$DETECT_TABLE"
fi
passed=0 failed=0 skipped=0
summary=()
for name in "${@:-${ALL[@]}}"; do
    machine "$name" || { failed=$((failed + 1)); continue; }
    console="$OUT/$name.console"
    rm -f "$console" "$OUT/$name.qemu"
    initrd="target/$TRIPLE/initramfs.cpio.gz"
    if [ -n "$DETECT" ]; then
        console="$OUT/$name.detect.console"
        rm -f "$console"
        initrd="target/$TRIPLE/detect.cpio.gz"
        # Until hugerace has --keep-going, each race is a run of its own (-i 1).
        kg=0
        grep -a -q 'keep-going' "target/$TRIPLE/release/hugerace" 2>/dev/null && kg=1
        ARGS="$DETECT_BLOCKS $DETECT_RACES $DETECT_SIZE $kg"
        [ "$DETECT_KIND" = dontneed ] && ARGS="$ARGS dontneed $DETECT_LOOPS"
        [ "$EXPECT" = either ] && EXPECT=mutant
    fi
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
        if [ -n "$DETECT" ]; then
            reasons=$(detect_verdict "$console" "$rc" "$name" $((DETECT_BLOCKS * DETECT_RACES)) "$EXPECT")
        else
            reasons=$(verdict "$console" "$rc")
        fi
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
    if [ -n "$DETECT" ]; then
        [ -e "$console" ] && echo "   console: $console"
    elif [ -e "$console" ]; then
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
if [ -n "$DETECT" ]; then
    echo
    echo "Failed races / races, per machine, mode and size (2 racers, 2 vCPUs under TCG;"
    echo "$DETECT_BLOCKS blocks of $DETECT_RACES races, hugerace then forkspin in each block, one boot per machine):"
    printf '%-18s %-8s %-5s %-18s %-18s\n' machine mode size hugerace forkspin
    cat "$DETECT_TABLE"
fi
[ "$failed" -eq 0 ]

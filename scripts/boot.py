#!/usr/bin/env python3
"""Boot tests: real kernels under QEMU (TCG, 2 vCPUs) with hugerace as /init, the only file of
the initramfs. Each boot races the hugepage sizes its machine names, prints its results on
the console and powers the guest off.

    scripts/boot.py [MACHINE...]            default: every machine of `make boot-test`
    scripts/boot.py --detect [MACHINE...]   `make detect`: failure rates on the mutants

The machines, and what each console must show, are scripts/machines.py's table; the judges
are scripts/judges.py. Needs target/<triple>/initramfs.cpio.gz (`make initramfs
TARGET=<triple>`) and a kernel from scripts/kernels.sh (cached under /var/cache/hugerace). A
machine whose kernel or QEMU cannot be had is reported SKIP with the reason, never counted as
passed; under CI (CI, HUGERACE_REQUIRE_ROOT or HUGERACE_REQUIRE_QEMU set) a SKIP fails, and
otherwise it is logged, one line, to the log `make test` counts at its end.

--detect boots each machine with a `detect` entry in the table with target/<triple>/
detect.cpio.gz instead (examples/detect.rs as /init, /hugerace, /forkspin and /madvrace beside
it), DETECT_BOOTS times (default 3) each (DETECT_HOW: 1, the default, races hugerace with
--keep-going at its default start; 2 with --offset sweep; 0 as RACES runs of -i 1): DETECT_BLOCKS blocks (default 4) of DETECT_RACES
races (default 50) per mode on the machine's detect size, hugerace then forkspin in each block
(madvrace's DETECT_LOOPS loops for the dontneed race), then DETECT_NAMED one-race runs
(default 10) of hugerace by libhugetlbfs's test's name, each timed. Each boot is judged on
its own (one failing fails the machine); the table sums the boots: per machine, mode, size and
program the failed races, the rate with its 95 % Wilson interval, and each boot's rate; a
second table gives the one-race runs' times (hugerace's by that name, and libhugetlbfs's test's
where the image holds it), and one per stamps kernel where each race's loser looked.

Consoles land in target/boot/<machine>.console, QEMU's own messages in <machine>.qemu; with
--detect in <machine>.detect.N.console and .detect.N.qemu, N the boot (1 to DETECT_BOOTS).
BOOT_TIMEOUT (seconds, default 300; 1200 with --detect) bounds each boot.
"""

import fcntl
import os
import shutil
import subprocess
import sys
import time

import judges
import machines as M

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = "target/boot"


def under_ci():
    """CI installs everything: there a SKIP is a failure (as for the cargo tests)."""
    return any(os.environ.get(v, "").lower() not in ("", "0", "false") for v in ("CI", "HUGERACE_REQUIRE_ROOT", "HUGERACE_REQUIRE_QEMU"))


class Kernels:
    """One scripts/kernels.sh lookup per kernel and run (several machines share one)."""

    def __init__(self):
        self.found = {}

    def get(self, name):
        """(path, None) or (None, ("SKIP" | "FAIL", why))."""
        if name not in self.found:
            log = f"{OUT}/kernel-{name}.log"
            with open(log, "w") as err:
                p = subprocess.run(["scripts/kernels.sh", name], stdout=subprocess.PIPE, stderr=err, text=True)
            path = p.stdout.strip().split("\n")[-1] if p.stdout.strip() else ""
            if p.returncode == 0 and path:
                self.found[name] = (path, None)
            elif path.startswith("SKIP: "):
                self.found[name] = (None, ("SKIP", path[len("SKIP: "):]))
            else:
                with open(log) as f:
                    last = (f.read().strip().split("\n") or [""])[-1]
                self.found[name] = (None, ("FAIL", f"no kernel: {last}"))
        return self.found[name]


def boot(m, kernel, initrd, args, console, qemu_log, timeout_s):
    """Boot one machine; returns QEMU's exit status, or judges.TIMEOUT."""
    cmd = m.qemu_cmd() + ["-accel", "tcg", "-smp", "2", "-nographic", "-no-reboot", "-monitor", "none",
                          "-serial", f"file:{console}", "-kernel", kernel, "-initrd", initrd, "-append", m.cmdline(args)]
    with open(qemu_log, "w") as q:
        try:
            # On the time limit, run() kills QEMU (SIGKILL) and waits for it: nothing is left.
            return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=q, stderr=subprocess.STDOUT, timeout=timeout_s).returncode
        except subprocess.TimeoutExpired:
            return judges.TIMEOUT


def detect_consoles(name, boots):
    """A detect machine's consoles, one a boot, kept side by side to be read again."""
    return [f"{OUT}/{name}.detect.{i}.console" for i in range(1, boots + 1)]


def read(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def run_machine(m, kernels, detect, timeout_s, det):
    """Boot and judge one machine (DETECT_BOOTS times with --detect: a failure in any boot
    fails it); prints its report. Returns (result, seconds, table rows)."""
    consoles = detect_consoles(m.name, det["boots"]) if detect else [f"{OUT}/{m.name}.console"]
    # Every console of an earlier run goes (a run of fewer boots must not leave older ones to
    # be read as its own), and the one-console name of before DETECT_BOOTS.
    stale = {f"{OUT}/{m.name}.console", f"{OUT}/{m.name}.qemu", f"{OUT}/{m.name}.detect.console"}
    if os.path.isdir(OUT):
        stale |= {f"{OUT}/{f}" for f in os.listdir(OUT) if f.startswith(f"{m.name}.detect.")}
    for path in stale:
        if os.path.exists(path):
            os.remove(path)
    initrd = f"target/{m.target}/{'detect' if detect else 'initramfs'}.cpio.gz"
    args = None
    if detect:
        args = f"{det['blocks']} {det['races']} {m.detect.size} {det['how']}" + (f" dontneed {det['loops']}" if m.detect.kind == "dontneed" else f" {det['named']}")
    t0 = time.monotonic()
    kernel, rows, why = None, [], []
    if not shutil.which(m.qemu[0]):
        # CI installs QEMU itself (HUGERACE_REQUIRE_QEMU=1): there its absence is a failure.
        result, why = "SKIP", [f"{m.qemu[0]} is not installed (make setup)"]
    else:
        kernel, missing = kernels.get(m.kernel)
        if missing:
            result, why = missing[0], [missing[1]]
        elif not os.access(initrd, os.R_OK):
            result, why = "FAIL", [f"{initrd} is missing (make initramfs TARGET={m.target})"]
        else:
            t0 = time.monotonic()
            counts = []
            for i, console in enumerate(consoles, 1):
                qemu_log = console[:-len(".console")] + ".qemu"
                status = boot(m, kernel, initrd, args, console, qemu_log, timeout_s)
                text = read(console) if os.path.exists(console) else ""
                if detect:
                    more, c = judges.detect_verdict(m, text, status, timeout_s, det["blocks"] * det["races"], det["blocks"] * det["loops"],
                                                         det["blocks"] * det["named"])
                    why += [f"boot {i} of {len(consoles)}: {w}" for w in more] if len(consoles) > 1 else more
                    counts.append(c)
                else:
                    why = judges.verdict(m, text, status, timeout_s)
            if detect:
                rows = (judges.detect_rows(m, counts), judges.detect_runtimes(m, counts))
            result = "FAIL" if why else "PASS"
    if result == "SKIP":
        if under_ci():
            result, why = "FAIL", [f"{why[0]} (a SKIP fails under CI)"]
        else:
            with open(os.environ.get("HUGERACE_SKIP_LOG", "target/skips.log"), "a") as log:
                log.write(f"SKIP: boot::{m.name}: {why[0]}\n")
    dt = time.monotonic() - t0
    print(f"== boot {m.name} ({m.target}, kernel {m.kernel}): {result} in {dt:.1f}s" + (f", {len(consoles)} boots" if detect else ""))
    if kernel and os.path.exists(kernel):
        print(f"   kernel: {kernel}")
    for w in why:
        for line in w.split("\n"):
            print(f"   reason: {line}")
    for console in [c for c in consoles if os.path.exists(c)]:
        if detect:
            print(f"   console: {console}")
        else:
            print(f"   console ({console}), hugerace's lines:")
            for line in judges.excerpt(m, read(console)):
                print(f"     | {line}")
    return result, dt, rows


def main(argv):
    sys.stdout.reconfigure(line_buffering=True)
    os.chdir(ROOT)
    os.makedirs(OUT, exist_ok=True)
    # One boot suite at a time per clone: two would overwrite each other's consoles and share
    # the 2 cores, slowing every boot toward its time limit.
    lock = open(f"{OUT}/.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    detect = bool(argv) and argv[0] == "--detect"
    names = argv[1:] if detect else argv
    if not names:
        names = [m.name for m in M.MACHINES if (m.detect if detect else m.boot_test)]
    timeout_s = int(os.environ.get("BOOT_TIMEOUT") or (1200 if detect else 300))
    det = {k: int(os.environ.get(f"DETECT_{k.upper()}") or d) for k, d in (("blocks", 4), ("races", 50), ("loops", 750), ("boots", 3), ("how", 1), ("named", 10))}
    if detect and det["boots"] < 1:
        sys.exit("DETECT_BOOTS must be at least 1")
    # A cold run builds kernels first: say which, and about how long, before anything else.
    plan = subprocess.run(["scripts/kernels.sh", "--plan"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in plan.stdout.splitlines():
        if "every built kernel is cached" not in line:
            print(line)
    # kernels.sh reads the table from here rather than starting Python for it each time.
    os.environ["HUGERACE_KERNEL_TABLE"] = "\n".join(M.kernel_lines())
    kernels = Kernels()
    counts, summary, table, runtimes = {"PASS": 0, "FAIL": 0, "SKIP": 0}, [], [], []
    for name in names:
        m = M.BY_NAME.get(name)
        if m is None or (detect and not m.detect):
            print(f"unknown machine {name}" + (" (no detect entry)" if m else ""), file=sys.stderr)
            counts["FAIL"] += 1
            continue
        result, dt, rows = run_machine(m, kernels, detect, timeout_s, det)
        counts[result] += 1
        summary.append("%-16s %-4s %6ss" % (name, result, f"{dt:.1f}"))
        table += rows[0] if rows else []
        runtimes += rows[1] if rows else []
    print()
    print("\n".join(summary))
    print(f"boot: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
    if detect:
        print()
        print(f"Failed races / races per machine, mode, size and program, over {det['boots']} boot(s) of each machine")
        print(f"(2 racers, 2 vCPUs under TCG; a boot: {det['blocks']} block(s) of {det['races']} races, hugerace then its peer in")
        print("each); the rate's 95% Wilson interval; vs: hugerace against its best peer (forkspin, or airace:")
        print("libhugetlbfs's alloc-instantiate-race where the image holds it), ahead or behind when the")
        print("intervals do not overlap, ~ when they do; per boot: the rate in each boot.")
        print(judges.DETECT_HEADER)
        for row in table:
            print(row)
        if runtimes:
            print()
            print("One-race runs, fork to reaped, over the boots: hugerace by libhugetlbfs's test's name")
            print("(named: `alloc-instantiate-race MODE -s SIZE`, as libhugetlbfs's runner and LTP run it)")
            print("and libhugetlbfs's own test (airace) where the image holds it.")
            print(judges.RUNTIME_HEADER)
            for row in runtimes:
                print(row)
        # Each stamps kernel's consoles: where each race's loser looked (scripts/stamps.py),
        # over all its boots together.
        for n in names:
            stamped = [c for c in detect_consoles(n, det["boots"])
                       if os.path.exists(c) and b"stamps: begin" in open(c, "rb").read()]
            if stamped:
                print()
                print(f"Where the loser looked on {n}, over its {det['boots']} boot(s) (scripts/stamps.py):")
                subprocess.run([sys.executable, "scripts/stamps.py", *stamped])
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""make bench: hugerace's figures on this machine, printed as a table. Benchmarks print
figures; no test ever asserts a timing. Needs root (it sets the 2M pool) and puts every pool
knob back, whatever happens."""

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = os.environ.get("TARGET", "x86_64-unknown-linux-gnu")
BIN = Path(os.environ.get("HUGERACE_BIN", ROOT / "target" / TARGET / "release" / "hugerace"))
BASELINE = ROOT / "target" / TARGET / "release" / "examples" / "baseline"
LAUNCH = ROOT / "target" / TARGET / "release" / "examples" / "launch"
NR = Path("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages")
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))


def knobs():
    return {p: p.read_text() for p in Path("/sys/kernel/mm/hugepages").glob("*/nr_*hugepages")}


def launch(n, args):
    """Median wall time in seconds of n runs, timed by a tiny static launcher (a Python
    parent would add milliseconds of its own fork)."""
    _, _, out = run([LAUNCH, str(n), BIN, *args])
    ns = [int(l.split()[1]) for l in out.splitlines() if l.startswith("launch: ")]
    if len(ns) != n or any(l.split()[5] != "0" for l in out.splitlines() if l.startswith("launch: ")):
        sys.exit(f"bench: a launched run failed:\n{out}")
    return statistics.median(ns) / 1e9


def run(args, check=True):
    """Run a command; return (wall seconds, peak RSS in KB of it and its racers, stdout)."""
    t0 = time.monotonic()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status)
    if check and code != 0:
        sys.exit(f"bench: {' '.join(map(str, args))} exited {code}\n{out.decode()}{err.decode()}")
    return wall, ru.ru_maxrss, out.decode()


def race(args):
    _, _, out = run([BIN, "-f", "json", *args])
    return {r["mode"]: r for r in json.loads(out)["results"]}


def row(name, value, note=""):
    print(f"{name:<44} {value:>16}  {note}")


def main():
    if os.geteuid() != 0:
        sys.exit("bench: needs root (it sets the 2M hugepage pool and restores it)")
    saved = knobs()
    lock = open("/run/lock/hugerace-tests.lock", "w")
    os.lockf(lock.fileno(), os.F_LOCK, 0)
    try:
        print(f"hugerace bench on {os.uname().release}, {os.cpu_count()} CPUs, target {TARGET}\n")
        row("figure", "value", "how")
        row("-" * 44, "-" * 16, "-" * 30)
        row("binary size, stripped", f"{BIN.stat().st_size} B", str(BIN.relative_to(ROOT)))
        NR.write_text("2")
        _, _, out = run([BIN, "-v"])
        hwm = [l.split("peak RSS ")[1] for l in out.splitlines() if "peak RSS " in l]
        row("peak RSS, one default run", hwm[0] if hwm else "?", "VmHWM at exit (hugerace -v)")
        for mode in ("shared", "private"):
            row(f"wall time, one {mode} run, pool of 2", f"{launch(21, [mode]) * 1e3:.2f} ms", "median of 21")
        row("wall time, one default run (both modes)", f"{launch(11, []) * 1e3:.2f} ms", "median of 11")
        sweep = []
        for n in (2, 8, 16, 32, 64):
            NR.write_text(str(n))
            sweep.append((n, launch(7, ["shared"])))
        slope = (sweep[-1][1] - sweep[0][1]) / (sweep[-1][0] - sweep[0][0])
        row("setup, pool 2 -> 64 pages", " / ".join(f"{w * 1e3:.1f}" for _, w in sweep) + " ms", "pool 2, 8, 16, 32, 64")
        row("setup growth per extra 2M page", f"{slope * 1e6:.0f} us", "linear fit of the ends")
        NR.write_text("2")
        _, _, out = run([BASELINE, str(SECONDS)])
        faults, ns = int(out.split()[1]), int(out.split()[4])
        base = faults / (ns / 1e9)
        row("baseline: bare 2M fault loop", f"{base:.0f} /s", "memfd+ftruncate+mmap+touch+munmap+close")
        for label, extra in (("", []), (" --rt", ["--rt"])):
            res = race(["-I", str(SECONDS), *extra])
            for mode in ("shared", "private"):
                r = res[mode]
                row(f"races/s, {mode}, -I {SECONDS}{label}", f"{r['races_per_s']:.0f} /s", f"{r['races_per_s'] / base:.2f} x baseline")
                s = r["skew_ns"]
                row(f"skew p50 / p99, {mode}{label}", f"{s['p50']} / {s['p99']} ns", f"max {s['max']} ns")
                row(f"overlap, {mode}{label}", f"{r['overlap_pct']:.2f} %", f"{r['missed']} missed of {r['passed']}")
                row(f"slowest racer's fault p50, {mode}{label}", f"{r['fault_ns_p50'] / 1e3:.1f} us", "")
    finally:
        for p, v in saved.items():
            if p.read_text() != v:
                try:
                    p.write_text(v)
                except OSError as e:
                    print(f"bench: could not restore {p}: {e}", file=sys.stderr)
        if knobs() != saved:
            print("bench: WARNING: hugepage knobs differ from before", file=sys.stderr)


if __name__ == "__main__":
    main()

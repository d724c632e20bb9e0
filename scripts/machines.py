#!/usr/bin/env python3
"""The boot machines: the one table that scripts/boot.py boots, scripts/kernels.sh fetches and
builds kernels for, `make help` lists and the README shows.

    machines.py kernels           one line per kernel, for scripts/kernels.sh:
                                    debian NAME APT_ARCH METAPACKAGE
                                    built NAME MAKE_ARCH CROSS_COMPILE TARGET IMAGE COLD_MIN [VARIANT=PATCH...]
    machines.py kernel-names      every kernel's name (`make kernels`)
    machines.py targets [--detect]  the Rust targets whose images the boots need
    machines.py help              the machine rows of `make help`
    machines.py readme            the README's machine table (Markdown)

A machine says what it boots (its Rust target's image, a kernel of KERNELS, QEMU), what runs
(the kernel's arguments and hugerace's, the words after `--`), and what its console must
show: for each mode and hugepage size an outcome, and the base page size hugerace reports.
A machine whose arguments say `-f json` is judged on hugerace's JSON document (and so must
carry `-v`, which puts its informational lines on the same console, stderr, as a check that
the document stays whole); the others on PID-1 mode's KTAP lines, where KTAP itself is tested.
"""

import sys
from dataclasses import dataclass, field

# ---- what a console must show, per mode and size ----
PASS = "pass"      # the race passed (JSON: "pass"; KTAP: `ok`)
SIGBUS = "sigbus"  # the race failed: a racer's SIGBUS (JSON: "fail" with "signal":"SIGBUS")
EITHER = "either"  # pass or SIGBUS, never anything else (a window too narrow to always hit)
SKIP = "skip"      # may be skipped (a size the guest cannot have), or pass
FAIL = "fail"      # failed, for any reason (KTAP `not ok`: the negative control)
OUTCOMES = (PASS, SIGBUS, EITHER, SKIP, FAIL)

ALLOC = ("shared", "private")
DONTNEED = ("dontneed",)
RESV_RESTORE = ("resv-restore",)
SUBPOOL = ("subpool",)
ALL = ALLOC + DONTNEED + RESV_RESTORE + SUBPOOL  # `hugerace --list`'s order, /init's default

# ---- kernels ----


@dataclass(frozen=True)
class Debian:
    """A kernel package of Debian's, found through a metapackage (security updates rename
    the versioned package), cached under kernels/<name>/."""
    apt_arch: str
    meta: str
    about: str


@dataclass(frozen=True)
class Family:
    """Kernels built here from Debian's linux-source with boot/<name>.config over allnoconfig,
    in one object tree: the plain kernel and its variants, each the same configuration with a
    patch of boot/. The cache key hashes the config, kernels.sh's recipe and the patch."""
    name: str
    make_arch: str
    cross: str       # CROSS_COMPILE; "-" is the host gcc
    target: str      # make target
    image: str       # the image's path in the object tree
    cold_min: int    # minutes one cold build of the plain kernel takes on 2 cores (measured)
    variants: tuple = ()  # (name, patch) pairs


FAMILIES = (
    # Debian ships no big-endian ppc64 kernel, and no arm64 kernel with 64K base pages.
    Family("ppc64be", "powerpc", "powerpc64-linux-gnu-", "vmlinux", "vmlinux", 4,
           (("ppc64be-mutant", "hugetlb-mutant.patch"),)),
    Family("arm64-64k", "arm64", "aarch64-linux-gnu-", "Image", "arch/arm64/boot/Image", 5,
           (("arm64-64k-mutant", "hugetlb-mutant.patch"),)),
    # A small x86_64 kernel, the mutants' unpatched twin (issue 13).
    Family("x86_64", "x86_64", "-", "bzImage", "arch/x86/boot/bzImage", 6,
           (("x86_64-mutant", "hugetlb-mutant.patch"), ("x86_64-narrow", "hugetlb-narrow.patch"),
            ("x86_64-stamps", "hugetlb-narrow-stamps.patch"), ("x86_64-unlocked", "hugetlb-unlocked-alloc.patch"),
            ("x86_64-unlocked-stamps", "hugetlb-unlocked-stamps.patch"))),
)

DEBIAN = {
    "amd64": Debian("amd64", "linux-image-amd64", "Debian 12's 6.1"),
    # Debian 12's newer kernel line (bookworm's 6.12 packages): the dontneed race fixed.
    "amd64-6.12": Debian("amd64", "linux-image-6.12-amd64", "Debian 12's 6.12"),
    "arm64": Debian("arm64", "linux-image-arm64", "Debian 12's 6.1"),
    "ppc64el": Debian("ppc64el", "linux-image-powerpc64le", "Debian 12's 6.1"),
}


def built(name):
    """(family, patch or None) of a kernel built here, or None."""
    for f in FAMILIES:
        if name == f.name:
            return f, None
        for v, patch in f.variants:
            if name == v:
                return f, patch
    return None


def kernel_about(name):
    """The kernel's source, in words, for the README and `make help`."""
    if name in DEBIAN:
        d = DEBIAN[name]
        return f"{d.about} (`{d.meta}`)"
    f, patch = built(name)
    return f"`linux-source`, `boot/{f.name}.config`" + (f" + `boot/{patch}`" if patch else "")


# ---- machines ----

QEMU_X86 = ("qemu-system-x86_64", "-cpu", "max")
# pauth-impdef: the same pointer authentication, far cheaper to emulate.
QEMU_ARM = ("qemu-system-aarch64", "-M", "virt", "-cpu", "max,pauth-impdef=on")
QEMU_PSERIES = ("qemu-system-ppc64", "-M", "pseries,cap-hpt-max-page-size=16M")
CONSOLE = {QEMU_X86: "ttyS0", QEMU_ARM: "ttyAMA0", QEMU_PSERIES: "hvc0"}
TRIPLE = {QEMU_X86: "x86_64-unknown-linux-gnu", QEMU_ARM: "aarch64-unknown-linux-gnu"}
# hugerace's JSON document, its informational lines on stderr (the same console).
# /init's default is every race kind (`--race all`, issue 19); each machine here names the
# kind whose outcome it expects; the *-all machines run the default.
JSON = "-f json -v "


@dataclass(frozen=True)
class Detect:
    """`make detect`: failure rates on this machine, on one size; `dontneed` races that race
    against the kernel selftest's way (madvrace), the others against forkspin."""
    size: str = "2M"
    kind: str = "alloc"


@dataclass(frozen=True)
class Machine:
    name: str
    kernel: str
    qemu: tuple
    mem_mb: int
    args: str            # hugerace's arguments, after `--` on the kernel command line
    must: dict           # size -> outcome for every mode of `modes`, or {mode: outcome}
    base_page: str = ""  # the base page size hugerace must report ("" for KTAP machines)
    append: str = ""     # more kernel arguments
    modes: tuple = ALLOC
    races: int = 0       # a passing race must count exactly this many races, none failed
    start: tuple = ()    # (free, reserved): the state every race must start from
    triple: str = ""     # the Rust target, when QEMU alone does not tell (ppc64 LE/BE)
    boot_test: bool = True  # booted by `make boot-test` (else only when named, or detected)
    detect: Detect = None

    @property
    def target(self):
        return self.triple or TRIPLE[self.qemu]

    @property
    def reads(self):
        """What the judge reads: "json" (the machine's arguments say -f json) or "ktap"."""
        return "json" if "-f json" in self.args else "ktap"

    def qemu_cmd(self):
        return list(self.qemu) + ["-m", str(self.mem_mb)]

    def cmdline(self, args=None):
        """The kernel's command line; `args` in place of hugerace's own (make detect's)."""
        args = self.args if args is None else args
        words = [f"console={CONSOLE[self.qemu]}", "quiet", "panic=-1"] + self.append.split()
        return " ".join(words + (["--"] + args.split() if args else []))

    def tests(self):
        """[(mode, size, outcome)], in the order hugerace reports them."""
        return [(m, s, o[m] if isinstance(o, dict) else o) for s, o in self.must.items() for m in self.modes]

    def outcomes(self):
        """Every outcome the machine expects, of any mode and size."""
        return {o for _, _, o in self.tests()}


_LE, _BE = "powerpc64le-unknown-linux-gnu", "powerpc64-unknown-linux-gnu"
_1G, _512M = "hugepagesz=1G hugepages=2", "hugepagesz=512M hugepages=2"

MACHINES = (
    # Each 1G hugepage fault zeroes 1G, about 2s under TCG: the machines with 1G pages run 3
    # iterations (each 1G size reserved at boot, two pages: the one taken and the last free
    # one). 6G: with 4G, the PCI hole (x86), the kernel and the initrd leave one free 1G
    # range. x86_64 also draws the progress line (--progress) on its console, inside which
    # the JSON document must stay whole.
    Machine("x86_64", "amd64", QEMU_X86, 6144, JSON + "--race alloc --progress -i 3", {"2M": PASS, "1G": PASS}, "4K", _1G),
    # The negative control: nothing left free, the contested page unreserved: every race
    # fails. Judged on PID-1 mode's KTAP (`not ok`, the plan, `hugerace: exit 1`).
    Machine("x86_64-negative", "amd64", QEMU_X86, 1024, "--race alloc --leave-free 0 --noreserve -s 2M", {"2M": FAIL}),
    Machine("arm64", "arm64", QEMU_ARM, 6144, JSON + "--race alloc -i 3", {s: PASS for s in ("64K", "2M", "32M", "1G")}, "4K", _1G),
    # 64K base pages, as RHEL's aarch64 kernels and many arm64 servers run. Its sizes are 2M
    # (contiguous PTEs), 512M (PMD) and 16G (contiguous PMDs): each 512M fault zeroes 512M
    # under TCG, so 3 iterations, two 512M pages reserved at boot. 16G cannot be had in a 3G
    # guest (and the kernel has no runtime gigantic pages): hugerace skips it.
    Machine("arm64-64k", "arm64-64k", QEMU_ARM, 3072, JSON + "--race alloc -i 3", {"2M": PASS, "512M": PASS, "16G": SKIP}, "64K", _512M),
    Machine("ppc64le-radix", "ppc64el", QEMU_PSERIES, 4096, JSON + "--race alloc -i 3", {"2M": PASS, "1G": PASS}, "64K", _1G, triple=_LE),
    # These two run PID-1 mode's defaults (-s all -i 10) but the format.
    Machine("ppc64le-hash", "ppc64el", QEMU_PSERIES, 1024, JSON + "--race alloc", {"16M": PASS}, "64K", "disable_radix", triple=_LE),
    Machine("ppc64be", "ppc64be", QEMU_PSERIES, 1024, JSON + "--race alloc", {"16M": PASS}, "64K", triple=_BE),
    # The mutants (issue 13) and their unpatched twin, 2M pages. The wide window fails most
    # first races (`make detect`: 70-97% of single races on a busy host), and a failure ends
    # the run: 20 iterations put a pass on the mutant out of reach, and cost the twin a
    # fraction of a second.
    Machine("x86_64-built", "x86_64", QEMU_X86, 1024, JSON + "--race alloc -s 2M -i 20", {"2M": PASS}, "4K", detect=Detect()),
    Machine("x86_64-mutant", "x86_64-mutant", QEMU_X86, 1024, JSON + "--race alloc -s 2M -i 20", {"2M": SIGBUS}, "4K", detect=Detect()),
    # The narrow window fails some races, not all: not a boot of `make boot-test`; `make
    # detect` measures it. Booted alone, it must report both modes without breaking.
    Machine("x86_64-narrow", "x86_64-narrow", QEMU_X86, 1024, JSON + "--race alloc -s 2M -i 50", {"2M": EITHER}, "4K",
            boot_test=False, detect=Detect()),
    # The narrow window with each fault's steps stamped (issue 18): `make detect` adds a table
    # of where each race's loser looked (scripts/stamps.py).
    Machine("x86_64-stamps", "x86_64-stamps", QEMU_X86, 1024, JSON + "--race alloc -s 2M -i 50", {"2M": EITHER}, "4K",
            boot_test=False, detect=Detect()),
    # A second narrowing (issue 18), of another place: the fault mutex dropped around the
    # allocation alone, so the loser must take it before the winner's allocation returns.
    Machine("x86_64-unlocked", "x86_64-unlocked", QEMU_X86, 1024, JSON + "--race alloc -s 2M -i 50", {"2M": EITHER}, "4K",
            boot_test=False, detect=Detect()),
    # The second narrowing stamped: where each loser takes the mutex against the winner's
    # allocation.
    Machine("x86_64-unlocked-stamps", "x86_64-unlocked-stamps", QEMU_X86, 1024, JSON + "--race alloc -s 2M -i 50",
            {"2M": EITHER}, "4K", boot_test=False, detect=Detect()),
    # 512M (a PMD on 64K base pages): its clear, the window, takes ~150 ms under TCG, far
    # beyond the racers' start skew. A 2M page (contiguous PTEs) clears in ~0.6 ms, less than
    # the skew of some boots: 2M can pass 3 races on this mutant (`make detect` measures it).
    Machine("arm64-64k-mutant", "arm64-64k-mutant", QEMU_ARM, 3072, JSON + "--race alloc -s 512M -i 10", {"512M": SIGBUS}, "64K", _512M,
            detect=Detect()),
    # Big-endian, hash MMU, 16M pages. Under TCG the racers start ms apart (skew p50 ~2 ms,
    # about a 16M clear), so a private race overlaps in some iterations only (the first
    # failure came by iteration 11 in the boots measured): up to 200, each ~7 ms.
    Machine("ppc64be-mutant", "ppc64be-mutant", QEMU_PSERIES, 1024, JSON + "--race alloc -s 16M -i 200", {"16M": SIGBUS}, "64K",
            triple=_BE, detect=Detect("16M")),
    # Issue 11 on a kernel without the 2024 reservation-restore fix, Debian 12's own 6.1:
    # hugerace checks before every race that the pool reads as before race 1, and ends TBROK
    # if not. 200 races per mode that pass, each from the state the judge reads too.
    Machine("x86_64-races", "amd64", QEMU_X86, 1024, JSON + "--race alloc -s 2M -i 200", {"2M": PASS}, "4K", races=200, start=(1, 1)),
    Machine("x86_64-races-noreserve", "amd64", QEMU_X86, 1024, JSON + "--race alloc -s 2M -i 200 --noreserve", {"2M": PASS}, "4K",
            races=200, start=(1, 0)),
    # Issue 15: MADV_DONTNEED against a fault. Debian 12's 6.1 still has the race and must fail
    # it with a writer's SIGBUS (not TBROK, not inconclusive); its 6.12 has the fix and must
    # pass 200 races.
    Machine("x86_64-dontneed", "amd64", QEMU_X86, 1024, JSON + "--race dontneed -s 2M -i 1000", {"2M": SIGBUS}, "4K",
            modes=DONTNEED, detect=Detect(kind="dontneed")),
    Machine("x86_64-6.12-dontneed", "amd64-6.12", QEMU_X86, 1024, JSON + "--race dontneed -s 2M -i 200", {"2M": PASS}, "4K",
            modes=DONTNEED, races=200, start=(0, 0)),
    # Issue 19's checks, one kind each: Debian 12's 6.1 lacks df7a6d1f6405 (the first
    # mapping's touch gets SIGBUS after a second mapping took its page), its 6.12 has it;
    # both lack a833a693a490, so the subpool's reservations underflow on both (destructive:
    # only in a boot, as the machine's own init).
    Machine("x86_64-resv-restore", "amd64", QEMU_X86, 1024, JSON + "--race resv-restore -s 2M -i 10", {"2M": SIGBUS}, "4K",
            modes=RESV_RESTORE, start=(1, 0)),
    Machine("x86_64-6.12-resv-restore", "amd64-6.12", QEMU_X86, 1024, JSON + "--race resv-restore -s 2M -i 10", {"2M": PASS},
            "4K", modes=RESV_RESTORE, races=10, start=(1, 0)),
    Machine("x86_64-subpool", "amd64", QEMU_X86, 1024, JSON + "--race subpool -s 2M", {"2M": FAIL}, "4K", modes=SUBPOOL),
    Machine("x86_64-6.12-subpool", "amd64-6.12", QEMU_X86, 1024, JSON + "--race subpool -s 2M", {"2M": FAIL}, "4K",
            modes=SUBPOOL),
    # /init's own default, every kind (no --race), as a test image runs it: on KTAP, and on
    # JSON where 6.1's dontneed race may go either way. subpool runs last (the table lists
    # destructive kinds last), since it leaves the 2M accounting broken.
    Machine("x86_64-6.12-all", "amd64-6.12", QEMU_X86, 1024, "-s 2M -i 10",
            {"2M": dict(shared=PASS, private=PASS, dontneed=PASS, **{"resv-restore": PASS}, subpool=FAIL)}, modes=ALL),
    Machine("x86_64-all", "amd64", QEMU_X86, 1024, JSON + "-s 2M -i 10",
            {"2M": dict(shared=PASS, private=PASS, dontneed=EITHER, **{"resv-restore": SIGBUS}, subpool=FAIL)}, "4K",
            modes=ALL),
)

BY_NAME = {m.name: m for m in MACHINES}


def problems():
    """What is wrong with the table itself (each machine must be judgeable as written)."""
    out = []
    for m in MACHINES:
        if m.kernel not in DEBIAN and not built(m.kernel):
            out.append(f"{m.name}: unknown kernel {m.kernel}")
        per = [o for o in m.must.values() if isinstance(o, dict)]
        if any(set(o) != set(m.modes) for o in per):
            out.append(f"{m.name}: an outcome per mode names each of {m.modes}, no other")
            continue
        bad = sorted(o for o in m.outcomes() if o not in OUTCOMES)
        if bad:
            out.append(f"{m.name}: unknown outcome {bad}")
        if m.reads == "json" and (" -v" not in " " + m.args or not m.base_page):
            out.append(f"{m.name}: a JSON machine runs -v and names its base page")
        if m.reads == "ktap" and (m.base_page or m.races or m.start or m.outcomes() & {SIGBUS, EITHER}):
            out.append(f"{m.name}: KTAP tells only ok / not ok / SKIP; base page, races, start and SIGBUS need -f json")
    return out


# ---- what the other tools read ----

def kernel_lines():
    out = [f"debian {n} {d.apt_arch} {d.meta}" for n, d in DEBIAN.items()]
    for f in FAMILIES:
        variants = " ".join(f"{v}={p}" for v, p in f.variants)
        out.append(f"built {f.name} {f.make_arch} {f.cross} {f.target} {f.image} {f.cold_min} {variants}".rstrip())
    return out


def kernel_names():
    return list(DEBIAN) + [n for f in FAMILIES for n in (f.name,) + tuple(v for v, _ in f.variants)]


def targets(detect=False):
    seen = []
    for m in MACHINES:
        if (m.detect if detect else m.boot_test) and m.target not in seen:
            seen.append(m.target)
    return seen


def must_words(m):
    """What a machine must show, in words."""
    by = {}
    for mode, s, o in m.tests():
        by.setdefault((o, s), []).append(mode)
    # One phrase per outcome: its modes and sizes, the sizes together when the modes agree.
    grouped = {}
    for (o, s), modes in by.items():
        grouped.setdefault((o, " and ".join(modes)), []).append(s)
    words = {PASS: "pass", SIGBUS: "fail with a racer's SIGBUS", EITHER: "pass or fail with SIGBUS",
             SKIP: "skip (or pass)", FAIL: "fail (`not ok`)"}
    parts = [f"{words[o]}: {modes} on {', '.join(sizes)}" for (o, modes), sizes in grouped.items()]
    if m.races:
        parts.append(f"exactly {m.races} races")
    if m.start:
        parts.append(f"each from {m.start[0]} free, {m.start[1]} reserved")
    if m.base_page:
        parts.append(f"base page {m.base_page}")
    return "; ".join(parts)


def help_rows():
    rows = []
    for m in MACHINES:
        where = ("boot-test" if m.boot_test else "") + (" detect" if m.detect else "")
        rows.append(f"  {m.name:<24} {where.strip():<16} {m.kernel:<17} {must_words(m)}")
    return rows


def readme_table():
    rows = ["| machine | kernel | kernel arguments (after `--`: hugerace's) | must show | booted by |",
            "| --- | --- | --- | --- | --- |"]
    for m in MACHINES:
        words = m.append.split() + (["--"] + m.args.split() if m.args else [])
        where = ", ".join(w for w, on in (("`make boot-test`", m.boot_test), ("`make detect`", m.detect)) if on)
        rows.append(f"| `{m.name}` | {kernel_about(m.kernel)}, {m.target.split('-')[0]} | `{' '.join(words)}` "
                    f"| {must_words(m)} | {where} |")
    return rows


def main(argv):
    bad = problems()
    if bad:
        sys.exit("machines.py: " + "; ".join(bad))
    what = argv[1] if len(argv) > 1 else ""
    if what == "kernels":
        lines = kernel_lines()
    elif what == "kernel-names":
        lines = [" ".join(kernel_names())]
    elif what == "targets":
        lines = [" ".join(targets(detect="--detect" in argv))]
    elif what == "help":
        lines = ["boot machines (scripts/machines.py; `scripts/boot.py NAME...` boots any of them):"] + help_rows()
    elif what == "readme":
        lines = readme_table()
    else:
        sys.exit(__doc__)
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv)

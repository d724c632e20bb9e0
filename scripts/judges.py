"""What a boot's console must show (scripts/boot.py), judged against its machine of
scripts/machines.py. Each judge returns the reasons a boot fails, one string each; none
means it passed.

A machine judged on JSON: the console must hold exactly one hugerace JSON document, whole
(cut from its first byte to its last and parsed with json.loads: nothing else written to
the console, such as stderr's lines or the progress line, may land inside it), whose
results are the machine's tests with the outcomes it names. A KTAP machine: the version
line, a plan and as many results as planned. Both: `hugerace: exit N` as the last line
hugerace printed (N as the outcomes want, and as the document's exit_status says), the
kernel's `reboot: Power down`, no panic, and QEMU ending by itself.
"""

import json
import math
import re

import machines as M

# CSI sequences (ESC [ ... letter) and two-byte ones (ESC c: firmware resetting the terminal).
ESCAPE = re.compile(r"\x1b(\[[0-9;?]*)?[a-zA-Z]")
KERNEL_LINE = re.compile(r"^\[ *[0-9]+\.[0-9]+\]")
EXIT_LINE = re.compile(r"^hugerace: exit (-?[0-9]+)$")
DOC_START = '{"tool":"hugerace"'
TIMEOUT = "timeout"  # QEMU's status when it was killed at the time limit


def lines(console):
    """The console's lines as a terminal shows them: after a carriage return only what follows
    it (a progress line's redraws), terminal escapes and NULs gone."""
    out = []
    for raw in console.replace("\r\n", "\n").split("\n"):
        out.append(ESCAPE.sub("", raw.rsplit("\r", 1)[-1]).replace("\0", ""))
    return out


def user_lines(console):
    """Everything but the kernel's messages (which start with a [ timestamp ])."""
    return [l for l in lines(console) if not KERNEL_LINE.match(l)]


def size_name(kb):
    for unit, k in (("G", 1 << 20), ("M", 1 << 10)):
        if kb % k == 0:
            return f"{kb // k}{unit}"
    return f"{kb}K"


def kb(size):
    return int(size[:-1]) << {"K": 0, "M": 10, "G": 20}[size[-1]]


def wanted_exit(m):
    """The exit statuses the machine's outcomes allow (LTP bits for JSON, kselftest's for KTAP:
    both 0 for passes and skips beside passes, 1 for failures)."""
    outcomes = m.outcomes()
    if outcomes & {M.SIGBUS, M.FAIL}:
        return {1}
    return {0, 1} if M.EITHER in outcomes else {0}


def ending_reasons(console, status, timeout_s):
    """QEMU ended by itself within its time, the kernel powered off and did not panic."""
    why = [f"QEMU did not end within {timeout_s}s (killed)"] if status == TIMEOUT else []
    text = lines(console)
    panic = [l for l in text if "Kernel panic" in l]
    if panic:
        why.append(f"the kernel panicked: {panic[0]}")
    if not any("reboot: Power down" in l for l in text):
        why.append("no 'reboot: Power down' on the console")
    return why


def machine_reasons(console, status, timeout_s):
    """What every boot must show, whatever runs in it. Returns (reasons, exit code or None)."""
    why = ending_reasons(console, status, timeout_s)
    if status not in (0, TIMEOUT):
        why.append(f"QEMU exited with status {status}")
    said = [l for l in user_lines(console) if l.strip()]
    last = said[-1] if said else ""
    found = EXIT_LINE.match(last)
    if not found:
        why.append(f"the last line hugerace printed is not 'hugerace: exit N': '{last}'")
    return why, int(found[1]) if found else None


def json_document(console):
    """The one JSON document on the console, cut to its bounds: (document or None, reasons)."""
    text = console.replace("\r\n", "\n")
    starts = [f.start() for f in re.finditer(re.escape(DOC_START), text)]
    if len(starts) != 1:
        return None, [f"{len(starts)} hugerace JSON documents on the console, wanted one"]
    try:
        doc, end = json.JSONDecoder().raw_decode(text, starts[0])
    except ValueError as e:
        cut = text[starts[0]:].split("\n", 1)[0]
        return None, [f"the JSON document does not parse ({e}): something landed inside it: {cut[max(0, e.pos - starts[0] - 40):][:120]!r}"]
    rest = text[end:].split("\n", 1)[0]
    if rest.strip():
        return None, [f"the JSON document does not end its line: {rest[:80]!r} follows it"]
    return doc, []


def test_reasons(m, got):
    """got: {"mode size": (result, details)} where result is pass / fail / sigbus / skip /
    broken / other; details says what happened. Returns the reasons the tests fail."""
    why = []
    for mode, size, want in m.tests():
        key = f"{mode} {size}"
        if key not in got:
            why.append(f"no result for '{key}'")
            continue
        res, details = got[key]
        ok = {M.PASS: {"pass"}, M.SIGBUS: {"sigbus"}, M.EITHER: {"pass", "sigbus"},
              M.SKIP: {"skip", "pass"}, M.FAIL: {"fail", "sigbus"}}[want]
        if res in ok:
            continue
        if want == M.SIGBUS and res == "pass":
            why.append(f"'{key}' passed: the mutant's race did not fail")
        elif want == M.SIGBUS and res == "fail":
            why.append(f"'{key}' failed without a racer's SIGBUS: {details}")
        elif want == M.FAIL:
            why.append(f"'{key}' {res}: the negative control did not fail")
        else:
            why.append(f"'{key}' {res}, wanted {want}: {details}")
    expected = {f"{mode} {size}" for mode, size, _ in m.tests()}
    for key, (res, details) in got.items():
        if key not in expected:
            why.append(f"'{key}' is not one of the machine's tests: {res}: {details}")
    return why


def json_results(m, doc):
    """The document's results as test_reasons takes them, and the reasons found on the way."""
    got, why = {}, []
    for r in doc.get("results", []):
        if "mode" not in r or "pagesize_kb" not in r:
            why.append(f"hugerace: {r.get('name')}: {r.get('result')}: {r.get('message')}")
            continue
        key = f"{r['mode']} {size_name(r['pagesize_kb'])}"
        res = r.get("result")
        if res == "fail" and r.get("signal") == "SIGBUS" and r.get("failed", 0) >= 1:
            res = "sigbus"
        elif res == "pass":
            if m.races and (r.get("iterations"), r.get("failed")) != (m.races, 0):
                why.append(f"'{key}' ran {r.get('iterations')} races, {r.get('failed')} failed; wanted {m.races}, none failed")
            if m.start and (r.get("start_free"), r.get("start_reserved")) != m.start:
                why.append(f"'{key}' did not start each race with {m.start[0]} free, {m.start[1]} reserved: "
                           f"{r.get('start_free')} free, {r.get('start_reserved')} reserved")
        elif res not in ("fail", "skip", "broken"):
            res = f"result {res!r}"
        if key in got:
            why.append(f"'{key}' reported twice")
        got[key] = (res, f"{r.get('message')} (signal {r.get('signal', 'none')}, {r.get('failed')} failed)")
    return got, why


def judge_json(m, console, code):
    doc, why = json_document(console)
    if doc is None:
        return why
    if doc.get("tool") != "hugerace":
        return ["the JSON document is not hugerace's"]
    if m.base_page and doc.get("base_page_kb") != kb(m.base_page):
        why.append(f"hugerace reported base page {size_name(doc.get('base_page_kb') or 0)}, the machine's is {m.base_page}: "
                   "the kernel's base page size is not the machine's")
    if code is not None and doc.get("exit_status") != code:
        why.append(f"the document's exit_status {doc.get('exit_status')} is not the exit line's {code}")
    got, more = json_results(m, doc)
    return why + more + test_reasons(m, got)


KTAP_RESULT = re.compile(r"^(not )?ok ([0-9]+) (\S+) (\S+)( # SKIP.*)?$")


def judge_ktap(m, console):
    said = user_lines(console)
    why = []
    if not any(l.endswith("KTAP version 1") for l in said):
        why.append("no 'KTAP version 1' line")
    plans = [int(l[3:]) for l in said if re.fullmatch(r"1\.\.[0-9]+", l)]
    results = [KTAP_RESULT.match(l) for l in said if re.match(r"^(not )?ok [0-9]+ ", l)]
    if not plans:
        why.append("no KTAP plan (1..N)")
    elif plans[0] != len(results):
        why.append(f"the plan announced {plans[0]} results, {len(results)} came")
    got = {}
    for i, r in enumerate(results, 1):
        if not r or int(r[2]) != i:
            why.append(f"KTAP result {i} is not 'ok {i} MODE SIZE': {r[0] if r else ''}")
            continue
        got[f"{r[3]} {r[4]}"] = ("fail" if r[1] else "skip" if r[5] else "pass", r[0])
    return why + test_reasons(m, got)


def verdict(m, console, status, timeout_s):
    why, code = machine_reasons(console, status, timeout_s)
    if code is not None and code not in wanted_exit(m):
        why.append(f"hugerace: exit {code}, wanted {' or '.join(map(str, sorted(wanted_exit(m))))}")
    return why + (judge_json(m, console, code) if m.reads == "json" else judge_ktap(m, console))


def excerpt(m, console):
    """hugerace's lines as the boot's report shows them: KTAP's as printed; of a JSON boot, its
    other lines and one line per result in place of the document."""
    out = []
    doc = json_document(console)[0] if m.reads == "json" else None
    for l in user_lines(console):
        if l.endswith("KTAP version 1"):
            out.append("KTAP version 1")
        elif doc is not None and DOC_START in l:
            out.append(f"JSON document: base page {size_name(doc.get('base_page_kb') or 0)}, exit_status {doc.get('exit_status')}")
            out += [f"  {r.get('name')}: {r.get('result')}: {r.get('message')}" for r in doc.get("results", [])]
        elif re.match(r"^(1\.\.|ok |not ok |# |hugerace)", l):
            out.append(l)
        elif "hugerace: " in l:
            # (firmware may leave junk before hugerace's first line, on that line)
            out.append(l[l.index("hugerace: "):])
    return out + [l for l in lines(console) if "reboot: Power down" in l or "Kernel panic" in l]


# ---- make detect: failure rates, summed over a boot's runs ----

FORKSPIN = re.compile(r"forkspin: mode=(\w+) size=(\S+) races=(\d+) failed=(\d+) broken=(\d+)$")
# One-race runs (examples/detect.rs): libhugetlbfs's own alloc-instantiate-race when the detect
# image holds it (airace), and hugerace called by that test's name (named); each run's time
# from fork to reaped, in microseconds, in `runtime:` lines.
ONE_RACE = re.compile(r"(airace|named): mode=(\w+) size=(\S+) races=(\d+) failed=(\d+) broken=(\d+)$")
RUNTIME = re.compile(r"runtime: (\S+) (\w+)((?: \d+)+)$")
MADVRACE = re.compile(r"madvrace: size=(\S+) loops=(\d+) failed=(\d+) broken=(\d+) elapsed_ms=(\d+)$")


def detect_tally(said):
    """{(mode, size): {tool: [races, failed, broken, seconds, run times]}} from the console's
    lines: hugerace's JSON documents (one a run), the other programs' summary lines, and the
    one-race runs' times in microseconds (which name a mode, not a size: they go to the
    mode's one size); and the reasons found on the way."""
    tally, why, runtimes = {}, [], {}

    def add(mode, size, tool, races, failed, broken, secs=0.0):
        t = tally.setdefault((mode, size), {}).setdefault(tool, [0, 0, 0, 0.0, []])
        for i, v in enumerate((races, failed, broken, secs)):
            t[i] += v
    for line in (l.strip() for l in said):
        if line.startswith("{"):
            try:
                doc = json.loads(line)
            except ValueError:
                why.append("a JSON line does not parse: " + line[:80])
                continue
            for r in doc.get("results", []) if doc.get("tool") == "hugerace" else []:
                if "mode" not in r or "pagesize_kb" not in r:
                    why.append(f"hugerace: {r.get('result')}: {r.get('message')}")
                    continue
                add(r["mode"], size_name(r["pagesize_kb"]), "hugerace", r["iterations"], r["failed"], r["broken"], r.get("elapsed_s", 0.0))
        elif FORKSPIN.match(line):
            f = FORKSPIN.match(line)
            add(f[1], f[2], "forkspin", int(f[3]), int(f[4]), int(f[5]))
        elif ONE_RACE.match(line):
            f = ONE_RACE.match(line)
            add(f[2], f[3], f[1], int(f[4]), int(f[5]), int(f[6]))
        elif RUNTIME.match(line):
            f = RUNTIME.match(line)
            runtimes.setdefault((f[2], f[1]), []).extend(int(v) for v in f[3].split())
        elif MADVRACE.match(line):
            f = MADVRACE.match(line)
            add("dontneed", f[1], "madvrace", int(f[2]), int(f[3]), int(f[4]), int(f[5]) / 1000.0)
        elif line.startswith(("forkspin: TBROK", "madvrace: TBROK")):
            why.append(line)
    for (mode, tool), us in runtimes.items():
        sizes = [s for (md, s) in tally if md == mode and tool in tally[(md, s)]]
        if len(sizes) == 1:
            tally[(mode, sizes[0])][tool][4] = us
        else:
            why.append(f"runtime: {tool} {mode}: times without one summary line to go with")
    return tally, why


def detect_verdict(m, console, status, timeout_s, races, loops, named=0):
    """A `make detect` boot: (reasons, counts). races: hugerace's and forkspin's races per mode
    and size in all blocks (and libhugetlbfs's test's runs); loops: madvrace's loops; named:
    the runs of hugerace by the C test's name (0: not asked for). counts: {(mode, size):
    {tool: (races, failed, seconds, run times)}} for each of the machine's modes and
    programs (zeros for one that never reported), what detect_rows and detect_runtimes sum
    over the boots."""
    why = ending_reasons(console, status, timeout_s)
    said = user_lines(console)
    if "detect: done" not in said:
        why.append("no 'detect: done': the schedule did not finish")
    why += ["detect: " + l for l in said if re.match(r"^detect: (exec|fork|wait4|mount|panic|.* killed by signal)", l)]
    tally, more = detect_tally(said)
    why += more
    mutant = bool(m.outcomes() & {M.SIGBUS, M.EITHER})
    modes, tools = detect_plan(m)
    if any("airace" in t for t in tally.values()):
        tools += ("airace",)
    if m.detect.kind != "dontneed" and (named or any("named" in t for t in tally.values())):
        tools += ("named",)
    counts = {}
    for mode in modes:
        for size in [s for (md, s) in tally if md == mode] or [m.detect.size]:
            for tool in tools:
                n, failed, broken, secs, us = tally.get((mode, size), {}).get(tool, [0, 0, 0, 0.0, []])
                wanted = loops if tool == "madvrace" else named if tool == "named" else races
                if n != wanted:
                    why.append(f"{tool} {mode} {size}: {n} races ran, wanted {wanted}")
                if broken:
                    why.append(f"{tool} {mode} {size}: {broken} broken")
                if tool == "hugerace" and mutant and failed == 0:
                    why.append(f"hugerace {mode} {size}: no failed race on a mutant")
                if not mutant and failed:
                    why.append(f"{tool} {mode} {size}: {failed} failed races on an unpatched kernel")
                if tool in ("airace", "named") and len(us) != n:
                    why.append(f"{tool} {mode} {size}: {len(us)} run times for {n} runs")
                counts.setdefault((mode, size), {})[tool] = (n, failed, secs, us)
    return why, counts


def detect_plan(m):
    """The modes a detect machine races and its two programs: hugerace first, then its peer
    (a boot whose image holds libhugetlbfs's test adds it, `airace`, as a third)."""
    if m.detect.kind == "dontneed":
        return M.DONTNEED, ("hugerace", "madvrace")
    return M.ALLOC, ("hugerace", "forkspin")


def wilson(failed, n, z=1.96):
    """The Wilson score interval (lo, hi), as fractions, of a rate of failed in n: the rates
    p for which failed/n lies within z standard errors of p (z = 1.96: 95 %). Unlike the
    normal approximation's failed/n ± z·sqrt(p(1-p)/n) it is neither empty at 0 or n
    failures nor outside [0, 1], and it holds for the few hundred races of a detect run.
    Nothing ran: (0, 1), knowing nothing."""
    if n <= 0:
        return 0.0, 1.0
    p, z2 = failed / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


DETECT_HEADER = "%-18s %-8s %-5s %-8s %12s %6s %15s %9s %-6s %s" % (
    "machine", "mode", "size", "program", "failed/races", "rate", "95% Wilson", "failed/s", "vs", "per boot %")


def detect_rows(m, boots):
    """The table's rows for one machine: boots is one counts (of detect_verdict) per boot.
    Per mode, size and program: failed races over all boots, the rate and its 95 % Wilson
    interval, failures per second of racing (dontneed, where both programs time their runs),
    and each boot's rate. hugerace's rows (its runs, and its one-race runs by the C test's
    name: `named`) say where each stands against the best peer (forkspin, or libhugetlbfs's
    test where it ran and failed more often): `ahead` or `behind` when the two intervals do
    not overlap, `~` when they do (not told apart from noise at these counts). Not against
    madvrace: its loop (100 madvises against 100 writes) is not a race, so the two rates are
    not of one thing; compare them per second."""
    if not boots:
        return []
    tools = detect_tools(m, boots)
    ours = [t for t in tools if t in OURS]
    peers = [t for t in tools if t not in OURS]
    rows = []
    for key, summed in detect_sums(boots, tools):
        # Against the best peer: the one with the higher rate.
        pn, pf = max((summed[t][:2] for t in peers), key=lambda c: c[1] / c[0] if c[0] else -1.0)
        p = wilson(pf, pn)
        for tool in tools:
            n, failed, secs, us, per = summed[tool]
            lo, hi = wilson(failed, n)
            vs = ""
            if tool in ours and peers != ["madvrace"]:
                vs = "ahead" if lo > p[1] else "behind" if hi < p[0] else "~"
            persec = "%8.3f/s" % (failed / secs) if secs and key[0] == "dontneed" else ""
            boot_rates = " ".join("%.1f" % (100.0 * c[1] / c[0]) if c[0] else "-" for c in per)
            rows.append("%-18s %-8s %-5s %-8s %12s %5.1f%% %15s %9s %-6s %s" % (
                m.name, key[0], key[1], tool, f"{failed}/{n}", 100.0 * failed / n if n else 0.0,
                "[%5.1f, %5.1f]" % (100 * lo, 100 * hi), persec, vs, boot_rates))
    return rows


# hugerace's own rows in the detect table: its runs, and its one-race runs by the C test's name.
OURS = ("hugerace", "named")


def detect_tools(m, boots):
    """The programs of a machine's table: its plan's two, then the one-race programs any boot
    reported."""
    tools = detect_plan(m)[1]
    for extra in ("airace", "named"):
        if any(extra in c for b in boots for c in b.values()):
            tools += (extra,)
    return tools


def detect_sums(boots, tools):
    """[((mode, size), {tool: (races, failed, seconds, run times, [each boot's counts])})],
    summed over the boots, in the order the boots first name each (mode, size)."""
    keys = [k for k in boots[0]] + [k for b in boots[1:] for k in b if k not in boots[0]]
    out = []
    for key in keys:
        summed = {}
        for tool in tools:
            per = [b.get(key, {}).get(tool, (0, 0, 0.0, [])) for b in boots]
            summed[tool] = (sum(c[0] for c in per), sum(c[1] for c in per), sum(c[2] for c in per),
                            [us for c in per for us in c[3]], per)
        out.append((key, summed))
    return out


RUNTIME_HEADER = "%-18s %-8s %-5s %-8s %6s %10s %10s %10s %s" % (
    "machine", "mode", "size", "program", "runs", "p50 ms", "p90 ms", "max ms", "p50 vs airace")


def detect_runtimes(m, boots):
    """The one-race runs' times for one machine over its boots, fork to reaped: per mode, size
    and program (libhugetlbfs's test, hugerace by its name), the median, 90th percentile and
    longest run, and hugerace's median over the C test's (below 1: quicker)."""
    if not boots:
        return []
    tools = [t for t in detect_tools(m, boots) if t in ("airace", "named")]
    rows = []
    for key, summed in detect_sums(boots, tools):
        p50 = {t: pct(summed[t][3], 50) for t in tools}
        for tool in tools:
            us = summed[tool][3]
            ratio = ""
            if tool == "named" and p50.get("airace") and p50[tool] is not None:
                ratio = "%.2fx" % (p50[tool] / p50["airace"])
            ms = lambda v: "-" if v is None else "%.1f" % (v / 1000)
            rows.append("%-18s %-8s %-5s %-8s %6d %10s %10s %10s %s" % (
                m.name, key[0], key[1], tool, len(us), ms(p50[tool]), ms(pct(us, 90)),
                ms(max(us) if us else None), ratio))
    return rows


def pct(xs, p):
    """The p-th percentile of xs (nearest rank), or None of nothing."""
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]

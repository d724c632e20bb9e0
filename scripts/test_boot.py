"""The boot driver's tests (`make scripts-test`): the judges of scripts/judges.py on made-up
consoles, each with the mutation it must catch, and the machine table against what reads it
(the README's table, `make help`, kernels.sh).

    python3 -m unittest discover -s scripts -p 'test_*.py'
"""

import json
import os
import subprocess
import unittest

import judges as J
import machines as M

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOT = "Booting from ROM..\x1bc\x1b[?7l\x1b[2J"
POWER = "[    1.054347] reboot: Power down\r\n"


def result(mode, size, res="pass", **kw):
    kb = J.kb(size)
    r = {"name": f"{mode} {size}", "result": res, "message": "no SIGBUS in 3 races", "mode": mode, "pagesize_kb": kb,
         "racers": 2, "iterations": 3, "passed": 3, "failed": 0, "broken": 0, "start_free": 1, "start_reserved": 1}
    if res == "fail":
        r.update(message="racer 2 on CPU 1 got SIGBUS (BUS_ADRERR) at 0x7f in race 1 of 20", passed=0, failed=1, signal="SIGBUS")
    r.update(kw)
    return r


def doc_for(m, **change):
    """The document a machine's boot prints when everything goes as its table says."""
    res = {M.PASS: "pass", M.EITHER: "pass", M.SKIP: "skip", M.SIGBUS: "fail", M.FAIL: "fail"}
    rs = []
    for mode, size, want in m.tests():
        r = result(mode, size, res[want])
        if m.races:
            r.update(iterations=m.races, passed=m.races)
        if m.start:
            r.update(start_free=m.start[0], start_reserved=m.start[1])
        rs.append(r)
    d = {"tool": "hugerace", "version": "0.1.0", "base_page_kb": J.kb(m.base_page or "4K"), "results": rs,
         "exit_status": min(J.wanted_exit(m))}
    d.update(change)
    return d


def console(doc=None, code=None, text=None, before="", power=POWER):
    """A serial console as QEMU writes it: firmware junk, stderr's lines, the document (or
    `text` in its place), the exit line, the kernel's power-off, CRLF line ends."""
    body = text if text is not None else json.dumps(doc, separators=(",", ":"))
    code = doc["exit_status"] if code is None and doc else code
    lines = [BOOT + "hugerace: TINFO: hugerace 0.1.0 on Linux 6.1.0, base page 4K", before + body, f"hugerace: exit {code}"]
    return "\r\n".join(lines) + "\r\n" + power


def ktap(results, plan=None, code=1):
    n = sum(1 for r in results if not r.startswith("#"))
    body = ["KTAP version 1", f"1..{n if plan is None else plan}"] + results
    return BOOT + "\r\n".join(body + ["# Totals: ...", f"hugerace: exit {code}"]) + "\r\n" + POWER


def judge(m, text, status=0):
    return J.verdict(M.BY_NAME[m] if isinstance(m, str) else m, text, status, 300)


class TheJudgesOnJson(unittest.TestCase):
    def assertFails(self, why, *words):
        self.assertTrue(why, "judged PASS")
        self.assertTrue(any(all(w in r for w in words) for r in why), why)

    def test_every_machine_passes_its_own_console(self):
        for m in M.MACHINES:
            if m.reads == "json":
                self.assertEqual(judge(m, console(doc_for(m))), [], m.name)

    def test_a_mutant_that_passes_fails(self):
        m = M.BY_NAME["x86_64-mutant"]
        d = doc_for(m, exit_status=0)
        d["results"][1] = result("private", "2M")
        self.assertFails(judge(m, console(d)), "'private 2M' passed: the mutant's race did not fail")
        self.assertFails(judge(m, console(d)), "exit 0, wanted 1")

    def test_a_mutant_failing_without_sigbus_fails(self):
        m = M.BY_NAME["x86_64-mutant"]
        for change in ({"signal": "SIGKILL"}, {"signal": None}, {"failed": 0}):
            d = doc_for(m)
            d["results"][0].update(change)
            if change.get("signal", 1) is None:
                del d["results"][0]["signal"]
            self.assertFails(judge(m, console(d)), "'shared 2M' failed without a racer's SIGBUS")
        d = doc_for(m)
        d["results"][0].update(result="broken", message="inconclusive: another process took the last hugepage")
        self.assertFails(judge(m, console(d)), "'shared 2M' broken, wanted sigbus", "inconclusive")

    def test_a_missing_result_fails(self):
        m = M.BY_NAME["x86_64"]
        d = doc_for(m)
        del d["results"][3]
        self.assertFails(judge(m, console(d)), "no result for 'private 1G'")
        d["results"] = [{"name": "hugepages", "result": "skip", "message": "no hugepage sizes"}]
        self.assertFails(judge(m, console(d)), "hugerace: hugepages: skip: no hugepage sizes")

    def test_a_skip_only_where_the_table_allows_it(self):
        d = doc_for(M.BY_NAME["x86_64"])
        d["results"][2].update(result="skip")
        self.assertFails(judge("x86_64", console(d)), "'shared 1G' skip, wanted pass")
        d = doc_for(M.BY_NAME["arm64-64k"])
        self.assertEqual([r["result"] for r in d["results"] if r["pagesize_kb"] == 16 << 20], ["skip", "skip"])
        self.assertEqual(judge("arm64-64k", console(d)), [])

    def test_a_result_the_table_does_not_name_fails(self):
        d = doc_for(M.BY_NAME["x86_64-built"])
        d["results"].append(result("shared", "1G"))
        self.assertFails(judge("x86_64-built", console(d)), "'shared 1G' is not one of the machine's tests")
        d = doc_for(M.BY_NAME["x86_64-built"])
        d["results"].append(result("shared", "2M"))
        self.assertFails(judge("x86_64-built", console(d)), "'shared 2M' reported twice")

    def test_race_counts_start_state_and_base_page(self):
        d = doc_for(M.BY_NAME["x86_64-races"])
        d["results"][0].update(iterations=199)
        self.assertFails(judge("x86_64-races", console(d)), "'shared 2M' ran 199 races")
        d = doc_for(M.BY_NAME["x86_64-races-noreserve"])
        d["results"][1].update(start_reserved=1)
        self.assertFails(judge("x86_64-races-noreserve", console(d)), "'private 2M' did not start each race with 1 free, 0 reserved")
        d = doc_for(M.BY_NAME["arm64-64k"], base_page_kb=4)
        self.assertFails(judge("arm64-64k", console(d)), "base page 4K, the machine's is 64K")

    def test_the_document_must_stand_whole_on_the_console(self):
        m = M.BY_NAME["x86_64"]
        text = json.dumps(doc_for(m), separators=(",", ":"))
        cut = text.index('{"name":"private 2M"')
        # A progress line (stderr) inside the document: issue 20's bug.
        inside = text[:cut] + "\r\x1b[Khugerace: shared 2M: 3050 races, 0.3s of 2s, 0 failed" + text[cut:]
        self.assertFails(judge(m, console(text=inside, code=0)), "the JSON document does not parse", "something landed inside it")
        # A TINFO line inside it, on a line of its own.
        inside = text[:cut] + "\r\nhugerace: TINFO: peak RSS 332 kB\r\n" + text[cut:]
        self.assertFails(judge(m, console(text=inside, code=0)), "the JSON document does not parse")
        self.assertFails(judge(m, console(text=text + "hugerace: TINFO: x", code=0)), "does not end its line")
        self.assertFails(judge(m, console(text=text + "\r\n" + text, code=0)), "2 hugerace JSON documents")
        self.assertFails(judge(m, console(text="hugerace: TINFO: no document", code=0)), "0 hugerace JSON documents")
        # What stands before it on its line (the progress line's last wipe) does not matter.
        self.assertEqual(judge(m, console(text=text, code=0, before="\r\x1b[K")), [])

    def test_the_exit_line_power_off_and_qemu(self):
        m = M.BY_NAME["x86_64-built"]
        d = doc_for(m)
        self.assertFails(judge(m, console(d, code=2)), "the document's exit_status 0 is not the exit line's 2")
        self.assertFails(judge(m, console(d, code=2)), "hugerace: exit 2, wanted 0")
        self.assertFails(judge(m, console(d, power="")), "no 'reboot: Power down'")
        self.assertFails(judge(m, console(d), status=J.TIMEOUT), "QEMU did not end within 300s")
        self.assertFails(judge(m, console(d), status=1), "QEMU exited with status 1")
        self.assertFails(judge(m, console(d) + "[ 2.0] Kernel panic - not syncing: x\r\n"), "the kernel panicked")
        self.assertFails(judge(m, console(d).replace("hugerace: exit 0", "hugerace: TINFO: late")), "is not 'hugerace: exit N'")

    def test_either_allows_pass_or_sigbus_only(self):
        m = M.BY_NAME["x86_64-narrow"]
        d = doc_for(m, exit_status=1)
        d["results"][0] = result("shared", "2M", "fail")
        self.assertEqual(judge(m, console(d)), [])
        d["results"][1] = result("private", "2M", "broken")
        self.assertFails(judge(m, console(d)), "'private 2M' broken, wanted either")


class TheJudgesOnKtap(unittest.TestCase):
    NEG = M.BY_NAME["x86_64-negative"]

    def test_the_negative_control(self):
        good = ["# shared 2M: racer 1 on CPU 0 got SIGBUS", "not ok 1 shared 2M", "not ok 2 private 2M"]
        self.assertEqual(judge(self.NEG, ktap(good)), [])
        why = judge(self.NEG, ktap(["not ok 1 shared 2M", "ok 2 private 2M"]))
        self.assertIn("'private 2M' pass: the negative control did not fail", why)
        self.assertIn("'private 2M' skip: the negative control did not fail", judge(self.NEG, ktap(["not ok 1 shared 2M", "ok 2 private 2M # SKIP x"])))
        self.assertIn("the plan announced 3 results, 2 came", judge(self.NEG, ktap(good[1:], plan=3)))
        self.assertIn("hugerace: exit 0, wanted 1", judge(self.NEG, ktap(good, code=0)))
        self.assertIn("no 'KTAP version 1' line", judge(self.NEG, ktap(good).replace("KTAP version 1", "KTAP")))
        self.assertIn("no result for 'private 2M'", judge(self.NEG, ktap(good[:2], plan=1)))
        self.assertTrue(any("KTAP result 2 is not" in r for r in judge(self.NEG, ktap(["not ok 1 shared 2M", "not ok 3 private 2M"]))))

    def test_an_outcome_per_kind(self):
        # /init's default runs every kind; each must show its own outcome, in the table's order.
        m = M.BY_NAME["x86_64-6.12-all"]
        good = ["ok 1 shared 2M", "ok 2 private 2M", "ok 3 dontneed 2M", "ok 4 resv-restore 2M", "not ok 5 subpool 2M"]
        self.assertEqual(judge(m, ktap(good)), [])
        self.assertTrue(judge(m, ktap(good[:4] + ["ok 5 subpool 2M"], code=0)), "a subpool that passed")
        self.assertTrue(judge(m, ktap(good[:3] + ["not ok 4 resv-restore 2M", good[4]])), "a resv-restore that failed")
        self.assertTrue(judge(m, ktap(good[:4], plan=5)), "a kind that never reported")


class ThePerKindTable(unittest.TestCase):
    def test_json_kinds_each_judged(self):
        m = M.BY_NAME["x86_64-all"]
        self.assertEqual(judge(m, console(doc_for(m))), [])
        d = doc_for(m)
        d["results"][3] = result("resv-restore", "2M")  # the 6.1 bug that passed
        self.assertTrue(judge(m, console(d)))
        d = doc_for(m)
        d["results"][2] = result("dontneed", "2M", "fail")  # EITHER: a SIGBUS is allowed
        self.assertEqual(judge(m, console(d)), [])

    def test_a_per_kind_outcome_names_every_mode(self):
        import dataclasses
        m = M.BY_NAME["x86_64-all"]
        bad = dataclasses.replace(m, must={"2M": {"shared": M.PASS}})
        saved = M.MACHINES
        try:
            M.MACHINES = (bad,)
            self.assertTrue(any("an outcome per mode" in p for p in M.problems()))
        finally:
            M.MACHINES = saved


class Detect(unittest.TestCase):
    def lines(self, failed, forkspin_failed, races=200, broken=0, private=None):
        """A detect boot's console; private: hugerace's failures in private mode if not failed."""
        fails = {"shared": failed, "private": failed if private is None else private}
        d = {"tool": "hugerace", "results": [result(mode, "2M", "fail" if fails[mode] else "pass", iterations=races, failed=fails[mode], broken=broken)
                                             for mode in ("shared", "private")]}
        out = [json.dumps(d)] + [f"forkspin: mode={m} size=2M races={races} failed={forkspin_failed} broken=0" for m in ("shared", "private")]
        return "\r\n".join(out + ["detect: done"]) + "\r\n" + POWER

    def test_a_mutant_must_fail_and_its_twin_never(self):
        mutant, twin = M.BY_NAME["x86_64-mutant"], M.BY_NAME["x86_64-built"]
        why, counts = J.detect_verdict(mutant, self.lines(150, 190), 0, 1200, 200, 3000)
        self.assertEqual(why, [])
        self.assertEqual(counts[("shared", "2M")], {"hugerace": (200, 150, 0.0, []), "forkspin": (200, 190, 0.0, [])})
        why, _ = J.detect_verdict(mutant, self.lines(0, 190), 0, 1200, 200, 3000)
        self.assertIn("hugerace shared 2M: no failed race on a mutant", why)
        why, _ = J.detect_verdict(twin, self.lines(0, 1), 0, 1200, 200, 3000)
        self.assertIn("forkspin private 2M: 1 failed races on an unpatched kernel", why)
        why, _ = J.detect_verdict(twin, self.lines(0, 0, races=199, broken=1), 0, 1200, 200, 3000)
        self.assertIn("hugerace shared 2M: 199 races ran, wanted 200", why)
        self.assertIn("hugerace shared 2M: 1 broken", why)
        why, _ = J.detect_verdict(twin, self.lines(0, 0).replace("detect: done", "detect: wait4: ECHILD"), J.TIMEOUT, 1200, 200, 3000)
        self.assertIn("no 'detect: done': the schedule did not finish", why)
        self.assertIn("QEMU did not end within 1200s (killed)", why)

    def rows(self, m, consoles, races=200):
        boots = [J.detect_verdict(m, c, 0, 1200, races, 3000)[1] for c in consoles]
        return {tuple(r.split()[1:4]): r for r in J.detect_rows(m, boots)}

    def test_the_boots_are_summed_with_an_interval(self):
        m = M.BY_NAME["x86_64-narrow"]
        # Three boots: hugerace 150, 170, 190 of 200 in shared (510/600); forkspin 175 each
        # (525/600): 85 % against 87.5 %, the intervals overlap.
        rows = self.rows(m, [self.lines(f, 175, private=10) for f in (150, 170, 190)])
        lo, hi = J.wilson(510, 600)
        self.assertEqual(rows[("shared", "2M", "hugerace")],
                         "x86_64-narrow      shared   2M    hugerace      510/600  85.0%%  [%5.1f, %5.1f]           ~      75.0 85.0 95.0"
                         % (100 * lo, 100 * hi))
        self.assertIn(" 525/600  87.5% ", rows[("shared", "2M", "forkspin")])
        self.assertTrue(rows[("shared", "2M", "forkspin")].endswith(" 87.5 87.5 87.5"))
        # Private: 30/600 against 525/600, intervals far apart: behind.
        self.assertIn(" behind ", rows[("private", "2M", "hugerace")])
        rows = self.rows(m, [self.lines(190, 10) for _ in range(3)])
        self.assertIn(" ahead ", rows[("shared", "2M", "hugerace")])
        self.assertEqual(len(rows), 4)

    def test_libhugetlbfs_test_is_a_third_program_and_the_best_peer_counts(self):
        m = M.BY_NAME["x86_64-narrow"]
        c_test = lambda f: "".join(self.one_race("airace", md, 200, f, 300) for md in ("shared", "private"))
        # hugerace 150/200 a boot, forkspin 100, the C test 195: behind the C test, though
        # ahead of forkspin; a table that compared with forkspin alone would say ahead.
        consoles = [c_test(195) + self.lines(150, 100) for _ in range(3)]
        rows = self.rows(m, consoles)
        self.assertIn(" 585/600  97.5% ", rows[("shared", "2M", "airace")])
        self.assertIn(" behind ", rows[("shared", "2M", "hugerace")])
        self.assertEqual(len(rows), 6)
        # A failed run of it says "FAIL ... killed by signal Bus error": a failure, not a
        # reason; detect's own line for a program killed by a signal still is one.
        failed_run = "FAIL\tChild 1 killed by signal Bus error\r\n"
        why, _ = J.detect_verdict(m, failed_run + c_test(195) + self.lines(150, 100), 0, 1200, 200, 3000)
        self.assertEqual(why, [])
        why, _ = J.detect_verdict(m, "detect: /forkspin killed by signal 9\r\n" + c_test(195) + self.lines(150, 100), 0, 1200, 200, 3000)
        self.assertTrue(any("killed by signal 9" in w for w in why), why)
        # Its runs are counted like the others': too few is a reason, so is a broken run.
        why, _ = J.detect_verdict(m, c_test(195).replace("races=200", "races=199", 1) + self.lines(150, 100), 0, 1200, 200, 3000)
        self.assertIn("airace shared 2M: 199 races ran, wanted 200", why)
        # Without the C test in the image, the table has two programs, as before.
        self.assertEqual(len(self.rows(m, [self.lines(150, 100)])), 4)

    @staticmethod
    def one_race(prog, mode, runs, failed, ms):
        """A one-race program's lines: its runs' times (ms each, 32 to a line), then its sum."""
        times = [str(ms * 1000)] * runs
        out = ["runtime: %s %s %s" % (prog, mode, " ".join(times[i:i + 32])) for i in range(0, runs, 32)]
        return "\r\n".join(out + [f"{prog}: mode={mode} size=2M races={runs} failed={failed} broken=0"]) + "\r\n"

    def test_hugerace_by_the_c_tests_name_is_judged_and_timed(self):
        m = M.BY_NAME["x86_64-narrow"]
        # Three boots of 40 named runs a mode (30 failed) and 200 of the C test (190 failed).
        c = lambda named_ms, c_ms, nf=30: "".join(self.one_race("airace", md, 200, 190, c_ms) + self.one_race("named", md, 40, nf, named_ms)
                                                  for md in ("shared", "private")) + self.lines(150, 100)
        boots = [J.detect_verdict(m, c(100, 300), 0, 1200, 200, 3000, 40) for _ in range(3)]
        self.assertEqual([w for w, _ in boots], [[], [], []])
        rows = {tuple(r.split()[1:4]): r for r in J.detect_rows(m, [b for _, b in boots])}
        # 90/120 named against the C test's 570/600: behind, on its own row.
        self.assertIn(" 90/120  75.0% ", rows[("shared", "2M", "named")])
        self.assertIn(" behind ", rows[("shared", "2M", "named")])
        self.assertEqual(len(rows), 8)
        times = {tuple(r.split()[1:4]): r for r in J.detect_runtimes(m, [b for _, b in boots])}
        self.assertEqual(times[("shared", "2M", "named")].split()[4:], ["120", "100.0", "100.0", "100.0", "0.33x"])
        self.assertEqual(times[("private", "2M", "airace")].split()[4:], ["600", "300.0", "300.0", "300.0"])
        # Slower than the C test: the ratio says so.
        slow = J.detect_verdict(m, c(600, 300), 0, 1200, 200, 3000, 40)[1]
        self.assertTrue(J.detect_runtimes(m, [slow])[1].endswith(" named        40      600.0      600.0      600.0 2.00x"))
        # Negative controls: named runs asked for but missing, too few, or without their times.
        why, _ = J.detect_verdict(m, self.lines(150, 100), 0, 1200, 200, 3000, 40)
        self.assertIn("named shared 2M: 0 races ran, wanted 40", why)
        why, _ = J.detect_verdict(m, c(100, 300).replace("races=40", "races=39", 1), 0, 1200, 200, 3000, 40)
        self.assertIn("named shared 2M: 39 races ran, wanted 40", why)
        no_times = "\r\n".join(l for l in c(100, 300).split("\r\n") if not l.startswith("runtime: named shared"))
        why, _ = J.detect_verdict(m, no_times, 0, 1200, 200, 3000, 40)
        self.assertIn("named shared 2M: 0 run times for 40 runs", why)
        # A twin must not fail by the name either.
        why, _ = J.detect_verdict(M.BY_NAME["x86_64-built"], c(100, 300, nf=1).replace("failed=190", "failed=0"), 0, 1200, 200, 3000, 40)
        self.assertIn("named shared 2M: 1 failed races on an unpatched kernel", why)

    def test_the_sum_is_over_every_boot(self):
        # Negative control: a table made of the first or last boot alone would not show 510/600.
        m = M.BY_NAME["x86_64-narrow"]
        one = self.rows(m, [self.lines(150, 190)])[("shared", "2M", "hugerace")]
        self.assertIn(" 150/200  75.0% ", one)
        self.assertTrue(one.endswith(" 75.0"))
        # A boot whose hugerace never reported still counts (as 0 of 0: `-` in its column).
        rows = self.rows(m, [self.lines(150, 190), self.lines(150, 190).replace('{"tool"', '{"x"')])
        self.assertIn(" 150/200 ", rows[("shared", "2M", "hugerace")])
        self.assertTrue(rows[("shared", "2M", "hugerace")].endswith(" 75.0 -"))

    def test_dontneed_counts_per_second(self):
        m = M.BY_NAME["x86_64-dontneed"]
        d = {"tool": "hugerace", "results": [result("dontneed", "2M", "fail", iterations=200, failed=7, elapsed_s=2.0)]}
        text = json.dumps(d) + "\r\nmadvrace: size=2M loops=3000 failed=11 broken=0 elapsed_ms=4000\r\ndetect: done\r\n" + POWER
        rows = self.rows(m, [text, text])
        self.assertIn(" 14/400 ", rows[("dontneed", "2M", "hugerace")])
        self.assertIn("   3.500/s ", rows[("dontneed", "2M", "hugerace")])
        self.assertIn(" 22/6000 ", rows[("dontneed", "2M", "madvrace")])
        self.assertIn("   2.750/s ", rows[("dontneed", "2M", "madvrace")])
        # A madvrace loop is not a race: no ahead or behind against it.
        self.assertNotIn("ahead", rows[("dontneed", "2M", "hugerace")])


def quadratic_bounds(k, n, z):
    """The Wilson bounds solved afresh: the p where (k/n - p)^2 = z^2 p (1 - p) / n, the roots
    of (n + z^2) p^2 - (2k + z^2) p + k^2/n = 0."""
    a, b, c = n + z * z, -(2 * k + z * z), k * k / n
    d = (b * b - 4 * a * c) ** 0.5
    return (-b - d) / (2 * a), (-b + d) / (2 * a)


# (failed, n): the 95 % bounds, from the quadratic above and, rounded, as tables print them.
KNOWN = {(0, 10): (0.0, 0.2775), (10, 10): (0.7225, 1.0), (5, 10): (0.2366, 0.7634), (90, 100): (0.8256, 0.9448)}


def matches_known(wilson):
    for (k, n), (lo, hi) in KNOWN.items():
        got = wilson(k, n)
        want = quadratic_bounds(k, n, 1.96)
        if any(abs(g - w) > 1e-9 for g, w in zip(got, want)) or any(abs(g - w) > 5e-5 for g, w in zip(got, (lo, hi))):
            return False
    return True


class Wilson(unittest.TestCase):
    def test_known_values(self):
        self.assertTrue(matches_known(J.wilson))
        self.assertEqual(J.wilson(0, 0), (0.0, 1.0))
        for k, n in ((1, 3), (199, 200), (37, 400)):
            lo, hi = J.wilson(k, n)
            self.assertTrue(0 <= lo < k / n < hi <= 1, (k, n, lo, hi))

    def test_a_wrong_z_or_formula_fails(self):
        import math
        self.assertFalse(matches_known(lambda k, n: J.wilson(k, n, z=1.645)), "90 % taken for 95 %")
        self.assertFalse(matches_known(lambda k, n: J.wilson(k, n, z=2.0)), "z rounded to 2")

        def wald(k, n, z=1.96):
            p = k / n
            h = z * math.sqrt(p * (1 - p) / n)
            return max(0.0, p - h), min(1.0, p + h)
        self.assertFalse(matches_known(wald), "the normal approximation")

        def uncentred(k, n, z=1.96):
            # Wilson's half-width around k/n instead of its shifted centre.
            p, z2 = k / n, z * z
            h = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
            return max(0.0, p - h), min(1.0, p + h)
        self.assertFalse(matches_known(uncentred), "the centre not shifted")

        def swapped(k, n, z=1.96):
            # The two terms under the root swapped in their denominators.
            p, z2 = k / n, z * z
            c = (p + z2 / (2 * n)) / (1 + z2 / n)
            h = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / (4 * n * n) + z2 / n)
            return max(0.0, c - h), min(1.0, c + h)
        self.assertFalse(matches_known(swapped), "a swapped formula")


class TheTable(unittest.TestCase):
    def test_it_is_judgeable_as_written(self):
        self.assertEqual(M.problems(), [])
        names = [m.name for m in M.MACHINES]
        self.assertEqual(len(names), len(set(names)))

    def test_the_readme_shows_it(self):
        with open(os.path.join(ROOT, "README.md")) as f:
            text = f.read()
        start = text.index("<!-- machines:")
        body = text[text.index("\n", start) + 1:text.index("<!-- end machines -->")]
        self.assertEqual(body.rstrip("\n").split("\n"), M.readme_table(), "README's table: paste `scripts/machines.py readme`")

    def test_make_help_lists_it(self):
        out = subprocess.run(["make", "-s", "--no-print-directory", "-C", ROOT, "help"], capture_output=True, text=True, check=True).stdout
        rows = [l for l in out.split("\n") if l.startswith("  ") and l.split()[0] in M.BY_NAME]
        self.assertEqual(rows, M.help_rows())
        self.assertEqual(len(rows), len(M.MACHINES))

    def test_kernels_sh_knows_every_kernel_of_it(self):
        out = subprocess.run([os.path.join(ROOT, "scripts/kernels.sh")], capture_output=True, text=True).stderr
        for m in M.MACHINES:
            self.assertIn(f" {m.kernel}", out.split("NAME one of:")[1])
        self.assertEqual(M.kernel_names()[:4], list(M.DEBIAN))


if __name__ == "__main__":
    unittest.main()

"""Unit tests of scripts/lava.py (`lava.py --self-test`): the reading of lava-run's log and
the judge, on made-up records, each verdict with its negative control; and the job's monitor
pattern (taken from lava/hugerace-initramfs.yaml itself) on made-up consoles, matched the way
LAVA's monitor action matches it. No LAVA, no QEMU, no root needed."""

import json
import re
import unittest

import lava

# lava-run's own line form (lava_common.log.dump: a one-line YAML flow mapping, every scalar
# double-quoted), and one line with YAML's non-specific tag, as lava-run writes file sizes.
JOB_PASS = {"case": "job", "definition": "lava", "result": "pass"}
JOB_FAIL = {"case": "job", "definition": "lava", "result": "fail",
            "error_msg": "lava test monitoring has timed out", "error_type": "Test"}
SIZE_LINE = ('{"dt": "2026-01-01T00:00:00.1", "lvl": "results", "msg": {"case": "file-download", '
             '"definition": "lava", "extra": {"label": "kernel", "size": ! "2675712"}, "result": "pass"}}')


def line(lvl, msg):
    return json.dumps({"dt": "2026-01-01T00:00:00.000000", "lvl": lvl, "msg": msg})


def case(name, result):
    return line("results", {"case": name, "definition": "hugerace", "extra": {"test_case_id": name},
                            "level": "3.1", "result": result})


def log(*cases, job=JOB_PASS, plan=2, status=0):
    lines = [line("info", "start: 0 validate"), SIZE_LINE, "Traceback (most recent call last):", ""]
    if plan is not None:
        lines += [line("target", "Booting from ROM..KTAP version 1"), line("target", "1..%d" % plan)]
    lines += list(cases)
    lines += [line("target", "hugerace: exit %d" % status),
              line("results", {"case": "lava-test-monitor", "definition": "lava", "result": "pass"})]
    if job is not None:
        lines.append(line("results", job))
    return lava.parse_log(lines)


class Judge(unittest.TestCase):
    def test_log_lines(self):
        recs = lava.parse_log([SIZE_LINE, "junk", "", "{not yaml: [", '{"lvl": "info"}', line("info", "x")])
        self.assertEqual(len(recs), 2, "the tagged line and the info line; junk, partial records skipped")
        self.assertEqual(str(recs[0]["msg"]["extra"]["size"]), "2675712")

    def test_pass(self):
        code, out = lava.judge(log(case("shared_2m", "pass"), case("private_2m", "pass")))
        self.assertEqual(code, 0)
        self.assertEqual(out[:2], ["shared_2m pass", "private_2m pass"])
        self.assertEqual(out[2], "job complete, 2 cases: 2 pass (hugerace: exit 0)")

    def test_a_failed_case_is_1(self):
        # The negative control of the pass above: one `fail` record is enough.
        code, out = lava.judge(log(case("shared_2m", "pass"), case("private_2m", "fail"), status=1))
        self.assertEqual(code, 1)
        self.assertEqual(out[:2], ["shared_2m pass", "private_2m fail"])

    def test_incomplete_job_is_2(self):
        code, out = lava.judge(log(case("shared_2m", "pass"), case("private_2m", "pass"), job=JOB_FAIL))
        self.assertEqual(code, 2)
        self.assertIn("job incomplete (LAVA: Test: lava test monitoring has timed out)", out[-1])
        # Even when every case it did record failed, and a mutant's run wants them failed.
        self.assertEqual(lava.judge(log(case("shared_2m", "fail"), job=JOB_FAIL, plan=1), "fail")[0], 2)
        self.assertEqual(lava.judge(log(case("shared_2m", "pass"), job=None, plan=1))[0], 2, "no job result")

    def test_no_case_or_fewer_than_the_plan_is_2(self):
        self.assertEqual(lava.judge(log())[0], 2)
        code, out = lava.judge(log(case("shared_2m", "pass")))
        self.assertEqual(code, 2)
        self.assertIn("recorded 1 cases where the KTAP plan announced 2", out[-1])
        # Without a plan on the console (hugerace never started), the cases alone count.
        self.assertEqual(lava.judge(log(case("shared_2m", "pass"), plan=None))[0], 0)

    def test_skips(self):
        self.assertEqual(lava.judge(log(case("shared_2m", "pass"), case("shared_16g", "skip")))[0], 0)
        self.assertEqual(lava.judge(log(case("shared_16g", "skip"), plan=1))[0], 1, "nothing passed")
        self.assertEqual(lava.judge(log(case("shared_2m", "unknown"), plan=1))[0], 1)

    def test_expect_fail(self):
        both = log(case("shared_2m", "fail"), case("private_2m", "fail"), status=1)
        self.assertEqual(lava.judge(both, "fail")[0], 0)
        self.assertEqual(lava.judge(both)[0], 1)
        one = log(case("shared_2m", "fail"), case("private_2m", "pass"), status=1)
        code, out = lava.judge(one, "fail")
        self.assertEqual(code, 1)
        self.assertIn("wanted every case to fail", out[-1])

    def test_other_suites_are_not_hugerace_cases(self):
        other = line("results", {"case": "shared_2m", "definition": "lava", "result": "fail"})
        self.assertEqual(lava.judge(log(case("shared_2m", "pass"), other, plan=1))[0], 0)


def monitor(console, mon):
    """LAVA's monitor action (lava_dispatcher/actions/test/monitor.py) over a whole console:
    wait for `start`, then repeatedly take whichever of `end` and `pattern` matches first
    (pexpect: the earliest match wins, a tie goes to `end`, listed first), each search on what
    follows the last match; each `pattern` match is a case: `result` through fixupdict, the
    id lowercased with runs of non-word characters made `_`. Returns (cases, ended)."""
    flags = re.DOTALL  # pexpect compiles every string pattern with it
    m = re.compile(mon["start"], flags).search(console)
    if not m:
        return [], False
    buf = console[m.end():]
    end, pat = re.compile(mon["end"], flags), re.compile(mon["pattern"], flags)
    cases = []
    while True:
        me, mp = end.search(buf), pat.search(buf)
        if mp and (not me or mp.start() < me.start()):
            d = mp.groupdict()
            res = mon.get("fixupdict", {}).get(d["result"], d["result"])
            cases.append((re.sub(r"\W+", "_", d["test_case_id"].strip().lower()), res))
            buf = buf[mp.end():]
        else:
            return cases, me is not None


def console(*lines, nl="\r\r\n"):
    # A pty turns the guest's CRLF into CR CR LF, which the pattern must allow.
    return "SeaBIOS (version 1.16.2)" + nl + "Booting from ROM..\x1bc\x1b[?7l\x1b[2JKTAP version 1" + nl + nl.join(lines) + nl


def job_monitor():
    """The monitor of lava/hugerace-initramfs.yaml (its placeholders are quoted: the template
    is YAML as it stands)."""
    import yaml
    job = yaml.safe_load(lava.JOB.read_text())
    mon = [a["test"] for a in job["actions"] if "test" in a][0]["monitors"][0]
    assert mon["name"] == lava.SUITE
    return mon


class Monitor(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mon = job_monitor()

    def run_on(self, text):
        return monitor(text, self.mon)

    def test_pass(self):
        text = console("1..2", "# hugerace 0.1.0 on Linux 6.1.192 (x86_64-unknown-linux-gnu), base page 4K",
                       "# shared 2M: 20 races, 0 failed, ok 7 of them fast", "ok 1 shared 2M",
                       "[    1.234567] random: crng init done", "ok 2 private 2M",
                       "# Totals: pass:2 fail:0 xfail:0 xpass:0 skip:0 error:0", "hugerace: exit 0",
                       "[    2.000000] reboot: Power down")
        self.assertEqual(self.run_on(text), ([("shared_2m", "pass"), ("private_2m", "pass")], True))
        # Plain LF line ends too.
        self.assertEqual(self.run_on(text.replace("\r", "")), ([("shared_2m", "pass"), ("private_2m", "pass")], True))

    def test_fail_and_broken(self):
        text = console("1..2", "# shared 2M: racer 2 on CPU 1 got SIGBUS (BUS_ADRERR) at 0x7f38dc000000 in race 1 of 20",
                       "not ok 1 shared 2M", "# private 2M: racer 2 on CPU 1 got SIGBUS", "not ok 2 private 2M",
                       "hugerace: exit 1")
        self.assertEqual(self.run_on(text), ([("shared_2m", "fail"), ("private_2m", "fail")], True))
        text = console("1..1", "# hugepages: no hugetlb support", "not ok 1 hugepages", "hugerace: exit 1")
        self.assertEqual(self.run_on(text), ([("hugepages", "fail")], True))

    def test_skip(self):
        text = console("1..3", "ok 1 shared 2M", "ok 2 shared 16G # SKIP 16G: no page can be had (TCONF)",
                       "ok 3 dontneed 2M", "hugerace: exit 0")
        self.assertEqual(self.run_on(text), ([("shared_2m", "pass"), ("shared_16g", "skip"), ("dontneed_2m", "pass")], True))

    def test_what_is_not_a_case(self):
        # A line still arriving is not a case yet (else `shared 2` would be recorded), a result
        # inside another line is none, nothing after the end line counts, and before the
        # start line nothing is read at all.
        self.assertEqual(self.run_on(console("1..1")[:-3] + "\r\r\nok 1 shared 2"), ([], False))
        self.assertEqual(self.run_on(console("# see: ok 5 fake 2M", "xok 6 fake 2M", "hugerace: exit 0")), ([], True))
        self.assertEqual(self.run_on(console("hugerace: exit 0", "ok 9 ghost 2M")), ([], True))
        self.assertEqual(self.run_on("ok 1 early 2M\r\n"), ([], False))

    def test_start_is_not_a_boot_prompt(self):
        # The boot action consumes its prompts; the monitor would wait for a string already
        # gone. This job's boot has none.
        import yaml
        job = yaml.safe_load(lava.JOB.read_text())
        boots = [a["boot"] for a in job["actions"] if "boot" in a]
        self.assertNotIn("prompts", boots[0])


class Job(unittest.TestCase):
    VALUES = {"job_name": "j", "arch": "x86_64", "console": "ttyS0", "kernel_url": "file:///k",
              "ramdisk_url": "file:///r", "kernel_args": "hugepagesz=1G hugepages=2", "hugerace_args": "-s 2M -i 20"}

    def test_render(self):
        import yaml
        job = yaml.safe_load(lava.render_job(self.VALUES))
        images = job["actions"][0]["deploy"]["images"]
        self.assertEqual(images["kernel"]["url"], "file:///k")
        self.assertEqual(images["kernel"]["image_arg"],
                         '-kernel {kernel} -append "console=ttyS0 quiet panic=-1 hugepagesz=1G hugepages=2 -- -s 2M -i 20"')
        self.assertEqual(job["context"], {"arch": "x86_64"})

    def test_every_value_is_required(self):
        import jinja2
        for k in self.VALUES:
            with self.assertRaises(jinja2.UndefinedError, msg=k):
                lava.render_job({x: v for x, v in self.VALUES.items() if x != k})

    def test_every_machine_has_its_dictionary(self):
        for triple, (dictionary, _, _) in lava.MACHINES.items():
            text = (lava.LAVA / "devices" / (dictionary + ".jinja2")).read_text()
            self.assertIn("{% extends 'qemu.jinja2' %}", text, triple)
            self.assertIn("-no-reboot", text, triple + ": the guest's power-off must end QEMU")


class ShellDefinition(unittest.TestCase):
    """lava/hugerace-ktap.sh, the test shell's reporter, with a made-up hugerace and a
    lava-test-case that writes down what it is told."""

    KTAP = ["KTAP version 1", "1..5", "# hugerace 0.1.0 on Linux 6.1.0 (x86_64-unknown-linux-gnu), base page 4K",
            "ok 1 shared 2M", "# private 2M: racer 2 on CPU 1 got SIGBUS, ok 9 inside", "not ok 2 private 2M",
            "ok 3 shared 1G # SKIP needs 2 free 1G hugepages", "ok 4 Mixed-Case  name 64K ", "okay 5 not a result",
            "ok x bad number", "# Totals: pass:2 fail:1 xfail:0 xpass:0 skip:1 error:0"]
    WANT = [("shared_2m", "pass"), ("private_2m", "fail"), ("shared_1g", "skip"), ("mixed_case_name_64k", "pass")]

    def reporter(self, hugerace):
        import os
        import subprocess
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            rec = os.path.join(d, "cases")
            fake = os.path.join(d, "lava-test-case")
            with open(fake, "w") as f:
                f.write('#!/bin/sh\necho "$1 $2 $3" >>%s\n' % rec)
            os.chmod(fake, 0o755)
            env = {"PATH": "/usr/bin:/bin", "LAVA_TEST_CASE": fake, "TMPDIR": d}
            if hugerace is not None:
                bin_ = os.path.join(d, "hugerace")
                with open(bin_, "w") as f:
                    f.write("#!/bin/sh\n[ \"$*\" = '-f ktap -s 2M -i 5' ] || exit 99\ncat <<'E'\n%s\nE\nexit 1\n" % "\n".join(hugerace))
                os.chmod(bin_, 0o755)
                env.update(HUGERACE=bin_, ARGS="-s 2M -i 5")
            else:
                env.update(HUGERACE=os.path.join(d, "no-such-binary"))
            r = subprocess.run(["sh", str(lava.LAVA / "hugerace-ktap.sh")], env=env, capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = open(rec).read().splitlines() if os.path.exists(rec) else []
            return [tuple(l.split(" ")[::2]) for l in lines if l.split(" ")[1] == "--result"], r.stdout

    def test_cases(self):
        cases, out = self.reporter(self.KTAP)
        self.assertEqual(cases, self.WANT)
        self.assertIn("hugerace: exit 1", out, "the console shows hugerace's status")
        # The same names and results as the /init job's monitor gives the same lines.
        self.assertEqual(monitor(console(*self.KTAP[1:], "hugerace: exit 1"), job_monitor()), (self.WANT, True))

    def test_no_result_line_is_a_failed_case(self):
        self.assertEqual(self.reporter(None)[0], [("hugerace", "fail")])
        self.assertEqual(self.reporter(["KTAP version 1", "1..2"])[0], [("hugerace", "fail")])

    def test_shell_job_renders(self):
        import yaml
        values = {"job_name": "j", "rootfs_url": "file:///r.qcow2", "hugerace_repository": "https://h/h.git", "hugerace_url": ""}
        job = yaml.safe_load(lava.render_job(values, lava.LAVA / "hugerace-shell.yaml"))
        tests = [a["test"] for a in job["actions"] if "test" in a]
        d = tests[0]["definitions"][0]
        self.assertEqual((d["from"], d["path"], d["repository"]), ("git", "lava/hugerace-ktap.yaml", "https://h/h.git"))
        definition = yaml.safe_load((lava.ROOT / d["path"]).read_text())
        self.assertEqual(definition["metadata"]["format"], "Lava-Test Test Definition 1.0")
        self.assertIn("./lava/hugerace-ktap.sh", " ".join(definition["run"]["steps"]))
        self.assertEqual(set(d["params"]) - set(definition["params"]), set(), "the job passes only params the definition has")


def main():
    suite = unittest.defaultTestLoader.loadTestsFromModule(__import__(__name__))
    result = unittest.TextTestRunner(verbosity=1).run(suite)
    return 0 if result.wasSuccessful() else 1

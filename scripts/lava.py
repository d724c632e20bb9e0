#!/usr/bin/python3
"""hugerace in a LAVA lab, run here by LAVA's own dispatcher (`make lava`, issue 21).

    lava.py KERNEL [--target TRIPLE] [--args "HUGERACE ARGS"] [--kernel-args "..."]
                   [--initrd FILE] [--name NAME] [--expect pass|fail] [--validate]
    lava.py --self-test

Renders lava/hugerace-initramfs.yaml (the job) for KERNEL and the initramfs of TRIPLE
(target/<triple>/initramfs.cpio.gz, `make initramfs`), renders the machine's device dictionary
(lava/devices/qemu-<arch>.jinja2) the way lava-server does, with lava-server's own qemu.jinja2
and the job's context, writes both to target/lava/NAME/ and runs them with `lava-run` (Debian's
lava-dispatcher), offline: no server, no worker. Then it reads LAVA's own `results` records
from lava-run's log (result.yaml holds only the job's) and prints one line per hugerace case
as LAVA recorded it, `shared_2m pass`.

Exit status: 0 when the job completed (LAVA's `job` result is pass), every case LAVA recorded
passed or was skipped, at least one passed, and LAVA recorded as many cases as hugerace's KTAP
plan announced; 1 when a case failed (or none passed); 2 when the job is incomplete, or LAVA
recorded no case or fewer than the plan. With --expect fail (a mutant kernel) 0 means the job
completed and every case failed, 1 that one did not. --validate: lava-run checks the job
against the device and runs nothing (0 when LAVA accepts both, else 2).

Runs under Debian's /usr/bin/python3 (jinja2 and yaml come with lava-dispatcher); lava-run is
started with it explicitly and a PATH of system directories only, never another python3 that
comes first on PATH. lava-run must run as root. lava-server's device-type templates (about
400 KB) are fetched once with `apt-get download lava-server=<lava-dispatcher's version>` and
kept under $HUGERACE_CACHE/lava (default /var/cache/hugerace).
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAVA = ROOT / "lava"
JOB = LAVA / "hugerace-initramfs.yaml"
PYTHON = "/usr/bin/python3"
LAVA_RUN = "/usr/bin/lava-run"
# What LAVA's dispatcher keeps a job's downloads in (lava_common.constants), <dir>/<job id>.
LAVA_TMP = Path("/var/lib/lava/dispatcher/tmp")
CACHE = Path(os.environ.get("HUGERACE_CACHE", "/var/cache/hugerace")) / "lava"
# A bound of our own beyond the job's 15 minutes, for a dispatcher that hangs.
HARD_LIMIT_S = 20 * 60

# Per target: the device dictionary, LAVA's arch (the job context that picks
# qemu-system-<arch> in qemu.jinja2; ppc64 serves both endiannesses) and the console.
MACHINES = {
    "x86_64-unknown-linux-gnu": ("qemu-x86_64", "x86_64", "ttyS0"),
    "aarch64-unknown-linux-gnu": ("qemu-arm64", "arm64", "ttyAMA0"),
    "powerpc64le-unknown-linux-gnu": ("qemu-ppc64le", "ppc64", "hvc0"),
}
DEFAULT_ARGS = "--race alloc -s 2M -i 20"
SUITE = "hugerace"  # the monitor's name: LAVA files every case under this definition


def say(msg):
    print("lava: " + msg, flush=True)


def rel(path):
    """A path as the user sees it from the clone: relative to it when inside."""
    try:
        return str(Path(path).relative_to(ROOT))
    except ValueError:
        return str(path)


# ---- LAVA's log: one YAML flow mapping per line, {"dt", "lvl", "msg"} ---------------------

def parse_log(lines):
    """The records of lava-run's log, in order: dicts with `lvl` and `msg`. Most lines are
    JSON as they stand; some carry YAML's non-specific tag (`"size": ! "39521"`) and need the
    YAML parser. Anything else (a traceback, a blank line) is not a record."""
    records = []
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            try:
                import yaml
                rec = yaml.safe_load(line)
            except Exception:
                continue
        if isinstance(rec, dict) and "lvl" in rec and "msg" in rec:
            records.append(rec)
    return records


def judge(records, expect="pass"):
    """(exit status, lines to print) from LAVA's records. The cases are LAVA's `results`
    records of the hugerace suite; whether the job completed is LAVA's `lava`/`job` result;
    the KTAP plan (`1..N`) is read from the console as LAVA logged it (`target` records)."""
    results = [r["msg"] for r in records if r["lvl"] == "results" and isinstance(r["msg"], dict)]
    cases = [(m.get("case", "?"), m.get("result", "?")) for m in results if m.get("definition") == SUITE]
    job = [m for m in results if m.get("definition") == "lava" and m.get("case") == "job"]
    console = [r["msg"].strip() for r in records if r["lvl"] == "target" and isinstance(r["msg"], str)]
    plan = next((int(m[1]) for m in (re.fullmatch(r"1\.\.([0-9]+)", c) for c in console) if m), None)
    exit_line = next((c for c in reversed(console) if re.fullmatch(r"hugerace: exit -?[0-9]+", c)), None)
    out = ["%s %s" % c for c in cases]
    if not job:
        return 2, out + ["job incomplete: lava-run recorded no job result"]
    if job[-1].get("result") != "pass":
        why = "%s: %s" % (job[-1].get("error_type", "?"), job[-1].get("error_msg", "?"))
        return 2, out + ["job incomplete (LAVA: %s)" % why]
    if not cases:
        return 2, out + ["job complete, but LAVA recorded no hugerace case (plan %s)" % plan]
    if plan is not None and plan != len(cases):
        return 2, out + ["job complete, but LAVA recorded %d cases where the KTAP plan announced %d" % (len(cases), plan)]
    tally = {}
    for _, res in cases:
        tally[res] = tally.get(res, 0) + 1
    summary = "job complete, %d cases: %s%s" % (
        len(cases), ", ".join("%d %s" % (n, r) for r, n in sorted(tally.items())),
        " (%s)" % exit_line if exit_line else "")
    if expect == "fail":
        ok = tally.get("fail", 0) == len(cases)
        return (0 if ok else 1), out + [summary + ("" if ok else "; wanted every case to fail")]
    ok = tally.get("pass", 0) > 0 and tally.get("pass", 0) + tally.get("skip", 0) == len(cases)
    return (0 if ok else 1), out + [summary]


# ---- rendering: the job template and the device dictionary ---------------------------------

def render_job(values, template=JOB):
    import jinja2
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(Path(template).read_text()).render(**values)


def lava_version():
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "lava-dispatcher"], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else ""


def device_types(version):
    """lava-server's device-type templates of the dispatcher's release (qemu.jinja2 extends
    base.jinja2, which holds every constant the dispatcher asks for), fetched once."""
    dest = CACHE / ("lava-server_%s" % version) / "device-types"
    if (dest / "qemu.jinja2").exists():
        return dest
    say("fetching lava-server %s's device-type templates (apt-get download, once)" % version)
    with tempfile.TemporaryDirectory(prefix="hugerace-lava-") as tmp:
        # _apt must be able to write the .deb here, or apt warns that it runs unsandboxed.
        os.chmod(tmp, 0o777)
        r = subprocess.run(["apt-get", "download", "lava-server=" + version], cwd=tmp, capture_output=True, text=True)
        debs = list(Path(tmp).glob("lava-server_*.deb"))
        if r.returncode != 0 or not debs:
            sys.exit("lava: apt-get download lava-server=%s failed: %s" % (version, r.stderr.strip()[-300:]))
        subprocess.run(["dpkg", "-x", str(debs[0]), tmp + "/x"], check=True)
        src = Path(tmp) / "x/usr/share/lava-server/device-types"
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = Path(tempfile.mkdtemp(prefix=".part-", dir=dest.parent)) / "device-types"
        shutil.copytree(src, part)
        try:
            os.replace(part, dest)
        except OSError:
            if not (dest / "qemu.jinja2").exists():  # else another run cached them first
                raise
        finally:
            shutil.rmtree(part.parent, ignore_errors=True)
    return dest


def render_device(name, context, templates):
    """As lava-server renders a device dictionary for a job: a sandboxed jinja2 environment
    over the dictionaries and the device types, trim_blocks, the job's context as variables."""
    import jinja2.sandbox
    env = jinja2.sandbox.SandboxedEnvironment(
        loader=jinja2.FileSystemLoader([str(LAVA / "devices"), str(templates)]),
        autoescape=False, trim_blocks=True)
    return env.get_template(name + ".jinja2").render(**context)


def render(values, dictionary, outdir, template=JOB):
    """The job and the device LAVA would dispatch it to, written to outdir/job.yaml and
    outdir/device.yaml; returns both paths."""
    import yaml
    job = render_job(values, template)
    device = render_device(dictionary, yaml.safe_load(job).get("context", {}), device_types(lava_version()))
    (outdir / "job.yaml").write_text(job)
    (outdir / "device.yaml").write_text(device)
    return outdir / "job.yaml", outdir / "device.yaml"


# ---- running lava-run ----------------------------------------------------------------------

def own_qemu(job_id):
    """Pids of QEMU processes booting this job's images (their -kernel lies in the job's
    download directory): what a killed dispatcher could leave."""
    mark = str(LAVA_TMP / job_id) + "/"
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if mark in (p / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(p.name))
            except OSError:
                pass
    return pids


def run_lava(job, device, outdir, job_id, validate=False):
    """Run lava-run on the rendered files; returns its log lines (also kept in lava.log)."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", "/root")}
    cmd = [PYTHON, LAVA_RUN, "--job-id", job_id, "--output-dir", str(outdir / "output"), "--device", str(device)]
    cmd += ["--validate"] * validate + [str(job)]
    log = outdir / "lava.log"
    with open(log, "w") as f:
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            p.wait(timeout=HARD_LIMIT_S)
        except subprocess.TimeoutExpired:
            say("lava-run still runs after %d s: killed" % HARD_LIMIT_S)
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        except KeyboardInterrupt:
            os.killpg(p.pid, signal.SIGTERM)  # LAVA cancels the job and cleans up
            p.wait()
            raise
        finally:
            for pid in own_qemu(job_id):
                say("QEMU %d outlived the job: killed" % pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            shutil.rmtree(LAVA_TMP / job_id, ignore_errors=True)
    return log.read_text(errors="replace").splitlines()


def main():
    ap = argparse.ArgumentParser(description="Run hugerace's LAVA job on KERNEL with lava-run.")
    ap.add_argument("kernel", nargs="?")
    ap.add_argument("--target", default="x86_64-unknown-linux-gnu", choices=sorted(MACHINES))
    ap.add_argument("--args", default=DEFAULT_ARGS, help="hugerace's arguments [%(default)s]")
    ap.add_argument("--kernel-args", default="", help="more kernel command line before `--`")
    ap.add_argument("--initrd", help="the initramfs [target/TRIPLE/initramfs.cpio.gz]")
    ap.add_argument("--name", default="lava", help="output directory target/lava/NAME")
    ap.add_argument("--validate", action="store_true", help="only have lava-run validate the job")
    ap.add_argument("--expect", default="pass", choices=["pass", "fail"])
    ap.add_argument("--self-test", action="store_true", help="run the unit tests and exit")
    a = ap.parse_args()
    if a.self_test:
        sys.path.insert(0, str(ROOT / "scripts"))
        import lava_selftest
        return lava_selftest.main()
    if not a.kernel:
        ap.error("KERNEL is required")
    for v in (a.args, a.kernel_args):
        if '"' in v or "\\" in v:  # they go inside a quoted -append and a quoted YAML string
            ap.error("no \" or \\ in --args or --kernel-args: %s" % v)
    kernel = Path(a.kernel).resolve()
    initrd = Path(a.initrd).resolve() if a.initrd else ROOT / "target" / a.target / "initramfs.cpio.gz"
    for f, how in ((kernel, "the kernel"), (initrd, "make initramfs TARGET=" + a.target)):
        if not f.is_file():
            sys.exit("lava: %s is missing (%s)" % (f, how))
    if not os.access(LAVA_RUN, os.X_OK) or not os.access(PYTHON, os.X_OK):
        sys.exit("lava: %s is not installed (apt-get install --no-install-recommends lava-dispatcher, or `make setup` as root)" % LAVA_RUN)
    if os.geteuid() != 0:
        sys.exit("lava: lava-run runs jobs as root only")
    dictionary, arch, console = MACHINES[a.target]
    version = lava_version()
    outdir = ROOT / "target" / "lava" / a.name
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)

    job, device = render({
        "job_name": "hugerace %s on %s" % (a.args, kernel.name), "arch": arch, "console": console,
        "kernel_url": kernel.as_uri(), "ramdisk_url": initrd.as_uri(),
        "kernel_args": a.kernel_args, "hugerace_args": a.args,
    }, dictionary, outdir)
    say("lava-run %s: job %s, device %s (lava/devices/%s.jinja2), kernel %s, hugerace %s" % (
        version, rel(job), rel(device), dictionary, kernel, a.args))
    t0 = time.monotonic()
    lines = run_lava(job, device, outdir, "hugerace-%s-%d" % (a.name, os.getpid()), a.validate)
    dt = time.monotonic() - t0
    records = parse_log(lines)
    code, out = judge(records, a.expect)
    if a.validate:
        job_ok = any(r["lvl"] == "results" and r["msg"] == {"case": "job", "definition": "lava", "result": "pass"} for r in records)
        code, out = (0, ["LAVA validated the job for this device"]) if job_ok else (2, [out[-1]])
    (outdir / "results.txt").write_text("\n".join(out) + "\n")
    for o in out[:-1]:
        print(o)
    say("%s; lava-run took %.1f s; log %s" % (out[-1], dt, rel(outdir / "lava.log")))
    return code


if __name__ == "__main__":
    sys.exit(main())

//! Shared helpers for the integration tests: find the built binary, serialise every test that
//! touches the host's hugepage pools, and put the pools back however a test ends.
#![allow(dead_code)]

pub mod inject;
pub mod running;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test: `HUGERACE_BIN` (set by `make test`), else the release build.
/// Every test that runs it asks for it first, so this is where the test process becomes
/// the reaper of its orphans (see `become_subreaper`).
pub fn bin() -> PathBuf {
    become_subreaper();
    if let Ok(p) = std::env::var("HUGERACE_BIN") {
        return PathBuf::from(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/x86_64-unknown-linux-gnu/release/hugerace");
    assert!(p.exists(), "{} is missing: run the tests with `make test`", p.display());
    p
}

pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

pub fn has_hugetlb() -> bool {
    Path::new("/sys/kernel/mm/hugepages").exists()
}

/// Whether a skip must fail: under CI (`CI` set to anything but empty, `0` or `false`, as CI
/// services set it), or with `HUGERACE_REQUIRE_ROOT` or `HUGERACE_REQUIRE_QEMU` (.ci/run sets
/// both). CI has everything every test needs, so whatever is missing there is a defect.
pub fn under_ci() -> bool {
    let set = |v: &str| std::env::var(v).is_ok_and(|s| !s.is_empty() && s != "0" && !s.eq_ignore_ascii_case("false"));
    set("CI") || set("HUGERACE_REQUIRE_ROOT") || set("HUGERACE_REQUIRE_QEMU")
}

/// The file every skip is logged to, one line each, which `make test` counts at its end:
/// `HUGERACE_SKIP_LOG` (set by make), else target/skips.log.
pub fn skip_log() -> PathBuf {
    std::env::var_os("HUGERACE_SKIP_LOG").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/skips.log"))
}

/// Skip the calling test (or a part of it) for `reason`: one line `SKIP: <test>: <reason>`
/// on stderr and in the skip log; under CI (`under_ci`), a failure with that reason instead.
/// Returns false, for `if !ready() { return }` helpers.
pub fn skip(reason: &str) -> bool {
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let crate_name = std::env::current_exe().ok().and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned())).unwrap_or_default();
    let crate_name = crate_name.split('-').next().unwrap_or("").to_string();
    let line = format!("SKIP: {crate_name}::{test}: {reason}");
    if under_ci() {
        panic!("{line} (a skip fails under CI: CI, HUGERACE_REQUIRE_ROOT or HUGERACE_REQUIRE_QEMU is set)");
    }
    eprintln!("{line}");
    let log = skip_log();
    if let Some(d) = log.parent() {
        let _ = fs::create_dir_all(d);
    }
    // One write of one line with O_APPEND: lines from parallel tests never interleave.
    if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(&log) {
        use std::io::Write;
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
    false
}

/// Whether `tool` is on PATH.
pub fn has(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool} >/dev/null")]).status().is_ok_and(|s| s.success())
}

/// `tool` is on PATH, or the calling test is skipped naming it and its Debian package
/// (which `make setup` installs).
pub fn need_tool(tool: &str, package: &str) -> bool {
    has(tool) || skip(&format!("{tool} is not installed (apt-get install {package}, or `make setup` as root)"))
}

/// Root with hugetlb support, or the calling test is skipped (a failure under CI).
pub fn need_root_hugetlb() -> bool {
    if !is_root() {
        skip("not root")
    } else if !has_hugetlb() {
        skip("no hugetlb support (/sys/kernel/mm/hugepages is missing)")
    } else {
        true
    }
}

/// As `need_root_hugetlb`, and 2M hugepages too (the size the kinds' tests race on).
pub fn need_root_2m() -> bool {
    need_root_hugetlb() && (std::path::Path::new(K2M).exists() || skip("no 2M hugepages"))
}

/// The ptrace fault injector (tests/helpers/inject.c), built once per test crate.
pub fn injector() -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("inject");
    BUILT.call_once(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/inject.c");
        let ok = Command::new("cc").args(["-O2", "-Wall", "-o"]).arg(&out).arg(&src).status().expect("cc").success();
        assert!(ok, "cc {}", src.display());
    });
    out
}

/// Every hugepage knob of every size, as found.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct PoolState(Vec<(PathBuf, String)>);

fn knobs() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = fs::read_dir("/sys/kernel/mm/hugepages") {
        for e in rd.flatten() {
            for f in ["nr_hugepages", "nr_overcommit_hugepages"] {
                v.push(e.path().join(f));
            }
        }
    }
    v.sort();
    v
}

impl PoolState {
    pub fn read() -> PoolState {
        PoolState(knobs().into_iter().filter_map(|p| fs::read_to_string(&p).ok().map(|s| (p, s.trim().to_string()))).collect())
    }
    pub fn write(&self) {
        for (p, v) in &self.0 {
            let _ = fs::write(p, v);
        }
    }
    pub fn get(&self, size_kb: u64, knob: &str) -> Option<u64> {
        let want = format!("hugepages-{size_kb}kB/{knob}");
        self.0.iter().find(|(p, _)| p.ends_with(&want)).and_then(|(_, v)| v.parse().ok())
    }
}

/// Holds the machine-wide test lock and puts every pool knob back on drop, even when the
/// test fails. Every test that runs the racer against the real pool takes one.
pub struct PoolGuard {
    _lock: File,
    pub before: PoolState,
}

pub fn pool_guard() -> PoolGuard {
    become_subreaper();
    let lock = File::create("/run/lock/hugerace-tests.lock").or_else(|_| File::create("/tmp/hugerace-tests.lock")).expect("lock file");
    lock.lock().expect("flock");
    PoolGuard { _lock: lock, before: PoolState::read() }
}

impl PoolGuard {
    /// Set the default (2M) pool for a test; restored on drop.
    pub fn set_nr(&self, size_kb: u64, n: u64) {
        fs::write(format!("/sys/kernel/mm/hugepages/hugepages-{size_kb}kB/nr_hugepages"), n.to_string()).expect("write nr_hugepages");
    }
    /// Assert the pools are as they were when the guard was taken.
    pub fn assert_restored(&self) {
        assert_eq!(PoolState::read(), self.before, "hugepage pool not restored");
    }
}

impl Drop for PoolGuard {
    fn drop(&mut self) {
        if PoolState::read() != self.before {
            self.before.write();
        }
    }
}

/// The 2M pool's sysfs directory, and a 2M page in bytes as the injector's specs name it.
pub const K2M: &str = "/sys/kernel/mm/hugepages/hugepages-2048kB";
pub const P2M: &str = "2097152";

/// A knob or counter of the 2M pool.
pub fn knob(name: &str) -> u64 {
    std::fs::read_to_string(format!("{K2M}/{name}")).unwrap().trim().parse().unwrap()
}

/// Set a knob of the 2M pool (the guard puts it back).
pub fn set_knob(name: &str, v: u64) {
    std::fs::write(format!("{K2M}/{name}"), v.to_string()).unwrap();
}

/// The exit status (-1 for a death by signal).
pub fn status(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Mounts and /run entries hugerace could leave behind.
pub fn leftovers() -> (Vec<String>, Vec<String>) {
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default().lines().filter(|l| l.starts_with("hugerace ") || l.contains("/run/hugerace")).map(String::from).collect();
    let run = fs::read_dir("/run").map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("hugerace.")).collect()).unwrap_or_default();
    (mounts, run)
}

/// Nothing of the run is left: the knobs as expected, no page in use or surplus, no
/// private mount or /run directory.
pub fn assert_clean(expected: &PoolState, what: &str) {
    assert_eq!(&PoolState::read(), expected, "{what}: pool knobs");
    assert_eq!(knob("free_hugepages"), knob("nr_hugepages"), "{what}: hugepages still in use");
    assert_eq!(knob("resv_hugepages"), 0, "{what}: hugepages still reserved");
    assert_eq!(knob("surplus_hugepages"), 0, "{what}: surplus hugepages left");
    assert_eq!(leftovers(), (vec![], vec![]), "{what}: mounts or /run entries left");
    assert_no_racers_left();
}

/// Run the binary with arguments; never hangs longer than `secs`.
pub fn run_with_timeout(args: &[&str], secs: u64) -> Output {
    Command::new("timeout").arg("-k").arg("5").arg(secs.to_string()).arg(bin()).args(args).output().expect("spawn hugerace")
}

/// Run `program` with `args` on a pseudo-terminal that carries both stdout and stderr, as
/// an interactive shell or a serial console does (`script` from util-linux, Debian's
/// bsdutils); returns what the terminal showed, its CRLFs as newlines, and the status.
/// None (the test skipped) when `script` is missing.
pub fn in_a_pty(program: &Path, args: &[&str]) -> Option<(String, i32)> {
    if !need_tool("script", "bsdutils") {
        return None;
    }
    let quote = |a: &str| format!("'{}'", a.replace('\'', r"'\''"));
    let cmd: Vec<String> = std::iter::once(quote(&program.to_string_lossy())).chain(args.iter().map(|a| quote(a))).collect();
    let o = Command::new("timeout").args(["-k", "5", "300", "script", "-qec"]).arg(cmd.join(" ")).arg("/dev/null").stdin(std::process::Stdio::null()).output().expect("spawn script");
    assert!(o.stderr.is_empty(), "script: {}", stderr(&o));
    Some((stdout(&o).replace("\r\n", "\n"), status(&o)))
}

pub fn run(args: &[&str]) -> Output {
    run_with_timeout(args, 300)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Make this test process a child subreaper (once): a process whose parent dies is then
/// reparented to the test, not to init, so that whatever a run leaves behind stays among
/// the test's own descendants, where `racers_left` looks.
pub fn become_subreaper() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        unsafe extern "C" {
            fn prctl(option: i32, ...) -> i32;
        }
        const PR_SET_CHILD_SUBREAPER: i32 = 36;
        // SAFETY: PR_SET_CHILD_SUBREAPER takes one unsigned long and touches no memory.
        let rc = unsafe { prctl(PR_SET_CHILD_SUBREAPER, 1 as std::ffi::c_ulong) };
        assert_eq!(rc, 0, "prctl(PR_SET_CHILD_SUBREAPER): {}", std::io::Error::last_os_error());
    });
}

/// The hugerace processes among this test process's descendants that are still alive (a
/// zombie holds nothing), each as `pid: state, parent [command line]`. Only our own: a
/// machine-wide look would see another test's (or another user's) hugerace.
pub fn racers_left() -> Vec<(u32, String)> {
    descendants_alive(&|name, _| name == "hugerace")
}

/// This test process's live descendants whose name (`comm`) and command line (NULs as
/// spaces) `pick` chooses, described as in `racers_left`.
pub fn descendants_alive(pick: &dyn Fn(&str, &str) -> bool) -> Vec<(u32, String)> {
    // (pid, parent, name, state) of every process.
    let mut procs = Vec::new();
    for e in fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().unwrap_or("?").to_string();
        let ppid = rest.next().and_then(|p| p.parse::<u32>().ok()).unwrap_or(0);
        procs.push((pid, ppid, stat[open + 1..close].to_string(), state));
    }
    let mut ours = vec![std::process::id()];
    let mut i = 0;
    while i < ours.len() {
        let parent = ours[i];
        ours.extend(procs.iter().filter(|p| p.1 == parent).map(|p| p.0));
        i += 1;
    }
    let cmdline = |pid: u32| String::from_utf8_lossy(&fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()).replace('\0', " ").trim_end().to_string();
    procs
        .iter()
        .filter(|p| p.3 != "Z" && ours[1..].contains(&p.0))
        .map(|(pid, ppid, name, state)| (*pid, name, cmdline(*pid), format!("{state}, parent {ppid}")))
        .filter(|(_, name, cmd, _)| pick(name, cmd))
        .map(|(pid, _, cmd, st)| (pid, format!("{pid}: {st} [{cmd}]")))
        .collect()
}

/// What `racers_left` still finds after stragglers had their time: racers end within
/// moments of their parent, but on a loaded machine a killed process can take a while to
/// be reaped, so five seconds.
pub fn racers_still_left() -> Vec<String> {
    for _ in 0..50 {
        if racers_left().is_empty() {
            return Vec::new();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    racers_left().into_iter().map(|(_, w)| w).collect()
}

/// No hugerace process of this test's may outlive a run.
pub fn assert_no_racers_left() {
    let who = racers_still_left();
    assert!(who.is_empty(), "hugerace processes left running: {who:?}");
}

/// The child processes of `pid`, of every thread of it (a racer process, or private mode's
/// racer threads' process).
pub fn children(pid: u32) -> Vec<u32> {
    let mut v = Vec::new();
    if let Ok(d) = fs::read_dir(format!("/proc/{pid}/task")) {
        for t in d.flatten() {
            if let Ok(s) = fs::read_to_string(t.path().join("children")) {
                v.extend(s.split_whitespace().filter_map(|w| w.parse::<u32>().ok()));
            }
        }
    }
    v
}

/// Wait (10 s at most) until `pid` has `n` children; returns them.
pub fn wait_children(pid: u32, n: usize) -> Vec<u32> {
    let t0 = std::time::Instant::now();
    loop {
        let c = children(pid);
        if c.len() >= n || t0.elapsed().as_secs() > 10 {
            return c;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Every counter of every size in /sys/kernel/mm/hugepages and /proc/meminfo's HugePages_*
/// and Hugetlb lines: what a check that changes nothing must leave as it found.
pub fn hugepage_counters() -> Vec<(String, String)> {
    let mut v = Vec::new();
    for d in fs::read_dir("/sys/kernel/mm/hugepages").unwrap() {
        for f in fs::read_dir(d.unwrap().path()).unwrap() {
            let f = f.unwrap().path();
            v.push((f.display().to_string(), fs::read_to_string(&f).unwrap_or_default()));
        }
    }
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap();
    v.extend(meminfo.lines().filter(|l| l.starts_with("HugePages_") || l.starts_with("Hugetlb")).map(|l| ("meminfo".to_string(), l.to_string())));
    v.sort();
    v
}

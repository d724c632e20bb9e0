//! The fault injector (tests/helpers/inject.c, a ptrace helper for the x86_64 syscall ABI)
//! and what the tests that use it share: the 2M knobs, the run record, the exact result
//! lines and summary, and a clean machine afterwards.

use super::*;
use std::process::{Command, Output};

pub const K2M: &str = "/sys/kernel/mm/hugepages/hugepages-2048kB";
pub const P2M: &str = "2097152";

pub fn knob(name: &str) -> u64 {
    std::fs::read_to_string(format!("{K2M}/{name}")).unwrap().trim().parse().unwrap()
}

pub fn set_knob(name: &str, v: u64) {
    std::fs::write(format!("{K2M}/{name}"), v.to_string()).unwrap();
}

/// Root, hugetlb with 2M pages, and the x86_64 syscall ABI the helper speaks; else a
/// logged SKIP (a failure under CI).
pub fn ready() -> bool {
    if !need_root_hugetlb() {
        false
    } else if !cfg!(target_arch = "x86_64") {
        skip("the injector speaks the x86_64 syscall ABI only")
    } else if !std::path::Path::new(K2M).exists() {
        skip("no 2M hugepages")
    } else {
        true
    }
}

pub fn inject(spec: &[&str], args: &[&str]) -> Output {
    inject_within(200, spec, args)
}

/// `inject SPEC -- hugerace ARGS`, bounded by timeout(1) (which would kill the helper, and
/// PTRACE_O_EXITKILL everything it traces).
pub fn inject_within(secs: u32, spec: &[&str], args: &[&str]) -> Output {
    inject_cmd(secs, spec, args).output().expect("spawn inject")
}

pub fn inject_cmd(secs: u32, spec: &[&str], args: &[&str]) -> Command {
    let mut c = Command::new("timeout");
    c.args(["-k", "5", &secs.to_string()]).arg(injector()).args(spec).arg("--").arg(bin()).args(args);
    c
}

/// One result: exit status, stdout, and the helper's report (stderr).
pub struct Run {
    pub code: i32,
    pub out: String,
    pub err: String,
}

pub fn run_injected(spec: &[&str], args: &[&str]) -> Run {
    check_injected(inject_within(200, spec, args), spec)
}

pub fn check_injected(o: Output, spec: &[&str]) -> Run {
    let r = Run { code: o.status.code().unwrap_or(-1), out: stdout(&o), err: stderr(&o) };
    // The fault really went in (once, unless --all): no test passes on an injection that
    // missed.
    let n = r.err.lines().filter(|l| l.starts_with("inject: ")).count();
    let once = !spec.contains(&"--all");
    assert!(if once { n == 1 } else { n >= 1 }, "the injector's report:\n{}\n{}", r.err, r.out);
    assert!(!r.err.contains("nothing injected") && !r.err.contains("inject: error"), "{}\n{}", r.err, r.out);
    r
}

/// The result lines (not TINFO) and the summary, exactly.
pub fn assert_results(r: &Run, code: i32, lines: &[&str], summary: [u32; 5]) {
    let got: Vec<&str> = r.out.lines().filter(|l| l.starts_with("hugerace: ") && !l.starts_with("hugerace: TINFO: ")).collect();
    assert_eq!(got, lines, "result lines:\n{}\n{}", r.out, r.err);
    let [p, f, b, s, w] = summary;
    let want = format!("\nSummary:\npassed   {p}\nfailed   {f}\nbroken   {b}\nskipped  {s}\nwarnings {w}\n");
    assert!(r.out.ends_with(&want), "summary:\n{}", r.out);
    assert_eq!(r.code, code, "exit status:\n{}\n{}", r.out, r.err);
}

/// Nothing of the run is left: the knobs as expected, no page in use or surplus, no
/// private mount or /run directory.
pub fn assert_clean(expected: &PoolState, what: &str) {
    assert_eq!(&PoolState::read(), expected, "{what}: pool knobs");
    assert_eq!(knob("free_hugepages"), knob("nr_hugepages"), "{what}: hugepages still in use");
    assert_eq!(knob("resv_hugepages"), 0, "{what}: hugepages still reserved");
    assert_eq!(knob("surplus_hugepages"), 0, "{what}: surplus hugepages left");
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    assert!(!mounts.lines().any(|l| l.starts_with("hugerace ") || l.contains("/run/hugerace")), "{what}: mount left:\n{mounts}");
    let run = std::fs::read_dir("/run").map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("hugerace."))).unwrap_or(false);
    assert!(!run, "{what}: /run/hugerace.* left");
    assert_no_racers_left();
}

/// An empty 2M pool without overcommit, so that hugerace raises it by exactly 2.
pub fn empty_pool(g: &PoolGuard) -> PoolState {
    g.set_nr(2048, 0);
    set_knob("nr_overcommit_hugepages", 0);
    PoolState::read()
}

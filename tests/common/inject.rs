//! The fault injector (tests/helpers/inject.c, a ptrace helper for the x86_64 syscall ABI)
//! and what the tests that use it share: the run record, the exact result lines and
//! summary, and an empty 2M pool to start from.

use super::*;
use std::process::{Command, Output};

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

/// An empty 2M pool without overcommit, so that hugerace raises it by exactly 2.
pub fn empty_pool(g: &PoolGuard) -> PoolState {
    g.set_nr(2048, 0);
    set_knob("nr_overcommit_hugepages", 0);
    PoolState::read()
}

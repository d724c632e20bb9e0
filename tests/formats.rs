//! Every output format against the real pool: a PASS, a FAIL (the negative control
//! `--leave-free 0 --noreserve`), a CONF (a page size this machine lacks), each with the exit
//! status of that format's harness: one table, a row per format and outcome. The hugetlbfs format is driven the way libhugetlbfs's
//! `run_tests.py` drives its own test.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct Run {
    out: String,
    err: String,
    code: i32,
}

fn go(args: &[&str]) -> Run {
    let o = run(args);
    Run { out: stdout(&o), err: stderr(&o), code: o.status.code().unwrap_or(-1) }
}

/// A page size no pool of this machine has (16G, unless this is a machine that has it).
fn missing_size() -> &'static str {
    if Path::new("/sys/kernel/mm/hugepages/hugepages-16777216kB").exists() { "512G" } else { "16G" }
}

// ---- the table: format x outcome ------------------------------------------------------------

/// How a case calls hugerace: by its own name, or by the libhugetlbfs test's name as that
/// project's runner does (`LibhugetlbfsTree`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    Hugerace,
    Runner,
}

struct Case {
    name: &'static str,
    via: Via,
    /// `SIZE` stands for a page size this machine lacks.
    args: &'static [&'static str],
    /// Whether it races on the real pool (root and hugetlb, the pool lock, restored after).
    races: bool,
    status: i32,
    /// What the output must say, beyond the status.
    check: fn(&Run),
}

use Via::{Hugerace as H, Runner as R};

#[rustfmt::skip]
const CASES: &[Case] = &[
    Case { name: "ltp pass", via: H, args: &["-f", "ltp", "-i", "3"], races: true, status: 0, check: ltp_pass },
    Case { name: "ltp fail", via: H, args: &["-f", "ltp", "shared", "--leave-free", "0", "--noreserve"], races: true, status: 1, check: ltp_fail },
    Case { name: "ltp conf", via: H, args: &["-f", "ltp", "-s", "SIZE"], races: false, status: 32, check: ltp_conf },
    Case { name: "ktap pass", via: H, args: &["-f", "ktap", "-i", "3"], races: true, status: 0, check: ktap_pass },
    Case { name: "ktap fail", via: H, args: &["-f", "ktap", "private", "--leave-free", "0", "--noreserve"], races: true, status: 1, check: ktap_fail },
    Case { name: "ktap conf", via: H, args: &["-f", "ktap", "-s", "SIZE"], races: false, status: 4, check: ktap_conf },
    Case { name: "json pass", via: H, args: &["-f", "json", "-i", "3"], races: true, status: 0, check: json_pass },
    Case { name: "json fail", via: H, args: &["-f", "json", "shared", "--leave-free", "0", "--noreserve"], races: true, status: 1, check: json_fail },
    Case { name: "json conf", via: H, args: &["-f", "json", "-s", "SIZE"], races: false, status: 32, check: json_conf },
    // The runner reads 0 pass, 1 bad configuration, 2 fail.
    Case { name: "hugetlbfs pass shared", via: R, args: &["shared"], races: true, status: 0, check: hugetlbfs_pass },
    Case { name: "hugetlbfs pass private", via: R, args: &["private"], races: true, status: 0, check: hugetlbfs_pass },
    // hugerace's own options still work under the libhugetlbfs name.
    Case { name: "hugetlbfs pass with options", via: R, args: &["private", "-i", "5", "-n", "2"], races: true, status: 0, check: hugetlbfs_pass },
    Case { name: "hugetlbfs fail", via: R, args: &["shared", "--leave-free", "0", "--noreserve"], races: true, status: 2, check: hugetlbfs_fail },
    Case { name: "hugetlbfs conf", via: R, args: &["shared", "-s", "SIZE"], races: false, status: 1, check: hugetlbfs_conf },
];

#[test]
fn each_format_tells_each_outcome_with_its_harness_status() {
    let racing = need_root_hugetlb();
    let t = LibhugetlbfsTree::new();
    for c in CASES {
        if c.races && !racing {
            continue;
        }
        let g = c.races.then(pool_guard);
        let args: Vec<&str> = c.args.iter().map(|&a| if a == "SIZE" { missing_size() } else { a }).collect();
        let r = match c.via {
            Via::Hugerace => go(&args),
            Via::Runner => t.run(&args),
        };
        assert_eq!(r.code, c.status, "{} (the runner's {:?}): {}{}", c.name, kind(r.code), r.out, r.err);
        (c.check)(&r);
        if let Some(g) = g {
            g.assert_restored();
        }
    }
}

// ---- ltp ----------------------------------------------------------------------------------

fn ltp_summary(out: &str, passed: u32, failed: u32, skipped: u32) {
    let want = format!("\nSummary:\npassed   {passed}\nfailed   {failed}\nbroken   0\nskipped  {skipped}\nwarnings 0\n");
    assert!(out.ends_with(&want), "summary: want {want:?} in\n{out}");
}

fn ltp_pass(r: &Run) {
    assert!(r.out.contains("hugerace: TPASS: shared "), "{}", r.out);
    assert!(r.out.contains("hugerace: TPASS: private "), "{}", r.out);
    // Results go to stdout, LTP's habit of stderr notwithstanding; stderr stays empty.
    assert!(r.err.is_empty(), "stderr: {}", r.err);
    for l in r.out.lines().take_while(|l| !l.is_empty()) {
        assert!(l.starts_with("hugerace: TINFO: ") || l.starts_with("hugerace: TPASS: "), "{l}");
    }
    ltp_summary(&r.out, 2, 0, 0);
}

fn ltp_fail(r: &Run) {
    let line = r.out.lines().find(|l| l.starts_with("hugerace: TFAIL: shared ")).unwrap_or_else(|| panic!("{}", r.out));
    assert!(line.contains("SIGBUS"), "{line}");
    ltp_summary(&r.out, 0, 1, 0);
}

fn ltp_conf(r: &Run) {
    assert!(r.out.starts_with("hugerace: TCONF: "), "{}", r.out);
    ltp_summary(&r.out, 0, 0, 1);
}

// ---- ktap ---------------------------------------------------------------------------------

/// The test lines of a KTAP version 1 document, checked for shape: version line, plan,
/// numbered results matching the plan, everything else a `#` diagnostic. Returns the result
/// lines without their number: ("ok"|"not ok", rest).
fn ktap(out: &str) -> Vec<(bool, String)> {
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("KTAP version 1"), "{out}");
    let plan = lines.next().and_then(|l| l.strip_prefix("1..")).and_then(|n| n.parse::<usize>().ok());
    let plan = plan.unwrap_or_else(|| panic!("no plan:\n{out}"));
    let mut results = Vec::new();
    for l in lines {
        let (ok, rest) = if let Some(r) = l.strip_prefix("ok ") {
            (true, r)
        } else if let Some(r) = l.strip_prefix("not ok ") {
            (false, r)
        } else {
            assert!(l.starts_with('#'), "neither a result nor a diagnostic: {l:?}\n{out}");
            continue;
        };
        let (num, name) = rest.split_once(' ').unwrap_or_else(|| panic!("{l}"));
        assert_eq!(num.parse::<usize>().ok(), Some(results.len() + 1), "numbering: {l}");
        results.push((ok, name.to_string()));
    }
    assert_eq!(results.len(), plan, "plan 1..{plan} but {} results:\n{out}", results.len());
    let totals = out.lines().last().unwrap_or("");
    assert!(totals.starts_with("# Totals: pass:"), "no totals line last:\n{out}");
    results
}

fn ktap_pass(r: &Run) {
    let res = ktap(&r.out);
    assert_eq!(res.len(), 2);
    assert!(res[0].0 && res[0].1.starts_with("shared "), "{res:?}");
    assert!(res[1].0 && res[1].1.starts_with("private "), "{res:?}");
    assert!(!r.out.contains("# SKIP"), "{}", r.out);
    assert!(r.out.contains(": 3 races, 0 failed, skew p50 "), "figures as diagnostics:\n{}", r.out);
    assert!(r.out.ends_with("# Totals: pass:2 fail:0 xfail:0 xpass:0 skip:0 error:0\n"), "{}", r.out);
}

fn ktap_fail(r: &Run) {
    let res = ktap(&r.out);
    assert_eq!(res.len(), 1);
    assert!(!res[0].0 && res[0].1.starts_with("private "), "{res:?}");
    assert!(r.out.lines().any(|l| l.starts_with("# private ") && l.contains("SIGBUS")), "the reason as a diagnostic:\n{}", r.out);
    assert!(r.out.contains("# Totals: pass:0 fail:1 "), "{}", r.out);
}

fn ktap_conf(r: &Run) {
    let res = ktap(&r.out);
    assert_eq!(res.len(), 1);
    let (ok, rest) = &res[0];
    assert!(*ok, "a skip is an ok line: {rest}");
    let (_, reason) = rest.split_once(" # SKIP ").unwrap_or_else(|| panic!("no '# SKIP reason': {rest}"));
    assert!(reason.contains(missing_size()), "{reason}");
    assert!(r.out.contains(" skip:1 "), "{}", r.out);
}

// ---- json ---------------------------------------------------------------------------------

fn json(r: &Run) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{}", r.out));
    assert_eq!(v["tool"], "hugerace");
    // The base page, from AT_PAGESZ: what a boot's judge compares with its machine's.
    assert_eq!(v["base_page_kb"].as_u64(), Some(page_size_kb()), "{v}");
    assert_eq!(v["exit_status"].as_i64(), Some(r.code as i64), "exit_status field vs the real status");
    assert!(r.err.is_empty(), "json keeps stderr quiet without -v: {}", r.err);
    v
}

fn page_size_kb() -> u64 {
    let o = std::process::Command::new("getconf").arg("PAGESIZE").output().expect("getconf");
    String::from_utf8_lossy(&o.stdout).trim().parse::<u64>().expect("PAGESIZE") / 1024
}

fn json_pass(r: &Run) {
    let v = json(r);
    let res = v["results"].as_array().expect("results");
    assert_eq!(res.len(), 2);
    for (x, mode) in res.iter().zip(["shared", "private"]) {
        assert_eq!(x["result"], "pass", "{x}");
        assert_eq!(x["mode"], mode, "{x}");
        assert_eq!(x["iterations"].as_u64(), Some(3), "{x}");
        assert_eq!(x["passed"].as_u64(), Some(3), "{x}");
        assert_eq!(x["failed"].as_u64(), Some(0), "{x}");
        assert!(x["skew_ns"]["p50"].is_u64(), "{x}");
        // The original test's state before every race: the last free page, reserved.
        assert_eq!((x["start_free"].as_u64(), x["start_reserved"].as_u64()), (Some(1), Some(1)), "{x}");
        assert!(x.get("signal").is_none(), "no race failed: {x}");
    }
}

fn json_fail(r: &Run) {
    let v = json(r);
    let x = &v["results"][0];
    assert_eq!(x["result"], "fail", "{x}");
    assert_eq!(x["failed"].as_u64(), Some(1), "{x}");
    assert!(x["message"].as_str().unwrap_or("").contains("SIGBUS"), "{x}");
    assert_eq!(x["signal"], "SIGBUS", "{x}");
    // The negative control: nothing left free, the contested page not reserved.
    assert_eq!((x["start_free"].as_u64(), x["start_reserved"].as_u64()), (Some(0), Some(0)), "{x}");
}

fn json_conf(r: &Run) {
    let v = json(r);
    let res = v["results"].as_array().expect("results");
    assert_eq!(res.len(), 1);
    assert_eq!(res[0]["result"], "skip", "{}", res[0]);
    assert!(res[0]["message"].as_str().unwrap_or("").contains(missing_size()));
}

// ---- hugetlbfs, through a driver that calls the test as libhugetlbfs's runner does --------

/// A test directory laid out as libhugetlbfs's tests/ is while its runner works: the test
/// binaries in `obj64/`, found through PATH by their name.
struct LibhugetlbfsTree(PathBuf);

impl LibhugetlbfsTree {
    fn new() -> LibhugetlbfsTree {
        let dir = std::env::temp_dir().join(format!("hugerace-lhtests-{}-{:?}", std::process::id(), std::thread::current().id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("obj64")).unwrap();
        std::os::unix::fs::symlink(bin(), dir.join("obj64/alloc-instantiate-race")).unwrap();
        LibhugetlbfsTree(dir)
    }

    /// As `run_test_prog` does: PATH and LD_LIBRARY_PATH pointing at the obj dirs, the page
    /// size in HUGETLB_DEFAULT_PAGE_SIZE, the command run by name, stdout captured and
    /// stripped (stderr goes where the runner's goes); `kind` classifies the status.
    fn run(&self, args: &[&str]) -> Run {
        let path = format!("./obj64:../obj64:{}", std::env::var("PATH").unwrap_or_default());
        let o = Command::new("timeout")
            .args(["-k", "5", "300", "alloc-instantiate-race"])
            .args(args)
            .current_dir(&self.0)
            .env("PATH", path)
            .env("LD_LIBRARY_PATH", "../obj64:obj64")
            .env("HUGETLB_DEFAULT_PAGE_SIZE", "2097152")
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("spawn the test");
        Run { out: String::from_utf8_lossy(&o.stdout).trim().to_string(), err: String::new(), code: o.status.code().unwrap_or(-1) }
    }
}

/// How libhugetlbfs's runner sorts a test by its exit status.
fn kind(code: i32) -> &'static str {
    match code {
        0 => "pass",
        1 => "config",
        2 => "fail",
        3 => "xfail",
        4 => "xpass",
        -1 => "signal",
        _ => "strange",
    }
}

impl Drop for LibhugetlbfsTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn first_word(out: &str) -> &str {
    out.split_whitespace().next().unwrap_or("")
}

fn hugetlbfs_pass(r: &Run) {
    assert_eq!(r.out, "PASS");
}

fn hugetlbfs_fail(r: &Run) {
    let out = &r.out;
    assert_eq!(first_word(out), "FAIL", "{out}");
    assert!(out.starts_with("FAIL\t"), "FAIL then a tab: {out:?}");
    assert!(out.contains("SIGBUS"), "{out}");
    assert_eq!(out.lines().count(), 1, "one verdict line: {out}");
}

fn hugetlbfs_conf(r: &Run) {
    let out = &r.out;
    assert_eq!(first_word(out), "Bad", "{out}");
    assert!(out.starts_with("Bad configuration: "), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
}

#[test]
fn hugetlbfs_without_a_mode_prints_its_usage_as_a_bad_configuration() {
    let t = LibhugetlbfsTree::new();
    let r = t.run(&[]);
    assert_eq!(kind(r.code), "config", "{}", r.out);
    assert!(r.out.starts_with("Bad configuration: Usage: alloc-instantiate-race <private|shared>"), "{}", r.out);
    // A bad command line is a bad configuration too, never a FAIL (2) of the kernel.
    for bad in [&["sideways"][..], &["shared", "-i", "x"], &["shared", "--bogus"]] {
        let r = t.run(bad);
        assert_eq!(kind(r.code), "config", "{bad:?}: {}", r.out);
        assert!(r.out.starts_with("Bad configuration: "), "{bad:?}: {}", r.out);
    }
    // The same behaviour under hugerace's own name with -f hugetlbfs.
    let r = go(&["-f", "hugetlbfs"]);
    assert_eq!(r.code, 1);
    assert!(r.out.starts_with("Bad configuration: Usage: "), "{}", r.out);
    // And -f chooses another format under the libhugetlbfs name.
    let r = Command::new(t.0.join("obj64/alloc-instantiate-race")).args(["-f", "ltp", "-s", missing_size()]).output().unwrap();
    assert_eq!(r.status.code(), Some(32), "{}", stdout(&r));
    assert!(stdout(&r).starts_with("hugerace: TCONF: "), "{}", stdout(&r));
}

// ---- on a terminal that carries both streams ---------------------------------------------

/// Each machine-readable format, run long enough to draw progress, on one pseudo-terminal
/// for stdout and stderr (an interactive shell, `script`, a lab's captured serial console):
/// what the terminal shows still parses with that format's reader, nothing in between.
#[test]
fn each_format_stays_whole_on_a_terminal_shared_by_stdout_and_stderr() {
    if !need_root_hugetlb() {
        return;
    }
    let t = LibhugetlbfsTree::new();
    let g = pool_guard();
    // The command, as is.
    let Some((out, code)) = in_a_pty(&bin(), &["-f", "json", "-I", "2"]) else { return };
    let v = json(&Run { out: out.clone(), err: String::new(), code });
    assert_eq!(code, 0, "{out}");
    let res = v["results"].as_array().expect("results");
    assert_eq!(res.len(), 2, "{out}");
    for x in res {
        assert_eq!(x["result"], "pass", "{x}");
        assert!(x["iterations"].as_u64() > Some(0), "{x}");
    }
    // The dontneed race, with -v: every stderr line before the document, none inside it.
    let (out, code) = in_a_pty(&bin(), &["--race", "dontneed", "-f", "json", "-I", "1", "-v"]).unwrap();
    assert_eq!(code, 0, "{out}");
    let (lines, doc) = out.trim_end_matches('\n').rsplit_once('\n').unwrap_or(("", &out));
    for l in lines.lines() {
        assert!(l.starts_with("hugerace: TINFO: "), "not a stderr line of -v: {l:?}\n{out}");
    }
    let v = json(&Run { out: doc.to_string(), err: String::new(), code });
    assert_eq!(v["results"][0]["mode"], "dontneed", "{out}");
    assert_eq!(v["results"][0]["result"], "pass", "{out}");
    let (out, code) = in_a_pty(&bin(), &["-f", "ktap", "-I", "1"]).unwrap();
    assert_eq!(code, 0, "{out}");
    let res = ktap(&out);
    assert!(res.len() == 2 && res.iter().all(|r| r.0), "{res:?}\n{out}");
    // libhugetlbfs's name, as its runner calls it (but on a terminal): the one word.
    let (out, code) = in_a_pty(&t.0.join("obj64/alloc-instantiate-race"), &["shared", "-I", "1"]).unwrap();
    assert_eq!(code, 0, "{out:?}");
    hugetlbfs_pass(&Run { out: out.trim().to_string(), err: String::new(), code });
    g.assert_restored();
}

//! Every output format against the real pool: a PASS, a FAIL (the negative control
//! `--leave-free 0 --noreserve`), a CONF (a page size this machine lacks), each with the exit
//! status of that format's harness. The hugetlbfs format is driven the way libhugetlbfs's
//! `run_tests.py` drives its own test.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const FAIL: &[&str] = &["--leave-free", "0", "--noreserve"];

struct Run {
    out: String,
    err: String,
    code: i32,
}

fn go(args: &[&str]) -> Run {
    let o = run(args);
    Run { out: stdout(&o), err: stderr(&o), code: o.status.code().unwrap_or(-1) }
}

fn with(a: &[&'static str], b: &[&'static str]) -> Vec<&'static str> {
    a.iter().chain(b).copied().collect()
}

/// A page size no pool of this machine has (16G, unless this is a machine that has it).
fn missing_size() -> &'static str {
    if Path::new("/sys/kernel/mm/hugepages/hugepages-16777216kB").exists() { "512G" } else { "16G" }
}

// ---- ltp ----------------------------------------------------------------------------------

fn ltp_summary(out: &str, passed: u32, failed: u32, skipped: u32) {
    let want = format!("\nSummary:\npassed   {passed}\nfailed   {failed}\nbroken   0\nskipped  {skipped}\nwarnings 0\n");
    assert!(out.ends_with(&want), "summary: want {want:?} in\n{out}");
}

#[test]
fn ltp_pass() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    let r = go(&["-f", "ltp", "-i", "3"]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(r.out.contains("hugerace: TPASS: shared "), "{}", r.out);
    assert!(r.out.contains("hugerace: TPASS: private "), "{}", r.out);
    // Results go to stdout, LTP's habit of stderr notwithstanding; stderr stays empty.
    assert!(r.err.is_empty(), "stderr: {}", r.err);
    for l in r.out.lines().take_while(|l| !l.is_empty()) {
        assert!(l.starts_with("hugerace: TINFO: ") || l.starts_with("hugerace: TPASS: "), "{l}");
    }
    ltp_summary(&r.out, 2, 0, 0);
    g.assert_restored();
}

#[test]
fn ltp_fail() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    let r = go(&with(&["-f", "ltp", "shared"], FAIL));
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    let line = r.out.lines().find(|l| l.starts_with("hugerace: TFAIL: shared ")).unwrap_or_else(|| panic!("{}", r.out));
    assert!(line.contains("SIGBUS"), "{line}");
    ltp_summary(&r.out, 0, 1, 0);
    g.assert_restored();
}

#[test]
fn ltp_conf() {
    let r = go(&["-f", "ltp", "-s", missing_size()]);
    assert_eq!(r.code, 32, "{}{}", r.out, r.err);
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

#[test]
fn ktap_pass() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    let r = go(&["-f", "ktap", "-i", "3"]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    let res = ktap(&r.out);
    assert_eq!(res.len(), 2);
    assert!(res[0].0 && res[0].1.starts_with("shared "), "{res:?}");
    assert!(res[1].0 && res[1].1.starts_with("private "), "{res:?}");
    assert!(!r.out.contains("# SKIP"), "{}", r.out);
    assert!(r.out.contains(": 3 races, 0 failed, skew p50 "), "figures as diagnostics:\n{}", r.out);
    assert!(r.out.ends_with("# Totals: pass:2 fail:0 xfail:0 xpass:0 skip:0 error:0\n"), "{}", r.out);
    g.assert_restored();
}

#[test]
fn ktap_fail() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    let r = go(&with(&["-f", "ktap", "private"], FAIL));
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    let res = ktap(&r.out);
    assert_eq!(res.len(), 1);
    assert!(!res[0].0 && res[0].1.starts_with("private "), "{res:?}");
    assert!(r.out.lines().any(|l| l.starts_with("# private ") && l.contains("SIGBUS")), "the reason as a diagnostic:\n{}", r.out);
    assert!(r.out.contains("# Totals: pass:0 fail:1 "), "{}", r.out);
    g.assert_restored();
}

#[test]
fn ktap_conf() {
    let size = missing_size();
    let r = go(&["-f", "ktap", "-s", size]);
    assert_eq!(r.code, 4, "{}{}", r.out, r.err);
    let res = ktap(&r.out);
    assert_eq!(res.len(), 1);
    let (ok, rest) = &res[0];
    assert!(*ok, "a skip is an ok line: {rest}");
    let (_, reason) = rest.split_once(" # SKIP ").unwrap_or_else(|| panic!("no '# SKIP reason': {rest}"));
    assert!(reason.contains(size), "{reason}");
    assert!(r.out.contains(" skip:1 "), "{}", r.out);
}

// ---- json ---------------------------------------------------------------------------------

fn json(r: &Run) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{}", r.out));
    assert_eq!(v["tool"], "hugerace");
    assert_eq!(v["exit_status"].as_i64(), Some(r.code as i64), "exit_status field vs the real status");
    assert!(r.err.is_empty(), "json keeps stderr quiet without -v: {}", r.err);
    v
}

#[test]
fn json_pass() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    let r = go(&["-f", "json", "-i", "3"]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    let v = json(&r);
    let res = v["results"].as_array().expect("results");
    assert_eq!(res.len(), 2);
    for (x, mode) in res.iter().zip(["shared", "private"]) {
        assert_eq!(x["result"], "pass", "{x}");
        assert_eq!(x["mode"], mode, "{x}");
        assert_eq!(x["iterations"].as_u64(), Some(3), "{x}");
        assert_eq!(x["passed"].as_u64(), Some(3), "{x}");
        assert_eq!(x["failed"].as_u64(), Some(0), "{x}");
        assert!(x["skew_ns"]["p50"].is_u64(), "{x}");
    }
    g.assert_restored();
}

#[test]
fn json_fail() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    let r = go(&with(&["-f", "json", "shared"], FAIL));
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    let v = json(&r);
    let x = &v["results"][0];
    assert_eq!(x["result"], "fail", "{x}");
    assert_eq!(x["failed"].as_u64(), Some(1), "{x}");
    assert!(x["message"].as_str().unwrap_or("").contains("SIGBUS"), "{x}");
    g.assert_restored();
}

#[test]
fn json_conf() {
    let r = go(&["-f", "json", "-s", missing_size()]);
    assert_eq!(r.code, 32, "{}{}", r.out, r.err);
    let v = json(&r);
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
    /// stripped (stderr goes where the runner's goes), then the status classified.
    fn run(&self, args: &[&str]) -> (&'static str, String) {
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
        let out = String::from_utf8_lossy(&o.stdout).trim().to_string();
        let kind = match o.status.code() {
            Some(0) => "pass",
            Some(1) => "config",
            Some(2) => "fail",
            Some(3) => "xfail",
            Some(4) => "xpass",
            None => "signal",
            Some(_) => "strange",
        };
        (kind, out)
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

#[test]
fn hugetlbfs_pass() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    let t = LibhugetlbfsTree::new();
    for mode in ["shared", "private"] {
        let (kind, out) = t.run(&[mode]);
        assert_eq!((kind, out.as_str()), ("pass", "PASS"), "{mode}");
    }
    // hugerace's own options still work under the libhugetlbfs name.
    let (kind, out) = t.run(&["private", "-i", "5", "-n", "2"]);
    assert_eq!((kind, out.as_str()), ("pass", "PASS"));
    g.assert_restored();
}

#[test]
fn hugetlbfs_fail() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    let t = LibhugetlbfsTree::new();
    let (kind, out) = t.run(&with(&["shared"], FAIL));
    assert_eq!(kind, "fail", "{out}");
    assert_eq!(first_word(&out), "FAIL", "{out}");
    assert!(out.starts_with("FAIL\t"), "FAIL then a tab: {out:?}");
    assert!(out.contains("SIGBUS"), "{out}");
    assert_eq!(out.lines().count(), 1, "one verdict line: {out}");
    g.assert_restored();
}

#[test]
fn hugetlbfs_conf() {
    let t = LibhugetlbfsTree::new();
    let (kind, out) = t.run(&["shared", "-s", missing_size()]);
    assert_eq!(kind, "config", "{out}");
    assert_eq!(first_word(&out), "Bad", "{out}");
    assert!(out.starts_with("Bad configuration: "), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
}

#[test]
fn hugetlbfs_without_a_mode_prints_its_usage_as_a_bad_configuration() {
    let t = LibhugetlbfsTree::new();
    let (kind, out) = t.run(&[]);
    assert_eq!(kind, "config", "{out}");
    assert!(out.starts_with("Bad configuration: Usage: alloc-instantiate-race <private|shared>"), "{out}");
    // A bad command line is a bad configuration too, never a FAIL (2) of the kernel.
    for bad in [&["sideways"][..], &["shared", "-i", "x"], &["shared", "--bogus"]] {
        let (kind, out) = t.run(bad);
        assert_eq!(kind, "config", "{bad:?}: {out}");
        assert!(out.starts_with("Bad configuration: "), "{bad:?}: {out}");
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

//! The core behaviour, run as a user would: the real binary against the real kernel's pool.

mod common;
use common::*;
use std::process::Command;

#[test]
fn default_run_passes_and_restores_an_empty_pool() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    g.set_nr(2048, 0);
    let before = PoolState::read();
    let o = run(&[]);
    let out = stdout(&o);
    assert_eq!(status(&o), 0, "{out}{}", stderr(&o));
    assert!(out.contains("TPASS: shared 2M"), "{out}");
    assert!(out.contains("TPASS: private 2M"), "{out}");
    assert!(out.contains("pool raised by 2"), "{out}");
    assert!(out.contains("\nSummary:\npassed   2\nfailed   0\nbroken   0\nskipped  0\nwarnings 0\n"), "{out}");
    assert_eq!(PoolState::read(), before, "pool not restored");
    assert_no_racers_left();
}

#[test]
fn a_large_pool_is_left_as_it_was() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    g.set_nr(2048, 64);
    let before = PoolState::read();
    let o = run(&["-i", "3"]);
    let out = stdout(&o);
    assert_eq!(status(&o), 0, "{out}");
    assert!(out.contains("took 63 pages"), "{out}");
    assert!(out.contains("pool unchanged"), "{out}");
    assert_eq!(PoolState::read(), before);
}

#[test]
fn negative_control_fails_with_sigbus_at_the_first_iteration() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    g.set_nr(2048, 0);
    let before = PoolState::read();
    let o = run(&["--leave-free", "0", "--noreserve", "-i", "50"]);
    let out = stdout(&o);
    assert_eq!(status(&o) & 1, 1, "TFAIL bit: {out}");
    assert_eq!(status(&o), 1, "{out}");
    for mode in ["shared", "private"] {
        let line = out.lines().find(|l| l.starts_with(&format!("hugerace: TFAIL: {mode} 2M"))).unwrap_or_else(|| panic!("{out}"));
        assert!(line.contains("SIGBUS"), "{line}");
        assert!(line.contains("in race 1 of 50"), "{line}");
    }
    assert!(!out.contains("TPASS"), "{out}");
    assert_eq!(PoolState::read(), before, "pool not restored after a FAIL");
    assert_no_racers_left();
}

#[test]
fn many_iterations_pass_in_both_modes() {
    if !need_root_hugetlb() {
        return;
    }
    let _g = pool_guard();
    let o = run(&["-i", "200"]);
    let out = stdout(&o);
    assert_eq!(status(&o), 0, "{out}");
    assert!(out.contains("TPASS: shared 2M: no SIGBUS in 200 races"), "{out}");
    assert!(out.contains("TPASS: private 2M: no SIGBUS in 200 races"), "{out}");
}

#[test]
fn every_allowed_cpu_races() {
    if !need_root_hugetlb() {
        return;
    }
    let _g = pool_guard();
    let o = run(&["-n", "all", "-i", "20"]);
    let out = stdout(&o);
    assert_eq!(status(&o), 0, "{out}");
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    assert!(out.contains(&format!("{cpus} processes on CPUs")), "{out}");
}

#[test]
fn json_parses_and_counts_add_up() {
    if !need_root_hugetlb() {
        return;
    }
    let _g = pool_guard();
    let o = run(&["-f", "json", "-i", "30"]);
    assert_eq!(status(&o), 0, "{}", stdout(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    assert_eq!(v["tool"], "hugerace");
    assert_eq!(v["exit_status"], 0);
    let results = v["results"].as_array().expect("results");
    assert_eq!(results.len(), 2);
    for r in results {
        let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} in {r}"));
        // Three counts made apart: races counted by the racers, the ones among them that
        // passed (every write done at once, none faulted), the failed ones the supervisor
        // judged; and no race broke.
        assert_eq!(n("passed") + n("failed"), n("iterations"), "{r}");
        assert_eq!((n("passed"), n("failed"), n("broken")), (30, 0, 0), "{r}");
        assert_eq!(n("iterations"), 30);
        assert_eq!(n("pagesize_kb"), 2048);
        assert_eq!(n("racers"), 2);
        assert_eq!(r["cpus"].as_array().map(|c| c.len()), Some(2));
        for k in ["p50", "p90", "p99", "max"] {
            assert!(r["skew_ns"][k].is_u64(), "{r}");
        }
        for k in ["overlap_pct", "races_per_s", "elapsed_s"] {
            assert!(r[k].is_number(), "{k} in {r}");
        }
        assert!(r["fault_ns_p50"].is_u64());
        // The warm-up laps' probe faults measured something: racer 2 starts that much later.
        assert!(n("entry_gap_ns") > 0, "{r}");
        assert!(r["missed"].as_u64().unwrap() <= n("passed"));
    }
}

/// A race that broke says so: `broken` is 1, and the counts still add up. Deterministic:
/// the injector takes the unreserved page the moment race 2 is released, so both racers get
/// SIGBUS with more pages in use than the fill left (as in robustness.rs).
#[test]
fn json_counts_a_broken_race() {
    if !need_root_hugetlb() || !cfg!(target_arch = "x86_64") && !skip("the injector speaks the x86_64 syscall ABI only") {
        return;
    }
    let g = pool_guard();
    g.set_nr(2048, 0);
    let spec = ["--after", "5", "--mask", "1", "0x7f", "1", "steal", "futex", "2097152"];
    let args = ["-f", "json", "shared", "--noreserve", "-i", "20"];
    let o = Command::new("timeout").args(["-k", "5", "60"]).arg(injector()).args(spec).arg("--").arg(bin()).args(args).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&o), stderr(&o)));
    let r = &v["results"][0];
    assert_eq!(r["result"], "broken", "{r}");
    let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} in {r}"));
    assert_eq!(n("broken"), 1, "{r}");
    assert_eq!(n("failed"), 0, "a page taken from outside is no failed race: {r}");
    // Race 1 passed; race 2, voided, counts neither way.
    assert_eq!((n("passed"), n("iterations")), (1, 1), "{r}");
}

#[test]
fn every_page_size() {
    if !need_root_hugetlb() {
        return;
    }
    let _g = pool_guard();
    let o = run(&["-s", "all", "-i", "2"]);
    let out = stdout(&o);
    assert!(out.contains("TPASS: shared 2M"), "{out}");
    assert!(out.contains("TPASS: private 2M"), "{out}");
    for mode in ["shared", "private"] {
        // 1G pages need 2 GiB of contiguous memory: PASS where the kernel can give them,
        // TCONF (never TFAIL or TBROK) where it cannot.
        // The result line is picked by its size alone (every line but TINFO is a result).
        let g1 = format!(": {mode} 1G: ");
        let results: Vec<&str> = out.lines().filter(|l| l.contains(&g1) && !l.starts_with("hugerace: TINFO: ")).collect();
        assert_eq!(results.len(), 1, "one result for {mode} 1G:\n{out}");
        let line = results[0];
        let pass = line.starts_with(&format!("hugerace: TPASS: {mode} 1G: no SIGBUS in 2 races"));
        let short = line.starts_with(&format!("hugerace: TCONF: {mode} 1G: ")) && line.contains("(memory too fragmented or too small)");
        assert!(pass || short, "{line}");
    }
    assert!(!out.contains("TFAIL") && !out.contains("TBROK"), "{out}");
}

#[test]
fn a_size_the_machine_lacks_is_tconf() {
    if !need_root_hugetlb() {
        return;
    }
    let o = run(&["-s", "16M"]);
    let out = stdout(&o);
    assert_eq!(status(&o), 32, "{out}");
    assert!(out.contains("TCONF") && out.contains("no 16M hugepages") && out.contains("offers 2M 1G"), "{out}");
}

#[test]
fn no_pool_change_gives_tconf_with_the_command_to_run() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    g.set_nr(2048, 0);
    let before = PoolState::read();
    let o = run(&["--no-pool-change", "shared"]);
    let out = stdout(&o);
    assert_eq!(status(&o), 32, "{out}");
    assert!(out.contains("echo 2 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"), "{out}");
    assert_eq!(PoolState::read(), before);
}

/// A private hugetlbfs mount of the test's own, removed even when the test fails.
struct TempMount(std::path::PathBuf);

impl TempMount {
    fn new(opts: &str) -> TempMount {
        let dir = std::env::temp_dir().join(format!("hugerace-test-mnt.{}", std::process::id()));
        std::fs::create_dir(&dir).expect("mkdir");
        let ok = std::process::Command::new("mount").args(["-t", "hugetlbfs", "-o", opts, "none"]).arg(&dir).status().expect("mount");
        assert!(ok.success(), "mount hugetlbfs");
        TempMount(dir)
    }
}

impl Drop for TempMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn an_explicit_hugetlbfs_mount() {
    if !need_root_hugetlb() {
        return;
    }
    let _g = pool_guard();
    let m = TempMount::new("pagesize=2M,mode=0700");
    let o = run(&["--hugetlbfs", m.0.to_str().unwrap(), "-i", "5"]);
    let out = stdout(&o);
    assert_eq!(status(&o), 0, "{out}");
    assert!(out.contains("with hugetlbfs mount on"), "{out}");
    assert_eq!(std::fs::read_dir(&m.0).unwrap().count(), 0, "file left on the mount");
}

#[test]
fn without_memfd_a_private_mount_is_used_and_leaves_nothing() {
    if !need_root_hugetlb() {
        return;
    }
    let _g = pool_guard();
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let o = run(&["--no-memfd", "-i", "3"]);
    let out = stdout(&o);
    assert_eq!(status(&o), 0, "{out}");
    assert!(out.contains("private hugetlbfs mount"), "{out}");
    assert_eq!(std::fs::read_to_string("/proc/mounts").unwrap(), mounts, "mount left behind");
    let left: Vec<_> = std::fs::read_dir("/run").unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with("hugerace.")).collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_path_that_is_not_hugetlbfs_is_refused() {
    let o = run(&["--hugetlbfs", "/proc", "shared"]);
    let out = stdout(&o);
    assert_eq!(status(&o), 32, "{out}");
    assert!(out.contains("/proc is not a hugetlbfs mount"), "{out}");
}

#[test]
fn bad_input_exits_2_with_one_line() {
    for args in [&["--bogus"][..], &["-i", "x"], &["-n", "1"], &["-s", "3M"], &["sideways"], &["-i"], &["--leave-free", "0"]] {
        let o = run(args);
        assert_eq!(status(&o), 2, "{args:?}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("--help"), "{err}");
        assert!(stdout(&o).is_empty());
    }
}

#[test]
fn version_names_the_target() {
    let o = run(&["--version"]);
    assert_eq!(status(&o), 0);
    assert!(stdout(&o).starts_with("hugerace 0."), "{}", stdout(&o));
    assert!(stdout(&o).contains("x86_64-unknown-linux-gnu"));
}

#[test]
fn the_binary_is_static_and_has_no_interpreter() {
    let bytes = std::fs::read(bin()).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF");
    let out = std::process::Command::new("readelf").args(["-lW"]).arg(bin()).output().expect("readelf");
    let txt = String::from_utf8_lossy(&out.stdout);
    assert!(!txt.contains("INTERP"), "{txt}");
    assert!(!txt.contains("DYNAMIC"), "{txt}");
}

#[test]
fn a_racer_killed_from_outside_is_tbrok_not_a_pass() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    g.set_nr(2048, 0);
    let before = PoolState::read();
    let child = std::process::Command::new(bin())
        .args(["shared", "-I", "30"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let t0 = std::time::Instant::now();
    let racers = loop {
        let c = children(pid);
        if c.len() >= 2 || t0.elapsed().as_secs() > 10 {
            break c;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(racers.len() >= 2, "racers never started: {racers:?}");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let killed = std::process::Command::new("kill").args(["-KILL", &racers[1].to_string()]).status().expect("kill");
    assert!(killed.success());
    let o = child.wait_with_output().expect("wait");
    let out = stdout(&o);
    assert!(t0.elapsed().as_secs() < 25, "the run did not end early: {out}");
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("TBROK: shared 2M: racer 2 (pid ") && out.contains("was killed by SIGKILL from outside"), "{out}");
    assert!(!out.contains("TPASS") && !out.contains("TFAIL"), "{out}");
    assert_eq!(PoolState::read(), before, "pool not restored");
    assert_no_racers_left();
}

/// A cgroup v1 hugetlb hierarchy of the test's own, with one child group; unmounted and
/// removed even when the test fails.
struct HugetlbCgroup {
    root: std::path::PathBuf,
    group: std::path::PathBuf,
}

impl HugetlbCgroup {
    fn new() -> Result<HugetlbCgroup, String> {
        let root = std::env::temp_dir().join(format!("hugerace-test-cg.{}", std::process::id()));
        std::fs::create_dir(&root).map_err(|e| e.to_string())?;
        let ok = std::process::Command::new("mount").args(["-t", "cgroup", "-o", "hugetlb", "none"]).arg(&root).status();
        if !matches!(ok, Ok(s) if s.success()) {
            let _ = std::fs::remove_dir(&root);
            return Err("cannot mount a cgroup v1 hugetlb hierarchy (controller bound elsewhere?)".into());
        }
        let group = root.join("hugerace-test");
        let cg = HugetlbCgroup { root, group };
        std::fs::create_dir(&cg.group).map_err(|e| e.to_string())?;
        Ok(cg)
    }
}

impl Drop for HugetlbCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.group);
        let _ = std::process::Command::new("umount").arg(&self.root).status();
        let _ = std::fs::remove_dir(&self.root);
    }
}

#[test]
fn a_cgroup_limit_that_refuses_the_last_page_is_tbrok_not_tfail() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    g.set_nr(2048, 0);
    let before = PoolState::read();
    let cg = match HugetlbCgroup::new() {
        Ok(c) => c,
        Err(why) => {
            skip(&why);
            return;
        }
    };
    // Room for the page hugerace takes to fill the pool, not for the contested one: the
    // racers' fault is refused by the limit, with the SIGBUS the race bug would give.
    std::fs::write(cg.group.join("hugetlb.2MB.limit_in_bytes"), (2u64 << 20).to_string()).expect("limit");
    let script = format!("echo $$ > {}/tasks && exec {} shared", cg.group.display(), bin().display());
    let o = std::process::Command::new("sh").args(["-c", &script]).output().expect("sh");
    let out = stdout(&o);
    let failcnt: u64 = std::fs::read_to_string(cg.group.join("hugetlb.2MB.failcnt")).unwrap().trim().parse().unwrap();
    assert!(failcnt > 0, "the limit never refused a page, so this test proves nothing: {out}");
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("TBROK: shared 2M: inconclusive: this process's hugetlb cgroup (or a parent) refused"), "{out}");
    assert!(out.contains("SIGBUS"), "{out}");
    assert!(!out.contains("TFAIL"), "{out}");
    assert_eq!(PoolState::read(), before, "pool not restored");
    assert_no_racers_left();
}

/// The check every cleanliness assertion ends with fires on a hugerace that is still running
/// (the negative control of `assert_no_racers_left`): the process and both its racers are
/// found among this test's descendants, and still reported after the grace period.
#[test]
fn a_racer_left_behind_is_caught() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    /// Killed however the test ends (before the pool guard puts the pool back).
    struct Left(std::process::Child);
    impl Drop for Left {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Command::new(bin()).args(["-I", "60", "shared"]).stdout(std::process::Stdio::null()).spawn().expect("spawn hugerace");
    let left = Left(child);
    let pid = left.0.id();
    let kids = wait_children(pid, 2);
    assert_eq!(kids.len(), 2, "two racer processes: {kids:?}");
    let found: Vec<u32> = racers_left().into_iter().map(|(p, _)| p).collect();
    for p in std::iter::once(pid).chain(kids) {
        assert!(found.contains(&p), "{p} not found among {found:?}");
    }
    // What assert_no_racers_left asserts empty, after its five seconds' grace.
    let still = racers_still_left();
    assert!(still.iter().any(|w| w.starts_with(&format!("{pid}: "))), "hugerace {pid} running, yet not reported: {still:?}");
    // Ended as a user would (SIGTERM: TBROK, and everything put back).
    let ok = Command::new("kill").args(["-TERM", &pid.to_string()]).status().is_ok_and(|s| s.success());
    assert!(ok);
    let mut left = left;
    let st = left.0.wait().expect("wait");
    assert_eq!(st.code(), Some(2), "SIGTERM while racing is TBROK");
    drop(left);
    assert_clean(&g.before, "after the racer left behind");
}

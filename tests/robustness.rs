//! Never a false alarm, never a mess (issue 7): hugerace under signals, SIGKILL, a stopped
//! racer, an outside process taking the last page, denied syscalls, read-only or missing
//! knobs, overcommit, rlimits, an unprivileged user and concurrent instances. Every scenario
//! checks that the pool and overcommit knobs, the mounts, /run and the processes are as
//! they were (or, after SIGKILL, exactly what the README says is left).

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn pids_alive(pids: &[u32]) -> Vec<u32> {
    pids.iter().copied().filter(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| !s.contains(") Z "))).collect()
}

fn assert_gone(pids: &[u32], what: &str) {
    let t0 = Instant::now();
    while !pids_alive(pids).is_empty() && t0.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(pids_alive(pids).is_empty(), "{what}: processes left: {:?}", pids_alive(pids));
}

/// hugerace running in the background with its stdout read line by line.
struct Running {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

fn spawn(pre: &[&str], args: &[&str]) -> Running {
    let mut cmd = if pre.is_empty() {
        Command::new(bin())
    } else {
        let mut c = Command::new(pre[0]);
        c.args(&pre[1..]).arg(bin());
        c
    };
    let mut child = cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    Running { child, lines: rx, seen: Vec::new() }
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.id()
    }
    /// Wait for a stdout line containing `s` (at most `secs`).
    fn wait_line(&mut self, s: &str, secs: u64) -> bool {
        let end = Instant::now() + Duration::from_secs(secs);
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let hit = l.contains(s);
                    self.seen.push(l);
                    if hit {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
        false
    }
    fn signal(&self, sig: i32) {
        let ok = Command::new("kill").arg(format!("-{sig}")).arg(self.pid().to_string()).status().unwrap().success();
        assert!(ok, "kill -{sig}");
    }
    /// Wait for the exit (at most `secs`, then SIGKILL and fail); returns the status and
    /// all of stdout.
    fn finish(mut self, secs: u64) -> (Option<i32>, Option<i32>, String) {
        let end = Instant::now() + Duration::from_secs(secs);
        let st = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("hugerace did not end within {secs} s: {}", self.seen.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(l);
        }
        use std::os::unix::process::ExitStatusExt;
        (st.code(), st.signal(), self.seen.join("\n"))
    }
}

const SIGNALS: [(i32, &str); 4] = [(2, "SIGINT"), (15, "SIGTERM"), (1, "SIGHUP"), (3, "SIGQUIT")];

/// Small C helpers, built once: `steal` (take hugepages from outside) and `deny` (run a
/// command with some syscalls failing EPERM under seccomp).
fn helper(name: &str) -> std::path::PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    BUILT.call_once(|| {
        for h in ["steal", "deny"] {
            let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/helpers/{h}.c"));
            let ok = Command::new("cc").args(["-O2", "-o"]).arg(dir.join(h)).arg(&src).status().expect("cc").success();
            assert!(ok, "cc {}", src.display());
        }
    });
    dir.join(name)
}


// ---- signals ----

#[test]
fn termination_signals_during_setup_are_tbrok_and_restore_everything() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    // An empty pool and overcommit on: setup writes both knobs, and --no-memfd mounts.
    g.set_nr(2048, 0);
    set_knob("nr_overcommit_hugepages", 4);
    let expected = PoolState::read();
    let mut tbrok = 0;
    for (k, delay_ms) in (0..24u64).map(|d| d * 2).enumerate() {
        let (sig, name) = SIGNALS[k % 4];
        let mut args = vec![if k % 2 == 0 { "shared" } else { "private" }, "-I", "3"];
        if k % 3 == 0 {
            args.push("--no-memfd");
        }
        let r = spawn(&[], &args);
        std::thread::sleep(Duration::from_millis(delay_ms));
        let pid = r.pid();
        let kids = children(pid);
        r.signal(sig);
        let (code, killed, out) = r.finish(20);
        let what = format!("{name} after {delay_ms} ms ({args:?})");
        match (code, killed) {
            // Before the handler was set, nothing had been touched yet.
            (None, Some(s)) if s == sig => {}
            (Some(2), None) => {
                assert!(out.contains(&"TBROK: ".to_string()) && out.contains(&format!("interrupted by {name}")), "{what}: {out}");
                assert!(!out.contains("TFAIL") && !out.contains("TPASS"), "{what}: {out}");
                tbrok += 1;
            }
            other => panic!("{what}: {other:?}\n{out}"),
        }
        assert_gone(&kids, &what);
        assert_clean(&expected, &what);
    }
    eprintln!("setup signals: 24 runs, {tbrok} TBROK naming the signal, all restored");
    assert!(tbrok >= 16, "most runs should have caught the signal: {tbrok}");
}

#[test]
fn termination_signals_while_racing_are_tbrok_and_restore_everything() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    g.set_nr(2048, 0);
    set_knob("nr_overcommit_hugepages", 4);
    let expected = PoolState::read();
    for mode in ["shared", "private"] {
        for (sig, name) in SIGNALS {
            let mut r = spawn(&[], &[mode, "-I", "30"]);
            assert!(r.wait_line(": took ", 10), "no setup line: {:?}", r.seen);
            std::thread::sleep(Duration::from_millis(300));
            assert_eq!(knob("nr_overcommit_hugepages"), 0, "overcommit must be 0 while racing");
            let kids = children(r.pid());
            let t0 = Instant::now();
            r.signal(sig);
            let (code, _, out) = r.finish(10);
            let what = format!("{name} while racing {mode}");
            assert_eq!(code, Some(2), "{what}: {out}");
            assert!(out.contains(&format!("TBROK: {mode} 2M: interrupted by {name}")), "{what}: {out}");
            // Not a speed figure: the run stopped on the signal, not at the end of its -I 30.
            assert!(t0.elapsed() < Duration::from_secs(15), "{what}: took {:?}", t0.elapsed());
            assert_gone(&kids, &what);
            assert_clean(&expected, &what);
        }
    }
}

/// Every other signal whose default action ends the process, one of each class: user
/// signals, timers, resource limits, I/O, power, a stack fault, SIGPIPE and SIGABRT sent by
/// kill, and realtime signals (the kernel's first, glibc's SIGRTMIN and the last).
const OTHER_SIGNALS: [(&str, &str); 15] = [
    ("USR1", "SIGUSR1"), ("USR2", "SIGUSR2"), ("ALRM", "SIGALRM"), ("VTALRM", "SIGVTALRM"), ("PROF", "SIGPROF"),
    ("XCPU", "SIGXCPU"), ("XFSZ", "SIGXFSZ"), ("IO", "SIGIO"), ("PWR", "SIGPWR"), ("STKFLT", "SIGSTKFLT"),
    ("PIPE", "SIGPIPE"), ("ABRT", "SIGABRT"), ("32", "realtime signal 32"), ("34", "realtime signal 34"), ("64", "realtime signal 64"),
];

fn kill_by_name(pid: u32, sig: &str) {
    let ok = Command::new("kill").arg("-s").arg(sig).arg(pid.to_string()).status().unwrap().success();
    assert!(ok, "kill -s {sig} {pid}");
}

#[test]
fn every_terminating_signal_while_racing_is_tbrok_and_restores_everything() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    g.set_nr(2048, 0);
    set_knob("nr_overcommit_hugepages", 4);
    let expected = PoolState::read();
    for (k, (sig, name)) in OTHER_SIGNALS.iter().enumerate() {
        let mode = if k % 2 == 0 { "shared" } else { "private" };
        let mut r = spawn(&[], &[mode, "-I", "30"]);
        assert!(r.wait_line(": took ", 10), "no setup line: {:?}", r.seen);
        assert_eq!(knob("nr_hugepages"), 2, "the pool is raised while racing");
        let kids = children(r.pid());
        // kill(1) takes a number for the realtime signals.
        let sig = if sig.parse::<u32>().is_ok() { sig.to_string() } else { format!("SIG{sig}") };
        let t0 = Instant::now();
        kill_by_name(r.pid(), &sig);
        let (code, killed, out) = r.finish(10);
        let what = format!("{name} while racing {mode}");
        assert_eq!((code, killed), (Some(2), None), "{what}: {out}");
        assert!(out.contains(&format!("TBROK: {mode} 2M: interrupted by {name}")), "{what}: {out}");
        assert!(t0.elapsed() < Duration::from_secs(15), "{what}: took {:?}", t0.elapsed());
        assert_gone(&kids, &what);
        assert_clean(&expected, &what);
    }
}

#[test]
fn a_reader_that_goes_away_is_tbrok_naming_sigpipe_and_restores_everything() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    g.set_nr(2048, 0);
    set_knob("nr_overcommit_hugepages", 4);
    let expected = PoolState::read();
    for mode in ["shared", "private"] {
        // `hugerace -I 2 -v | head -c 10`: the reader is gone before the results are written.
        let mut child = Command::new(bin()).args([mode, "-I", "2", "-v"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut first = [0u8; 10];
        std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        use std::os::unix::process::ExitStatusExt;
        let what = format!("{mode} with its reader gone");
        assert_eq!((o.status.code(), o.status.signal()), (Some(2), None), "{what}: killed by SIGPIPE or not TBROK: {}", stderr(&o));
        assert_clean(&expected, &what);
    }
}

#[test]
fn a_terminating_signal_sent_to_a_racer_changes_nothing() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    g.set_nr(2048, 0);
    let expected = PoolState::read();
    // A racer process (shared mode), and the process that holds the racer threads (private
    // mode), block them all: the signal stays pending there and the run goes on to its end
    // (the supervisor alone acts on signals, and its children go with the run).
    for (mode, n, sig) in [("shared", 2, "SIGTERM"), ("shared", 2, "SIGUSR1"), ("shared", 2, "SIGPIPE"), ("shared", 2, "40"), ("private", 1, "SIGTERM"), ("private", 1, "SIGALRM"), ("private", 1, "50")] {
        let mut r = spawn(&[], &[mode, "-I", "2"]);
        assert!(r.wait_line(": took ", 10), "no setup line: {:?}", r.seen);
        let kids = children(r.pid());
        assert_eq!(kids.len(), n, "{mode}: {kids:?}");
        kill_by_name(kids[0], sig);
        let (code, _, out) = r.finish(20);
        let what = format!("{sig} to {mode} racer process {}", kids[0]);
        assert_eq!(code, Some(0), "{what}: {out}");
        assert!(out.contains(&format!("TPASS: {mode} 2M")), "{what}: {out}");
        assert_gone(&kids, &what);
        assert_clean(&expected, &what);
    }
}

// ---- another process's surplus pages ----

/// A helper process that must not outlive a failed assertion (it would hold pages).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn another_process_s_surplus_pages_stay_surplus() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    g.set_nr(2048, 0);
    set_knob("nr_overcommit_hugepages", 2);
    let expected = PoolState::read();
    // A process holds 2 surplus pages (overcommit 2, persistent pool 0) across the run.
    let mut holder = KillOnDrop(Command::new(helper("steal")).args(["2097152", "2", "30"]).stdout(Stdio::piped()).spawn().unwrap());
    let mut lines = BufReader::new(holder.0.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.is_ok_and(|l| l.starts_with("grabbed 2"))), "the helper could not take 2 surplus pages");
    let surplus = || knob("surplus_hugepages");
    assert_eq!((knob("nr_hugepages"), surplus()), (2, 2), "2 pages, both surplus");
    let o = run(&["shared", "-i", "20"]);
    assert_eq!(status(&o), 0, "{}", stdout(&o));
    // While the holder lives its pages are still counted; they must still be surplus.
    assert_eq!((knob("nr_hugepages"), surplus(), knob("nr_overcommit_hugepages")), (2, 2, 2), "the holder's pages turned persistent:\n{}", stdout(&o));
    drop(holder);
    // Gone with the holder: the persistent pool is what it was.
    assert_clean(&expected, "surplus pages of another process");
}

// ---- SIGKILL ----

#[test]
fn sigkill_of_the_parent_leaves_no_racer_and_only_the_documented_pool_value() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    for (mode, extra) in [("shared", None), ("private", None), ("shared", Some("--no-memfd"))] {
        g.set_nr(2048, 0);
        set_knob("nr_overcommit_hugepages", 4);
        let mut args = vec![mode, "-I", "30"];
        args.extend(extra);
        let mut r = spawn(&[], &args);
        assert!(r.wait_line(": took ", 10), "no setup line: {:?}", r.seen);
        std::thread::sleep(Duration::from_millis(300));
        let pid = r.pid();
        let kids = children(pid);
        if mode == "shared" {
            assert_eq!(kids.len(), 2, "two racer processes: {kids:?}");
        }
        r.signal(9);
        let (_, killed, _) = r.finish(5);
        let what = format!("SIGKILL {args:?}");
        assert_eq!(killed, Some(9), "{what}");
        // No racer survives (PDEATHSIG), so nothing keeps spinning.
        assert_gone(&kids, &what);
        assert_eq!(pids_alive(&[pid]), Vec::<u32>::new(), "{what}");
        // What the README says is left: the raised pool and overcommit 0; the pages
        // themselves went back with the process, and no mount or directory remains.
        assert_eq!(knob("nr_hugepages"), 2, "{what}: the raised pool is what SIGKILL leaves");
        assert_eq!(knob("nr_overcommit_hugepages"), 0, "{what}: overcommit left at 0");
        assert_eq!(knob("free_hugepages"), 2, "{what}: the hugepages were freed with the process");
        assert_eq!(leftovers(), (vec![], vec![]), "{what}: mounts or /run entries left");
        // The README's fix.
        set_knob("nr_hugepages", 0);
        set_knob("nr_overcommit_hugepages", 4);
    }
}

// ---- a racer that never reaches the start line ----

#[test]
fn a_stopped_racer_gives_tbrok_within_the_spin_bound() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    for round in 0..3 {
        let mut r = spawn(&[], &["shared", "-I", "60"]);
        assert!(r.wait_line(": took ", 10), "no setup line: {:?}", r.seen);
        std::thread::sleep(Duration::from_millis(200));
        let kids = children(r.pid());
        assert_eq!(kids.len(), 2, "{kids:?}");
        let t0 = Instant::now();
        let ok = Command::new("kill").args(["-STOP", &kids[round % 2].to_string()]).status().unwrap().success();
        assert!(ok);
        let (code, _, out) = r.finish(15);
        let took = t0.elapsed();
        assert_eq!(code, Some(2), "{out}");
        assert!(out.contains("never reached the start line"), "{out}");
        assert!(!out.contains("TFAIL"), "{out}");
        // The spin bound is 2 s; the parent looks every 100 ms.
        assert!(took < Duration::from_secs(5), "TBROK after {took:?}");
        assert_gone(&kids, "stopped racer");
        assert_clean(&g.before, "stopped racer");
    }
}

// ---- something outside takes the last page ----

#[test]
fn another_process_taking_the_last_page_is_never_a_tfail() {
    if !need_root_hugetlb() || !cfg!(target_arch = "x86_64") && !skip("the injector speaks the x86_64 syscall ABI only") {
        return;
    }
    let g = pool_guard();
    g.set_nr(2048, 0);
    let expected = PoolState::read();
    // Deterministic: the page is unreserved (--noreserve) and free before every race; the
    // injector takes it the moment a racer releases race 2 (its futex wake; the racer is held
    // until the page is gone, its partner spins at the start line), so neither racer can
    // have it: both get SIGBUS, and at that moment more pages are in use than the fill left.
    // (Wakes before it: 2 racers started, the run's start, 4 warm-up laps, race 1.)
    let spec = ["--after", "7", "--mask", "1", "0x7f", "1", "steal", "futex", "2097152"];
    for mode in ["shared", "private"] {
        let args = [mode, "--noreserve", "-i", "20"];
        let o = Command::new("timeout").args(["-k", "5", "60"]).arg(injector()).args(spec).arg("--").arg(bin()).args(args).output().unwrap();
        let (out, err) = (stdout(&o), stderr(&o));
        assert!(err.contains("stole 1 hugepage(s) of 2097152 bytes"), "{mode}: the helper did not take the page:\n{err}\n{out}");
        assert!(!out.contains("TFAIL"), "{mode}: a page taken from outside gave TFAIL:\n{out}");
        let line = out.lines().find(|l| l.contains(": TBROK: ")).unwrap_or_default();
        let want = format!("hugerace: TBROK: {mode} 2M: inconclusive: another process took the last hugepage (");
        assert!(line.starts_with(&want) && line.contains(" got SIGBUS"), "{mode}:\n{out}\n{err}");
        assert_eq!(status(&o), 2, "{mode}: {out}");
        assert_clean(&expected, &format!("outside consumer, {mode}"));
    }
}

#[test]
fn the_negative_control_still_fails() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    let o = run(&["--leave-free", "0", "--noreserve", "-i", "5"]);
    let out = stdout(&o);
    assert_eq!(status(&o), 1, "{out}");
    assert_eq!(out.matches("TFAIL").count(), 2, "{out}");
    assert!(!out.contains("inconclusive"), "{out}");
    assert_clean(&g.before, "negative control");
}

// ---- overcommit and limits ----

#[test]
fn overcommit_is_zero_during_the_run_and_restored_after() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    g.set_nr(2048, 0);
    set_knob("nr_overcommit_hugepages", 4);
    let mut r = spawn(&[], &["shared", "-I", "2"]);
    assert!(r.wait_line(": took ", 10), "{:?}", r.seen);
    assert_eq!(knob("nr_overcommit_hugepages"), 0, "overcommit during the run");
    let (code, _, out) = r.finish(20);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(knob("nr_overcommit_hugepages"), 4, "overcommit after the run");
    assert_eq!(knob("nr_hugepages"), 0);
    // Without leave to change the pool, overcommit makes the race impossible: TCONF.
    let o = run(&["--no-pool-change"]);
    let out = stdout(&o);
    assert_eq!(status(&o), 32, "{out}");
    assert!(out.contains("TCONF: shared 2M: nr_overcommit_hugepages is 4"), "{out}");
    assert!(out.contains("echo 0 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_overcommit_hugepages"), "{out}");
    assert_eq!(knob("nr_overcommit_hugepages"), 4);
}

#[test]
fn rlimit_nproc_stops_the_racers_with_tbrok_not_tfail() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    g.set_nr(2048, 2);
    let expected = PoolState::read();
    for mode in ["shared", "private"] {
        // As root RLIMIT_NPROC is not enforced; as nobody one process is the limit.
        let o = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "prlimit", "--nproc=1"])
            .arg(bin())
            .arg(mode)
            .output()
            .unwrap();
        let out = stdout(&o);
        assert_eq!(status(&o), 2, "{mode}: {out}{}", stderr(&o));
        assert!(out.contains("EAGAIN (process limit reached? see RLIMIT_NPROC)"), "{out}");
        assert!(!out.contains("TFAIL"), "{out}");
        assert_clean(&expected, "RLIMIT_NPROC");
    }
}

// ---- denied or missing facilities ----

#[test]
fn memfd_denied_by_seccomp_falls_back_to_a_private_mount_or_tconf() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    let deny = helper("deny");
    // x86_64 syscall numbers: memfd_create 319, mount 165, socket 41.
    let o = Command::new(&deny).arg("319").arg(bin()).arg("shared").output().unwrap();
    let out = stdout(&o);
    assert_eq!(status(&o), 0, "{out}");
    assert!(out.contains("hugetlbfs mount"), "{out}");
    assert_clean(&g.before, "memfd denied");
    // Neither memfd nor a mount: a clear TCONF that names both.
    let o = Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(r#"for m in $(awk '$3=="hugetlbfs"{print $2}' /proc/mounts); do umount "$m"; done; exec "$@""#)
        .arg("sh").arg(&deny).arg("319,165").arg(bin()).arg("shared").output().unwrap();
    let out = stdout(&o);
    assert_eq!(status(&o), 32, "{out}{}", stderr(&o));
    assert!(out.contains("mounting one failed: EPERM"), "{out}");
    assert!(out.contains("memfd_create with MFD_HUGETLB: EPERM"), "{out}");
    assert_clean(&g.before, "memfd and mount denied");
    // No unix sockets: no lock, said so, and the race still runs.
    let o = Command::new(&deny).arg("41").arg(bin()).arg("shared").output().unwrap();
    let out = stdout(&o);
    assert_eq!(status(&o), 0, "{out}");
    assert!(out.contains("no instance lock for 2M (socket: EPERM)"), "{out}");
    assert_clean(&g.before, "socket denied");
}

/// Run hugerace in a private mount namespace after `setup` (shell).
fn in_mount_ns(setup: &str, args: &[&str]) -> Output {
    Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c"]).arg(format!("{setup} && exec \"$@\"")).arg("sh").arg(bin()).args(args).output().unwrap()
}

#[test]
fn read_only_knobs_give_tconf_with_the_command_to_run() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    g.set_nr(2048, 0);
    let expected = PoolState::read();
    let d = "/sys/kernel/mm/hugepages";
    let o = in_mount_ns(&format!("mount --bind {d} {d} && mount -o remount,bind,ro {d}"), &["shared"]);
    let out = stdout(&o);
    assert_eq!(status(&o), 32, "{out}{}", stderr(&o));
    assert!(out.contains("writing nr_hugepages failed with EROFS"), "{out}");
    assert!(out.contains("as root: echo 2 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"), "{out}");
    assert_clean(&expected, "read-only sysfs");
    // /sys/kernel/mm/hugepages hidden and /proc/sys read-only, as in a container.
    let o = in_mount_ns(&format!("mount -t tmpfs none {d} && mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys"), &["shared"]);
    let out = stdout(&o);
    assert_eq!(status(&o), 32, "{out}{}", stderr(&o));
    assert!(out.contains("as root: echo 2 > /proc/sys/vm/nr_hugepages"), "{out}");
    assert_clean(&expected, "read-only /proc/sys");
}

#[test]
fn missing_sysfs_hugepages_falls_back_to_meminfo_and_proc_sys() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    let hide = "mount -t tmpfs none /sys/kernel/mm/hugepages";
    // The pool already large enough: counters from /proc/meminfo only.
    g.set_nr(2048, 3);
    let before = PoolState::read();
    let o = in_mount_ns(hide, &[]);
    let out = stdout(&o);
    assert_eq!(status(&o), 0, "{out}{}", stderr(&o));
    assert!(out.contains("TPASS: shared 2M") && out.contains("TPASS: private 2M"), "{out}");
    assert_eq!(PoolState::read(), before);
    // An empty pool: raised through /proc/sys/vm/nr_hugepages and put back.
    g.set_nr(2048, 0);
    let before = PoolState::read();
    let o = in_mount_ns(hide, &["shared"]);
    let out = stdout(&o);
    assert_eq!(status(&o), 0, "{out}{}", stderr(&o));
    assert!(out.contains("pool raised by 2"), "{out}");
    assert_eq!(PoolState::read(), before, "pool not restored through /proc/sys/vm");
    assert_eq!(leftovers(), (vec![], vec![]));
}

// ---- security ----

#[test]
fn unprivileged_user_passes_on_a_pre_reserved_pool() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    g.set_nr(2048, 2);
    let expected = PoolState::read();
    for args in [&[][..], &["-i", "20"][..]] {
        let o = Command::new("setpriv").args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(bin()).args(args).output().unwrap();
        let out = stdout(&o);
        assert_eq!(status(&o), 0, "{out}{}", stderr(&o));
        assert!(out.contains("TPASS: shared 2M") && out.contains("TPASS: private 2M"), "{out}");
        assert!(out.contains("pool unchanged"), "{out}");
        assert_clean(&expected, "unprivileged");
    }
    // Too small a pool: TCONF saying what root must run, nothing written.
    g.set_nr(2048, 0);
    let o = Command::new("setpriv").args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(bin()).arg("shared").output().unwrap();
    let out = stdout(&o);
    assert_eq!(status(&o), 32, "{out}");
    assert!(out.contains("only root may raise the pool; as root: echo 2 >"), "{out}");
}

/// Every file hugerace opens for writing, and every directory it makes, from strace.
fn writes(args: &[&str]) -> (Vec<String>, String) {
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("strace.log");
    let o = Command::new("strace").args(["-f", "-qq", "-e", "trace=openat,mkdirat,mkdir,open,creat", "-o"]).arg(&log).arg(bin()).args(args).output().unwrap();
    assert!(o.status.code().is_some(), "{o:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    let w = text.lines().filter(|l| l.contains("O_WRONLY") || l.contains("O_RDWR") || l.contains("O_CREAT") || l.contains("mkdir")).map(String::from).collect();
    (w, stdout(&o))
}

#[test]
fn knobs_are_written_only_when_needed_with_o_nofollow_and_dirs_are_private() {
    if !need_root_hugetlb() || !need_tool("strace", "strace") {
        return;
    }
    let g = pool_guard();
    // Pool large enough, no overcommit: nothing is written at all.
    g.set_nr(2048, 4);
    set_knob("nr_overcommit_hugepages", 0);
    let (w, out) = writes(&["shared"]);
    assert!(out.contains("TPASS"), "{out}");
    assert!(w.is_empty(), "writes on a ready pool: {w:#?}");
    // Pool empty, overcommit on, no memfd: the two knobs with O_NOFOLLOW, one 0700 dir.
    g.set_nr(2048, 0);
    set_knob("nr_overcommit_hugepages", 4);
    let (w, out) = writes(&["shared", "--no-memfd"]);
    assert!(out.contains("TPASS"), "{out}");
    for l in &w {
        let knob = l.contains("/sys/kernel/mm/hugepages/") && l.contains("O_WRONLY") && l.contains("O_NOFOLLOW");
        let dir = l.contains("mkdir") && l.contains("\"/run/hugerace.") && l.contains("0700");
        let file = l.contains("\"hugerace.") && l.contains("O_EXCL");
        assert!(knob || dir || file, "unexpected write: {l}");
    }
    assert!(w.iter().any(|l| l.contains("nr_overcommit_hugepages")), "{w:#?}");
    let run = std::fs::metadata("/run").unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(run.permissions().mode() & 0o002, 0, "/run is world-writable here");
    set_knob("nr_overcommit_hugepages", 0);
    g.set_nr(2048, g.before.get(2048, "nr_hugepages").unwrap_or(0));
    set_knob("nr_overcommit_hugepages", g.before.get(2048, "nr_overcommit_hugepages").unwrap_or(0));
    assert_clean(&g.before, "strace");
}

// ---- the instance lock and concurrent instances ----

#[test]
fn a_second_instance_waits_then_gives_tconf_naming_the_holder() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    let mut holder = spawn(&[], &["shared", "-I", "9"]);
    assert!(holder.wait_line(": took ", 10), "{:?}", holder.seen);
    let t0 = Instant::now();
    let o = run(&["shared"]);
    let waited = t0.elapsed();
    let out = stdout(&o);
    assert_eq!(status(&o), 32, "{out}");
    assert!(out.contains(&format!("TCONF: shared 2M: another hugerace (pid {}) is racing on 2M hugepages", holder.pid())), "{out}");
    assert!(out.contains(&format!("waiting up to 5 s for another hugerace (pid {})", holder.pid())), "{out}");
    // It waited its whole bound (by its own monotonic clock), and did not hang.
    assert!(waited >= Duration::from_secs(5) && waited < Duration::from_secs(60), "{waited:?}");
    let (code, _, hout) = holder.finish(20);
    assert_eq!(code, Some(0), "{hout}");
    // A waiter that the holder lets in within the bound runs normally.
    let mut holder = spawn(&[], &["shared", "-I", "2"]);
    assert!(holder.wait_line(": took ", 10));
    let o = run(&["shared"]);
    assert_eq!(status(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("waiting up to 5 s"), "{}", stdout(&o));
    holder.finish(20);
    assert_clean(&g.before, "lock");
}

#[test]
fn a_signal_while_waiting_for_the_lock_is_tbrok_naming_it_and_the_holder() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    let mut holder = spawn(&[], &["shared", "-I", "9"]);
    assert!(holder.wait_line(": took ", 10), "{:?}", holder.seen);
    let mut waiter = spawn(&[], &["shared"]);
    assert!(waiter.wait_line("waiting up to 5 s", 10), "{:?}", waiter.seen);
    waiter.signal(15);
    let (code, _, out) = waiter.finish(20);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains(&format!("TBROK: shared 2M: interrupted by SIGTERM while waiting for another hugerace (pid {})", holder.pid())), "{out}");
    assert!(!out.contains("TFAIL") && !out.contains("TCONF"), "{out}");
    // The holder's run is not disturbed by the waiter's end.
    let (code, _, hout) = holder.finish(20);
    assert_eq!(code, Some(0), "{hout}");
    assert_clean(&g.before, "interrupted lock wait");
}

#[test]
fn concurrent_instances_give_no_false_tfail() {
    if !need_root_hugetlb() {
        return;
    }
    let rounds: usize = std::env::var("HUGERACE_STRESS_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let per = 4;
    let g = pool_guard();
    g.set_nr(2048, 0);
    let expected = PoolState::read();
    let (mut runs, mut tfail, mut tconf, mut tbrok, mut tpass) = (0, 0, 0, 0, 0);
    for _ in 0..rounds {
        let kids: Vec<Running> = (0..per).map(|i| spawn(&[], &[["both", "shared", "private", "both"][i % 4], "-i", "50"])).collect();
        for k in kids {
            let (code, _, out) = k.finish(120);
            runs += 1;
            tfail += out.matches("TFAIL").count();
            tconf += out.matches("TCONF").count();
            tbrok += out.matches("TBROK").count();
            tpass += out.matches("TPASS").count();
            assert_eq!(code.unwrap_or(-1) & 1, 0, "false TFAIL with concurrent instances:\n{out}");
            assert!(!out.contains("TBROK"), "TBROK with concurrent instances:\n{out}");
        }
        assert_clean(&expected, "concurrent");
    }
    eprintln!("concurrent: {runs} instances ({per} at once, {rounds} rounds): {tpass} TPASS, {tfail} TFAIL, {tbrok} TBROK, {tconf} TCONF");
    assert_eq!(tfail, 0);
}

//! Never a false alarm, never a mess (issue 7): hugerace under signals, SIGKILL, a stopped
//! racer and an outside process taking the last page (the constrained environment:
//! tests/environment.rs). Every scenario
//! checks that the pool and overcommit knobs, the mounts, /run and the processes are as
//! they were (or, after SIGKILL, exactly what the README says is left).

mod common;
use common::running::*;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SIGNALS: [(i32, &str); 4] = [(2, "SIGINT"), (15, "SIGTERM"), (1, "SIGHUP"), (3, "SIGQUIT")];

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
    // (Wakes before it: 2 racers started, the run's start, the 2 warm-up laps (WARMUP), race 1.)
    let spec = ["--after", "5", "--mask", "1", "0x7f", "1", "steal", "futex", "2097152"];
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

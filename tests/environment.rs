//! Never a false alarm, never a mess (issue 7), in a constrained environment: overcommit,
//! rlimits, denied syscalls, read-only or missing knobs, an unprivileged user and concurrent
//! instances. Every scenario checks that the pool and overcommit knobs, the mounts, /run and
//! the processes are as they were. (Signals and outside processes: tests/robustness.rs.)

mod common;
use common::running::*;
use common::*;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

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

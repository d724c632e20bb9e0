//! Every detector fires (the project's rule: a check that cannot fail is a defect). Each test
//! runs the real binary against the real kernel under `tests/helpers/inject.c`, a ptrace
//! helper that puts one fault into one chosen system call — or takes real hugepages from
//! the real pool at a chosen moment — and asserts the exact result line, the exit status,
//! and the state of the pool afterwards. The helper exits only once every traced task
//! (hugerace and its racers) is gone, with hugerace's own status.

mod common;
use common::inject::*;
use common::*;

/// The first two CPUs this process may run on.
fn two_cpus() -> Option<(u32, u32)> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let list = s.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?.trim().to_string();
    let mut cpus = Vec::new();
    for part in list.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
        cpus.extend(a..=b);
    }
    (cpus.len() >= 2).then(|| (cpus[0], cpus[1]))
}

// ---- (1) the pool changes under the run: real hugepages taken at the worst moments ----

// ---- (1) one injection, one exact result: the pool changing under the run (real hugepages
// taken at the worst moments), racers that cannot set up or renew the page, failed calls ----

/// One detector: what is injected, into which run, what the helper must report doing (and
/// how often), and the exact result lines, exit status and summary that must follow.
struct Case {
    name: &'static str,
    inject: &'static [&'static str],
    args: &'static [&'static str],
    helper: (&'static str, usize),
    status: i32,
    lines: &'static [&'static str],
    summary: [u32; 5],
}

const BROK: [u32; 5] = [0, 0, 1, 0, 0];

#[rustfmt::skip]
const CASES: &[Case] = &[
    // Right after the pool was raised to 2 and the file opened, one of the two pages goes.
    Case { name: "steal before the fill", inject: &["steal", "memfd_create", P2M], args: &["shared", "-i", "3"],
        helper: ("stole 1 hugepage(s) of 2097152 bytes at memfd_create #1", 1), status: 2, summary: BROK,
        lines: &["hugerace: TBROK: shared 2M: the pool changed under us: 1 pages available, needed 2"] },
    // The fill is the first fallocate (the racers' hole punches come later): once it has
    // instantiated its page, the page left free goes.
    Case { name: "steal after the fill", inject: &["steal", "fallocate", P2M], args: &["shared", "-i", "3"],
        helper: ("at fallocate #1", 1), status: 2, summary: BROK,
        lines: &["hugerace: TBROK: shared 2M: the pool changed under us: after taking 1 pages, 0 are available, expected 1"] },
    // Both pages taken between the count and the fill: the kernel refuses the fallocate.
    Case { name: "fill refused", inject: &["steal", "ftruncate", P2M, "2"], args: &["private", "-i", "3"],
        helper: ("stole 2 hugepage(s)", 1), status: 2, summary: BROK,
        lines: &["hugerace: TBROK: private 2M: instantiating 1 pages failed: ENOSPC (the pool changed under us, or a hugetlb cgroup limit?)"] },
    // Writing nr_hugepages "succeeds" without a page more, as on a fragmented machine.
    Case { name: "pool not raised", inject: &["--fd", "0", "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "return", "write", "2"],
        args: &["shared", "-i", "3"], helper: ("skipped write #1, returned 2", 1), status: 32, summary: [0, 0, 0, 1, 0],
        lines: &["hugerace: TCONF: shared 2M: asked the kernel for 2 2M hugepages, it gave 0 (memory too fragmented or too small); reserve them at boot: hugepagesz=2M hugepages=2"] },
    // The first racer to pin itself is held there (a ptrace stop) until it is killed.
    Case { name: "shared racer stuck in setup", inject: &["hold", "sched_setaffinity"], args: &["shared", "-i", "3"],
        helper: ("holding tid", 1), status: 2, summary: BROK,
        lines: &["hugerace: TBROK: shared 2M: only 1 of 2 racers finished their setup within 2 s"] },
    Case { name: "private racer stuck in setup", inject: &["hold", "sched_setaffinity"], args: &["private", "-i", "3"],
        helper: ("holding tid", 1), status: 2, summary: BROK,
        lines: &["hugerace: TBROK: private 2M: only 1 of 2 racers finished their setup within 2 s"] },
    // The shared page goes back by a hole punch (fallocate, mode PUNCH_HOLE|KEEP_SIZE) and is
    // reserved again by a MAP_FIXED mapping; the private one is replaced by a MAP_FIXED
    // mapping (the racer process's first MAP_FIXED maps it before race 1). Each step fails.
    Case { name: "hole punch refused", inject: &["--mask", "1", "3", "3", "fail", "fallocate", "EIO"], args: &["shared", "-i", "5"],
        helper: ("with errno 5", 1), status: 2, summary: BROK,
        lines: &["hugerace: TBROK: shared 2M: giving the contested page back and reserving it again after race 1 failed: EIO"] },
    Case { name: "shared page not mapped again", inject: &["--mask", "3", "0x10", "0x10", "fail", "mmap", "EINVAL"], args: &["shared", "-i", "5"],
        helper: ("failed mmap", 1), status: 2, summary: BROK,
        lines: &["hugerace: TBROK: shared 2M: giving the contested page back and reserving it again after race 1 failed: EINVAL"] },
    Case { name: "private page not mapped again", inject: &["--after", "1", "--mask", "3", "0x10", "0x10", "fail", "mmap", "EINVAL"],
        args: &["private", "-i", "5"], helper: ("failed mmap", 1), status: 2, summary: BROK,
        lines: &["hugerace: TBROK: private 2M: giving the contested page back and reserving it again after race 1 failed: EINVAL"] },
    Case { name: "ftruncate", inject: &["fail", "ftruncate", "ENOSPC"], args: &["shared", "-i", "3"],
        helper: ("failed ftruncate #1 with errno 28", 1), status: 2, summary: BROK,
        lines: &["hugerace: TBROK: shared 2M: ftruncate: ENOSPC"] },
    // The contested page: every mapping of a file (not MAP_ANONYMOUS; the direct one and the
    // aligned retry).
    Case { name: "contested page not mapped", inject: &["--all", "--mask", "3", "0x20", "0", "fail", "mmap", "ENOMEM"], args: &["private", "-i", "3"],
        helper: ("failed mmap", 2), status: 2, summary: BROK,
        lines: &["hugerace: TBROK: private 2M: mmap of the contested page (MAP_PRIVATE): ENOMEM"] },
];

#[test]
fn each_detector_gives_its_exact_result_and_restores_everything() {
    if !ready() {
        return;
    }
    let g = pool_guard();
    let expected = empty_pool(&g);
    for c in CASES {
        let r = run_injected(c.inject, c.args);
        let (says, times) = c.helper;
        assert_eq!(r.err.matches(says).count(), times, "{}: the helper's report:\n{}", c.name, r.err);
        assert_results(&r, c.status, c.lines, c.summary);
        assert!(!r.out.contains("TFAIL"), "{}: {}", c.name, r.out);
        assert_clean(&expected, c.name);
    }
}

// ---- (2) a restore that fails: TWARN, exit bit 4, and the test puts the pool back ----

/// The run's TPASS line, checked but for how many races missed (timing's, not the test's).
fn tpass(r: &Run, mode: &str) -> String {
    let want = format!("hugerace: TPASS: {mode} 2M: no SIGBUS in 3 races of 2 racers on the last free hugepage (3 overlapped, ");
    let line = r.out.lines().find(|l| l.starts_with(&want)).unwrap_or_else(|| panic!("no TPASS line:\n{}", r.out));
    assert!(line.ends_with(" missed and rerun)"), "{line}");
    line.to_string()
}

#[test]
fn a_failed_nr_hugepages_restore_is_twarn_and_says_what_is_left() {
    if !ready() {
        return;
    }
    let g = pool_guard();
    let expected = empty_pool(&g);
    // The second write to nr_hugepages is the restore (the first raised the pool to 2).
    let nr = format!("{K2M}/nr_hugepages");
    let r = run_injected(&["--after", "1", "--fd", "0", &nr, "fail", "write", "EIO"], &["shared", "-i", "3"]);
    assert!(r.err.contains("failed write #2 with errno 5"), "{}", r.err);
    assert_results(
        &r,
        4,
        &[
            "hugerace: TWARN: could not restore 2M nr_hugepages to 0",
            &tpass(&r, "shared"),
        ],
        [1, 0, 0, 0, 1],
    );
    // What the warning says is left: the raised pool, its pages all free again.
    let left = (knob("nr_hugepages"), knob("free_hugepages"), knob("nr_overcommit_hugepages"));
    set_knob("nr_hugepages", 0);
    assert_eq!(left, (2, 2, 0), "after a failed restore: (nr, free, overcommit)");
    assert_clean(&expected, "failed restore put back by the test");
}

#[test]
fn a_failed_overcommit_restore_is_twarn_and_says_what_is_left() {
    if !ready() {
        return;
    }
    let g = pool_guard();
    empty_pool(&g);
    set_knob("nr_overcommit_hugepages", 4);
    let expected = PoolState::read();
    // Opened for writing twice: set to 0 before the race, back to 4 after it.
    let oc = format!("{K2M}/nr_overcommit_hugepages");
    let r = run_injected(&["--after", "1", "--str", "1", &oc, "--mask", "2", "3", "1", "fail", "openat", "EACCES"], &["private", "-i", "3"]);
    assert!(r.err.contains("failed openat #2 with errno 13"), "{}", r.err);
    assert_results(
        &r,
        4,
        &[
            "hugerace: TWARN: could not restore 2M nr_overcommit_hugepages to 4",
            &tpass(&r, "private"),
        ],
        [1, 0, 0, 0, 1],
    );
    let left = (knob("nr_overcommit_hugepages"), knob("nr_hugepages"));
    set_knob("nr_overcommit_hugepages", 4);
    assert_eq!(left, (0, 0), "after a failed restore: overcommit left at 0, the pool itself restored");
    assert_clean(&expected, "failed overcommit restore put back by the test");
}

// ---- (3) racers: pinning, setup and the page reset ----

#[test]
fn a_racer_not_on_its_cpu_is_tbrok_naming_both_cpus() {
    if !ready() {
        return;
    }
    let Some((a, b)) = two_cpus() else {
        skip("fewer than two CPUs allowed");
        return;
    };
    let g = pool_guard();
    let expected = empty_pool(&g);
    let cpus = format!("{a},{b}");
    for mode in ["shared", "private"] {
        // Racer 1, pinned to CPU a, is told by getcpu that it runs on CPU b.
        let r = run_injected(&["cpu", &a.to_string(), &b.to_string()], &[mode, "-c", &cpus, "-i", "3"]);
        assert!(r.err.contains(&format!("getcpu reported CPU {a} as CPU {b}")), "{}", r.err);
        assert_results(&r, 2, &[&format!("hugerace: TBROK: {mode} 2M: racer 1: pinned to CPU {a} but runs on CPU {b}")], [0, 0, 1, 0, 0]);
        assert_clean(&expected, mode);
    }
}

#[test]
fn a_racer_whose_parent_is_gone_is_tbrok() {
    if !ready() {
        return;
    }
    let g = pool_guard();
    let expected = empty_pool(&g);
    // A racer process that finds itself reparented must not race on (nor outlive the run).
    let r = run_injected(&["return", "getppid", "1"], &["shared", "-i", "3"]);
    let got: Vec<&str> = r.out.lines().filter(|l| l.contains(": TBROK: ")).collect();
    assert_eq!(got.len(), 1, "{}", r.out);
    let ok = ["1", "2"].iter().any(|n| got[0] == format!("hugerace: TBROK: shared 2M: racer {n}: its parent exited during setup"));
    assert!(ok, "{}", r.out);
    assert_eq!(r.code, 2, "{}", r.out);
    assert_clean(&expected, "parent gone");
}

// ---- a racer that stops or comes late, once the race is under way ----

/// A racer's sleep between iterations (futex FUTEX_WAIT with no timeout; the parent's own
/// waits have one, and wakes are another op).
const RACER_SLEEP: [&str; 8] = ["--mask", "1", "0x7f", "0", "--mask", "3", "0xffffffffffffffff", "0"];

#[test]
fn a_racer_stopped_while_closing_an_iteration_is_tbrok_from_the_parent() {
    if !ready() {
        return;
    }
    let g = pool_guard();
    let expected = empty_pool(&g);
    // The racer that closes race 1 is held as it renews the page: no partner spins on it
    // (they spin 200 us at most for the next generation, then sleep), so only the parent's
    // watch can see it.
    for (mode, spec) in [
        ("shared", &["--mask", "1", "3", "3", "hold", "fallocate"][..]),
        ("private", &["--after", "1", "--mask", "3", "0x10", "0x10", "hold", "mmap"][..]),
    ] {
        let r = run_injected(spec, &[mode, "-i", "5"]);
        let line = r.out.lines().find(|l| l.contains(": TBROK: ")).unwrap_or_default().to_string();
        let ok = ["1", "2"].iter().any(|n| line == format!("hugerace: TBROK: {mode} 2M: racer {n} never reached the start line of race 2: it is stopped (SIGSTOP or a debugger)"));
        assert!(ok, "{}\n{}", r.out, r.err);
        assert_results(&r, 2, &[&line], [0, 0, 1, 0, 0]);
        assert_clean(&expected, mode);
    }
}

#[test]
fn a_late_racer_is_tbrok_from_its_partners_spin_bound() {
    if !ready() {
        return;
    }
    let g = pool_guard();
    let expected = empty_pool(&g);
    // One racer sleeps 4 s instead of waiting for the next generation: it is neither stopped
    // nor gone, so it is its partner, spinning at the start line, that gives up after 2 s;
    // the late racer then closes the iteration and tells.
    for mode in ["shared", "private"] {
        let spec = [&RACER_SLEEP[..], &["sleep", "futex", "4"]].concat();
        let r = run_injected(&spec, &[mode, "-i", "20"]);
        let line = r.out.lines().find(|l| l.contains(": TBROK: ")).unwrap_or_default().to_string();
        let prefix = format!("hugerace: TBROK: {mode} 2M: racer ");
        assert!(line.starts_with(&prefix) && line.contains(") never reached the start line (stopped or starved?) in race "), "{}\n{}", r.out, r.err);
        assert_results(&r, 2, &[&line], [0, 0, 1, 0, 0]);
        assert!(!r.out.contains("TFAIL"), "{}", r.out);
        assert_clean(&expected, mode);
    }
}

#[test]
fn an_iteration_that_never_ends_is_tbrok_after_the_iteration_timeout() {
    if !ready() {
        return;
    }
    let g = pool_guard();
    let expected = empty_pool(&g);
    // A racer that never comes back (a 200 s sleep, not a stop the parent could see): its
    // partner gives up at the start line, nobody closes the iteration, and the parent's last
    // bound ends the run. The bound is --iteration-timeout (120 s by default, the same code
    // with another value): 5 s here, past the partner's 2 s start-line bound, so that it is
    // really the last bound that fires.
    let spec = [&RACER_SLEEP[..], &["sleep", "futex", "200"]].concat();
    let r = check_injected(inject_within(100, &spec, &["shared", "-i", "20", "--iteration-timeout", "5"]), &spec);
    let line = r.out.lines().find(|l| l.contains(": TBROK: ")).unwrap_or_default().to_string();
    assert!(line.starts_with("hugerace: TBROK: shared 2M: race ") && line.ends_with(" did not end within 5 s"), "{}\n{}", r.out, r.err);
    assert_results(&r, 2, &[&line], [0, 0, 1, 0, 0]);
    assert_clean(&expected, "never-ending iteration");
}

// ---- (5) a panic: the one exit that cannot unwind still puts the pool back ----

#[test]
fn a_panic_puts_the_pool_back() {
    if !ready() {
        return;
    }
    let g = pool_guard();
    set_knob("nr_overcommit_hugepages", 3);
    g.set_nr(2048, 0);
    let expected = PoolState::read();
    // No input reaches a panic, so the kernel is made to do the impossible: after the pool
    // was raised (and overcommit set to 0), a read of free_hugepages into a 32-byte buffer
    // returns 4096 bytes, and slicing the buffer to that length panics. (Each counter is
    // read to EOF, two reads: the third read is the first of the counters read right after
    // the raise.) The panic handler must put both knobs back before it exits.
    for mode in ["shared", "private"] {
        let spec = ["--fd", "0", &format!("{K2M}/free_hugepages"), "--after", "2", "return", "read", "4096"];
        let r = run_injected(&spec, &[mode, "-i", "3"]);
        assert_eq!(r.code, 2, "{}\n{}", r.out, r.err);
        assert!(r.err.contains("hugerace: TBROK: internal error (panic)"), "{}\n{}", r.out, r.err);
        assert_clean(&expected, &format!("panic in {mode}"));
    }
}

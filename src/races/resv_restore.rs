//! The reservation MADV_DONTNEED must give back. A MAP_PRIVATE hugetlb mapping reserves its
//! page; touching it consumes the reservation; MADV_DONTNEED frees the page, and a kernel
//! with upstream df7a6d1f6405 restores the reservation, so the page is still the mapping's.
//! Kernels before it (Debian 12's 6.1 among them) do not: the page is free for anyone, a
//! second mapping gets it, and the first mapping's next touch has no page and no
//! reservation: SIGBUS.
//!
//! No race: each run, from a clean state with exactly one free page, a child process maps
//! the page, touches it, drops it with MADV_DONTNEED, maps a second page (which must fail
//! with ENOMEM: the one free page is still reserved) and touches the first mapping again,
//! reading the free and reserved counters after every step. `-i N` runs it N times.
//! `--noreserve` maps the first page MAP_NORESERVE, so that there is no reservation to
//! restore: the negative control, which must fail on every kernel.

use super::child::in_child;
use super::given;
use crate::cli::{Config, Error, Key};
use crate::job::{Frame, Job};
use crate::out::{Doc, Line};
use crate::pool;
use crate::race::session;
use crate::report::{Record, Reporter, Telling};
use crate::step::{Step, Stop, Verdict};
use crate::sys::{self, k, Ended, Errno, Mapping, Shared};
use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

pub(super) const NAME: &str = "resv-restore";

pub(super) const TELL: Telling = Telling { info, json };

/// One free page, and runs counted, not timed.
pub(super) fn refuses(cfg: &Config) -> Option<Error> {
    if cfg.leave_free != 1 {
        return Some(Error { msg: "needs exactly one free page: no --leave-free with race", arg: NAME.as_bytes() });
    }
    if given(cfg, Key::Duration) {
        return Some(Error { msg: "is a check run -i times, not for a time: no -I with race", arg: NAME.as_bytes() });
    }
    None
}

/// How far the child got, and the free and reserved counts it read after each step.
#[derive(Default)]
struct Steps {
    /// The last step done (STEP_*).
    done: AtomicU64,
    /// The errno of the step that failed (the second mapping's ENOMEM is no failure).
    errno: AtomicU64,
    /// 0: the second mapping failed with ENOMEM, as it must; 1: it succeeded.
    second: AtomicU64,
    /// (free, reserved) after: the first mapping, its touch, the madvise, the second
    /// mapping's touch.
    counts: [[AtomicU64; 2]; 4],
}

const MAPPED: u64 = 1;
const TOUCHED: u64 = 2;
const ADVISED: u64 = 3;
const SECOND: u64 = 4;
/// About to touch the first mapping again: a SIGBUS from here on is the bug's.
const RETOUCH: u64 = 5;
const DONE: u64 = 6;

/// What one run showed.
#[derive(Clone, Copy)]
struct Seen {
    counts: [[u64; 2]; 4],
    second_ok: bool,
    sigbus: bool,
}

pub(super) fn run(job: &Job, rep: &mut Reporter, rec: &mut Record, frame: &mut Frame) -> Step<Verdict> {
    let (cfg, size) = (job.cfg, job.size);
    // Every page but one taken, so that the one free page is the only one there is.
    let filled = session::fill(job, frame, cfg.leave_free, &mut rec.msg)?;
    let (free0, resv0) = (filled.counts.free, filled.counts.resv);
    // What the first mapping reserves: its page, or nothing (the negative control).
    let own = !cfg.noreserve as u64;
    rep.info(&|l| {
        l.s(job.name).f(" {size}: took {} page(s) with ", &[size, filled.take]).s(filled.file.source_name()).f(
            "; each run starts with {} free, {} reserved: map MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB",
            &[free0, resv0],
        );
        l.s(if own == 0 { "|MAP_NORESERVE (the negative control: nothing to restore)" } else { "" });
        l.s(", touch, MADV_DONTNEED, map a second page (ENOMEM is due), touch the first");
    });
    let steps: Shared<Steps, ()> = Shared::new(1).map_err(|e| Stop::sys(&mut rec.msg, "mmap the steps' page", e))?;
    let len = usize::try_from(size).map_err(|_| Stop::sys(&mut rec.msg, "page size", Errno::EINVAL))?;
    let t0 = sys::monotonic_ns();
    let (mut failed, mut first) = (0u64, None);
    let runs = cfg.iterations;
    for i in 1..=runs {
        let now = pool::free_resv(size).map_err(|e| Stop::sys(&mut rec.msg, "reading the hugepage counters", e))?;
        if now != (free0, resv0) {
            return Err(Stop::brok(rec.msg.f(
                "inconclusive: before run {} the pool read {} free, {} reserved, not {} and {} (another process uses these hugepages)",
                &[i, now.0, now.1, free0, resv0],
            )));
        }
        let s = steps.head();
        s.done.store(0, Relaxed);
        s.second.store(0, Relaxed);
        let ended = in_child(&|| steps_in_child(s, size, len, own == 0), cfg.iteration_timeout_s * 1_000_000_000, &mut rec.msg)?;
        let seen = judge_run(s, ended, (free0, resv0), own, i, &mut rec.msg)?;
        settle(size, (free0, resv0), i, &mut rec.msg)?;
        rec.figs.iterations = i;
        rec.figs.start = Some((free0, resv0));
        if seen.sigbus && rec.figs.signal == 0 {
            rec.figs.signal = k::SIGBUS;
        }
        rec.figs.own = [seen.counts[0][1], seen.counts[1][1], seen.counts[2][1], seen.second_ok as u64, seen.sigbus as u64, 0, 0, 0];
        if seen.second_ok {
            failed += 1;
            first = first.or(Some((i, seen)));
            if !cfg.keep_going {
                break;
            }
        } else {
            rec.figs.passed += 1;
        }
    }
    rec.figs.failed = failed;
    rec.figs.elapsed_ns = sys::monotonic_ns() - t0;
    let l = &mut rec.msg;
    let Some((i, x)) = first else {
        l.f("the reservation came back after MADV_DONTNEED in {} of {} runs: reserved {} after the map, {} after the touch, {} after the madvise, and the second mapping failed with ENOMEM", &[runs, runs, resv0 + own, resv0, resv0 + own]);
        return Ok(Verdict::Pass);
    };
    l.s("the reservation was not restored after MADV_DONTNEED (");
    super::tell_fix(l, NAME);
    l.f("): reserved {} after the map, {} after the touch, {} after the madvise (free {}); a second 1-page mapping succeeded where ENOMEM was due",
        &[x.counts[0][1], x.counts[1][1], x.counts[2][1], x.counts[2][0]]);
    if x.sigbus {
        l.f(", took the page (free {}), and the first mapping's next touch got SIGBUS", &[x.counts[3][0]]);
    }
    l.f(", in run {}", &[i]);
    if own == 0 {
        l.s(" (--noreserve: the first mapping reserved nothing, the negative control)");
    }
    if failed > 1 || rec.figs.iterations > i {
        l.f("; {} of {} runs failed", &[failed, rec.figs.iterations]);
    }
    Ok(Verdict::Fail)
}

/// The child's steps; its exit status is 0, or 1 with the failing step's errno noted.
fn steps_in_child(s: &Steps, size: u64, len: usize, noreserve: bool) -> i32 {
    let note = |i: usize| {
        if let Ok((f, r)) = pool::free_resv(size) {
            s.counts[i][0].store(f, Relaxed);
            s.counts[i][1].store(r, Relaxed);
        }
    };
    let fail = |e: Errno| {
        s.errno.store(e.0 as u64, Release);
        1
    };
    let done = |step: u64| s.done.store(step, Release);
    let first = match Mapping::anon_hugetlb(len, len, if noreserve { k::MAP_NORESERVE } else { 0 }) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    note(0);
    done(MAPPED);
    first.store_u32(0, 1);
    note(1);
    done(TOUCHED);
    if let Err(e) = first.madvise(0, len, k::MADV_DONTNEED) {
        return fail(e);
    }
    note(2);
    done(ADVISED);
    match Mapping::anon_hugetlb(len, len, 0) {
        Err(Errno::ENOMEM) => {}
        Err(e) => return fail(e),
        Ok(second) => {
            s.second.store(1, Relaxed);
            second.store_u32(0, 2);
            note(3);
            second.leak();
        }
    }
    done(SECOND);
    done(RETOUCH);
    first.store_u32(0, 3);
    done(DONE);
    0
}

/// What the child's run shows, or TBROK when it shows something else than the kernel's
/// two answers (the reservation restored and the second mapping refused, or the
/// reservation gone, the second mapping granted and the first touch failed).
fn judge_run(s: &Steps, ended: Ended, (free0, resv0): (u64, u64), own: u64, i: u64, why: &mut Line) -> Step<Seen> {
    let mut counts = [[0u64; 2]; 4];
    for (c, a) in counts.iter_mut().zip(&s.counts) {
        *c = [a[0].load(Acquire), a[1].load(Acquire)];
    }
    let done = s.done.load(Acquire);
    let second_ok = s.second.load(Acquire) != 0;
    let sigbus = ended == Ended::Signal(k::SIGBUS) && done == RETOUCH;
    match ended {
        Ended::Exit(0) if done == DONE => {}
        _ if sigbus => {}
        Ended::Exit(125) => return Err(Stop::brok(why.s("the check's process could not set itself up (signals, parent death)"))),
        Ended::Exit(_) => {
            return Err(Stop::brok(why.f("run {}: step {} failed: {errno}", &[i, done + 1, s.errno.load(Acquire)])));
        }
        Ended::Signal(sig) => return Err(Stop::brok(why.f("run {}: the check's process was killed by ", &[i]).sig(sig).f(" after step {}", &[done]))),
    }
    // The first mapping and its touch: the page reserved, then used. Anything else is
    // another process's doing.
    if counts[0] != [free0, resv0 + own] || counts[1] != [free0.saturating_sub(1), resv0] {
        return Err(Stop::brok(why.f(
            "inconclusive: run {}: after the map {} free, {} reserved, after the touch {} free, {} reserved (another process uses these hugepages)",
            &[i, counts[0][0], counts[0][1], counts[1][0], counts[1][1]],
        )));
    }
    let restored = counts[2] == [free0, resv0 + own];
    let dropped = counts[2] == [free0, resv0];
    match (second_ok, restored, dropped) {
        (false, true, _) if !sigbus => Ok(Seen { counts, second_ok, sigbus }),
        (true, _, true) => Ok(Seen { counts, second_ok, sigbus }),
        _ => Err(Stop::brok(why.f(
            "inconclusive: run {}: after the madvise {} free, {} reserved, and the second mapping {}",
            &[i, counts[2][0], counts[2][1]],
        ).s(if second_ok { "succeeded" } else { "failed with ENOMEM" }).s(" (another process uses these hugepages?)"))),
    }
}

/// After a run, with the child gone, the pool must read as before it (the child's pages go
/// as it exits, which may lag a little: read again for up to a second).
fn settle(size: u64, want: (u64, u64), i: u64, why: &mut Line) -> Step<()> {
    let mut now = (0, 0);
    for _ in 0..100 {
        now = pool::free_resv(size).map_err(|e| Stop::sys(why, "reading the hugepage counters", e))?;
        if now == want {
            return Ok(());
        }
        sys::sleep_ns(10_000_000);
    }
    Err(Stop::brok(why.f("after run {} the pool reads {} free, {} reserved, not {} and {} as before it", &[i, now.0, now.1, want.0, want.1])))
}

fn info(rep: &mut Reporter, what: &Line, r: &Record) {
    let f = &r.figs;
    rep.info(&|l| {
        l.b(what.as_bytes()).f(if f.iterations == 1 { ": {} run, {} failed" } else { ": {} runs, {} failed" }, &[f.iterations, f.failed]).f(
            "; the last: reserved {} after the map, {} after the touch, {} after the madvise; the second mapping ",
            &[f.own[0], f.own[1], f.own[2]],
        );
        l.s(if f.own[3] != 0 { "succeeded" } else { "failed with ENOMEM" });
        if f.own[4] != 0 {
            l.s(", the first's next touch got SIGBUS");
        }
    });
}

fn json(_: &mut Doc, l: &mut Line, r: &Record) {
    let f = &r.figs;
    l.f(",\"resv_after\":{{\"map\":{},\"touch\":{},\"madvise\":{}},\"second_map_ok\":{},\"sigbus\":{}", &[f.own[0], f.own[1], f.own[2], f.own[3], f.own[4]]);
}

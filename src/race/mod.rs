//! The race: racers pinned to distinct CPUs, lined up by spin triggers on a shared page (no
//! futex on the release path), all writing the same contested hugepage. A racer that the
//! kernel fails with SIGBUS records what happened on the control page and ends alone.
//!
//! One iteration (one race): each racer sets its own trigger to the generation and spins
//! until every partner's matches; all write, stamping the cycle counter on both sides; the
//! last racer to finish closes the iteration. It judges the stamps (a race in which the
//! racers were never inside their writes at one moment is missed, counted, and run again),
//! gives the page back and reserves it again, so that the pool reads exactly as before race
//! 1, checks that it does, and wakes the others, which sleep on a futex between iterations.
//!
//! The supervisor (the process that owns the pool) never races: shared-mode racers are
//! processes of their own, and private-mode racers are threads of one child process, so
//! that nothing that kills a racer can kill the supervisor. It sleeps until the run is
//! over, waking now and then to watch for signals, racers gone missing, and iterations
//! that never end; it judges a racer's death by what killed it.

mod control;
mod host;
mod racer;
mod watch;

pub use watch::{death_line, interrupted};
use watch::oom_kills;

use crate::out::Line;
use crate::step::{Mode, Step, Stop};
use crate::stats::Hist;
use crate::sys::{self, k, Errno, Mapping, Shared, Stacks};
use control::*;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use racer::START_LINE_NS;

const STACK: usize = 64 * 1024;

/// Gives the contested page back to the pool and reserves it again (or maps it first, in
/// the process that races on it): the state of race 1.
pub type Renew<'a> = &'a (dyn Fn() -> Result<(), Errno> + Sync);

/// What the racers share: the control page, the contested page and how to renew it.
pub struct Crew<'a> {
    ctl: Shared<Control, Slot>,
    n: usize,
    page: &'a Mapping,
    renew: Renew<'a>,
    size: u64,
    rt: bool,
    parent: i32,
    mode: Mode,
}

/// What the host of private-mode racers needs (its own copy, made at the clone).
struct HostArg<'a> {
    crew: &'a Crew<'a>,
    stacks: &'a Stacks,
}

impl<'a> Crew<'a> {
    /// What `n` racers of one mode on one page size share. The racers and the fault
    /// handler hold its address for as long as they run, so it must not move: the caller
    /// owns it and `Race` only borrows it.
    /// `offset_ns`: racers 2.. start this long after racer 1 in every race; None: swept.
    pub fn new(mode: Mode, size: u64, page: &'a Mapping, renew: Renew<'a>, n: usize, rt: bool, offset_ns: Option<u64>, why: &mut Line) -> Step<Crew<'a>> {
        let ctl: Shared<Control, Slot> = Shared::new(n + 1).map_err(|e| Stop::sys(why, "mmap control page", e))?;
        ctl.head().offset_ns.store(offset_ns.unwrap_or(u64::MAX), Relaxed);
        ctl.head().expect_free.store(UNCHECKED, Relaxed);
        Ok(Crew { ctl, n, page, renew, size, rt, parent: sys::getpid(), mode })
    }

    fn ctl(&self) -> &Control {
        self.ctl.head()
    }
    fn slot(&self, i: usize) -> &Slot {
        // Slots 0..n are the racers'; slot n is a spare that any index past them lands on,
        // so this never fails.
        self.ctl.slot(i)
    }

    /// Every race from now on must start from these free and reserved counts.
    pub fn expect(&self, free: u64, resv: u64) {
        self.ctl().expect_resv.store(resv, Relaxed);
        self.ctl().expect_free.store(free, Release);
    }

    /// The figures so far, over every start.
    pub fn tally(&self) -> Tally<'_> {
        let ctl = self.ctl();
        Tally {
            races: ctl.iterations.load(Acquire),
            missed: ctl.missed.load(Acquire),
            race_ns: ctl.race_ns.load(Acquire),
            skew: &ctl.skew,
            fault: &ctl.fault,
            madvise: &ctl.madvise,
            offsets: &OFFSETS_NS,
            offset_races: &ctl.bin_races,
            offset_failed: &ctl.bin_failed,
            swept: ctl.offset_ns.load(Relaxed) == u64::MAX && self.mode != Mode::Dontneed,
        }
    }

    /// The CPUs the racers run on, as a list (0,1).
    pub fn write_cpus(&self, l: &mut Line) {
        for i in 0..self.n {
            if i > 0 {
                l.c(b',');
            }
            l.u(self.slot(i).cpu.load(Relaxed) as u64);
        }
    }

    /// Measure the counter's rate against CLOCK_MONOTONIC over at least 2 ms from `t0` (once
    /// per crew), and aim the first race: offsets are given in ns, raced in ticks.
    fn calibrate(&self, t0: (u64, u64)) {
        let ctl = self.ctl();
        if ctl.tick_den.load(Relaxed) != 0 {
            // A restart (--keep-going): the race that failed chose the next offset already.
            return;
        }
        {
            let spent = sys::monotonic_ns().saturating_sub(t0.0);
            if spent < 2_000_000 {
                sys::sleep_ns(2_000_000 - spent);
            }
            let (ns, ticks) = (sys::monotonic_ns().saturating_sub(t0.0), sys::cycles().wrapping_sub(t0.1));
            // Kept below 2^32 so that an offset times the ratio cannot overflow.
            let shift = (64 - ns.max(ticks).leading_zeros()).saturating_sub(32);
            ctl.tick_num.store((ticks >> shift).max(1), Relaxed);
            ctl.tick_den.store((ns >> shift).max(1), Relaxed);
        }
        if self.mode != Mode::Dontneed {
            ctl.bin.store(0, Relaxed);
            let fixed = ctl.offset_ns.load(Relaxed);
            let ns = if fixed == u64::MAX { 0 } else { fixed };
            ctl.aim.store(ns.saturating_mul(ctl.tick_num.load(Relaxed)) / ctl.tick_den.load(Relaxed), Relaxed);
        }
    }

    /// Clear what one start leaves on the control page; the tallies stay.
    fn clear_start(&self) {
        let ctl = self.ctl();
        for w in [&ctl.generation, &ctl.finished, &ctl.started, &ctl.stop, &ctl.end, &ctl.host, &ctl.host_step] {
            w.store(0, Relaxed);
        }
        ctl.missed_row.store(0, Relaxed);
        for i in 0..self.n {
            let s = self.slot(i);
            for w in [&s.ready, &s.tid, &s.self_tid, &s.state, &s.step, &s.missing, &s.last, &s.rt_refused] {
                w.store(0, Relaxed);
            }
        }
    }
}

/// What the kernel did to a racer.
#[derive(Clone, Copy, Debug)]
pub struct Fault {
    pub racer: usize,
    pub cpu: u32,
    pub sig: u32,
    pub code: i32,
    pub addr: u64,
    /// The race (1-based) it happened in.
    pub iteration: u64,
    /// Racers that wrote the page in that race.
    pub winners: u64,
    /// The pool when the fault handler ran: all pages, and free ones.
    pub total: u64,
    pub free: u64,
    /// The dontneed race: how many counter ticks after the madvise's start the writer was
    /// aimed to store, and whether the madvise was still under way when the writer's fault
    /// handler ran.
    pub aim: u64,
    pub madvise_inside: bool,
}

/// A racer (or, in private mode, the process of the racer threads) that died of a signal
/// the race does not catch.
#[derive(Clone, Copy, Debug)]
pub struct Death {
    /// The racer (0-based), or None for private mode's racer process.
    pub racer: Option<usize>,
    pub pid: i32,
    pub sig: u32,
    /// How far the kernel's oom_kill counter moved during the run (None: no /proc/vmstat).
    pub oom_kills: Option<u64>,
    /// Whether the kernel log names this pid as the OOM killer's victim (None: the log
    /// cannot be read here).
    pub oom_victim: Option<bool>,
}

/// How a run of iterations ended.
pub enum Outcome {
    Done,
    Faulted(Fault),
    Killed(Death),
}

/// The figures of a run, raw: counter ticks in the histograms.
pub struct Tally<'a> {
    pub races: u64,
    pub missed: u64,
    pub race_ns: u64,
    pub skew: &'a Hist,
    pub fault: &'a Hist,
    /// The dontneed race: the madvise calls' durations.
    pub madvise: &'a Hist,
    /// The alloc race's offset sweep: each offset (ns), the races run with it and failed.
    pub offsets: &'a [u64; OFFSETS],
    pub offset_races: &'a [core::sync::atomic::AtomicU32; OFFSETS],
    pub offset_failed: &'a [core::sync::atomic::AtomicU32; OFFSETS],
    pub swept: bool,
}

/// The racers of one mode on one size, alive from `start` to drop.
pub struct Race<'a> {
    crew: &'a Crew<'a>,
    stacks: Option<Stacks>,
    /// Racer processes (shared) or the racer threads' process (private) started.
    spawned: usize,
    /// Private mode: the racer threads' process. (Not read back from the control page: the
    /// kernel clears that word when the process exits with threads.)
    host: i32,
    oom_before: Option<u64>,
}

impl<'a> Race<'a> {
    /// Start the crew's racers, racer i on the CPU that `choose` assigns through
    /// `give(i, cpu)`, and wait until each is pinned. On failure the reason is in `why`.
    pub fn start(crew: &'a Crew<'a>, choose: impl FnOnce(&mut dyn FnMut(u32, u32)), why: &mut Line) -> Step<Race<'a>> {
        let n = crew.n;
        crew.clear_start();
        let clock0 = (sys::monotonic_ns(), sys::cycles());
        choose(&mut |i, cpu| crew.slot(i as usize).cpu.store(cpu, Relaxed));
        // One stack per racer, and one for private mode's racer process.
        let stacks = Stacks::new(n + 1, STACK).map_err(|e| Stop::sys(why, "mmap racer stacks", e))?;
        let mut race = Race { crew, stacks: None, spawned: 0, host: 0, oom_before: oom_kills() };
        sys::on_faults(crew, racer::on_fault).map_err(|e| Stop::sys(why, "sigaction(SIGBUS)", e))?;
        let r = match crew.mode {
            Mode::Shared => (0..n).try_for_each(|i| {
                stacks.spawn(i, k::SIGCHLD, &crew.slot(i).tid, racer::racer, crew).map(|_| race.spawned += 1).map_err(|e| (i, e))
            }),
            Mode::Private | Mode::Dontneed => {
                // The host's copy of this (made at the clone) is what it reads.
                let arg = HostArg { crew, stacks: &stacks };
                stacks.spawn(n, k::SIGCHLD, &crew.ctl().host, host::host, &arg).map(|p| (race.spawned, race.host) = (1, p)).map_err(|e| (0, e))
            }
        };
        race.stacks = Some(stacks);
        if let Err((i, e)) = r {
            why.f("clone of racer {}: {errno}", &[i as u64 + 1, e.0 as u64]);
            if e == Errno::EAGAIN {
                why.s(" (process limit reached? see RLIMIT_NPROC)");
            }
            return Err(Stop::brok(why));
        }
        race.wait_started(why)?;
        crew.calibrate(clock0);
        Ok(race)
    }

    /// Whether a racer was refused SCHED_FIFO.
    pub fn rt_refused(&self) -> bool {
        (0..self.crew.n).any(|i| self.crew.slot(i).rt_refused.load(Acquire) != 0)
    }

    /// Race until `want` races count in all, or until CLOCK_MONOTONIC passes `until_ns`,
    /// from a page in race 1's state now; a race that takes longer than `bound_ns` (a 1G
    /// fault under emulation is slow: --iteration-timeout) is a hang. `progress(races)` is
    /// called from the supervisor now and then. On failure the reason is in `why`.
    pub fn run(&mut self, want: u64, until_ns: u64, bound_ns: u64, mut progress: impl FnMut(u64), why: &mut Line) -> Step<Outcome> {
        let ctl = self.crew.ctl();
        ctl.want.store(want, Relaxed);
        ctl.until_ns.store(until_ns, Relaxed);
        ctl.generation.store(1, Release);
        sys::futex_wake(&ctl.generation, i32::MAX as u32);
        let mut last = (u64::MAX, sys::monotonic_ns());
        let mut stopping = None;
        loop {
            let end = ctl.end.load(Acquire);
            if end != RUNNING {
                return match stopping {
                    Some(sig) => Err(interrupted(why, sig)),
                    None => self.ended(end, why),
                };
            }
            // Any finished racer marks progress: a run of missed races is no hang.
            let done = ctl.iterations.load(Acquire) + ctl.missed.load(Acquire);
            let now = sys::monotonic_ns();
            if done != last.0 {
                last = (done, now);
                progress(ctl.iterations.load(Acquire));
            } else if now - last.1 > bound_ns {
                return Err(Stop::brok(why.f("race {} did not end within {} s", &[ctl.iterations.load(Acquire) + 1, bound_ns / 1_000_000_000])));
            } else if now - last.1 > START_LINE_NS
                && let Some(i) = self.stopped()
            {
                // A racer stopped where no partner spins on it (closing an iteration).
                return Err(Stop::brok(why.f(
                    "racer {} never reached the start line of race {}: it is stopped (SIGSTOP or a debugger)",
                    &[i as u64 + 1, ctl.iterations.load(Acquire) + ctl.missed.load(Acquire) + 1],
                )));
            }
            if stopping.is_none() {
                // End at the next iteration boundary, so the racers stop cleanly.
                stopping = sys::pending_signal();
                if stopping.is_some() {
                    ctl.stop.store(1, Release);
                }
            }
            if let Some(d) = self.vanished() {
                return Ok(Outcome::Killed(d));
            }
            let _ = sys::futex_wait(&ctl.end, RUNNING, 100_000_000);
        }
    }
}

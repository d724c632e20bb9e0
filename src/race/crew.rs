//! The crew: what the racers of one mode on one size share (the control page, the contested
//! page and how to renew it), and the raw figures read back from it.

use super::control::*;

use crate::out::Line;
use crate::stats::Hist;
use crate::step::{Mode, Step, Stop};
use crate::sys::{self, Errno, Mapping, Shared};
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// Gives the contested page back to the pool and reserves it again (or maps it first, in
/// the process that races on it): the state of race 1.
pub type Renew<'a> = &'a (dyn Fn() -> Result<(), Errno> + Sync);

/// What the racers share: the control page, the contested page and how to renew it.
pub struct Crew<'a> {
    pub(super) ctl: Shared<Control, Slot>,
    pub(super) n: usize,
    pub(super) page: &'a Mapping,
    pub(super) renew: Renew<'a>,
    pub(super) size: u64,
    /// The counters every race must start from, held open (None: no per-size sysfs).
    pub(super) census: Option<crate::pool::Census>,
    pub(super) rt: bool,
    pub(super) parent: i32,
    pub(super) mode: Mode,
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
        Ok(Crew { ctl, n, page, renew, size, census: crate::pool::Census::open(size), rt, parent: sys::getpid(), mode })
    }

    pub(super) fn ctl(&self) -> &Control {
        self.ctl.head()
    }
    pub(super) fn slot(&self, i: usize) -> &Slot {
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
            passed: ctl.passed.load(Acquire),
            missed: ctl.missed.load(Acquire),
            race_ns: ctl.race_ns.load(Acquire),
            skew: &ctl.skew,
            fault: &ctl.fault,
            madvise: &ctl.madvise,
            offsets: &OFFSETS_NS,
            offset_races: &ctl.bin_races,
            offset_failed: &ctl.bin_failed,
            swept: ctl.offset_ns.load(Relaxed) == u64::MAX || self.mode == Mode::Dontneed,
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
    pub(super) fn calibrate(&self, t0: (u64, u64)) {
        let ctl = self.ctl();
        if ctl.tick_den.load(Relaxed) != 0 {
            // A restart (--keep-going): the race that failed chose the next offset already.
            return;
        }
        // Only offsets in ns need the ratio: level races (the default) and the dontneed race
        // (aimed in ticks of the madvise) take no 2 ms for it.
        let fixed = ctl.offset_ns.load(Relaxed);
        if fixed == 0 || self.mode == Mode::Dontneed {
            ctl.tick_num.store(1, Relaxed);
            ctl.tick_den.store(1, Relaxed);
        } else {
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
            let ns = if fixed == u64::MAX { 0 } else { fixed };
            ctl.aim.store(ns.saturating_mul(ctl.tick_num.load(Relaxed)) / ctl.tick_den.load(Relaxed), Relaxed);
        }
    }

    /// Clear what one start leaves on the control page; the tallies stay.
    pub(super) fn clear_start(&self) {
        let ctl = self.ctl();
        for w in [&ctl.generation, &ctl.finished, &ctl.started, &ctl.stop, ctl.end.raw(), &ctl.host, ctl.host_step.raw()] {
            w.store(0, Relaxed);
        }
        ctl.missed_row.store(0, Relaxed);
        for i in 0..self.n {
            let s = self.slot(i);
            for w in [&s.ready, &s.tid, &s.self_tid, s.state.raw(), s.step.raw(), &s.missing, &s.last, &s.rt_refused] {
                w.store(0, Relaxed);
            }
        }
    }
}

/// The figures of a run, raw: counter ticks in the histograms.
pub struct Tally<'a> {
    pub races: u64,
    pub passed: u64,
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

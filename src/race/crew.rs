//! The crew: what the racers of one mode on one size share (the control page, the contested
//! page and how to renew it, the kind that says what they do), and the raw figures read
//! back from it.

use super::control::*;
use super::racing::Racing;
use crate::out::Line;
use crate::stats::Hist;
use crate::step::{Step, Stop};
use crate::sys::{self, Errno, Mapping, Shared};
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// Gives the contested page back to the pool and reserves it again (or maps it first, in
/// the process that races on it): the state of race 1.
pub type Renew<'a> = &'a (dyn Fn() -> Result<(), Errno> + Sync);

/// The last arriver never waits longer than this many ticks (a few µs at any counter rate).
const START_DELAY_MAX: i64 = 1 << 13;
const START_DELAY_STEP: i64 = 1 << 8;

/// What the racers share: the control page, the contested page and how to renew it.
pub struct Crew<'a> {
    pub(super) ctl: Shared<Control, Slot>,
    pub(super) n: usize,
    pub page: &'a Mapping,
    pub(super) renew: Renew<'a>,
    pub(super) size: u64,
    /// The counters every race must start from, held open (None: no per-size sysfs).
    pub(super) census: Option<crate::pool::Census>,
    pub(super) rt: bool,
    pub(super) parent: i32,
    /// Whether the racers are threads of one child process (else processes of their own).
    pub(super) threads: bool,
    pub(super) racing: &'a dyn Racing,
}

impl<'a> Crew<'a> {
    /// What `n` racers of `racing` on one page size share. The racers and the fault handler
    /// hold its address for as long as they run, so it must not move: the caller owns it
    /// and `Race` only borrows it.
    pub fn new(racing: &'a dyn Racing, size: u64, page: &'a Mapping, renew: Renew<'a>, n: usize, rt: bool, why: &mut Line) -> Step<Crew<'a>> {
        let ctl: Shared<Control, Slot> = Shared::new(n + 1).map_err(|e| Stop::sys(why, "mmap control page", e))?;
        ctl.head().expect_free.store(UNCHECKED, Relaxed);
        let census = crate::pool::Census::open(size);
        Ok(Crew { ctl, n, page, renew, size, census, rt, parent: sys::getpid(), threads: racing.threads(), racing })
    }

    pub(super) fn ctl(&self) -> &Control {
        self.ctl.head()
    }
    pub(super) fn slot(&self, i: usize) -> &Slot {
        // Slots 0..n are the racers'; slot n is a spare that any index past them lands on,
        // so this never fails.
        self.ctl.slot(i)
    }

    /// How many racers race.
    pub fn racers(&self) -> usize {
        self.n
    }

    /// Racer i's stamps in the race just closed: just before and just after its step.
    pub fn stamps(&self, i: usize) -> (u64, u64) {
        let s = self.slot(i);
        (s.t0.load(Acquire), s.t1.load(Acquire))
    }

    /// The judge of every racer's stamps in the race just closed.
    pub fn judge_stamps(&self) -> Judge {
        let mut j = Judge::default();
        for i in 0..self.n {
            let (t0, t1) = self.stamps(i);
            j.add(t0, t1);
        }
        j
    }

    /// A start skew and a step's duration, in ticks, into the figures.
    pub fn add_skew(&self, ticks: u64) {
        self.ctl().skew.add(ticks);
    }
    pub fn add_fault(&self, ticks: u64) {
        self.ctl().fault.add(ticks);
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

    /// Steer the last arriver's wait so that its step starts when its partners', who learn
    /// of its trigger one cache-line transfer later: add half the signed gap between their
    /// mean start and its own. Converges in a few races; bounded by START_DELAY_MAX. For
    /// kinds whose races start level (a staggered start wants its gaps).
    pub fn tune_delay(&self, g: u32) {
        // The last arriver, then its partners' mean start relative to its own: differences
        // of nearby stamps fit an i64, so no 128-bit division routine lands in the binary.
        let Some(j) = (0..self.n).rev().find(|&i| self.slot(i).last.load(Acquire) == g) else { return };
        let l = self.slot(j).t0.load(Acquire);
        let (mut sum, mut k) = (0i64, 0i64);
        for i in (0..self.n).filter(|&i| i != j) {
            // Clamped so that no number of racers overflows the sum; the gap is clamped
            // far tighter below anyway.
            sum += (self.slot(i).t0.load(Acquire).wrapping_sub(l) as i64).clamp(-(1 << 40), 1 << 40);
            k += 1;
        }
        if k == 0 {
            return;
        }
        // A preempted racer shows up as a gap of milliseconds: not a transfer time, so each
        // step is clamped and outliers barely move the estimate.
        let gap = (sum / k).clamp(-START_DELAY_STEP, START_DELAY_STEP);
        let ctl = self.ctl();
        let d = ctl.delay.load(Relaxed) as i64 + gap / 2;
        ctl.delay.store(d.clamp(0, START_DELAY_MAX) as u64, Relaxed);
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
}

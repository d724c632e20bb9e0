//! Aiming races: the sweep of aims (which entry the next race takes), the dontneed race's
//! judge, and the tuning of the last arriver's wait.

use super::control::*;
use super::crew::Crew;
use crate::step::Mode;
use crate::sys;
use core::sync::atomic::Ordering::{Acquire, Relaxed};

/// The last arriver never waits longer than this many ticks (a few µs at any counter rate).
const START_DELAY_MAX: i64 = 1 << 13;
const START_DELAY_STEP: i64 = 1 << 8;

impl Crew<'_> {
    /// Count the race under its entry of the sweep (a miss too: an entry that misses must not
    /// look promising), then aim the next race. The alloc race's entries are OFFSETS_NS (or
    /// --offset's one); the dontneed race's are twelfths of the madvise's mean duration,
    /// 1/12 to 12/12, for where the window lies inside the call depends on the machine.
    /// Three races in four take the entry that has failed races most often so far, (failed
    /// + 1) / (races + 2), so that an entry never raced looks promising and gets its turn
    /// early; the fourth takes any entry, so that none is written off after a few unlucky
    /// races. With no failure at all the least raced entry leads: an even sweep. An entry
    /// that has missed more than half its races (racer 2 behind racer 1's whole fault) is
    /// left out once it has had 4, so that no time goes to races that cannot happen.
    pub(super) fn next_aim(&self, failed: bool, missed: bool) {
        let ctl = self.ctl();
        let b = ctl.bin.load(Relaxed) as usize % OFFSETS;
        ctl.bin_races[b].fetch_add(1, Relaxed);
        if failed {
            ctl.bin_failed[b].fetch_add(1, Relaxed);
        }
        if missed {
            ctl.bin_missed[b].fetch_add(1, Relaxed);
        }
        let fixed = ctl.offset_ns.load(Relaxed);
        let (num, den) = (ctl.tick_num.load(Relaxed), ctl.tick_den.load(Relaxed).max(1));
        if fixed != u64::MAX && self.mode != Mode::Dontneed {
            return ctl.aim.store(fixed.saturating_mul(num) / den, Relaxed);
        }
        let r = (sys::cycles() >> 3).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
        let races = |b: usize| ctl.bin_races[b].load(Relaxed) as u64;
        let open = |b: usize| races(b) < 4 || ctl.bin_missed[b].load(Relaxed) as u64 * 2 <= races(b);
        // Open entries only, rated; the others rate 0 (entry 0, level, always stays open).
        // (Scaled far up: on a sound kernel the rates fall as 1 / races, and must not all
        // round down to the closed entries' 0.)
        let rate = |b: usize| if open(b) || b == 0 { ((ctl.bin_failed[b].load(Relaxed) as u64 + 1) << 32) / (races(b) + 2) } else { 0 };
        // Ties go to the first from a random start, so that equals share the races.
        let from = (r >> 8) as usize % OFFSETS;
        let best = (0..OFFSETS).map(|k| (from + k) % OFFSETS).fold(from, |m, b| if rate(b) > rate(m) { b } else { m });
        let any = (r >> 16) as usize % OFFSETS;
        let b = if r & 3 == 0 && rate(any) > 0 { any } else { best };
        ctl.bin.store(b as u32, Relaxed);
        let aim = if self.mode == Mode::Dontneed {
            ctl.madvise_ticks.load(Relaxed) * (b as u64 + 1) / OFFSETS as u64
        } else {
            OFFSETS_NS[b].saturating_mul(num) / den
        };
        ctl.aim.store(aim, Relaxed);
    }

    /// The dontneed race's judge: the writer's store must have faulted (so the madvise had
    /// unmapped the page already) and begun before the madvise returned (so the page was not
    /// yet surely freed). Then aim the next race's writer.
    pub(super) fn judge_dontneed(&self) -> bool {
        let ctl = self.ctl();
        let (a, b) = (self.slot(0), self.slot(1));
        let (a0, a1, b0, b1) = (a.t0.load(Acquire), a.t1.load(Acquire), b.t0.load(Acquire), b.t1.load(Acquire));
        let took = a1.wrapping_sub(a0);
        ctl.madvise.add(took);
        ctl.skew.add(b0.saturating_sub(a0));
        ctl.fault.add(b1.wrapping_sub(b0));
        let avg = match ctl.madvise_ticks.load(Relaxed) {
            0 => took,
            m => (m * 7 + took) / 8,
        };
        ctl.madvise_ticks.store(avg, Relaxed);
        let overlapped = b.faulted.load(Acquire) != 0 && b0 < a1;
        self.next_aim(false, !overlapped);
        overlapped
    }

    /// Steer the last arriver's wait so that its write starts when its partners', who learn
    /// of its trigger one cache-line transfer later: add half the signed gap between their
    /// mean start and its own. Converges in a few iterations; bounded by START_DELAY_MAX.
    /// Only on races that start level (the offset sweep wants its gaps).
    pub(super) fn tune_delay(&self, g: u32) {
        if self.mode == Mode::Dontneed {
            return;
        }
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
}


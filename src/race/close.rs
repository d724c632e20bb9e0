//! The closing of a race, by whichever racer finishes it last: judge it, keep the books
//! (the counts and the sweep of aims), pause after a miss, renew the page to race 1's state,
//! and release the next race (or end the run).
//!
//! This runs in a racer, and in a racer that died it runs inside the SIGBUS (or SIGSEGV)
//! handler: `on_fault` counts the racer finished, and if it was the last, closes the race
//! from there. So everything here must be async-signal-safe: atomics, futexes and raw
//! syscalls only (the renew is an mmap or a hole punch, the census two reads), no lock
//! another frame of this thread could hold, no allocation.

use super::control::*;
use super::crew::Crew;
use super::protocol::{End, RacerState};
use super::racing::Judged;
use crate::sys;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

/// What the closer found: the race as it ran.
enum Closed {
    /// A partner never reached the start line.
    Missing,
    /// A racer died in it: it counts, failed.
    Failed,
    /// Every racer finished its step: the kind's judge.
    Finished(Judged),
}

impl Crew<'_> {
    pub(super) fn end(&self, how: End) {
        let ctl = self.ctl();
        let t = ctl.lap_t0.swap(0, AcqRel);
        if t != 0 {
            ctl.race_ns.fetch_add(sys::monotonic_ns().saturating_sub(t), Relaxed);
        }
        ctl.end.store(how, Release);
        sys::futex_wake(ctl.end.raw(), i32::MAX as u32);
        // The racers asleep for the next race see the end and leave now, while the
        // supervisor judges, rather than when the teardown wakes them: a one-race run's
        // joins then cost nothing (1.1-1.7 ms of its 16 ms under QEMU's TCG, issue 18).
        sys::futex_wake(&ctl.generation, i32::MAX as u32);
    }

    fn release(&self, g: u32) {
        let ctl = self.ctl();
        ctl.generation.store(g.wrapping_add(1), Release);
        sys::futex_wake(&ctl.generation, i32::MAX as u32);
    }

    /// Count one racer finished with generation g; the last one closes the iteration.
    /// AcqRel: the closer must see every partner's stamps and state, which each stored
    /// before its own increment (Release alone would let a weakly ordered CPU, arm64 or
    /// ppc64, hand the closer stale stamps).
    pub(super) fn finish(&self, g: u32) {
        let n = self.n as u32;
        let f = self.ctl().finished.fetch_add(1, AcqRel).wrapping_add(1);
        if f == g.wrapping_mul(n) {
            self.close(g);
        }
    }

    /// Close generation g (only the racer that finished it last gets here, perhaps in its
    /// fault handler: see the module's comment).
    fn close(&self, g: u32) {
        let stop = self.ctl().stop.load(Acquire) != 0;
        if g <= WARMUP {
            return self.close_lap(g, stop);
        }
        let done = match self.judge(g) {
            Closed::Missing => return self.end(End::Missing),
            Closed::Failed => {
                // A failed race counts, whatever the stamps of the survivors say.
                self.ctl().iterations.fetch_add(1, Release);
                self.racing.failed();
                return self.end(End::Faulted);
            }
            Closed::Finished(judged) => match self.count(judged) {
                Ok(done) => done,
                Err(end) => return self.end(end),
            },
        };
        if stop || self.over(done) {
            return self.end(End::Done);
        }
        if let Err(end) = self.renew_state() {
            return self.end(end);
        }
        self.release(g)
    }

    /// A warm-up lap: caches and branch predictors learn the rendezvous and the last
    /// arriver's wait is tuned, so that even a single race starts tight.
    fn close_lap(&self, g: u32, stop: bool) {
        self.racing.lap(self, g);
        if stop || (0..self.n).any(|i| self.slot(i).missing.load(Acquire) != 0) {
            return self.end(if stop { End::Done } else { End::Missing });
        }
        if g == WARMUP {
            self.ctl().lap_t0.store(sys::monotonic_ns(), Relaxed);
        }
        self.release(g)
    }

    /// Judge the race: the racers' slots, then the kind's judge of their stamps.
    fn judge(&self, g: u32) -> Closed {
        let mut dead = false;
        for i in 0..self.n {
            let s = self.slot(i);
            match s.state.load(Acquire) {
                RacerState::Dead => dead = true,
                RacerState::Starting | RacerState::Ready | RacerState::SetupFailed => {
                    if s.missing.load(Acquire) != 0 {
                        return Closed::Missing;
                    }
                }
            }
        }
        if dead {
            return Closed::Failed;
        }
        Closed::Finished(self.racing.judge(self, g))
    }

    /// Keep the books of a race every racer finished: a race that overlapped counts (and
    /// passed), a missed one is counted apart and raced again. Returns the races that count
    /// so far, or how the run ends.
    fn count(&self, judged: Judged) -> Result<u64, End> {
        let ctl = self.ctl();
        let Judged::Missed { pause } = judged else {
            ctl.missed_row.store(0, Relaxed);
            ctl.passed.fetch_add(1, Release);
            return Ok(ctl.iterations.fetch_add(1, Release) + 1);
        };
        // A missed race proves nothing: it is counted, and raced again.
        ctl.missed.fetch_add(1, Release);
        if ctl.missed_row.fetch_add(1, Relaxed) + 1 >= MISS_BOUND {
            return Err(End::MissedTooOften);
        }
        if pause {
            self.pause();
        }
        Ok(ctl.iterations.load(Acquire))
    }

    /// On a loaded machine the racers can fall into opposite time slices of their CPUs and
    /// stay there, missing race after race: a random pause of up to a millisecond shakes
    /// them out of step. (A staggered race that missed was staggered too far: no pause.)
    fn pause(&self) {
        sys::sleep_ns((sys::cycles() >> 4) % 1_000_000);
    }

    /// Whether the run has what it came for: the races it wants, or its time.
    fn over(&self, done: u64) -> bool {
        let ctl = self.ctl();
        let (want, until) = (ctl.want.load(Relaxed), ctl.until_ns.load(Relaxed));
        (want != 0 && done >= want) || (until != 0 && sys::monotonic_ns() >= until)
    }

    /// Give the page back and make race 1's state again, and check that the pool reads as it
    /// did before race 1.
    fn renew_state(&self) -> Result<(), End> {
        if let Err(e) = (self.renew)() {
            self.ctl().renew_errno.store(e.0 as u32, Relaxed);
            return Err(End::RenewFailed);
        }
        if !self.state_is_original() {
            return Err(End::StateChanged);
        }
        Ok(())
    }

    /// Whether the pool reads as before race 1: the same free pages, the same reservations.
    /// What was read is kept for the report when it does not.
    fn state_is_original(&self) -> bool {
        let ctl = self.ctl();
        let (free, resv) = (ctl.expect_free.load(Relaxed), ctl.expect_resv.load(Relaxed));
        if free == UNCHECKED {
            return true;
        }
        let counts = match &self.census {
            Some(c) => c.free_resv(),
            None => crate::pool::free_resv(self.size),
        };
        let (f, r) = counts.unwrap_or((UNCHECKED, UNCHECKED));
        ctl.seen_free.store(f, Relaxed);
        ctl.seen_resv.store(r, Relaxed);
        f == free && r == resv
    }
}

//! The control page that the supervisor and every racer share (MAP_SHARED anonymous, so it
//! stays shared across fork-style clones), and the judge of one iteration's stamps.

use super::protocol::{End, RacerState, SetupStep, Word};
use crate::stats::Hist;
use core::sync::atomic::{AtomicU32, AtomicU64};

/// Rendezvous laps without the write before the first race of every start.
pub const WARMUP: u32 = 2;

/// Missed races in a row that end the run: a CPU that cannot keep up, not bad luck.
pub const MISS_BOUND: u64 = 100;

/// Counter value meaning "not checked" for the expected state.
pub const UNCHECKED: u64 = u64::MAX;

#[derive(Default)]
#[repr(C, align(256))]
pub struct Control {
    /// The generation the racers should run; they sleep on it between iterations.
    pub generation: AtomicU32,
    /// Racer-finishes so far in this start (wrote, faulted or gave up): generation g is
    /// over at n * g.
    pub finished: AtomicU32,
    /// Racers that finished their setup.
    pub started: AtomicU32,
    /// Set by the supervisor: end at the next iteration boundary.
    pub stop: AtomicU32,
    /// Running until the run ends; the supervisor sleeps on it.
    pub end: Word<End>,
    pub renew_errno: AtomicU32,
    /// Racer threads: the process whose threads they are (its pid), and how its own
    /// setup failed.
    pub host: AtomicU32,
    pub host_step: Word<SetupStep>,
    pub host_errno: AtomicU32,
    /// Races that count: overlapped ones and failed ones, over every start.
    pub iterations: AtomicU64,
    /// Of those, the ones that passed: every racer's write done, at once, and none faulted.
    /// Counted apart, so that passed and failed races checked against the count mean
    /// something.
    pub passed: AtomicU64,
    /// Races that did not overlap, run again; and how many of them in a row, now.
    pub missed: AtomicU64,
    pub missed_row: AtomicU64,
    /// Counter ticks the last racer to reach the start line waits before its write: the
    /// measured time its partners need to see its trigger (one cache-line transfer).
    pub delay: AtomicU64,
    /// Run until this many races count (0: until `until_ns`)...
    pub want: AtomicU64,
    /// ...or until this CLOCK_MONOTONIC time (0: no limit).
    pub until_ns: AtomicU64,
    /// The free and reserved counts of the race's size before race 1, which every race
    /// must start from (UNCHECKED: no check); and what was read when they did not.
    pub expect_free: AtomicU64,
    pub expect_resv: AtomicU64,
    pub seen_free: AtomicU64,
    pub seen_resv: AtomicU64,
    /// CLOCK_MONOTONIC when this start's first race began (0: in warm-up), and the time
    /// spent racing over every start: races/s leaves warm-up laps and restarts out.
    pub lap_t0: AtomicU64,
    pub race_ns: AtomicU64,
    /// The start skew and the slowest step of each race, as the kind measures them.
    pub skew: Hist,
    pub fault: Hist,
}

// A cache line (or two) per racer, so that one racer's trigger shares no line with another's.
#[derive(Default)]
#[repr(C, align(256))]
pub struct Slot {
    /// The spin trigger: the generation at which this racer reached the start line.
    pub ready: AtomicU32,
    /// The racer's tid (pid for a process); the kernel clears a thread's when it exits.
    pub tid: AtomicU32,
    /// The racer's own gettid(), for the fault handler to find its slot.
    pub self_tid: AtomicU32,
    pub cpu: AtomicU32,
    pub state: Word<RacerState>,
    /// Setup failure: which step, and its errno.
    pub step: Word<SetupStep>,
    pub errno: AtomicU32,
    pub seen_cpu: AtomicU32,
    /// 1 + index of a partner that never reached the start line.
    pub missing: AtomicU32,
    /// The generation in which this racer was the last to reach the start line.
    pub last: AtomicU32,
    pub rt_refused: AtomicU32,
    pub fault_sig: AtomicU32,
    pub fault_code: AtomicU32,
    pub fault_cpu: AtomicU32,
    pub fault_addr: AtomicU64,
    /// The pool's counters read by the fault handler, right at the failure.
    pub fault_total: AtomicU64,
    pub fault_free: AtomicU64,
    pub t0: AtomicU64,
    pub t1: AtomicU64,
    /// The kind's note at the fault (`Racing::at_fault`).
    pub fault_note: AtomicU32,
}

/// What one iteration's stamps say: each racer's counter just before (t0) and just after
/// (t1) its write.
#[derive(Clone, Copy)]
pub struct Judge {
    t0_min: u64,
    t0_max: u64,
    t1_min: u64,
    /// The slowest racer's write (its fault), in ticks.
    pub fault: u64,
}

impl Default for Judge {
    fn default() -> Self {
        Judge { t0_min: u64::MAX, t0_max: 0, t1_min: u64::MAX, fault: 0 }
    }
}

impl Judge {
    pub fn add(&mut self, t0: u64, t1: u64) {
        self.t0_min = self.t0_min.min(t0);
        self.t0_max = self.t0_max.max(t0);
        self.t1_min = self.t1_min.min(t1);
        self.fault = self.fault.max(t1.wrapping_sub(t0));
    }
    /// The spread of the start times.
    pub fn skew(&self) -> u64 {
        self.t0_max.wrapping_sub(self.t0_min)
    }
    /// Whether every racer was inside its write at one moment: the last to start started
    /// before the first to finish finished. Otherwise the race was missed.
    pub fn overlapped(&self) -> bool {
        self.t0_max < self.t1_min
    }
}

#[cfg(test)]
mod tests {
    use super::Judge;

    fn judge(stamps: &[(u64, u64)]) -> Judge {
        let mut j = Judge::default();
        for &(a, b) in stamps {
            j.add(a, b);
        }
        j
    }

    #[test]
    fn a_real_race_overlaps() {
        let j = judge(&[(100, 900), (140, 1000)]);
        assert!(j.overlapped());
        assert_eq!(j.skew(), 40);
        assert_eq!(j.fault, 860);
    }

    #[test]
    fn a_late_racer_is_a_missed_race() {
        // The second racer started after the first had already finished its fault.
        let j = judge(&[(100, 900), (950, 980)]);
        assert!(!j.overlapped());
        assert_eq!(j.skew(), 850);
        // Touching is not overlapping either.
        assert!(!judge(&[(100, 900), (900, 990)]).overlapped());
        // Three racers: one late one is enough to miss.
        assert!(!judge(&[(100, 900), (110, 950), (905, 1000)]).overlapped());
    }
}

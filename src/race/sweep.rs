//! The sweep of aims that a kind may race over: ENTRIES entries (what an entry means, an
//! offset in ns or a fraction of a call's duration, is the kind's), each counted with the
//! races run with it, the failed and the missed ones, and the next race's entry chosen
//! where failures are found. It lives in the kind's shared page: the closing racer books and
//! chooses, the supervisor reads the books for the figures.

use crate::sys;
use core::sync::atomic::AtomicU32;
use core::sync::atomic::Ordering::Relaxed;

pub const ENTRIES: usize = 12;

#[derive(Default)]
pub struct Sweep {
    /// The entry of the race under way.
    entry: AtomicU32,
    races: [AtomicU32; ENTRIES],
    failed: [AtomicU32; ENTRIES],
    missed: [AtomicU32; ENTRIES],
}

impl Sweep {
    /// The entry of the race under way.
    pub fn entry(&self) -> usize {
        self.entry.load(Relaxed) as usize % ENTRIES
    }

    /// Count the race under its entry: a miss too, so that an entry that misses does not
    /// look promising.
    pub fn book(&self, failed: bool, missed: bool) {
        let b = self.entry();
        self.races[b].fetch_add(1, Relaxed);
        if failed {
            self.failed[b].fetch_add(1, Relaxed);
        }
        if missed {
            self.missed[b].fetch_add(1, Relaxed);
        }
    }

    /// Choose the next race's entry, and return it. Three races in four take the entry that
    /// has failed races most often so far, rated (failed + 1) / (races + 2), so that an
    /// entry never raced looks promising and gets its turn early; the fourth takes any
    /// entry, so that none is written off after a few unlucky races. With no failure at all
    /// the least raced entry leads: an even sweep. An entry that has missed more than half
    /// its races is left out once it has had 4, so that no time goes to races that cannot
    /// happen (entry 0 always stays open).
    pub fn choose(&self) -> usize {
        let r = (sys::cycles() >> 3).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
        let races = |b: usize| self.races[b].load(Relaxed) as u64;
        let open = |b: usize| races(b) < 4 || self.missed[b].load(Relaxed) as u64 * 2 <= races(b);
        // Open entries only, rated; the others rate 0. (Scaled far up: on a sound kernel the
        // rates fall as 1 / races, and must not all round down to the closed entries' 0.)
        let rate = |b: usize| if open(b) || b == 0 { ((self.failed[b].load(Relaxed) as u64 + 1) << 32) / (races(b) + 2) } else { 0 };
        // Ties go to the first from a random start, so that equals share the races.
        let from = (r >> 8) as usize % ENTRIES;
        let best = (0..ENTRIES).map(|k| (from + k) % ENTRIES).fold(from, |m, b| if rate(b) > rate(m) { b } else { m });
        let any = (r >> 16) as usize % ENTRIES;
        let b = if r & 3 == 0 && rate(any) > 0 { any } else { best };
        self.entry.store(b as u32, Relaxed);
        b
    }

    /// Per entry: the races run with it and those that failed.
    pub fn tally(&self, b: usize) -> (u64, u64) {
        (self.races[b % ENTRIES].load(Relaxed) as u64, self.failed[b % ENTRIES].load(Relaxed) as u64)
    }
}

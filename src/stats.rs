//! Percentiles without an allocator: a log-linear histogram (16 steps per power of two, so
//! within 6.25%), exact below 16 and with the exact maximum kept aside. Its counters are
//! atomics so that it can live on the control page, where whichever racer closes an
//! iteration records it.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

const SUB: u32 = 16;
const BUCKETS: usize = (64 - 3) * SUB as usize;

pub struct Hist {
    counts: [AtomicU32; BUCKETS],
    n: AtomicU64,
    max: AtomicU64,
}

impl Default for Hist {
    fn default() -> Self {
        Self::new()
    }
}

fn index(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let e = 63 - v.leading_zeros();
    let sub = (v >> (e - 4)) & (SUB as u64 - 1);
    ((e - 3) * SUB) as usize + sub as usize
}

fn lower_bound(i: usize) -> u64 {
    if i < SUB as usize {
        return i as u64;
    }
    let e = (i / SUB as usize) as u32 + 3;
    let sub = (i % SUB as usize) as u64;
    (1u64 << e) | (sub << (e - 4))
}

impl Hist {
    pub const fn new() -> Hist {
        Hist { counts: [const { AtomicU32::new(0) }; BUCKETS], n: AtomicU64::new(0), max: AtomicU64::new(0) }
    }
    /// Record one value. One writer at a time (the racer closing an iteration); readers
    /// look after the run, through the control page's release/acquire handover.
    pub fn add(&self, v: u64) {
        let i = index(v).min(BUCKETS - 1);
        self.counts[i].fetch_add(1, Relaxed);
        self.n.fetch_add(1, Relaxed);
        self.max.fetch_max(v, Relaxed);
    }
    pub fn count(&self) -> u64 {
        self.n.load(Relaxed)
    }
    pub fn max(&self) -> u64 {
        self.max.load(Relaxed)
    }
    /// The value below which `pct` percent of the samples fall (bucket lower bound, never
    /// above the true maximum).
    pub fn percentile(&self, pct: u32) -> u64 {
        let n = self.count();
        if n == 0 {
            return 0;
        }
        let rank = (n * pct as u64).div_ceil(100).max(1);
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c.load(Relaxed) as u64;
            if seen >= rank {
                return lower_bound(i).min(self.max());
            }
        }
        self.max()
    }
}

/// The four figures we publish for a distribution.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Summary {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

impl Summary {
    /// Summarise a histogram of raw counter ticks, scaled to ns by `num/den`.
    pub fn of(h: &Hist, num: u64, den: u64) -> Summary {
        let s = |v: u64| scale(v, num, den);
        Summary { p50: s(h.percentile(50)), p90: s(h.percentile(90)), p99: s(h.percentile(99)), max: s(h.max()) }
    }
}

/// v * num / den, in floating point: no overflow, and no 128-bit division routine in the
/// binary. Exact enough for figures shown with a few significant digits. Not inlined: the
/// integer-float conversions take dozens of instructions on targets without unsigned ones.
#[inline(never)]
pub fn scale(v: u64, num: u64, den: u64) -> u64 {
    if den == 0 {
        return 0;
    }
    (v as f64 * (num as f64 / den as f64)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip() {
        for v in [0u64, 1, 15, 16, 17, 31, 32, 100, 1000, 123456, 1 << 40, u64::MAX] {
            let lb = lower_bound(index(v));
            assert!(lb <= v, "{v}");
            assert!(v - lb <= v / 16, "{v} {lb}");
        }
    }

    #[test]
    fn percentiles() {
        let h = Hist::new();
        for v in 1..=100u64 {
            h.add(v);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.max(), 100);
        let p50 = h.percentile(50);
        assert!((48..=50).contains(&p50), "{p50}");
        let p99 = h.percentile(99);
        assert!((92..=99).contains(&p99), "{p99}");
        assert_eq!(Hist::new().percentile(50), 0);
        let one = Hist::new();
        one.add(7);
        assert_eq!(Summary::of(&one, 1, 1), Summary { p50: 7, p90: 7, p99: 7, max: 7 });
        assert_eq!(scale(3_000, 1, 3), 1_000);
        assert_eq!(scale(5, 1, 0), 0);
    }
}

//! What a mode measured (`Figures`), and how a kind tells it (`Telling`): TINFO lines (`#`
//! diagnostics) ahead of each result in the LTP and KTAP formats, fields of the result in
//! JSON. The kinds write their own (src/races/); what racing kinds share is here.

use super::{Record, Reporter};
use crate::out::{Doc, Line};
use crate::stats::Summary;

/// What one mode on one page size measured.
#[derive(Clone, Copy, Default, Debug)]
pub struct Figures {
    /// Races (or checks) that counted, failed ones included.
    pub iterations: u64,
    pub passed: u64,
    pub failed: u64,
    /// 1 when the racing ended in a race that broke (see race/session.rs), else 0.
    pub broken: u64,
    pub missed: u64,
    pub skew: Summary,
    pub fault_p50: u64,
    pub elapsed_ns: u64,
    /// Time spent in counted and missed races (warm-up laps and restarts left out).
    pub race_ns: u64,
    /// A kind's own duration, p50 (what it times is the kind's: see its module).
    pub own_p50: u64,
    /// A kind's sweep of aims, per entry: (the entry's value, races, failed); `swept`: it
    /// was swept (not one aim fixed).
    pub sweep: [(u64, u64, u64); 12],
    pub swept: bool,
    /// A kind's own numbers (a check's counters), in the kind's order.
    pub own: [u64; 8],
    /// The state every race started from, (free, reserved), once the first race started.
    pub start: Option<(u64, u64)>,
    /// The signal of the first failed race (0: none failed).
    pub signal: u32,
}

impl Figures {
    /// Races that overlapped, of all run (missed ones included), in hundredths of a percent.
    pub fn overlap_x100(&self) -> u64 {
        (self.iterations * 10_000).checked_div(self.iterations + self.missed).unwrap_or(0)
    }
    /// Counted races per second of racing, times 10.
    pub fn rate_x10(&self) -> u64 {
        if self.race_ns == 0 { 0 } else { crate::stats::scale(self.iterations, 10_000_000_000, self.race_ns) }
    }
}

/// How a kind tells its figures: its TINFO lines for a result (LTP, KTAP), and its fields
/// of the result's JSON object after the common ones.
pub struct Telling {
    pub info: fn(&mut Reporter, what: &Line, r: &Record),
    pub json: fn(&mut Doc, &mut Line, r: &Record),
}

impl Reporter<'_> {
    /// The figures line every racing kind shows: races, skew, overlap, fault, rate.
    pub fn racing_figures(&mut self, what: &Line, f: &Figures) {
        self.info(&|l| {
            l.b(what.as_bytes()).f(if f.iterations == 1 { ": {} race, {} failed" } else { ": {} races, {} failed" }, &[f.iterations, f.failed]).f(
                ", skew p50 {}ns p90 {}ns p99 {}ns max {}ns, overlap {.2}% ({} missed and rerun), fault p50 {}ns, {.1} races/s \
                 (percentiles: bucket floors, up to 6% low)",
                &[f.skew.p50, f.skew.p90, f.skew.p99, f.skew.max, f.overlap_x100(), f.missed, f.fault_p50, f.rate_x10()],
            );
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures() {
        let f = Figures { iterations: 200, passed: 200, missed: 2, race_ns: 2_000_000_000, ..Default::default() };
        assert_eq!(f.overlap_x100(), 9900);
        assert_eq!(f.rate_x10(), 1000);
        assert_eq!(Figures::default().overlap_x100(), 0);
    }
}

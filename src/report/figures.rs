//! What a mode measured (`Figures`), and how the LTP and KTAP formats tell it: TINFO lines
//! (`#` diagnostics) ahead of each result. (JSON carries them as fields of the result.)

use super::{Record, Reporter};
use crate::cli::Format;
use crate::out::Line;
use crate::stats::Summary;
use crate::step::Mode;

/// What one mode on one page size measured.
#[derive(Clone, Copy, Default, Debug)]
pub struct Figures {
    pub iterations: u64,
    pub passed: u64,
    pub failed: u64,
    /// 1 when the racing ended in a race that broke (see run/mode.rs), else 0.
    pub broken: u64,
    pub missed: u64,
    pub skew: Summary,
    pub fault_p50: u64,
    pub elapsed_ns: u64,
    /// Time spent in counted and missed races (warm-up laps and restarts left out).
    pub race_ns: u64,
    /// The dontneed race: the madvise's duration (skew then holds when the writer's store
    /// began after the madvise's start).
    pub madvise_p50: u64,
    /// The alloc race's swept start offsets: (ns, races, failed) each; empty if not swept.
    pub offsets: [(u64, u64, u64); 12],
    pub swept: bool,
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

impl Reporter<'_> {
    pub(super) fn figures_info(&mut self, what: &Line, r: &Record) {
        if self.format == Format::Json {
            return;
        }
        let f = &r.figs;
        if r.mode == Mode::Dontneed {
            return self.info(&|l| {
                l.b(what.as_bytes()).f(if f.iterations == 1 { ": {} race, {} failed" } else { ": {} races, {} failed" }, &[f.iterations, f.failed]).f(
                    ", madvise p50 {}ns, the write began p50 {}ns p90 {}ns max {}ns after its start (aimed at 1/12 to 12/12 of it, the failing aims most), \
                     the write's fault p50 {}ns, overlap {.2}% ({} missed and rerun), {.1} races/s",
                    &[f.madvise_p50, f.skew.p50, f.skew.p90, f.skew.max, f.fault_p50, f.overlap_x100(), f.missed, f.rate_x10()],
                );
            });
        }
        if f.swept && f.failed > 0 {
            // Where the kernel's window lies: which of racer 2's start offsets failed races.
            self.info(&|l| {
                let dontneed = r.mode == Mode::Dontneed;
                l.b(what.as_bytes()).s(if dontneed { ": failed races by where the write was aimed in the madvise:" } else { ": failed races by racer 2's start offset:" });
                for (i, &(ns, races, failed)) in f.offsets.iter().enumerate().filter(|o| o.1 .1 > 0) {
                    if dontneed {
                        l.f(" {}/12 {}/{}", &[i as u64 + 1, failed, races]);
                    } else {
                        l.f(" {}ns {}/{}", &[ns, failed, races]);
                    }
                }
            });
        }
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

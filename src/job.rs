//! What the invocation hands a kind for one of its modes on one page size (`Job`), what the
//! kind hands back for the invocation to restore and check (`Frame`), and the clock that
//! turns counter ticks into nanoseconds.

use crate::cli::Config;
use crate::cpus::Allowed;
use crate::parse::Counts;
use crate::pool::Pool;
use crate::sys;

/// The counter clock, for turning racer timestamps into nanoseconds.
#[derive(Clone, Copy)]
pub struct Clock {
    ns: u64,
    ticks: u64,
}

impl Clock {
    pub fn now() -> Clock {
        Clock { ns: sys::monotonic_ns(), ticks: sys::cycles() }
    }
    /// Nanoseconds and counter ticks from `origin` to now: ticks scale to ns by their ratio
    /// (`stats::scale(ticks, ns, ticks)`).
    pub fn scale_since(origin: Clock) -> (u64, u64) {
        let now = Clock::now();
        (now.ns - origin.ns, now.ticks.wrapping_sub(origin.ticks))
    }
}

/// One mode of one kind on one size.
#[derive(Clone, Copy)]
pub struct Job<'a> {
    pub cfg: &'a Config,
    pub size: u64,
    /// The mode: its index among the kind's modes, and its name (the result's name).
    pub mode: usize,
    pub name: &'static str,
    /// The CPUs this process may run on and how many racers to start: None for a kind
    /// that races nothing.
    pub cpus: Option<(&'a Allowed, u32)>,
    /// When the run began, for turning counter ticks into ns.
    pub origin: Clock,
}

/// What a kind leaves for the invocation, which restores the pool after the kind's pages
/// and mappings are gone and checks that it reads as before: the pool it prepared, and the
/// counters before it took anything.
#[derive(Default)]
pub struct Frame {
    pub pool: Option<Pool>,
    pub before: Option<Counts>,
}

//! The dontneed race: `MADV_DONTNEED` on a private hugetlb page unmaps it but frees it only
//! after the TLB flush, and a write fault on the same address in between finds no free page:
//! SIGBUS. One page, the last free one, mapped MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB and
//! populated by the racers' own process (a child's copy of a private mapping has no
//! reservation, so a SIGBUS there would prove nothing); racer 1 madvises, racer 2 writes.
//!
//! Its aim is a fraction of the madvise's measured duration, 1/12 to 12/12, the fractions
//! that failed races chosen most, for where the window lies inside the call depends on the
//! kernel and the machine. A race overlapped when the write faulted (the page was gone)
//! and began before the madvise returned.

use super::given;
use crate::cli::{Config, Error, Key, Racers};
use crate::job::{Frame, Job};
use crate::out::{Doc, Line};
use crate::race::session::{self, Plan};
use crate::race::sweep::{Sweep, ENTRIES};
use crate::race::{Crew, Fault, Judged, Racing, State};
use crate::report::{json, Figures, Record, Reporter, Telling};
use crate::stats::{self, Hist};
use crate::step::{Step, Stop, Verdict};
use crate::sys::{self, k, Mapping, Shared};
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use core::sync::atomic::{AtomicU32, AtomicU64};

/// The race takes exactly two racers (one madvises, one writes), aims the write itself, and
/// races on exactly one free page.
pub(super) fn refuses(cfg: &Config) -> Option<Error> {
    if cfg.racers != Racers::Count(2) || given(cfg, Key::Offset) {
        return Some(Error { msg: "takes 2 racers and aims its own offset: no -n or --offset with race", arg: b"dontneed" });
    }
    if cfg.leave_free != 1 {
        return Some(Error { msg: "the dontneed race needs exactly one free page", arg: b"--leave-free" });
    }
    None
}

pub(super) const TELL: Telling = Telling { info, json };

/// What the racers share beyond the engine's control page.
#[derive(Default)]
struct Aims {
    /// Over twelfths of the madvise: entry b aims at (b + 1) / 12 of it.
    sweep: Sweep,
    /// Ticks after the madvise's start at which the writer stores in the race under way, and
    /// in the race that failed.
    aim: AtomicU64,
    failed_aim: AtomicU64,
    /// The madvise's mean duration so far (ticks), and every duration.
    madvise_ticks: AtomicU64,
    madvise: Hist,
    /// 1 while racer 1 is inside the madvise.
    inside: AtomicU32,
    /// Whether the writer's store faulted (its minor faults moved).
    faulted: AtomicU32,
}

struct Dontneed {
    aims: Shared<Aims, ()>,
}

pub(super) fn run(job: &Job, rep: &mut Reporter, rec: &mut Record, frame: &mut Frame) -> Step<Verdict> {
    let (cfg, size) = (job.cfg, job.size);
    let filled = session::fill(job, frame, cfg.leave_free, &mut rec.msg)?;
    let len = usize::try_from(size).map_err(|_| Stop::sys(&mut rec.msg, "page size", sys::Errno::EINVAL))?;
    // Here only the page's address is held, MAP_NORESERVE, never touched: the racer
    // threads' process maps the page itself, populated (MAP_POPULATE: a page that cannot be
    // had shows in the counters, not as a SIGBUS outside the race).
    let page = Mapping::anon_hugetlb(len, len, k::MAP_NORESERVE)
        .map_err(|e| Stop::sys(&mut rec.msg, "mmap of the page (MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB)", e))?;
    let populate = k::MAP_POPULATE | if cfg.noreserve { k::MAP_NORESERVE } else { 0 };
    let renew = || page.remap_anon_hugetlb(len, populate);
    let aims = Shared::new(1).map_err(|e| Stop::sys(&mut rec.msg, "mmap the aims' page", e))?;
    let me = Dontneed { aims };
    // The page is in use before each race: the last free page, which the madvise is to
    // give back.
    let c = filled.counts;
    let state = State { free: c.free.saturating_sub(1), resv: c.resv, in_use: c.in_use() + 1 };
    session::race(job, rep, rec, frame, &filled, Plan { racing: &me, page: &page, renew: &renew, state })
}

impl Dontneed {
    fn aims(&self) -> &Aims {
        self.aims.head()
    }

    /// Book the race under its twelfth, and aim the next at the sweep's choice.
    fn next_aim(&self, failed: bool, missed: bool) {
        let a = self.aims();
        a.sweep.book(failed, missed);
        let b = a.sweep.choose() as u64;
        a.aim.store(a.madvise_ticks.load(Relaxed) * (b + 1) / ENTRIES as u64, Relaxed);
    }
}

impl Racing for Dontneed {
    fn threads(&self) -> bool {
        true
    }

    /// The first race is aimed at the madvise's start: its duration is not known yet.
    fn first_aim(&self, _: (u64, u64)) {}

    fn arm(&self, _: usize, _: bool) -> u64 {
        sys::minor_faults()
    }

    fn level(&self) -> bool {
        true
    }

    /// Racer 1 drops the page with MADV_DONTNEED; racer 2 waits the aim (ticks after the
    /// start, where the madvise has unmapped the page but may not have freed it yet) and
    /// stores, and notes whether its store faulted.
    #[inline(always)]
    fn step(&self, crew: &Crew, i: usize, real: bool, faults: u64) -> (u64, u64) {
        let a = self.aims();
        if i == 0 {
            let t0 = sys::cycles();
            if real {
                a.inside.store(1, Release);
                let _ = crew.page.madvise(0, crew.page.len(), k::MADV_DONTNEED);
                a.inside.store(0, Release);
            }
            return (t0, sys::cycles());
        }
        let (aim, t) = (a.aim.load(Relaxed), sys::cycles());
        while sys::cycles().wrapping_sub(t) < aim {}
        let t0 = sys::cycles();
        if real {
            crew.page.store_u32(0, 2);
        }
        let t1 = sys::cycles();
        a.faulted.store((sys::minor_faults() != faults) as u32, Relaxed);
        (t0, t1)
    }

    /// Overlapped: the writer's store faulted (so the madvise had unmapped the page already)
    /// and began before the madvise returned (so the page was not yet surely freed).
    fn judge(&self, crew: &Crew, _: u32) -> Judged {
        let a = self.aims();
        let ((a0, a1), (b0, b1)) = (crew.stamps(0), crew.stamps(1));
        let took = a1.wrapping_sub(a0);
        a.madvise.add(took);
        crew.add_skew(b0.saturating_sub(a0));
        crew.add_fault(b1.wrapping_sub(b0));
        let avg = match a.madvise_ticks.load(Relaxed) {
            0 => took,
            m => (m * 7 + took) / 8,
        };
        a.madvise_ticks.store(avg, Relaxed);
        let overlapped = a.faulted.load(Acquire) != 0 && b0 < a1;
        self.next_aim(false, !overlapped);
        if overlapped { Judged::Overlapped } else { Judged::Missed { pause: false } }
    }

    fn lap(&self, _: &Crew, _: u32) {}

    fn failed(&self) {
        let a = self.aims();
        a.failed_aim.store(a.aim.load(Relaxed), Relaxed);
        self.next_aim(true, false);
    }

    /// Whether the madvise is still under way.
    fn at_fault(&self) -> u32 {
        self.aims().inside.load(Acquire)
    }

    /// The page is freed by the madvise, so the count alone cannot tell it from a page
    /// taken by someone else: the kernel is to blame if the madvise was still under way
    /// when the writer's fault was handled (the page not yet given back), or if the page is
    /// free now (nobody took it).
    fn taken_elsewhere(&self, s: &State, f: &Fault) -> Option<&'static str> {
        (f.note == 0 && f.free <= s.free)
            .then_some("the madvise had returned and no page was free at the writer's failure: another process may have taken the page it freed")
    }

    fn blame(&self, l: &mut Line, _: &Fault, scale: (u64, u64)) {
        let aim = stats::scale(self.aims().failed_aim.load(Relaxed), scale.0, scale.1);
        l.f("the kernel failed the writer's fault on the page that MADV_DONTNEED was freeing (the store was aimed {} ns into the madvise)", &[aim]);
    }

    fn racers(&self, l: &mut Line, _: usize) {
        l.s("MADV_DONTNEED and a write, threads of a child process on CPUs ");
    }

    fn figures(&self, f: &mut Figures, scale: (u64, u64)) {
        let a = self.aims();
        f.own_p50 = stats::scale(a.madvise.percentile(50), scale.0, scale.1);
        for (i, e) in f.sweep.iter_mut().enumerate() {
            let (races, failed) = a.sweep.tally(i);
            *e = (i as u64 + 1, races, failed);
        }
        f.swept = true;
    }
}

/// The madvise's duration, and the skew read as when the write began after its start.
fn info(rep: &mut Reporter, what: &Line, r: &Record) {
    let f = &r.figs;
    rep.info(&|l| {
        l.b(what.as_bytes()).f(if f.iterations == 1 { ": {} race, {} failed" } else { ": {} races, {} failed" }, &[f.iterations, f.failed]).f(
            ", madvise p50 {}ns, the write began p50 {}ns p90 {}ns max {}ns after its start (aimed at 1/12 to 12/12 of it, the failing aims most), \
             the write's fault p50 {}ns, overlap {.2}% ({} missed and rerun), {.1} races/s",
            &[f.own_p50, f.skew.p50, f.skew.p90, f.skew.max, f.fault_p50, f.overlap_x100(), f.missed, f.rate_x10()],
        );
    });
}

fn json(doc: &mut Doc, l: &mut Line, r: &Record) {
    json::racing_fields(doc, l, r);
    l.f(",\"madvise_ns_p50\":{}", &[r.figs.own_p50]);
    // The entries are twelfths of the madvise's duration, not ns.
    json::sweep_fields(doc, l, &r.figs, "\"aims\":{\"twelfths\"");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_took_the_page() {
        let me = Dontneed { aims: Shared::new(1).unwrap() };
        let fault = |free, note| Fault { racer: 1, cpu: 1, sig: 7, code: 2, addr: 0, iteration: 1, winners: 1, total: 5, free, note };
        // Its page in use before each race, none free.
        let s = State { free: 0, resv: 0, in_use: 5 };
        assert_eq!(me.taken_elsewhere(&s, &fault(0, 1)), None, "the madvise still held the page");
        assert_eq!(me.taken_elsewhere(&s, &fault(1, 0)), None, "the page came back and is free");
        assert!(me.taken_elsewhere(&s, &fault(0, 0)).is_some(), "freed, then gone");
    }
}

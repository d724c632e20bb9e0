//! The alloc-instantiate race (libhugetlbfs's `alloc-instantiate-race`): racers pinned to
//! distinct CPUs fault the last free hugepage at once, and a kernel that does not serialise
//! the allocation and the instantiation fails the loser's fault with SIGBUS although the
//! winner is instantiating the very page it wants.
//!
//! Modes: shared (racer processes, the page MAP_SHARED from the file, renewed by a hole
//! punch and a new mapping) and private (racer threads of one child process, which maps the
//! page MAP_PRIVATE itself: a private reservation is not inherited; renewed by a fresh
//! mapping). Every race starts from the original test's state: the contested page reserved,
//! not instantiated. Its aim is an offset: racers 2.. start that many ns after racer 1.

use crate::cli::{Config, Error};
use crate::hugefile::HugeFile;
use crate::job::{Frame, Job};
use crate::out::{Doc, Line};
use crate::race::session::{self, Plan};
use crate::race::sweep::{Sweep, ENTRIES};
use crate::race::{Crew, Fault, Judged, Racing, State, WARMUP};
use crate::report::{json, Figures, Record, Reporter, Telling};
use crate::step::{Step, Stop, Verdict};
use crate::sys::{self, k, Mapping, Shared};
use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering::Relaxed;

/// It honours every option.
pub(super) fn refuses(_: &Config) -> Option<Error> {
    None
}

pub(super) const TELL: Telling = Telling { info, json };

/// Racers 2..'s start offsets after racer 1, in ns, swept race by race unless --offset fixes
/// one. The narrow window between the winner's allocation and its instantiation wants the
/// loser a little behind, not level (on the narrow mutant under TCG, private races failed
/// 24% level and 64-67% at 0.3-1 µs behind), and how far behind depends on the machine:
/// each entry is tried, and the more often one has failed races, the more often it is tried
/// (on a sound kernel none fails: the sweep stays even). Log-spaced up to 102 µs: a window
/// of a few µs on hardware is ten to fifty times as long under emulation.
const OFFSETS_NS: [u64; ENTRIES] = [0, 100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 102400];

/// Racers whose warm-up laps probe how the machine lets faults into the kernel, each with a
/// page of its own, 2M apart so that no two share a page table (or its lock).
const PROBES: usize = 16;
const PROBE_STRIDE: usize = 2 << 20;
/// The entry gap is the quickest probe fault divided by this. Against 2, pooled over two
/// runs of 3 boots each with libhugetlbfs's test in the image: shared 96.2% against 93.6% on
/// x86_64-narrow and 88.5% against 86.6% on x86_64-unlocked; private 85.0% against 77.8%
/// and 97.3% against 92.9%. One-off runs of 3 boots move by +-3 points (README).
const GAP_DIV: u64 = 4;
/// The entry gap is never more than this many ticks (tens of µs at any counter rate).
const GAP_MAX: u64 = 1 << 17;

/// What the racers share beyond the engine's control page.
#[derive(Default)]
struct Aims {
    sweep: Sweep,
    /// Counter ticks racers 2.. wait after the start line in the race under way.
    aim: AtomicU64,
    /// The entry gap: ticks racer i waits i times on top of the aim, a quarter of the
    /// quickest fault the warm-up laps' probes took. Level stores do not make level faults
    /// everywhere: QEMU's TCG delivers every guest exception under its one big lock, so two
    /// stores that fault within a microsecond queue there and the second enters the kernel
    /// 10-40 µs late (boot/hugetlb-narrow-stamps.patch: racers level within 0.2 µs at the
    /// store trapped 17 µs apart at p50), far outside the window. A quarter of a fault (2-3.5 µs
    /// under TCG) lets the first delivery out before the next comes and stays well inside
    /// the window; where faults enter in parallel (hardware, KVM) it is under a microsecond.
    gap: AtomicU64,
    /// The quickest probe fault of this start's warm-up laps, in ticks.
    quickest: AtomicU64,
    /// ns to counter ticks: ticks = ns * tick_num / tick_den, measured at the first start.
    tick_num: AtomicU64,
    tick_den: AtomicU64,
}

struct Alloc {
    shared: bool,
    /// --offset: Some(ns) in every race (0: level), None: swept over OFFSETS_NS.
    offset_ns: Option<u64>,
    aims: Shared<Aims, ()>,
    /// The racers' probe pages (private: each racer process has its own copy; threads
    /// each use their own page).
    probe: Mapping,
}

pub(super) fn run(job: &Job, rep: &mut Reporter, rec: &mut Record, frame: &mut Frame) -> Step<Verdict> {
    let (cfg, shared) = (job.cfg, job.mode == 0);
    let filled = session::fill(job, frame, cfg.leave_free, &mut rec.msg)?;
    let page = map_contested(&filled.file, filled.take, shared, cfg.noreserve, &mut rec.msg)?;
    let renew = || filled.file.renew(&page, shared, cfg.noreserve);
    let aims = Shared::new(1).map_err(|e| Stop::sys(&mut rec.msg, "mmap the aims' page", e))?;
    let probe = Mapping::anon(PROBES * PROBE_STRIDE, false).map_err(|e| Stop::sys(&mut rec.msg, "mmap the probe pages", e))?;
    // A transparent hugepage would make a probe fault a 2M clear.
    let _ = probe.madvise(0, probe.len(), k::MADV_NOHUGEPAGE);
    let me = Alloc { shared, offset_ns: cfg.offset_ns, aims, probe };
    // Every race starts from the original test's state: the free pages as filled, and the
    // contested page reserved by its mapping (unless --noreserve).
    let c = filled.counts;
    let state = State { free: c.free, resv: c.resv + !cfg.noreserve as u64, in_use: c.in_use() };
    session::race(job, rep, rec, frame, &filled, Plan { racing: &me, page: &page, renew: &renew, state })
}

/// The contested page, after the filled ones. Shared: mapped here, MAP_SHARED, which
/// reserves it on the file; the racer processes inherit the mapping. Private: the racer
/// threads' process maps it itself (a private reservation is not inherited); here only its
/// address is held, MAP_NORESERVE, never touched, so that it reserves nothing.
fn map_contested(file: &HugeFile, take: u64, shared: bool, noreserve: bool, why: &mut Line) -> Step<Mapping> {
    file.map(take, 1, shared, noreserve || !shared).map_err(|e| {
        Stop::brok(why.s("mmap of the contested page (").s(if shared { "MAP_SHARED" } else { "MAP_PRIVATE" }).s("): ").errno(e))
    })
}

impl Alloc {
    fn aims(&self) -> &Aims {
        self.aims.head()
    }

    fn ticks(&self, ns: u64) -> u64 {
        let a = self.aims();
        ns.saturating_mul(a.tick_num.load(Relaxed)) / a.tick_den.load(Relaxed).max(1)
    }

    /// Book the race under its offset, then aim the next: --offset's, or the sweep's choice.
    fn next_aim(&self, failed: bool, missed: bool) {
        let a = self.aims();
        a.sweep.book(failed, missed);
        let ns = match self.offset_ns {
            Some(ns) => ns,
            None => OFFSETS_NS[a.sweep.choose()],
        };
        a.aim.store(self.ticks(ns), Relaxed);
    }
}

impl Racing for Alloc {
    fn threads(&self) -> bool {
        !self.shared
    }

    /// Measure the counter's rate against CLOCK_MONOTONIC over at least 2 ms from `t0`
    /// (offsets are given in ns, raced in ticks), and aim the first race. Level races (the
    /// default) need no ratio and take no 2 ms for it.
    fn first_aim(&self, t0: (u64, u64)) {
        let a = self.aims();
        if a.tick_den.load(Relaxed) != 0 {
            // A restart (--keep-going): the race that failed chose the next offset already.
            return;
        }
        if self.offset_ns == Some(0) {
            a.tick_num.store(1, Relaxed);
            a.tick_den.store(1, Relaxed);
        } else {
            let spent = sys::monotonic_ns().saturating_sub(t0.0);
            if spent < 2_000_000 {
                sys::sleep_ns(2_000_000 - spent);
            }
            let (ns, ticks) = (sys::monotonic_ns().saturating_sub(t0.0), sys::cycles().wrapping_sub(t0.1));
            // Kept below 2^32 so that an offset times the ratio cannot overflow.
            let shift = (64 - ns.max(ticks).leading_zeros()).saturating_sub(32);
            a.tick_num.store((ticks >> shift).max(1), Relaxed);
            a.tick_den.store((ns >> shift).max(1), Relaxed);
        }
        a.aim.store(self.ticks(self.offset_ns.unwrap_or(0)), Relaxed);
    }

    /// A warm-up lap's probe page is dropped first, so that its store faults.
    fn arm(&self, i: usize, real: bool) -> u64 {
        if !real && i < PROBES {
            let _ = self.probe.madvise(i * PROBE_STRIDE, 4096, k::MADV_DONTNEED);
        }
        0
    }

    fn level(&self) -> bool {
        self.aims().aim.load(Relaxed) == 0
    }

    /// The contested write, stamped on both sides; racers 2.. start the race's offset and i
    /// entry gaps behind racer 1. A warm-up lap's step is a level store to the racer's own
    /// probe page instead: a fault that measures the machine's entry.
    #[inline(always)]
    fn step(&self, crew: &Crew, i: usize, real: bool, _: u64) -> (u64, u64) {
        if i > 0 && real {
            let a = self.aims();
            let wait = a.aim.load(Relaxed) + a.gap.load(Relaxed) * i as u64;
            let t = sys::cycles();
            while sys::cycles().wrapping_sub(t) < wait {}
        }
        let t0 = sys::cycles();
        if real {
            crew.page.store_u32(0, i as u32 + 1);
        } else if i < PROBES {
            self.probe.store_u32(i * PROBE_STRIDE, 1);
        }
        (t0, sys::cycles())
    }

    /// Overlapped: every racer was inside its write at one moment (the last started before
    /// the first finished).
    fn judge(&self, crew: &Crew, g: u32) -> Judged {
        let j = crew.judge_stamps();
        let level = self.level();
        // The start skew is the rendezvous's: measured on races that start level, less the
        // entry gaps (which the laps' level probes tuned the delay without).
        if level {
            let gap = self.aims().gap.load(Relaxed);
            if gap == 0 {
                crew.add_skew(j.skew());
                crew.tune_delay(g);
            } else {
                crew.add_skew(level_skew(crew, gap));
            }
        }
        crew.add_fault(j.fault);
        let ok = j.overlapped();
        self.next_aim(false, !ok);
        if ok { Judged::Overlapped } else { Judged::Missed { pause: level } }
    }

    /// Tune the rendezvous and book the lap's probe faults; after the last lap, set the
    /// entry gap.
    fn lap(&self, crew: &Crew, g: u32) {
        crew.tune_delay(g);
        let a = self.aims();
        if g == 1 {
            a.quickest.store(u64::MAX, Relaxed);
        }
        for i in 0..crew.racers().min(PROBES) {
            let (t0, t1) = crew.stamps(i);
            a.quickest.fetch_min(t1.wrapping_sub(t0), Relaxed);
        }
        if g == WARMUP {
            let q = a.quickest.load(Relaxed);
            a.gap.store(if q == u64::MAX { 0 } else { (q / GAP_DIV).min(GAP_MAX) }, Relaxed);
        }
    }

    fn failed(&self) {
        self.next_aim(true, false);
    }

    fn at_fault(&self) -> u32 {
        0
    }

    /// More pages in use at the fault than the fill left in use plus the page a winner took.
    fn taken_elsewhere(&self, s: &State, f: &Fault) -> Option<&'static str> {
        (f.total.saturating_sub(f.free) > s.in_use + f.winners.min(1)).then_some("another process took the last hugepage")
    }

    fn blame(&self, l: &mut Line, _: &Fault, _: (u64, u64)) {
        l.s("the kernel failed the fault on the last free hugepage");
    }

    fn racers(&self, l: &mut Line, n: usize) {
        l.f(if self.shared { "{} processes on CPUs " } else { "{} threads of a child process on CPUs " }, &[n as u64]);
    }

    /// Beside the sweep, own[0]: the last start's entry gap in ns.
    fn figures(&self, f: &mut Figures, (num, den): (u64, u64)) {
        f.own[0] = crate::stats::scale(self.aims().gap.load(Relaxed), num, den);
        for (i, e) in f.sweep.iter_mut().enumerate() {
            let (races, failed) = self.aims().sweep.tally(i);
            *e = (OFFSETS_NS[i], races, failed);
        }
        f.swept = self.offset_ns.is_none();
    }
}

/// A level race's start skew, racer i's start less its i entry gaps.
fn level_skew(crew: &Crew, gap: u64) -> u64 {
    let (mut lo, mut hi) = (u64::MAX, 0u64);
    for i in 0..crew.racers() {
        let t = crew.stamps(i).0.wrapping_sub(gap.wrapping_mul(i as u64));
        (lo, hi) = (lo.min(t), hi.max(t));
    }
    hi.wrapping_sub(lo)
}

fn info(rep: &mut Reporter, what: &Line, r: &Record) {
    let f = &r.figs;
    if f.swept && f.failed > 0 {
        // Where the kernel's window lies: which of racer 2's start offsets failed races.
        rep.info(&|l| {
            l.b(what.as_bytes()).s(": failed races by racer 2's start offset:");
            for &(ns, races, failed) in f.sweep.iter().filter(|o| o.1 > 0) {
                l.f(" {}ns {}/{}", &[ns, failed, races]);
            }
        });
    }
    rep.racing_figures(what, f);
    rep.info(&|l| {
        l.b(what.as_bytes()).f(": racers 2.. started {}ns apart at the level start (the entry gap: a quarter of the quickest fault the warm-up laps took)", &[f.own[0]]);
    });
}

fn json(doc: &mut Doc, l: &mut Line, r: &Record) {
    json::racing_fields(doc, l, r);
    l.f(",\"entry_gap_ns\":{}", &[r.figs.own[0]]);
    if r.figs.swept {
        json::sweep_fields(doc, l, &r.figs, "\"offsets\":{\"ns\"");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(winners: u64, total: u64, free: u64, note: u32) -> Fault {
        Fault { racer: 1, cpu: 1, sig: 7, code: 2, addr: 0, iteration: 1, winners, total, free, note }
    }

    #[test]
    fn who_took_the_page() {
        let me = Alloc { shared: true, offset_ns: Some(0), aims: Shared::new(1).unwrap(), probe: Mapping::anon(4096, false).unwrap() };
        // 4 pages in use after the fill, 1 left free.
        let s = State { free: 1, resv: 1, in_use: 4 };
        assert_eq!(me.taken_elsewhere(&s, &fault(1, 5, 0, 0)), None, "the winner holds the last page");
        assert_eq!(me.taken_elsewhere(&s, &fault(0, 5, 1, 0)), None, "nobody took it: the kernel failed");
        assert!(me.taken_elsewhere(&s, &fault(0, 5, 0, 0)).is_some(), "no winner, yet the last page is gone");
        assert!(me.taken_elsewhere(&s, &fault(1, 6, 0, 0)).is_some(), "the pool grew and was taken");
    }
}

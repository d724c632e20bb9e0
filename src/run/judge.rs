//! What a mode's outcome means: whose doing a fault was, the figures, the verdict, and
//! whether the pool came back as it was.

use crate::out::Line;
use crate::parse::Counts;
use crate::pool::Pool;
use crate::race::{self, Crew};
use crate::report::Record;
use crate::stats::Summary;
use crate::step::{Mode, Res, Step, Stop, Verdict};
use crate::sys::{self, k};
use core::sync::atomic::Ordering::Relaxed;

/// The counter clock, for turning racer timestamps into nanoseconds.
#[derive(Clone, Copy)]
pub(super) struct Clock {
    ns: u64,
    ticks: u64,
}

impl Clock {
    pub(super) fn now() -> Clock {
        Clock { ns: sys::monotonic_ns(), ticks: sys::cycles() }
    }
    /// Nanoseconds and counter ticks from `origin` to this: ticks scale to ns by their ratio.
    fn since(self, origin: Clock) -> (u64, u64) {
        (self.ns - origin.ns, self.ticks.wrapping_sub(origin.ticks))
    }
}


/// The state each race starts from, and what the fill left in use.
#[derive(Clone, Copy)]
pub(super) struct State {
    pub(super) free: u64,
    pub(super) resv: u64,
    /// Pages in use before a race (ours and anybody else's at the fill).
    pub(super) in_use: u64,
    pub(super) dontneed: bool,
}


/// A racer (or private mode's racer process) died of a signal the race does not catch.
/// SIGKILL while the kernel's OOM killer ran is this bug's historic symptom: TFAIL. Any
/// other death is TBROK naming the signal.
pub(super) fn killed(d: &race::Death, why: &mut Line, failed: &mut u64) -> Step<Verdict> {
    race::death_line(why, d);
    match d.oom_kills {
        Some(k) if k > 0 && d.sig == k::SIGKILL && d.oom_victim != Some(false) => {
            *failed += 1;
            why.f(" while the kernel's OOM killer killed {} process(es) (oom_kill in /proc/vmstat): the fault on the last free hugepage ended in an OOM kill", &[k]);
            Ok(Verdict::Fail)
        }
        _ if d.sig == 0 => Err(Stop::brok(why.s(" before the run ended"))),
        _ => Err(Stop::brok(why.s(" from outside, not by the kernel's fault handling"))),
    }
}

/// Blame the kernel's race only when nothing else explains the SIGBUS: a hugetlb cgroup
/// limit that refused the page (its failure counters moved), or another process that held
/// more hugepages at the failure than when the pool was filled.
pub(super) fn explained(size: u64, refused_before: Option<u64>, s: &State, f: &race::Fault, why: &mut Line) -> Step<()> {
    if let (Some(b), Some(a)) = (refused_before, crate::cgroup::failures(size))
        && a > b
    {
        why.f(
            "inconclusive: this process's hugetlb cgroup (or a parent) refused {} {size} charge(s) during the run (its limit, not the race); ",
            &[a - b, size],
        );
        fault_facts(why, f);
        return Err(Stop::brok(why));
    }
    if let Some(why_not) = taken_elsewhere(s, f) {
        why.s("inconclusive: ").s(why_not).f(" ({} {size} pages in use, {} free at the failure; ", &[f.total.saturating_sub(f.free), size, f.free]);
        fault_facts(why, f);
        why.c(b')');
        return Err(Stop::brok(why));
    }
    Ok(())
}

/// Whether the pool at the moment of the fault says another process took the page. The
/// alloc race: more pages in use than the fill left in use plus the page a winner took. The
/// dontneed race: its page is freed by the madvise, so the count alone cannot tell it from a
/// page taken by someone else; the kernel is to blame if the madvise was still under way
/// when the writer's fault was handled (the page not yet given back), or if the page is
/// free now (nobody took it).
fn taken_elsewhere(s: &State, f: &race::Fault) -> Option<&'static str> {
    if f.total == 0 {
        return None;
    }
    let in_use = f.total.saturating_sub(f.free);
    if s.dontneed {
        return (!f.madvise_inside && f.free <= s.free).then_some("the madvise had returned and no page was free at the writer's failure: another process may have taken the page it freed");
    }
    (in_use > s.in_use + f.winners.min(1)).then_some("another process took the last hugepage")
}

/// The figures of a mode's racing. The racers count the races that overlapped (passed) or
/// faulted; the supervisor judged the faults (`failed`), counted the failures the racers
/// could not (`killed`: a racer the OOM killer took) and voided the faults something else
/// explains (`void`). `broke`: whether the racing ended in a race that broke.
#[allow(clippy::too_many_arguments)]
pub(super) fn figures(rec: &mut Record, crew: &Crew, failed: u64, killed: u64, void: u64, broke: bool, t0: u64, origin: Clock) {
    let f = &mut rec.figs;
    let t = crew.tally();
    f.elapsed_ns = sys::monotonic_ns() - t0;
    f.race_ns = t.race_ns;
    f.iterations = (t.races + killed).saturating_sub(void);
    f.failed = failed;
    f.passed = t.passed;
    f.broken = broke as u64;
    f.missed = t.missed;
    let (num, den) = Clock::now().since(origin);
    f.skew = Summary::of(t.skew, num, den);
    f.fault_p50 = crate::stats::scale(t.fault.percentile(50), num, den);
    f.madvise_p50 = crate::stats::scale(t.madvise.percentile(50), num, den);
    f.swept = t.swept;
    for (i, o) in f.offsets.iter_mut().enumerate() {
        *o = (t.offsets[i], t.offset_races[i].load(Relaxed) as u64, t.offset_failed[i].load(Relaxed) as u64);
    }
}

/// The result line of a mode whose races all ran: TPASS, or TFAIL with the first failure.
pub(super) fn verdict(rec: &mut Record, first: Option<race::Fault>, failed: u64, want: u64, origin: Clock) -> Verdict {
    let (races, missed) = (rec.figs.iterations, rec.figs.missed);
    let l = &mut rec.msg;
    let Some(x) = first else {
        l.f(if races == 1 { "no SIGBUS in {} race" } else { "no SIGBUS in {} races" }, &[races]);
        l.f(" of {} racers on the last free hugepage ({} overlapped, {} missed and rerun)", &[rec.racers as u64, races, missed]);
        return Verdict::Pass;
    };
    fault_facts(l, &x);
    if want > 0 {
        l.f(" of {}", &[want]);
    }
    if rec.mode == Mode::Dontneed {
        let (num, den) = Clock::now().since(origin);
        l.f(
            ": the kernel failed the writer's fault on the page that MADV_DONTNEED was freeing (the store was aimed {} ns into the madvise)",
            &[crate::stats::scale(x.aim, num, den)],
        );
    } else {
        l.s(": the kernel failed the fault on the last free hugepage");
    }
    if failed > 1 || races > x.iteration {
        l.f("; {} of {} races failed", &[failed, races]);
    }
    Verdict::Fail
}

/// "racer 2 on CPU 1 got SIGBUS (BUS_ADRERR) at 0x7f0000000000 in race 3"
fn fault_facts(l: &mut Line, x: &race::Fault) {
    l.f("racer {} on CPU {} got ", &[x.racer as u64 + 1, x.cpu as u64]).sig(x.sig);
    if x.sig == k::SIGBUS && !sys::bus_code(x.code).is_empty() {
        l.s(" (").s(sys::bus_code(x.code)).c(b')');
    } else {
        l.s(" (si_code ").i(x.code as i64).c(b')');
    }
    l.f(" at {hex} in race {}", &[x.addr, x.iteration]);
}

/// After a mode, with every page of ours given back, the pool must read as before it.
/// Pages are freed as their last user goes, which may lag a little: a mismatch is read
/// again for up to a second before it is judged.
pub(super) fn judge_returned(pool: &Pool, before: &Counts, rec: &mut Record) {
    let mut c = *before;
    for _ in 0..10 {
        match pool.counts() {
            Ok(now) => c = now,
            Err(_) => return,
        }
        if returned(before, &c, false).is_none() {
            return;
        }
        sys::sleep_ns(100_000_000);
    }
    let Some(res) = returned(before, &c, crate::others::map_hugetlb(pool.size)) else { return };
    let size = pool.size;
    let mut msg = Line::new();
    let d = c.resv as i64 - before.resv as i64;
    match res {
        Res::Fail => msg.s(if d > 0 { "the kernel leaked " } else { "the kernel's reservation count fell by " }).f("{} {size} reservation(s) in the race: ", &[d.unsigned_abs(), size]),
        _ => msg.s("inconclusive: another process uses these hugepages: "),
    };
    msg.f("after the run the pool reads total {}, free {}, reserved {}; before it {}, {}, {}", &[c.total, c.free, c.resv, before.total, before.free, before.resv]);
    if rec.res == Res::Pass {
        (rec.res, rec.msg) = (res, msg);
    } else {
        rec.msg.s("; ").b(msg.as_bytes());
    }
}

/// What the pool after a mode says, against before it: None when it is back as it was. A
/// reservation count that moved while the pages did not, and that no other process's
/// hugetlb mapping can hold, is a leak (or an underflow) in the kernel's accounting, made
/// by the race: TFAIL. Anything else that moved is another process's doing: TBROK.
fn returned(before: &Counts, after: &Counts, others_map: bool) -> Option<Res> {
    if after.resv == before.resv && after.free == before.free {
        return None;
    }
    let pages_same = after.total == before.total && after.in_use() == before.in_use();
    Some(if pages_same && after.resv != before.resv && !others_map { Res::Fail } else { Res::Brok })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(winners: u64, total: u64, free: u64, madvise_inside: bool) -> race::Fault {
        race::Fault { racer: 1, cpu: 1, sig: 7, code: 2, addr: 0, iteration: 1, winners, total, free, aim: 0, madvise_inside }
    }

    #[test]
    fn who_took_the_page() {
        // The alloc race: 4 pages in use after the fill, 1 left free.
        let alloc = State { free: 1, resv: 1, in_use: 4, dontneed: false };
        assert_eq!(taken_elsewhere(&alloc, &fault(1, 5, 0, false)), None, "the winner holds the last page");
        assert_eq!(taken_elsewhere(&alloc, &fault(0, 5, 1, false)), None, "nobody took it: the kernel failed");
        assert!(taken_elsewhere(&alloc, &fault(0, 5, 0, false)).is_some(), "no winner, yet the last page is gone");
        assert!(taken_elsewhere(&alloc, &fault(1, 6, 0, false)).is_some(), "the pool grew and was taken");
        assert_eq!(taken_elsewhere(&alloc, &fault(0, 0, 0, false)), None, "no counts: no judgement");
        // The dontneed race: its page in use before each race, none free.
        let dn = State { free: 0, resv: 0, in_use: 5, dontneed: true };
        assert_eq!(taken_elsewhere(&dn, &fault(1, 5, 0, true)), None, "the madvise still held the page");
        assert_eq!(taken_elsewhere(&dn, &fault(1, 5, 1, false)), None, "the page came back and is free");
        assert!(taken_elsewhere(&dn, &fault(1, 5, 0, false)).is_some(), "freed, then gone");
    }

    #[test]
    fn what_the_pool_after_a_mode_says() {
        let c = |total, free, resv| Counts { total, free, resv, surplus: 0 };
        let before = c(4, 4, 0);
        assert_eq!(returned(&before, &c(4, 4, 0), false), None);
        // A reservation nobody holds: leaked by the kernel.
        assert_eq!(returned(&before, &c(4, 4, 1), false), Some(Res::Fail));
        // Underflowed.
        assert_eq!(returned(&c(4, 4, 1), &c(4, 4, 0), false), Some(Res::Fail));
        // ...unless another process maps such pages: it may hold the reservation.
        assert_eq!(returned(&before, &c(4, 4, 1), true), Some(Res::Brok));
        // Pages in use or a pool that changed: another process.
        assert_eq!(returned(&before, &c(4, 3, 0), false), Some(Res::Brok));
        assert_eq!(returned(&before, &c(5, 5, 1), false), Some(Res::Brok));
    }
}


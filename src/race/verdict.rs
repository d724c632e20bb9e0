//! What a racing mode's outcome means: whose doing a racer's death or fault was, the figures,
//! and the verdict. What is the kind's to say (who else may have taken the page, what the
//! kernel failed, its own figures) its `Racing` says.

use super::{Death, Fault, Racing, State};
use crate::job::Clock;
use crate::out::Line;
use crate::report::Record;
use crate::stats::{self, Summary};
use crate::step::{Step, Stop, Verdict};
use crate::sys::{self, k};

/// A racer (or the racer threads' process) died of a signal the race does not catch.
/// SIGKILL while the kernel's OOM killer ran is the fault's historic symptom: TFAIL. Any
/// other death is TBROK naming the signal.
pub(super) fn killed(d: &Death, why: &mut Line, failed: &mut u64) -> Step<Verdict> {
    super::death_line(why, d);
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

/// Blame the kernel only when nothing else explains the SIGBUS: a hugetlb cgroup limit that
/// refused the page (its failure counters moved), or, as the kind reads the pool at the
/// fault, another process that took the page.
pub(super) fn explained(size: u64, refused_before: Option<u64>, racing: &dyn Racing, s: &State, f: &Fault, why: &mut Line) -> Step<()> {
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
    if f.total == 0 {
        // No counts at the fault: no judgement.
        return Ok(());
    }
    if let Some(why_not) = racing.taken_elsewhere(s, f) {
        why.s("inconclusive: ").s(why_not).f(" ({} {size} pages in use, {} free at the failure; ", &[f.total.saturating_sub(f.free), size, f.free]);
        fault_facts(why, f);
        why.c(b')');
        return Err(Stop::brok(why));
    }
    Ok(())
}

/// The figures of a mode's racing. The racers count the races that overlapped (passed) or
/// faulted; the supervisor judged the faults (`failed`), counted the failures the racers
/// could not (`killed`: a racer the OOM killer took) and voided the faults something else
/// explains (`void`). `broke`: whether the racing ended in a race that broke.
#[allow(clippy::too_many_arguments)]
pub(super) fn figures(rec: &mut Record, crew: &super::Crew, failed: u64, killed: u64, void: u64, broke: bool, t0: u64, origin: Clock) {
    let f = &mut rec.figs;
    let t = crew.tally();
    f.elapsed_ns = sys::monotonic_ns() - t0;
    f.race_ns = t.race_ns;
    f.iterations = (t.races + killed).saturating_sub(void);
    f.failed = failed;
    f.passed = t.passed;
    f.broken = broke as u64;
    f.missed = t.missed;
    let (num, den) = Clock::scale_since(origin);
    f.skew = Summary::of(t.skew, num, den);
    f.fault_p50 = stats::scale(t.fault.percentile(50), num, den);
    crew.racing.figures(f, (num, den));
}

/// The result line of a mode whose races all ran: TPASS, or TFAIL with the first failure.
pub(super) fn verdict(rec: &mut Record, racing: &dyn Racing, first: Option<Fault>, failed: u64, want: u64, origin: Clock) -> Verdict {
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
    l.s(": ");
    racing.blame(l, &x, Clock::scale_since(origin));
    if failed > 1 || races > x.iteration {
        l.f("; {} of {} races failed", &[failed, races]);
    }
    Verdict::Fail
}

/// "racer 2 on CPU 1 got SIGBUS (BUS_ADRERR) at 0x7f0000000000 in race 3"
fn fault_facts(l: &mut Line, x: &Fault) {
    l.f("racer {} on CPU {} got ", &[x.racer as u64 + 1, x.cpu as u64]).sig(x.sig);
    if x.sig == k::SIGBUS && !sys::bus_code(x.code).is_empty() {
        l.s(" (").s(sys::bus_code(x.code)).c(b')');
    } else {
        l.s(" (si_code ").i(x.code as i64).c(b')');
    }
    l.f(" at {hex} in race {}", &[x.addr, x.iteration]);
}

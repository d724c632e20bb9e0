//! One racing kind's mode on one size, the steps the engine takes for every kind: the pool,
//! the file and the fill (`fill`), then, with the page and the plan the kind made, the
//! racers: started, raced, started again after a failed race under --keep-going, judged.

use super::verdict;
use super::{Crew, Outcome, Race, Racing, Renew, State};
use crate::cpus;
use crate::hugefile::HugeFile;
use crate::job::{Frame, Job};
use crate::out::Line;
use crate::parse::Counts;
use crate::pool::{self, Policy, Pool};
use crate::report::{Record, Reporter};
use crate::step::{Res, Step, Stop, Verdict};
use crate::sys::{self, Mapping};

/// What the fill left: the file, the pages taken, the counters after.
pub struct Filled {
    pub file: HugeFile,
    pub take: u64,
    pub counts: Counts,
}

/// What a racing kind hands the engine for one mode on one size.
pub struct Plan<'a> {
    pub racing: &'a dyn Racing,
    /// The contested page (in the racer threads' process, only its address: the process
    /// maps it itself with `renew`).
    pub page: &'a Mapping,
    pub renew: Renew<'a>,
    /// The state every race starts from.
    pub state: State,
}

/// The pool of the job's size with at least two pages available (so that a race is for the
/// last of several) and no overcommit, a hugetlb file, and every available page but `leave`
/// instantiated in it, the counters read right before and after. (Every kind starts so:
/// the checks too, with the pages they need left.)
pub fn fill(job: &Job, frame: &mut Frame, leave: u64, why: &mut Line) -> Step<Filled> {
    let cfg = job.cfg;
    let pool = frame.pool.insert(Pool::prepare(job.size, leave.max(2), Policy { may_change: !cfg.no_pool_change }, why)?);
    frame.before = Some(pool.read(why)?);
    let mut file = HugeFile::open(job.size, cfg.hugetlbfs, !cfg.no_memfd, why)?;
    let c = pool.read(why)?;
    let take = c.available().checked_sub(leave).filter(|_| c.available() >= leave.max(2)).ok_or_else(|| {
        Stop::brok(why.f("the pool changed under us: {} pages available, needed {}", &[c.available(), leave.max(2)]))
    })?;
    file.set_len(take + 1).map_err(|e| Stop::sys(why, "ftruncate", e))?;
    file.fill(take).map_err(|e| {
        Stop::brok(why.f("instantiating {} pages failed: {errno} (the pool changed under us, or a hugetlb cgroup limit?)", &[take, e.0 as u64]))
    })?;
    let counts = pool.read(why)?;
    if counts.available() != leave {
        return Err(Stop::brok(
            why.f("the pool changed under us: after taking {} pages, {} are available, expected {}", &[take, counts.available(), leave]),
        ));
    }
    Ok(Filled { file, take, counts })
}

/// Race the plan: start the racers, race, and after a failed race under --keep-going
/// start them again from the same state; then judge.
pub fn race(job: &Job, rep: &mut Reporter, rec: &mut Record, frame: &Frame, filled: &Filled, plan: Plan) -> Step<Verdict> {
    let Some((_, n)) = job.cpus else { return Err(Stop::brok(rec.msg.s("no CPUs to race on"))) };
    let crew = Crew::new(plan.racing, job.size, plan.page, plan.renew, n as usize, job.cfg.rt, &mut rec.msg)?;
    crew.expect(plan.state.free, plan.state.resv);
    let mut say = |race: &Race, rec: &Record| {
        let (cfg, size, take, file) = (job.cfg, job.size, filled.take, &filled.file);
        rep.info(&|l| {
            l.s(job.name).f(if take == 1 { " {size}: took {} page with " } else { " {size}: took {} pages with " }, &[size, take]).s(file.source_name());
            if !file.dir.bytes().is_empty() {
                l.s(" on ").b(file.dir.bytes());
            }
            l.f(", {} left free; pool ", &[cfg.leave_free]);
            match &frame.pool {
                Some(p) if p.raised_by > 0 => l.f("raised by {} (restored afterwards)", &[p.raised_by]),
                _ => l.s("unchanged"),
            };
            l.s("; ");
            plan.racing.racers(l, n as usize);
            l.b(rec.cpus.as_bytes()).f("; each race starts with {} free, {} reserved", &[plan.state.free, plan.state.resv]);
        });
        if cfg.rt && race.rt_refused() {
            rep.info(&|l| {
                l.s("--rt: SCHED_FIFO not permitted here; racing at normal priority");
            });
        }
    };
    release_racers(job, rec, &crew, &plan, &mut say)
}

/// Release the racers until the races are run, or a failure ends them.
// Kept out of line on i686 only: inlined there, its 64-bit counts cost 1.9 KB more code
// (elsewhere inlining it is the smaller choice: ppc64 +0.9 KB out of line).
#[cfg_attr(target_arch = "x86", inline(never))]
fn release_racers(job: &Job, rec: &mut Record, crew: &Crew, plan: &Plan, say: &mut dyn FnMut(&Race, &Record)) -> Step<Verdict> {
    let (cfg, size) = (job.cfg, job.size);
    let Some((allowed, n)) = job.cpus else { return Err(Stop::brok(rec.msg.s("no CPUs to race on"))) };
    let t0 = sys::monotonic_ns();
    let until = if cfg.duration_s > 0 { t0 + cfg.duration_s * 1_000_000_000 } else { 0 };
    let want = if until == 0 { cfg.iterations } else { 0 };
    let mut progress = crate::progress::Progress::start(cfg.progress, cfg.iterations, cfg.duration_s, job.name, size, t0);
    let refused_before = crate::cgroup::failures(size);
    // Races the racers' count gets wrong: a failure they could not count (the OOM killer took
    // a racer), a SIGBUS they counted that something else explains (no evidence either way).
    let (mut failed, mut killed, mut void, mut first) = (0u64, 0u64, 0u64, None);
    let mut starts = 0u64;
    let r = loop {
        // A failed race left its page as the kernel left it: back to race 1's state. (The
        // first start needs none, and the racer threads' process maps its page afresh.)
        if starts > 0
            && !plan.racing.threads()
            && let Err(e) = (plan.renew)()
        {
            break Err(Stop::brok(rec.msg.f("inconclusive: giving the contested page back and reserving it again failed: {errno}", &[e.0 as u64])));
        }
        let race = match Race::start(crew, |give| cpus::choose(cfg.cpus, allowed, n, give), &mut rec.msg) {
            Ok(r) => r,
            Err(s) => break Err(s),
        };
        if starts == 0 {
            crew.write_cpus(&mut rec.cpus);
            say(&race, rec);
        }
        starts += 1;
        if let Err(s) = check_start_state(size, &plan.state, starts, &mut rec.msg) {
            break Err(s);
        }
        rec.figs.start = Some((plan.state.free, plan.state.resv));
        let mut race = race;
        let bound = cfg.iteration_timeout_s * 1_000_000_000;
        let out = race.run(want, until, bound, |done| progress.tick(done, failed), &mut rec.msg);
        drop(race);
        match out {
            Err(s) => break Err(s),
            Ok(Outcome::Done) => break Ok(None),
            Ok(Outcome::Killed(d)) => {
                let v = verdict::killed(&d, &mut rec.msg, &mut failed);
                if v == Ok(Verdict::Fail) {
                    killed += 1;
                    rec.figs.signal = d.sig;
                }
                break v.map(Some);
            }
            Ok(Outcome::Faulted(f)) => {
                if let Err(s) = verdict::explained(size, refused_before, plan.racing, &plan.state, &f, &mut rec.msg) {
                    void = 1;
                    break Err(s);
                }
                failed += 1;
                first = first.or(Some(f));
                let t = crew.tally();
                let over = (want != 0 && t.races >= want) || (until != 0 && sys::monotonic_ns() >= until) || sys::pending_signal().is_some();
                if !cfg.keep_going || over {
                    break Ok(None);
                }
            }
        }
    };
    drop(progress);
    // A race broke: a racer never reached its write, was killed from outside or hung; the
    // page could not be put back in race 1's state; a SIGBUS something else explains.
    let broke = matches!(r, Err(s) if s.res == Res::Brok);
    verdict::figures(rec, crew, failed, killed, void, broke, t0, job.origin);
    // The first failed race's signal (an OOM kill's SIGKILL is set where it was judged).
    if let Some(f) = &first {
        rec.figs.signal = f.sig;
    }
    // A racer the OOM killer took: its line is written, the verdict is given.
    if let Some(v) = r? {
        return Ok(v);
    }
    Ok(verdict::verdict(rec, plan.racing, first, failed, want, job.origin))
}

/// Before the first race of a start, the pool must read as the original test sets it up.
fn check_start_state(size: u64, s: &State, starts: u64, why: &mut Line) -> Step<()> {
    let (f, r) = pool::free_resv(size).map_err(|e| Stop::sys(why, "reading the hugepage counters", e))?;
    if (f, r) == (s.free, s.resv) {
        return Ok(());
    }
    if starts == 1 {
        why.s("the contested page is not in the original test's state: ");
    } else {
        why.s("inconclusive: after a failed race, ");
    }
    Err(Stop::brok(why.f("the pool reads {} free, {} reserved, expected {} and {}", &[f, r, s.free, s.resv])))
}

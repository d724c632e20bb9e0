//! One mode's steps, in the order they run: the pool, the file, the fill, the contested
//! page, then the racers, released again after a failed race under --keep-going.

use super::judge::{self, Clock, State};
use crate::cli::Config;
use crate::cpus::{self, Allowed};
use crate::hugefile::HugeFile;
use crate::out::Line;
use crate::parse::Counts;
use crate::pool::{self, Policy, Pool};
use crate::race::{self, Crew, Outcome, Race};
use crate::report::{Record, Reporter};
use crate::step::{Mode, Res, Step, Stop, Verdict};
use crate::sys::{self, k, Mapping};

/// What one mode races on, handed down by the invocation (the record only reports it).
#[derive(Clone, Copy)]
pub(super) struct Job<'a> {
    pub(super) size: u64,
    pub(super) mode: Mode,
    pub(super) racers: u32,
    /// The CPUs this process may run on.
    pub(super) allowed: &'a Allowed,
    /// When the run began, for turning counter ticks into ns.
    pub(super) origin: Clock,
}

/// The race of one mode on one size, step by step. On failure the reason is in `rec.msg`;
/// `before` gets the pool's counters before our pages were taken.
pub(super) fn race_mode(
    cfg: &Config,
    job: Job,
    rep: &mut Reporter,
    rec: &mut Record,
    pool_out: &mut Option<Pool>,
    before: &mut Option<Counts>,
) -> Step<Verdict> {
    let (size, mode) = (job.size, job.mode);
    let shared = mode == Mode::Shared;
    let pool = pool_out.insert(prepare_pool(cfg, size, &mut rec.msg)?);
    *before = Some(read_counts(pool, &mut rec.msg)?);
    let mut file = HugeFile::open(size, cfg.hugetlbfs, !cfg.no_memfd, &mut rec.msg)?;
    let (take, filled) = fill_all_but_last(pool, &mut file, cfg.leave_free, &mut rec.msg)?;
    let dontneed = mode == Mode::Dontneed;
    let page = if dontneed { map_dontneed(size, &mut rec.msg)? } else { map_contested(&file, take, shared, cfg.noreserve, &mut rec.msg)? };

    let renew_alloc = || file.renew(&page, shared, cfg.noreserve);
    // The dontneed race starts with its page instantiated (MAP_POPULATE: a page that cannot
    // be had shows in the counters, not as a SIGBUS outside the race).
    let populate = k::MAP_POPULATE | if cfg.noreserve { k::MAP_NORESERVE } else { 0 };
    let renew_dontneed = || page.remap_anon_hugetlb(size as usize, populate);
    let renew: race::Renew = if dontneed { &renew_dontneed } else { &renew_alloc };
    let nracers = job.racers as usize;
    let crew = Crew::new(mode, size, &page, renew, nracers, cfg.rt, cfg.offset_ns, &mut rec.msg)?;
    // Every race starts from the original test's state: the free pages as filled, and the
    // contested page reserved by its mapping (unless --noreserve). The dontneed race's page
    // is in use instead: the last free page, which the madvise is to give back.
    let state = if dontneed {
        State { free: filled.free - 1, resv: filled.resv, in_use: filled.in_use() + 1, dontneed }
    } else {
        State { free: filled.free, resv: filled.resv + if cfg.noreserve { 0 } else { 1 }, in_use: filled.in_use(), dontneed }
    };
    crew.expect(state.free, state.resv);
    let mut say = |race: &Race, rec: &Record| {
        rep.info(&|l| {
            l.s(mode.name()).f(if take == 1 { " {size}: took {} page with " } else { " {size}: took {} pages with " }, &[size, take]).s(file.source_name());
            if !file.dir.bytes().is_empty() {
                l.s(" on ").b(file.dir.bytes());
            }
            l.f(", {} left free; pool ", &[cfg.leave_free]);
            if pool.raised_by > 0 {
                l.f("raised by {} (restored afterwards)", &[pool.raised_by]);
            } else {
                l.s("unchanged");
            }
            if dontneed {
                l.s("; MADV_DONTNEED and a write, threads of a child process on CPUs ").b(rec.cpus.as_bytes());
            } else {
                l.f(if shared { "; {} processes on CPUs " } else { "; {} threads of a child process on CPUs " }, &[nracers as u64]).b(rec.cpus.as_bytes());
            }
            l.f("; each race starts with {} free, {} reserved", &[state.free, state.resv]);
        });
        if cfg.rt && race.rt_refused() {
            rep.info(&|l| {
                l.s("--rt: SCHED_FIFO not permitted here; racing at normal priority");
            });
        }
    };
    release_racers(cfg, job, rec, &crew, &renew, &state, &mut say)
}

/// The pool of one size with at least two pages available (so that the race is for the
/// last of several), and no overcommit.
fn prepare_pool(cfg: &Config, size: u64, why: &mut Line) -> Step<Pool> {
    Pool::prepare(size, cfg.leave_free.max(2), Policy { may_change: !cfg.no_pool_change }, why)
}

fn read_counts(pool: &Pool, why: &mut Line) -> Step<Counts> {
    let c = pool.counts().map_err(|e| Stop::sys(why, "reading the hugepage counters", e))?;
    pool::judge(pool.size, &c, why)?;
    Ok(c)
}

/// Instantiate every available page but `leave`, reading the counters right before and
/// after; returns how many were taken, and the counters after.
fn fill_all_but_last(pool: &Pool, file: &mut HugeFile, leave: u64, why: &mut Line) -> Step<(u64, Counts)> {
    let need = leave.max(2);
    let c = read_counts(pool, why)?;
    let take = c.available().checked_sub(leave).filter(|_| c.available() >= need).ok_or_else(|| {
        Stop::brok(why.f("the pool changed under us: {} pages available, needed {}", &[c.available(), need]))
    })?;
    file.set_len(take + 1).map_err(|e| Stop::sys(why, "ftruncate", e))?;
    file.fill(take).map_err(|e| {
        Stop::brok(why.f("instantiating {} pages failed: {errno} (the pool changed under us, or a hugetlb cgroup limit?)", &[take, e.0 as u64]))
    })?;
    let after = read_counts(pool, why)?;
    if after.available() != leave {
        return Err(Stop::brok(
            why.f("the pool changed under us: after taking {} pages, {} are available, expected {}", &[take, after.available(), leave]),
        ));
    }
    Ok((take, after))
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

/// The dontneed race's page: MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB, made by the racer
/// threads' process itself (a child's copy of a private mapping has no reservation, so a
/// SIGBUS there would prove nothing); here only its address is held, MAP_NORESERVE, never
/// touched.
fn map_dontneed(size: u64, why: &mut Line) -> Step<Mapping> {
    let len = usize::try_from(size).map_err(|_| Stop::sys(why, "page size", sys::Errno::EINVAL))?;
    Mapping::anon_hugetlb(len, len, k::MAP_NORESERVE).map_err(|e| Stop::sys(why, "mmap of the page (MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB)", e))
}

/// Release the racers: start them, race, and after a failed race under --keep-going start
/// them again from the same state. Then judge.
// Kept out of line on i686 only: inlined there, its 64-bit counts cost 1.9 KB more code
// (elsewhere inlining it is the smaller choice: ppc64 +0.9 KB out of line).
#[cfg_attr(target_arch = "x86", inline(never))]
fn release_racers(
    cfg: &Config,
    job: Job,
    rec: &mut Record,
    crew: &Crew,
    renew: race::Renew,
    state: &State,
    say: &mut dyn FnMut(&Race, &Record),
) -> Step<Verdict> {
    let (size, mode, origin) = (job.size, job.mode, job.origin);
    let t0 = sys::monotonic_ns();
    let until = if cfg.duration_s > 0 { t0 + cfg.duration_s * 1_000_000_000 } else { 0 };
    let want = if until == 0 { cfg.iterations } else { 0 };
    let n = job.racers;
    let mut progress = crate::progress::Progress::start(cfg.progress, cfg.iterations, cfg.duration_s, mode, size, t0);
    let refused_before = crate::cgroup::failures(size);
    // Races the racers' count gets wrong: a failure they could not count (the OOM killer took
    // a racer), a SIGBUS they counted that something else explains (no evidence either way).
    let (mut failed, mut killed, mut void, mut first) = (0u64, 0u64, 0u64, None);
    let mut starts = 0u64;
    let r = loop {
        // A failed race left its page as the kernel left it: back to race 1's state. (The
        // first start needs none, and private mode's racer process maps its page afresh.)
        if starts > 0
            && mode == Mode::Shared
            && let Err(e) = renew()
        {
            break Err(Stop::brok(rec.msg.f("inconclusive: giving the contested page back and reserving it again failed: {errno}", &[e.0 as u64])));
        }
        let race = match Race::start(crew, |give| cpus::choose(cfg.cpus, job.allowed, n, give), &mut rec.msg) {
            Ok(r) => r,
            Err(s) => break Err(s),
        };
        if starts == 0 {
            crew.write_cpus(&mut rec.cpus);
            say(&race, rec);
        }
        starts += 1;
        if let Err(s) = check_start_state(size, state, starts, &mut rec.msg) {
            break Err(s);
        }
        rec.figs.start = Some((state.free, state.resv));
        let mut race = race;
        let bound = cfg.iteration_timeout_s * 1_000_000_000;
        let out = race.run(want, until, bound, |done| progress.tick(done, failed), &mut rec.msg);
        drop(race);
        match out {
            Err(s) => break Err(s),
            Ok(Outcome::Done) => break Ok(None),
            Ok(Outcome::Killed(d)) => {
                let v = judge::killed(&d, &mut rec.msg, &mut failed);
                if v == Ok(Verdict::Fail) {
                    killed += 1;
                    rec.figs.signal = d.sig;
                }
                break v.map(Some);
            }
            Ok(Outcome::Faulted(f)) => {
                if let Err(s) = judge::explained(size, refused_before, state, &f, &mut rec.msg) {
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
    judge::figures(rec, crew, failed, killed, void, broke, t0, origin);
    // The first failed race's signal (an OOM kill's SIGKILL is set where it was judged).
    if let Some(f) = &first {
        rec.figs.signal = f.sig;
    }
    // A racer the OOM killer took: its line is written, the verdict is given.
    if let Some(v) = r? {
        return Ok(v);
    }
    Ok(judge::verdict(rec, first, failed, want, origin))
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


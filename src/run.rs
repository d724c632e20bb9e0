//! One invocation, step by step: read the command line, find the hugepage sizes, and for each
//! size and mode: prepare the pool, open the hugetlb file, take all pages but the last, map
//! the contested page, start the racers, race, and put everything back.

use crate::cli::{self, Action, Config, Format, PageSel};
use core::sync::atomic::Ordering::Relaxed;
use crate::cpus::{self, Allowed};
use crate::hugefile::HugeFile;
use crate::out::{Line, STDERR, STDOUT};
use crate::pool::{self, Policy, Pool, MAX_SIZES};
use crate::parse::Counts;
use crate::race::{self, Crew, Outcome, Race};
use crate::sys::Mapping;
use crate::report::{Figures, Record, Reporter};
use crate::step::{Mode, Res, Step, Stop};
use crate::stats::Summary;
use crate::sys::{self, k, start::Args};

/// The program name that makes hugerace speak libhugetlbfs's language.
pub const LIBHUGETLBFS_NAME: &[u8] = b"alloc-instantiate-race";

fn basename(p: &[u8]) -> &[u8] {
    match p.iter().rposition(|&c| c == b'/') {
        Some(i) => &p[i + 1..],
        None => p,
    }
}

/// The defaults an invocation starts from: libhugetlbfs's format when called by its name.
pub fn defaults(args: &Args) -> Config {
    let mut cfg = Config::default();
    if args.get(0).map(basename) == Some(LIBHUGETLBFS_NAME) {
        cfg.format = Format::Hugetlbfs;
        // libhugetlbfs's runner names the page size of each pass in the environment.
        if let Some(s) = sys::start::env(b"HUGETLB_DEFAULT_PAGE_SIZE").and_then(crate::parse::size) {
            cfg.pagesize = PageSel::Size(s);
        }
    }
    cfg
}

/// Run the command line; returns the exit status.
pub fn main(args: Args, mut base: Config) -> i32 {
    let words = move || (1..args.len()).filter_map(move |i| args.get(i));
    // libhugetlbfs's test needs its mode word and calls any bad command line a bad
    // configuration (status 1, on stdout), never a failure.
    let libhugetlbfs = cli::format_given(words()).unwrap_or(base.format) == Format::Hugetlbfs;
    if libhugetlbfs {
        (base.shared, base.private) = (false, false);
    }
    let mut l = Line::new();
    match cli::parse(words(), base) {
        Err(e) if libhugetlbfs => {
            l.s("Bad configuration: ").s(e.msg).s(" '").arg(e.arg).s("'\n");
            l.emit(STDOUT);
            1
        }
        Err(e) => {
            l.s("hugerace: ").s(e.msg).s(" '").arg(e.arg).s("' (see hugerace --help)\n");
            l.emit(STDERR);
            2
        }
        Ok(Action::Run(cfg)) if !cfg.shared && !cfg.private => {
            l.s("Bad configuration: Usage: alloc-instantiate-race <private|shared> [hugerace options]\n");
            l.emit(STDOUT);
            1
        }
        Ok(Action::Help) => {
            help();
            0
        }
        Ok(Action::Version) => {
            version();
            0
        }
        Ok(Action::Run(cfg)) => run(&cfg),
    }
}

pub fn version() {
    let mut l = Line::new();
    l.s(concat!("hugerace ", env!("CARGO_PKG_VERSION"), " (", env!("HUGERACE_TARGET")));
    let commit = env!("HUGERACE_COMMIT");
    if !commit.is_empty() {
        l.s(", commit ").s(commit);
    }
    l.s(")\n");
    l.emit(STDOUT);
}

pub fn help() {
    let mut l = Line::new();
    l.s(concat!(
        "Usage: hugerace [OPTIONS] [shared|private|both]\n",
        "Reproduce the hugetlb alloc-instantiate race: fill the hugepage pool but one\n",
        "page, and let racers on distinct CPUs fault that page at once. A SIGBUS in a\n",
        "racer is a FAIL.\n",
    ));
    l.emit(STDOUT);
    for (g, title) in cli::GROUPS.iter().enumerate() {
        l.c(b'\n').s(title).s(":\n");
        l.emit(STDOUT);
        for o in cli::OPTIONS.iter().filter(|o| o.group as usize == g) {
            let start = l.as_bytes().len();
            l.s("  ");
            if o.short != 0 {
                l.c(b'-').c(o.short).s(", ");
            } else {
                l.s("    ");
            }
            l.s("--").s(o.long);
            if !o.value.is_empty() {
                l.c(b' ').s(o.value);
            }
            while l.as_bytes().len() - start < 28 {
                l.c(b' ');
            }
            l.s(o.help).c(b'\n');
            l.emit(STDOUT);
        }
    }
    l.s(concat!(
        "\nRoot is needed only to raise the hugepage pool; it is put back afterwards.\n",
        "Exit status per format, and what to collect after a FAIL: man hugerace.\n\nExamples:\n",
    ));
    for e in cli::EXAMPLES {
        l.s("  ").s(e).c(b'\n');
        l.emit(STDOUT);
    }
}

/// The sizes to race on, ascending. On failure the reason is in `why`.
fn select_sizes(cfg: &Config, out: &mut [u64; MAX_SIZES], why: &mut Line) -> Step<usize> {
    let mut all = [0u64; MAX_SIZES];
    let n = pool::sizes(&mut all);
    if n == 0 {
        return Err(Stop::conf(
            why.s("no hugetlb support: neither /sys/kernel/mm/hugepages nor Hugepagesize in /proc/meminfo (CONFIG_HUGETLBFS?)"),
        ));
    }
    let want = match (cfg.pagesize, cfg.hugetlbfs) {
        (PageSel::All, _) => {
            out[..n].copy_from_slice(&all[..n]);
            return Ok(n);
        }
        (PageSel::Size(s), _) => s,
        (PageSel::Default, Some(dir)) => HugeFile::mount_page_size(dir, why)?,
        (PageSel::Default, None) => pool::default_size().unwrap_or(all[0]),
    };
    if !all[..n].contains(&want) {
        why.f("no {size} hugepages on this machine; the kernel offers", &[want]);
        for s in &all[..n] {
            why.c(b' ').size(*s);
        }
        return Err(Stop::conf(why));
    }
    out[0] = want;
    Ok(1)
}

/// The counter clock, for turning racer timestamps into nanoseconds.
#[derive(Clone, Copy)]
struct Clock {
    ns: u64,
    ticks: u64,
}

impl Clock {
    fn now() -> Clock {
        Clock { ns: sys::monotonic_ns(), ticks: sys::cycles() }
    }
    /// Nanoseconds and counter ticks from `origin` to this: ticks scale to ns by their ratio.
    fn since(self, origin: Clock) -> (u64, u64) {
        (self.ns - origin.ns, self.ticks.wrapping_sub(origin.ticks))
    }
}

pub fn run(cfg: &Config) -> i32 {
    let mut rep = Reporter::new(cfg.format, cfg.verbose);
    let origin = Clock::now();
    let mut why = Line::new();
    if let Err(e) = sys::catch_termination() {
        rep.begin(1);
        rep.stop(b"setup", Stop::sys(&mut why, "sigaction", e), &why);
        return rep.finish();
    }
    let modes: &[Mode] = match (cfg.race, cfg.shared, cfg.private) {
        (cli::RaceKind::Dontneed, _, _) => &[Mode::Dontneed],
        (_, true, true) => &[Mode::Shared, Mode::Private],
        (_, true, false) => &[Mode::Shared],
        _ => &[Mode::Private],
    };
    let mut sizes = [0u64; MAX_SIZES];
    let nsizes = match select_sizes(cfg, &mut sizes, &mut why) {
        Ok(n) => n,
        Err(s) => {
            rep.begin(1);
            rep.stop(b"hugepages", s, &why);
            return rep.finish();
        }
    };
    rep.begin((nsizes * modes.len()) as u32);
    let mut rel = [0u8; 65];
    let rl = sys::kernel_release(&mut rel);
    rep.info(&|l| {
        l.s(concat!("hugerace ", env!("CARGO_PKG_VERSION"), " on Linux ")).b(&rel[..rl]).s(concat!(" (", env!("HUGERACE_TARGET"), "), base page "))
            .size(sys::start::page_size() as u64);
    });
    let setup = cpus::allowed(&mut why).and_then(|a| cpus::racer_count(cfg, &a, &mut why).map(|n| (a, n)));
    let (allowed, n) = match setup {
        Ok(x) => x,
        Err(s) => {
            for &size in &sizes[..nsizes] {
                for &mode in modes {
                    let mut what = Line::new();
                    what.s(mode.name()).c(b' ').size(size);
                    rep.stop(what.as_bytes(), s, &why);
                }
            }
            return rep.finish();
        }
    };
    'all: for &size in &sizes[..nsizes] {
        for &mode in modes {
            let rec = run_mode(cfg, &mut rep, size, mode, &allowed, n, origin);
            rep.record(&rec);
            if let Some(sig) = sys::pending_signal() {
                // A signal after the last check of a mode (while restoring) still ends the
                // run as TBROK naming it, never as a plain pass.
                if rec.res != Res::Brok {
                    why.clear();
                    rep.stop(b"run", race::interrupted(&mut why, sig), &why);
                }
                break 'all;
            }
        }
    }
    let mut st = [0u8; 2048];
    if let Ok(len) = sys::read_file(c"/proc/self/status", &mut st)
        && let Some(kb) = crate::parse::meminfo(&st[..len], b"VmHWM") {
            rep.verbose(&|l| {
                l.f("peak RSS {} kB", &[kb]);
            });
        }
    rep.finish()
}

#[allow(clippy::too_many_arguments)]
fn run_mode(cfg: &Config, rep: &mut Reporter, size: u64, mode: Mode, allowed: &Allowed, n: u32, origin: Clock) -> Record {
    let mut rec = Record { mode, pagesize: size, racers: n, cpus: Line::new(), figs: Figures::default(), res: Res::Pass, msg: Line::new() };
    // One instance per size, from the pool's preparation to its restore (issue 7).
    let _lock = match crate::lock::take(size, rep, &mut rec.msg) {
        Ok(l) => l,
        Err(s) => {
            rec.res = s.res;
            return rec;
        }
    };
    let mut pool = None;
    let mut before = None;
    let r = race_mode(cfg, rep, &mut rec, &mut pool, &mut before, allowed, origin);
    if let Err(s) = r {
        rec.res = s.res;
    }
    // (After a TBROK the run proves nothing either way; its reason stands alone.)
    if let (Some(p), Some(b), Res::Pass | Res::Fail) = (&pool, before, rec.res) {
        // Every page and mapping of ours is gone by now: the racers were joined, and the
        // file and the contested mapping were dropped with race_mode's frame.
        judge_returned(p, &b, &mut rec);
    }
    if let Some(mut p) = pool {
        p.restore(&mut |w| rep.warn(&|l| {
            l.b(w.as_bytes());
        }));
    }
    rec
}

/// The race of one mode on one size, step by step. On failure the reason is in `rec.msg`;
/// `before` gets the pool's counters before our pages were taken.
fn race_mode(
    cfg: &Config,
    rep: &mut Reporter,
    rec: &mut Record,
    pool_out: &mut Option<Pool>,
    before: &mut Option<Counts>,
    allowed: &Allowed,
    origin: Clock,
) -> Step<()> {
    let (size, mode) = (rec.pagesize, rec.mode);
    let shared = mode == Mode::Shared;
    let pool = pool_out.insert(prepare_pool(cfg, size, &mut rec.msg)?);
    *before = Some(read_counts(pool, &mut rec.msg)?);
    let mut file = HugeFile::open(size, cfg, &mut rec.msg)?;
    let (take, filled) = fill_all_but_last(pool, &mut file, cfg.leave_free, &mut rec.msg)?;
    let dontneed = mode == Mode::Dontneed;
    let page = if dontneed { map_dontneed(size, &mut rec.msg)? } else { map_contested(&file, take, shared, cfg.noreserve, &mut rec.msg)? };

    let renew_alloc = || file.renew(&page, shared, cfg.noreserve);
    // The dontneed race starts with its page instantiated (MAP_POPULATE: a page that cannot
    // be had shows in the counters, not as a SIGBUS outside the race).
    let populate = k::MAP_POPULATE | if cfg.noreserve { k::MAP_NORESERVE } else { 0 };
    let renew_dontneed = || page.remap_anon_hugetlb(size as usize, populate);
    let renew: race::Renew = if dontneed { &renew_dontneed } else { &renew_alloc };
    let nracers = rec.racers as usize;
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
    release_racers(cfg, rec, &crew, &renew, allowed, &state, origin, &mut say)
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

/// The state each race starts from, and what the fill left in use.
#[derive(Clone, Copy)]
struct State {
    free: u64,
    resv: u64,
    /// Pages in use before a race (ours and anybody else's at the fill).
    in_use: u64,
    dontneed: bool,
}

/// Release the racers: start them, race, and after a failed race under --keep-going start
/// them again from the same state. Then judge.
#[allow(clippy::too_many_arguments)]
fn release_racers(
    cfg: &Config,
    rec: &mut Record,
    crew: &Crew,
    renew: race::Renew,
    allowed: &Allowed,
    state: &State,
    origin: Clock,
    say: &mut dyn FnMut(&Race, &Record),
) -> Step<()> {
    let (size, mode) = (rec.pagesize, rec.mode);
    let t0 = sys::monotonic_ns();
    let until = if cfg.duration_s > 0 { t0 + cfg.duration_s * 1_000_000_000 } else { 0 };
    let want = if until == 0 { cfg.iterations } else { 0 };
    let n = rec.racers;
    let mut progress = crate::progress::Progress::start(cfg, mode, size, t0);
    let refused_before = crate::cgroup::failures(size);
    let (mut failed, mut first) = (0u64, None);
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
        let race = match Race::start(crew, |give| cpus::choose(cfg, allowed, n, give), &mut rec.msg) {
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
        let mut race = race;
        let bound = cfg.iteration_timeout_s * 1_000_000_000;
        let out = race.run(want, until, bound, |done| progress.tick(done, failed), &mut rec.msg);
        drop(race);
        match out {
            Err(s) => break Err(s),
            Ok(Outcome::Done) => break Ok(()),
            Ok(Outcome::Killed(d)) => break Err(killed(&d, &mut rec.msg, &mut failed)),
            Ok(Outcome::Faulted(f)) => {
                if let Err(s) = explained(size, refused_before, state, &f, &mut rec.msg) {
                    break Err(s);
                }
                failed += 1;
                first = first.or(Some(f));
                let t = crew.tally();
                let over = (want != 0 && t.races >= want) || (until != 0 && sys::monotonic_ns() >= until) || sys::pending_signal().is_some();
                if !cfg.keep_going || over {
                    break Ok(());
                }
            }
        }
    };
    drop(progress);
    figures(rec, crew, failed, t0, origin);
    r?;
    verdict(rec, first, failed, want, origin)
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

/// A racer (or private mode's racer process) died of a signal the race does not catch.
/// SIGKILL while the kernel's OOM killer ran is this bug's historic symptom: TFAIL. Any
/// other death is TBROK naming the signal.
fn killed(d: &race::Death, why: &mut Line, failed: &mut u64) -> Stop {
    race::death_line(why, d);
    match d.oom_kills {
        Some(k) if k > 0 && d.sig == k::SIGKILL && d.oom_victim != Some(false) => {
            *failed += 1;
            why.f(" while the kernel's OOM killer killed {} process(es) (oom_kill in /proc/vmstat): the fault on the last free hugepage ended in an OOM kill", &[k]);
            Stop { res: Res::Fail }
        }
        _ if d.sig == 0 => Stop::brok(why.s(" before the run ended")),
        _ => Stop::brok(why.s(" from outside, not by the kernel's fault handling")),
    }
}

/// Blame the kernel's race only when nothing else explains the SIGBUS: a hugetlb cgroup
/// limit that refused the page (its failure counters moved), or another process that held
/// more hugepages at the failure than when the pool was filled.
fn explained(size: u64, refused_before: Option<u64>, s: &State, f: &race::Fault, why: &mut Line) -> Step<()> {
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

fn figures(rec: &mut Record, crew: &Crew, failed: u64, t0: u64, origin: Clock) {
    let f = &mut rec.figs;
    let t = crew.tally();
    f.elapsed_ns = sys::monotonic_ns() - t0;
    f.race_ns = t.race_ns;
    f.iterations = t.races;
    f.failed = failed;
    f.passed = t.races.saturating_sub(failed);
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
fn verdict(rec: &mut Record, first: Option<race::Fault>, failed: u64, want: u64, origin: Clock) -> Step<()> {
    let (races, missed) = (rec.figs.iterations, rec.figs.missed);
    let l = &mut rec.msg;
    let Some(x) = first else {
        l.f(if races == 1 { "no SIGBUS in {} race" } else { "no SIGBUS in {} races" }, &[races]);
        l.f(" of {} racers on the last free hugepage ({} overlapped, {} missed and rerun)", &[rec.racers as u64, races, missed]);
        return Ok(());
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
    Err(Stop { res: Res::Fail })
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
fn judge_returned(pool: &Pool, before: &Counts, rec: &mut Record) {
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

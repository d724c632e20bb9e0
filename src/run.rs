//! One invocation, step by step: read the command line, find the hugepage sizes, and for each
//! size and mode: prepare the pool, open the hugetlb file, take all pages but the last, map
//! the contested page, start the racers, race, and put everything back.

use crate::cli::{self, Action, Config, Format, PageSel};
use crate::cpus::{self, Allowed};
use crate::hugefile::HugeFile;
use crate::out::{Line, STDERR, STDOUT};
use crate::pool::{self, Policy, Pool, MAX_SIZES};
use crate::race::{self, Crew, Outcome, Race};
use crate::report::{Figures, Mode, Record, Reporter, Res, Step, Stop};
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
        Clock { ns: sys::monotonic_ns(), ticks: crate::arch::cycles() }
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
    let modes: &[Mode] = match (cfg.shared, cfg.private) {
        (true, true) => &[Mode::Shared, Mode::Private],
        (true, false) => &[Mode::Shared],
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
    let r = race_mode(cfg, rep, &mut rec, &mut pool, allowed, origin);
    if let Some(mut p) = pool {
        p.restore(&mut |w| rep.warn(&|l| {
            l.b(w.as_bytes());
        }));
    }
    if let Err(s) = r {
        rec.res = s.res;
    }
    rec
}

/// On failure the reason is in `rec.msg`.
fn race_mode(cfg: &Config, rep: &mut Reporter, rec: &mut Record, pool_out: &mut Option<Pool>, allowed: &Allowed, origin: Clock) -> Step<()> {
    let (size, mode) = (rec.pagesize, rec.mode);
    let why = &mut rec.msg;
    let leave = cfg.leave_free;
    // The pool: at least two pages, so that the race is for the last of several.
    let need = leave.max(2);
    let pool = pool_out.insert(Pool::prepare(size, need, Policy { may_change: !cfg.no_pool_change }, why)?);
    let mut file = HugeFile::open(size, cfg, why)?;

    // Take every available page but `leave`, reading the counters again right before.
    let before = pool.counts().map_err(|e| Stop::sys(why, "reading the hugepage counters", e))?;
    let take = before.available().checked_sub(leave).filter(|_| before.available() >= need).ok_or_else(|| {
        Stop::brok(why.f("the pool changed under us: {} pages available, needed {}", &[before.available(), need]))
    })?;
    file.set_len(take + 1).map_err(|e| Stop::sys(why, "ftruncate", e))?;
    file.fill(take).map_err(|e| {
        Stop::brok(why.f("instantiating {} pages failed: {errno} (the pool changed under us, or a hugetlb cgroup limit?)", &[take, e.0 as u64]))
    })?;
    let after = pool.counts().map_err(|e| Stop::sys(why, "reading the hugepage counters", e))?;
    if after.available() != leave {
        return Err(Stop::brok(
            why.f("the pool changed under us: after taking {} pages, {} are available, expected {}", &[take, after.available(), leave]),
        ));
    }

    // The contested page, after the filled ones.
    let shared = mode == Mode::Shared;
    let page = file.map(take, 1, shared, cfg.noreserve).map_err(|e| {
        Stop::brok(why.s("mmap of the contested page (").s(if shared { "MAP_SHARED" } else { "MAP_PRIVATE" }).s("): ").errno(e))
    })?;

    let nracers = rec.racers as usize;
    // Between iterations the page goes back to the pool, so that exactly `leave` pages are
    // free again: a hole punch frees a shared page and unmaps it from every racer; a private
    // page is dropped from the one mm with MADV_DONTNEED.
    let reset_shared = || file.punch_last();
    let reset_private = || page.madvise(0, page.len(), k::MADV_DONTNEED);
    let reset: race::Reset = if shared { &reset_shared } else { &reset_private };
    let crew = Crew::new(mode, &page, reset, nracers, cfg.rt, why)?;
    let mut race = Race::start(&crew, |give| cpus::choose(cfg, allowed, nracers as u32, give), why)?;
    race.write_cpus(&mut rec.cpus);
    rep.info(&|l| {
        l.s(mode.name()).f(if take == 1 { " {size}: took {} page with " } else { " {size}: took {} pages with " }, &[size, take]).s(file.source_name());
        if !file.dir.bytes().is_empty() {
            l.s(" on ").b(file.dir.bytes());
        }
        l.f(", {} left free; pool ", &[leave]);
        if pool.raised_by > 0 {
            l.f("raised by {} (restored afterwards)", &[pool.raised_by]);
        } else {
            l.s("unchanged");
        }
        l.f(if shared { "; {} processes on CPUs " } else { "; {} threads on CPUs " }, &[nracers as u64]).b(rec.cpus.as_bytes());
    });
    if cfg.rt && race.rt_refused() {
        rep.info(&|l| {
            l.s("--rt: SCHED_FIFO not permitted here; racing at normal priority");
        });
    }
    let refused_before = crate::cgroup::failures(size);
    let mut r = iterate(cfg, rec, &mut race, origin);
    drop(race);
    drop(crew);
    if let Err(s) = &mut r
        && s.res == Res::Fail
    {
        // Blame the kernel's race only when nothing else explains the SIGBUS (issue 7): a
        // hugetlb cgroup limit that refused the page, or another process that holds the
        // last page. For the second, give our contested page back and unmap it (no
        // reservation of ours left, the filled pages still held): exactly `leave` pages
        // must then be available again.
        cgroup_refused(size, refused_before, s, &mut rec.msg);
        if s.res == Res::Fail {
            let _ = reset();
            drop(page);
            outside_took(pool, leave, s, &mut rec.msg);
        }
    }
    r
}

/// A hugetlb cgroup limit refuses a fault with the same SIGBUS as the race bug: if the
/// cgroup counted a refusal during the run, the FAIL says nothing about the kernel's race.
fn cgroup_refused(size: u64, before: Option<u64>, s: &mut Stop, why: &mut Line) {
    let (Some(b), Some(a)) = (before, crate::cgroup::failures(size)) else { return };
    if s.res != Res::Fail || a <= b {
        return;
    }
    let mut msg = Line::new();
    msg.f("inconclusive: this process's hugetlb cgroup refused {} {size} page(s) during the run (its limit, not the race); ", &[a - b, size])
        .b(why.as_bytes());
    (s.res, *why) = (Res::Brok, msg);
}

fn outside_took(pool: &Pool, leave: u64, s: &mut Stop, why: &mut Line) {
    let Ok(c) = pool.counts() else { return };
    if c.available() >= leave {
        return;
    }
    let mut msg = Line::new();
    msg.f("inconclusive: another process took the last hugepage ({} of the {} left free are available after the run); ", &[c.available(), leave])
        .b(why.as_bytes());
    (s.res, *why) = (Res::Brok, msg);
}

fn iterate(cfg: &Config, rec: &mut Record, race: &mut Race, origin: Clock) -> Step<()> {
    let t0 = sys::monotonic_ns();
    race::ITERATION_NS.store(cfg.iteration_timeout_s * 1_000_000_000, core::sync::atomic::Ordering::Relaxed);
    let until = if cfg.duration_s > 0 { t0 + cfg.duration_s * 1_000_000_000 } else { 0 };
    let want = if until == 0 { cfg.iterations } else { 0 };
    let mut progress = crate::progress::Progress::start(cfg, rec.mode, rec.pagesize, t0);
    let outcome = race.run(want, until, |done| progress.tick(done, 0), &mut rec.msg);
    drop(progress);
    let f = &mut rec.figs;
    f.elapsed_ns = sys::monotonic_ns() - t0;
    let t = race.tally();
    f.passed = t.iterations;
    f.missed = t.missed;
    f.iterations = t.iterations + if outcome.is_ok() { 0 } else { 1 };
    let end = Clock::now();
    let (num, den) = (end.ns - origin.ns, end.ticks.wrapping_sub(origin.ticks));
    f.skew = Summary::of(t.skew, num, den);
    f.fault_p50 = crate::stats::scale(t.fault.percentile(50), num, den);
    match outcome {
        Err(s) => {
            f.broken = 1;
            Err(s)
        }
        Ok(Outcome::Faulted(x)) => {
            f.failed = 1;
            f.iterations = t.iterations + 1;
            let l = &mut rec.msg;
            {
                l.f("racer {} on CPU {} got ", &[x.racer as u64 + 1, x.cpu as u64]).s(race::signal_name(x.sig));
                if x.sig == k::SIGBUS && !race::bus_code(x.code).is_empty() {
                    l.s(" (").s(race::bus_code(x.code)).c(b')');
                } else {
                    l.s(" (si_code ").i(x.code as i64).c(b')');
                }
                l.f(" at {hex} in iteration {}", &[x.addr, x.iteration]);
                if want > 0 {
                    l.f(" of {}", &[want]);
                }
                l.s(": the kernel failed the fault on the last free hugepage");
            }
            Err(Stop { res: Res::Fail })
        }
        Ok(Outcome::Done) => {
            let races = f.passed;
            let t = if races == 1 { "no SIGBUS in {} race of {} racers on the last free hugepage" } else { "no SIGBUS in {} races of {} racers on the last free hugepage" };
            rec.msg.f(t, &[races, rec.racers as u64]);
            Ok(())
        }
    }
}

//! One invocation, step by step: read the command line, find the hugepage sizes, and for each
//! kind selected, each size and each of its modes: the kind's run in a frame that holds the
//! size's instance lock and, once the kind is done, checks the pool against what it read
//! before (`judge`) and restores it. The kinds' own steps are theirs (src/races/).

use crate::cli::{self, Action, Config, Format, PageSel};
use crate::cpus;
use crate::hugefile::HugeFile;
use crate::job::{Clock, Frame, Job};
use crate::out::{Doc, Line, STDERR, STDOUT};
use crate::pool::{self, MAX_SIZES};
use crate::race;
use crate::races::{self, Kind, Selection};
use crate::report::{Figures, Record, Reporter};
use crate::step::{Res, Step, Stop};
use crate::sys::{self, start::Args};
mod judge;

fn basename(p: &[u8]) -> &[u8] {
    match p.iter().rposition(|&c| c == b'/') {
        Some(i) => &p[i + 1..],
        None => p,
    }
}

/// The defaults an invocation starts from: called by the name of a libhugetlbfs test,
/// libhugetlbfs's format and that test's kind.
pub fn defaults(args: &Args) -> Config {
    let mut cfg = Config::default();
    if let Some(kind) = args.get(0).map(basename).and_then(races::by_libhugetlbfs_name) {
        cfg.format = Format::Hugetlbfs;
        cfg.races = kind.name.as_bytes();
        // libhugetlbfs's runner names the page size of each pass in the environment.
        if let Some(s) = sys::start::env(b"HUGETLB_DEFAULT_PAGE_SIZE").and_then(crate::parse::size) {
            cfg.pagesize = PageSel::Size(s);
        }
    }
    cfg
}

/// Run the command line; returns the exit status.
pub fn main(args: Args, base: Config) -> i32 {
    let words = move || (1..args.len()).filter_map(move |i| args.get(i));
    // libhugetlbfs's test needs its mode word and calls any bad command line a bad
    // configuration (status 1, on stdout), never a failure.
    let libhugetlbfs = cli::format_given(words()).unwrap_or(base.format) == Format::Hugetlbfs;
    let mut l = Line::new();
    let usage = |l: &mut Line, e: cli::Error| {
        if libhugetlbfs {
            l.s("Bad configuration: ").s(e.msg).s(" '").arg(e.arg).s("'\n");
            l.emit(STDOUT);
            1
        } else {
            l.s("hugerace: ").s(e.msg).s(" '").arg(e.arg).s("' (see hugerace --help)\n");
            l.emit(STDERR);
            2
        }
    };
    let cfg = match cli::parse(words(), base) {
        Err(e) => return usage(&mut l, e),
        Ok(Action::Help) => {
            cli::help(&mut races::help);
            return 0;
        }
        Ok(Action::Version) => {
            cli::version();
            return 0;
        }
        Ok(Action::List) => {
            races::list();
            return 0;
        }
        Ok(Action::Run(cfg)) => cfg,
    };
    let sel = match races::select(&cfg) {
        Err(e) => return usage(&mut l, e),
        Ok(sel) => sel,
    };
    if libhugetlbfs && cfg.mode.is_none() {
        l.s("Bad configuration: ");
        if let Some(k) = sel.each().next() {
            races::libhugetlbfs_usage(&mut l, k);
        }
        l.nl();
        l.emit(STDOUT);
        return 1;
    }
    run(&cfg, &sel)
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

pub fn run(cfg: &Config, sel: &Selection) -> i32 {
    let mut doc = Doc::new(STDOUT);
    run_with(cfg, sel, &mut doc)
}

#[inline(never)]
fn run_with(cfg: &Config, sel: &Selection, doc: &mut Doc) -> i32 {
    let mut rep = Reporter::new(cfg.format, cfg.verbose, doc);
    let origin = Clock::now();
    let mut why = Line::new();
    if let Err(e) = sys::catch_termination() {
        rep.begin(1);
        rep.stop(b"setup", Stop::sys(&mut why, "sigaction", e), &why);
        return rep.finish();
    }
    let mut sizes = [0u64; MAX_SIZES];
    let nsizes = match select_sizes(cfg, &mut sizes, &mut why) {
        Ok(n) => n,
        Err(s) => {
            rep.begin(1);
            rep.stop(b"hugepages", s, &why);
            return rep.finish();
        }
    };
    let planned: u32 = sel.each().map(|k| k.modes_for(cfg.mode).count_ones()).sum();
    rep.begin(nsizes as u32 * planned);
    let mut rel = [0u8; 65];
    let rl = sys::kernel_release(&mut rel);
    rep.info(&|l| {
        l.s(concat!("hugerace ", env!("CARGO_PKG_VERSION"), " on Linux ")).b(&rel[..rl]).s(concat!(" (", env!("HUGERACE_TARGET"), "), base page "))
            .size(sys::start::page_size() as u64);
    });
    // The racers' CPUs, or why there can be none (then every kind that races is stopped).
    let mut cpu_why = Line::new();
    let setup = cpus::allowed(&mut cpu_why).and_then(|a| cpus::racer_count(cfg.cpus, cfg.racers, &a, &mut cpu_why).map(|n| (a, n)));
    'all: for kind in sel.each() {
        for &size in &sizes[..nsizes] {
            let bits = kind.modes_for(cfg.mode);
            for (mode, &name) in kind.modes.iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0) {
                let mut what = Line::new();
                what.s(name).c(b' ').size(size);
                why.clear();
                let cpus = match (&setup, refused(cfg, kind, size, &mut why)) {
                    (_, Some(s)) => {
                        rep.stop(what.as_bytes(), s, &why);
                        continue;
                    }
                    (Err(s), None) if kind.races => {
                        rep.stop(what.as_bytes(), *s, &cpu_why);
                        continue;
                    }
                    (Ok((a, n)), None) if kind.races => Some((a, *n)),
                    _ => None,
                };
                let job = Job { cfg, size, mode, name, cpus, origin };
                let rec = run_mode(kind, &job, &mut rep);
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
    }
    let mut st = [0u8; 2048];
    if cfg.verbose
        && let Ok(len) = sys::read_file(c"/proc/self/status", &mut st)
        && let Some(kb) = crate::parse::meminfo(&st[..len], b"VmHWM") {
            rep.verbose(&|l| {
                l.f("peak RSS {} kB", &[kb]);
            });
        }
    rep.finish()
}

/// Why `kind` does not run on this size here, as a TCONF: an option it cannot honour (it
/// came with `all`; named, it was a usage error), a size it does not take, or the harm it
/// can do to a machine that is not a throwaway boot.
#[inline(never)]
fn refused(cfg: &Config, kind: &Kind, size: u64, why: &mut Line) -> Option<Stop> {
    if let Some(e) = kind.refusal(cfg) {
        return Some(Stop::conf(why.s(e.msg).s(" '").arg(e.arg).c(b'\'')));
    }
    if !kind.takes(size) {
        return Some(Stop::conf(why.s("race ").s(kind.name).f(" does not take {size} pages (hugerace --list)", &[size])));
    }
    if kind.destructive && !cfg.destructive {
        return Some(Stop::conf(why.s("destructive: on a kernel with this bug it breaks the hugepage accounting until reboot, so it runs only as /init of a throwaway boot or with --destructive (in a VM: hugerace --race ").s(kind.name).s(" --destructive)")));
    }
    None
}

/// One mode of one kind on one size, in the frame every kind gets: the instance lock of
/// the size, and after the kind is done, with every page and mapping of its gone, the pool
/// checked against what it read before and restored.
fn run_mode(kind: &Kind, job: &Job, rep: &mut Reporter) -> Record {
    let racers = job.cpus.map_or(0, |c| c.1);
    let mut rec = Record { name: job.name, tell: kind.tell, pagesize: job.size, racers, cpus: Line::new(), figs: Figures::default(), res: Res::Pass, msg: Line::new() };
    // One instance per size, from the pool's preparation to its restore (issue 7).
    let _lock = match crate::lock::take(job.size, rep, &mut rec.msg) {
        Ok(l) => l,
        Err(s) => {
            rec.res = s.res;
            return rec;
        }
    };
    let mut frame = Frame::default();
    rec.res = match (kind.run)(job, rep, &mut rec, &mut frame) {
        Ok(v) => v.res(),
        Err(s) => s.res,
    };
    // (After a TBROK the run proves nothing either way; its reason stands alone.)
    if let (Some(p), Some(b), Res::Pass | Res::Fail) = (&frame.pool, frame.before, rec.res) {
        // Every page and mapping of the kind's is gone by now: its racers were joined, and
        // its file and mappings were dropped with its frame.
        judge::judge_returned(p, &b, &mut rec);
    }
    if let Some(mut p) = frame.pool {
        p.restore(&mut |w| rep.warn(&|l| {
            l.b(w.as_bytes());
        }));
    }
    rec
}

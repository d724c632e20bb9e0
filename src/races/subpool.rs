//! The subpool's reservations must not underflow. A hugetlbfs mount with `min_size=` gives
//! its subpool pages reserved up front (`resv_hugepages` rises by them at the mount); a
//! mapping the subpool grants but the global pool cannot back must give back exactly what
//! it took. With 4 pages in the pool, a `min_size` of 2 pages and a `size` of 16: map 1 page
//! MAP_SHARED from one file (taken from the subpool's reserve), then ask 4 pages from a
//! second file (the subpool grants them, the global pool cannot back the 3 beyond its
//! reserve: ENOMEM), then unmap, close, unlink and unmount. A sound kernel is back where it
//! started; the kernels tried here end with `resv_hugepages` one below (2^64-1 from 0) and
//! the pool's pages stuck.
//!
//! Two paths lead there. Before upstream a833a693a490 (v6.15; not in 6.6, 6.1 or 5.15), the
//! failed mapping handed the subpool back all the pages it asked for
//! (`hugepage_subpool_put_pages(spool, chg)`), so the subpool's reserve grew by the pages
//! the global pool refused, and the first file's removal released one global reservation too
//! many when the first file went. Since it (and its follow-up 1d3f9bb4c8af, which gives `used_hpages` back the
//! refused pages), `hugetlb_reserve_pages()` puts the subpool's share back with
//! `hugepage_subpool_put_pages(spool, chg - gbl_reserve)` while `used_hpages` still counts
//! the refused pages: the minimum-size branch (`used_hpages < min_hpages`) is skipped,
//! `rsv_hpages` stays 0, and `hugetlb_acct_memory(h, -gbl_resv)` releases a global
//! reservation the subpool still owes; the unmount's `unlock_or_release_subpool()` then
//! releases `min_hpages` again. The counters tell the paths apart: the first keeps
//! `resv_hugepages` at its value through the failed mapping, the second drops it by one
//! there. No upstream fix is known for the second (read in mm/hugetlb.c as of 6.18 and the
//! newest patches the index holds).
//!
//! **Destructive:** on a kernel with the bug the accounting stays broken until reboot. The
//! table marks it so; it runs only as the machine's own /init or with --destructive, and
//! `run` refuses again without it.

use super::given;
use crate::cli::{Config, Error, Key};
use crate::job::{Frame, Job};
use crate::out::{Doc, Line};
use crate::parse::Counts;
use crate::pool;
use crate::race::session;
use crate::report::{Record, Reporter, Telling};
use crate::step::{Step, Stop, Verdict};
use crate::sys::{self, k, Errno, Fd, Mapping, PathBuf};

pub(super) const NAME: &str = "subpool";

pub(super) const TELL: Telling = Telling { info, json };

/// Pages: the mount's min_size, its size, the pool, and the two files' mappings.
const MIN: u64 = 2;
const MAX: u64 = 16;
const POOL: u64 = 4;
const SECOND: u64 = 4;

/// It makes its own mount, and its runs are counted, not timed.
pub(super) fn refuses(cfg: &Config) -> Option<Error> {
    if cfg.hugetlbfs.is_some() || given(cfg, Key::Duration) {
        return Some(Error { msg: "makes its own hugetlbfs mount and counts its runs: no --hugetlbfs or -I with race", arg: NAME.as_bytes() });
    }
    None
}

/// The counters after each step of one run.
#[derive(Clone, Copy, Default)]
struct Seen {
    mounted: Counts,
    first: Counts,
    /// After the second mapping failed (it must).
    second: Counts,
    /// After both files are unmapped, closed and unlinked.
    unlinked: Counts,
    /// After the unlinks and the unmount.
    end: Counts,
}

pub(super) fn run(job: &Job, rep: &mut Reporter, rec: &mut Record, frame: &mut Frame) -> Step<Verdict> {
    let (cfg, size) = (job.cfg, job.size);
    if !cfg.destructive {
        // The table's refusal comes first; this one keeps the check from ever running by
        // mistake should a caller forget it.
        return Err(Stop::conf(rec.msg.s("destructive: needs --destructive or a throwaway boot")));
    }
    // Exactly POOL pages available: every other page taken.
    let filled = session::fill(job, frame, POOL, &mut rec.msg)?;
    // This check judges the pool itself, step by step; the frame's after-the-run reading
    // would only repeat its numbers.
    frame.before = None;
    let c0 = filled.counts;
    rep.info(&|l| {
        l.s(job.name).f(" {size}: took {} page(s) with ", &[size, filled.take]).s(filled.file.source_name()).f(
            "; each run starts with {} free, {} reserved: a hugetlbfs mount min_size={} pages, size={} pages; map 1 page MAP_SHARED of one file, {} of another (ENOMEM is due), unmap, close, unlink, unmount",
            &[c0.free, c0.resv, MIN, MAX, SECOND],
        );
    });
    let t0 = sys::monotonic_ns();
    let mut last = Seen::default();
    for i in 1..=cfg.iterations {
        let now = pool::counts(size).map_err(|e| Stop::sys(&mut rec.msg, "reading the hugepage counters", e))?;
        if now != c0 {
            return Err(Stop::brok(rec.msg.f(
                "inconclusive: before run {} the pool read total {}, free {}, reserved {}, surplus {}, not {}, {}, {}, {} (another process uses these hugepages)",
                &[i, now.total, now.free, now.resv, now.surplus, c0.total, c0.free, c0.resv, c0.surplus],
            )));
        }
        last = one_run(size, &mut rec.msg)?;
        rec.figs.iterations = i;
        rec.figs.start = Some((c0.free, c0.resv));
        rec.figs.own = [last.mounted.resv, last.first.resv, last.second.resv, last.unlinked.resv, last.end.resv, last.end.surplus, last.end.free, 0];
        if last.end != c0 {
            // The accounting is broken now: no run after this one starts clean.
            rec.figs.failed = 1;
            rec.figs.elapsed_ns = sys::monotonic_ns() - t0;
            fail_line(&mut rec.msg, &c0, &last, i);
            return Ok(Verdict::Fail);
        }
        rec.figs.passed += 1;
    }
    rec.figs.elapsed_ns = sys::monotonic_ns() - t0;
    rec.msg.f(
        "the subpool gave back what it took in {} of {} runs: reserved {} after the mount, {} after the failed mapping, {} after the unmount",
        &[cfg.iterations, cfg.iterations, last.mounted.resv, last.second.resv, last.end.resv],
    );
    Ok(Verdict::Pass)
}

/// A counter as the kernel holds it: a long, so that an underflow reads -1.
fn signed(l: &mut Line, v: u64) {
    l.u(v);
    if (v as i64) < 0 {
        l.s(" (").i(v as i64).c(b')');
    }
}

/// The TFAIL: the numbers, and which of the kernel's paths they show (a Line holds 480
/// bytes: the words are few).
fn fail_line(l: &mut Line, c0: &Counts, x: &Seen, i: u64) {
    l.s("resv_hugepages underflowed to ");
    signed(l, x.end.resv);
    l.f(", not {} (free {}, surplus {}): reserved {} at the mount, {} after a 1-page MAP_SHARED mapping, {} after a {}-page one the pool could not back (ENOMEM), {} after the unlinks, in run {}; ", &[
        c0.resv, x.end.free, x.end.surplus, x.mounted.resv, x.first.resv, x.second.resv, SECOND, x.unlinked.resv, i,
    ]);
    if x.second.resv + 1 == x.first.resv {
        l.s("the failed mapping released a subpool reservation (hugetlb_reserve_pages: subpool_put_pages(chg - gbl_reserve) before used_hpages drops), the unmount min_hpages again: ");
        super::tell_fix(l, NAME);
    } else {
        l.s("the failed mapping gave the subpool back every page it asked for (subpool_put_pages(chg)): fixed by upstream a833a693a490 \"mm: hugetlb: fix incorrect fallback for subpool\", v6.15");
    }
}

/// The mount, unmounted and its directory removed however the run ends.
struct Mount {
    dir: PathBuf,
    mounted: bool,
}

impl Mount {
    fn unmount(&mut self) -> Result<(), Errno> {
        if self.mounted {
            sys::umount(self.dir.cstr(), 0)?;
            self.mounted = false;
        }
        Ok(())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.mounted {
            let _ = sys::umount(self.dir.cstr(), k::MNT_DETACH);
        }
        let _ = sys::rmdir(self.dir.cstr());
    }
}

/// One run: mount, map, fail, unmap, close, unlink, unmount; the counters after each step.
fn one_run(size: u64, why: &mut Line) -> Step<Seen> {
    let read = |why: &mut Line| pool::counts(size).map_err(|e| Stop::sys(why, "reading the hugepage counters", e));
    let mut dir = PathBuf::from(&[b"/run/hugerace."]).map_err(|e| Stop::sys(why, "path", e))?;
    dir.push_u64(sys::getpid() as u64).and_then(|d| d.push(b".subpool")).map_err(|e| Stop::sys(why, "path", e))?;
    sys::mkdir(dir.cstr(), 0o700).map_err(|e| Stop::conf(why.s("creating ").b(dir.bytes()).s(": ").errno(e)))?;
    let mut m = Mount { dir, mounted: false };
    let mut opts = Line::new();
    opts.f("pagesize={}K,min_size={}K,size={}K,mode=0700", &[size / 1024, MIN * size / 1024, MAX * size / 1024]);
    let opts = PathBuf::from(&[opts.as_bytes()]).map_err(|e| Stop::sys(why, "options", e))?;
    sys::mount(c"hugerace", m.dir.cstr(), c"hugetlbfs", 0, opts.cstr())
        .map_err(|e| Stop::conf(why.s("mounting hugetlbfs with ").b(opts.bytes()).s(": ").errno(e).s(" (no min_size support?)")))?;
    m.mounted = true;
    let mut seen = Seen { mounted: read(why)?, ..Seen::default() };
    let d = sys::open(m.dir.cstr(), k::O_RDONLY | k::O_DIRECTORY).map_err(|e| Stop::sys(why, "open of the mount", e))?;
    let (a, b) = (file(&d, c"a", 1, size, why)?, file(&d, c"b", SECOND, size, why)?);
    let len = size as usize;
    let first = Mapping::map_aligned(&a, 0, len, len, k::MAP_SHARED).map_err(|e| Stop::sys(why, "mmap of 1 page of the first file (MAP_SHARED)", e))?;
    seen.first = read(why)?;
    // One request: a retry would fail the reservation twice.
    match Mapping::map_once(&b, 0, SECOND as usize * len, k::MAP_SHARED) {
        Err(Errno::ENOMEM) => {}
        Err(e) => return Err(Stop::sys(why, "mmap of the second file", e)),
        Ok(_) => return Err(Stop::brok(why.f("the global pool backed {} more pages (overcommit?): the check needs it not to", &[SECOND]))),
    }
    seen.second = read(why)?;
    drop(first);
    drop((a, b));
    for name in [c"a", c"b"] {
        sys::unlinkat(d.raw(), name, 0).map_err(|e| Stop::sys(why, "unlink", e))?;
    }
    drop(d);
    seen.unlinked = read(why)?;
    m.unmount().map_err(|e| Stop::sys(why, "umount of the check's hugetlbfs", e))?;
    drop(m);
    // The subpool goes as the superblock does: read until the counters settle (a second).
    let mut end = read(why)?;
    for _ in 0..10 {
        sys::sleep_ns(100_000_000);
        let now = read(why)?;
        if now == end {
            break;
        }
        end = now;
    }
    seen.end = end;
    Ok(seen)
}

/// A file of `pages` pages on the mount.
fn file(d: &Fd, name: &core::ffi::CStr, pages: u64, size: u64, why: &mut Line) -> Step<Fd> {
    let f = sys::openat(d.raw(), name, k::O_RDWR | k::O_CREAT | k::O_EXCL, 0o600).map_err(|e| Stop::sys(why, "create a file on the mount", e))?;
    sys::ftruncate(&f, pages * size).map_err(|e| Stop::sys(why, "ftruncate", e))?;
    Ok(f)
}

fn info(rep: &mut Reporter, what: &Line, r: &Record) {
    let f = &r.figs;
    rep.info(&|l| {
        l.b(what.as_bytes()).f(if f.iterations == 1 { ": {} run, {} failed" } else { ": {} runs, {} failed" }, &[f.iterations, f.failed]).f(
            "; the last: reserved {} after the mount, {} after the first mapping, {} after the failed one, {} after the unlinks, ",
            &[f.own[0], f.own[1], f.own[2], f.own[3]],
        );
        signed(l, f.own[4]);
        l.f(" after the unmount (surplus {}, free {})", &[f.own[5], f.own[6]]);
    });
}

fn json(_: &mut Doc, l: &mut Line, r: &Record) {
    let f = &r.figs;
    l.f(
        ",\"resv_after\":{{\"mount\":{},\"first_map\":{},\"failed_map\":{},\"unlink\":{},\"unmount\":{}},\"surplus_after\":{},\"free_after\":{}",
        &[f.own[0], f.own[1], f.own[2], f.own[3], f.own[4], f.own[5], f.own[6]],
    );
}

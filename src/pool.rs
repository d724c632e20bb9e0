//! The hugepage pool of one page size: which sizes exist, what is free, and raising the pool
//! for the race and putting back exactly what was there.

use crate::out::Line;
use crate::parse::{self, Counts};
use crate::step::{Step, Stop};
use crate::sys::{self, Errno, PathBuf};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::{AcqRel, Acquire, Release}};

pub const MAX_SIZES: usize = 16;
const SYSFS: &[u8] = b"/sys/kernel/mm/hugepages/hugepages-";

/// The hugepage sizes this kernel offers, ascending, from /sys/kernel/mm/hugepages with
/// /proc/meminfo's single default size as the fallback. Ok(0): no hugetlb support.
pub fn sizes(out: &mut [u64; MAX_SIZES]) -> usize {
    let mut n = 0;
    let _ = sys::read_dir(c"/sys/kernel/mm/hugepages", |name| {
        if let Some(s) = parse::hugepages_dir(name)
            && n < MAX_SIZES {
                out[n] = s;
                n += 1;
            }
    });
    if n == 0
        && let Some(s) = default_size() {
            out[0] = s;
            n = 1;
        }
    // Insertion sort: a handful of sizes, and far smaller code than the library's sort.
    for i in 1..n {
        let mut j = i;
        while j > 0 && out[j - 1] > out[j] {
            out.swap(j - 1, j);
            j -= 1;
        }
    }
    n
}

fn meminfo(buf: &mut [u8; 4096]) -> Option<&[u8]> {
    let n = sys::read_file(c"/proc/meminfo", buf).ok()?;
    Some(&buf[..n])
}

/// The default hugepage size (Hugepagesize in /proc/meminfo).
pub fn default_size() -> Option<u64> {
    let mut buf = [0u8; 4096];
    parse::meminfo(meminfo(&mut buf)?, b"Hugepagesize")?.checked_mul(1024).filter(|s| *s > 0)
}

/// A knob of one size: /sys/kernel/mm/hugepages/hugepages-<kB>kB/<file>.
fn knob(size: u64, file: &[u8]) -> Result<PathBuf, Errno> {
    let mut p = PathBuf::from(&[SYSFS])?;
    p.push_u64(size / 1024)?.push(b"kB/")?.push(file)?;
    Ok(p)
}

fn read_u64(path: &core::ffi::CStr) -> Result<u64, Errno> {
    let mut buf = [0u8; 32];
    let n = sys::read_file(path, &mut buf)?;
    parse::first_u64(&buf[..n]).ok_or(Errno::EINVAL)
}

/// Where a size's knobs live: per-size sysfs, or /proc/sys/vm for the default size on
/// kernels without /sys/kernel/mm/hugepages.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Knobs {
    Sysfs,
    ProcSys,
}

fn knobs(size: u64) -> Knobs {
    match knob(size, b"nr_hugepages") {
        Ok(p) if sys::open(p.cstr(), sys::k::O_RDONLY).is_ok() => Knobs::Sysfs,
        _ => Knobs::ProcSys,
    }
}

fn knob_path(k: Knobs, size: u64, file: &'static [u8]) -> Result<PathBuf, Errno> {
    match k {
        Knobs::Sysfs => knob(size, file),
        Knobs::ProcSys => PathBuf::from(&[b"/proc/sys/vm/", file]),
    }
}

/// The counters of one size: per-size sysfs, where the first read tells whether it is there
/// (no open to test it first: these are read a dozen times a run, each file an open, a read
/// and a close, which count in a one-race run under emulation), else /proc/meminfo.
pub fn counts(size: u64) -> Result<Counts, Errno> {
    let r = |f: &[u8]| -> Result<u64, Errno> { read_u64(knob(size, f)?.cstr()) };
    match r(b"nr_hugepages") {
        Ok(total) => {
            return Ok(Counts { total, free: r(b"free_hugepages")?, resv: r(b"resv_hugepages")?, surplus: r(b"surplus_hugepages")? });
        }
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let mut buf = [0u8; 4096];
    match parse::meminfo_hugepages(meminfo(&mut buf).ok_or(Errno::ENOENT)?) {
        Some((s, c)) if s == size => Ok(c),
        _ => Err(Errno::ENOENT),
    }
}

/// The free and reserved counts of one size: what every race must start from, read
/// before each one (two files, not four).
pub fn free_resv(size: u64) -> Result<(u64, u64), Errno> {
    match Census::open(size) {
        Some(c) => c.free_resv(),
        None => counts(size).map(|c| (c.free, c.resv)),
    }
}

/// free_hugepages and resv_hugepages of one size, held open: the closing racer reads them
/// before every race, and two opens and closes less a race count.
pub struct Census {
    free: sys::Fd,
    resv: sys::Fd,
}

impl Census {
    /// None without per-size sysfs knobs (then `free_resv` reads /proc/meminfo each time).
    pub fn open(size: u64) -> Option<Census> {
        let open = |f: &[u8]| knob(size, f).and_then(|p| sys::open(p.cstr(), sys::k::O_RDONLY));
        Some(Census { free: open(b"free_hugepages").ok()?, resv: open(b"resv_hugepages").ok()? })
    }

    pub fn free_resv(&self) -> Result<(u64, u64), Errno> {
        let read = |fd: &sys::Fd| -> Result<u64, Errno> {
            let mut buf = [0u8; 32];
            let n = sys::reread(fd, &mut buf)?;
            parse::first_u64(&buf[..n]).ok_or(Errno::EINVAL)
        };
        Ok((read(&self.free)?, read(&self.resv)?))
    }
}

/// TBROK when the counters cannot come from a sound kernel: nothing measured on them means
/// anything, and it is the kernel's fault, not the machine's configuration.
pub fn judge(size: u64, c: &Counts, why: &mut Line) -> Step<()> {
    let Some(what) = c.impossible() else { return Ok(()) };
    Err(Stop::brok(why.s("the kernel's hugepage accounting is broken (").s(what).f(
        "): {size} pages total {}, free {}, reserved {}, surplus {}",
        &[size, c.total, c.free, c.resv, c.surplus],
    )))
}

/// What the pool looked like before we changed it, for the exit that cannot unwind (a
/// panic): written before a knob is changed, cleared as each is put back. One size at a time
/// (each mode's pool is restored before the next begins); atomics, so no `unsafe` and no
/// allocator. `NONE` marks a knob we have not touched.
struct Saved {
    /// The process that changed the pool: a racer process (a copy of this memory) must not
    /// restore what its supervisor still uses.
    owner: AtomicU32,
    size: AtomicU64,
    procsys: AtomicU32,
    nr: AtomicU64,
    overcommit: AtomicU64,
}
const NONE: u64 = u64::MAX;
static SAVED: Saved = Saved {
    owner: AtomicU32::new(0),
    size: AtomicU64::new(0),
    procsys: AtomicU32::new(0),
    nr: AtomicU64::new(NONE),
    overcommit: AtomicU64::new(NONE),
};

fn save(k: Knobs, size: u64, nr: Option<u64>, overcommit: Option<u64>) {
    SAVED.size.store(size, Release);
    SAVED.procsys.store((k == Knobs::ProcSys) as u32, Release);
    SAVED.owner.store(sys::getpid() as u32, Release);
    if let Some(v) = nr {
        SAVED.nr.store(v, Release);
    }
    if let Some(v) = overcommit {
        SAVED.overcommit.store(v, Release);
    }
}

/// Put back whatever the pool record says this process changed and has not restored yet:
/// the panic handler's way out. Safe to call at any time; a no-op when nothing is changed.
pub fn restore_saved() {
    if SAVED.owner.load(Acquire) != sys::getpid() as u32 {
        return;
    }
    let k = if SAVED.procsys.load(Acquire) != 0 { Knobs::ProcSys } else { Knobs::Sysfs };
    let size = SAVED.size.load(Acquire);
    let knobs: [(&'static [u8], &AtomicU64); 2] = [(b"nr_hugepages", &SAVED.nr), (b"nr_overcommit_hugepages", &SAVED.overcommit)];
    for (file, saved) in knobs {
        let v = saved.swap(NONE, AcqRel);
        if v != NONE
            && let Ok(p) = knob_path(k, size, file) {
                let _ = write_value(p.cstr(), v);
            }
    }
}

/// One size's pool while we use it; `restore` puts back what we changed.
pub struct Pool {
    pub size: u64,
    knobs: Knobs,
    orig_nr: Option<u64>,
    orig_overcommit: Option<u64>,
    pub raised_by: u64,
}

/// How the pool may be changed.
#[derive(Clone, Copy)]
pub struct Policy {
    pub may_change: bool,
}

fn what_to_run(l: &mut Line, k: Knobs, size: u64, file: &'static [u8], value: u64) {
    l.f("as root: echo {} > ", &[value]);
    if let Ok(p) = knob_path(k, size, file) {
        l.b(p.bytes());
    }
}

impl Pool {
    /// Make at least `need` pages of this size available (free and unreserved), and the pool
    /// unable to grow on demand (no overcommit), so that the last page is really the last.
    /// On failure the reason is in `why`.
    pub fn prepare(size: u64, need: u64, policy: Policy, why: &mut Line) -> Step<Pool> {
        let k = knobs(size);
        let mut pool = Pool { size, knobs: k, orig_nr: None, orig_overcommit: None, raised_by: 0 };
        let c = counts(size).map_err(|e| Stop::sys(why, "reading the hugepage counters", e))?;
        judge(size, &c, why)?;
        pool.no_overcommit(policy, why)?;
        let have = c.available();
        if have >= need {
            return Ok(pool);
        }
        let short = need - have;
        let target = c.total + short;
        let refused = |why: &mut Line, reason: &str, err: Option<Errno>| {
            why.f("needs {} free {size} hugepages, {} available", &[need, size, have]);
            why.s(reason);
            if let Some(e) = err {
                why.errno(e).s("; ");
            }
            what_to_run(why, k, size, b"nr_hugepages", target);
            Stop::conf(why)
        };
        if !policy.may_change {
            return Err(refused(why, " and --no-pool-change was given; ", None));
        }
        if sys::geteuid() != 0 {
            return Err(refused(why, " and only root may raise the pool; ", None));
        }
        let path = knob_path(k, size, b"nr_hugepages").map_err(|e| Stop::sys(why, "nr_hugepages path", e))?;
        // What goes back is the persistent pool: nr_hugepages reads persistent + surplus,
        // and writing that total back would make another process's surplus pages
        // persistent. Recorded before the write, for the exits that cannot unwind.
        let persistent = c.total.saturating_sub(c.surplus);
        save(k, size, Some(persistent), None);
        pool.orig_nr = Some(persistent);
        if let Err(e) = write_value(path.cstr(), target) {
            pool.orig_nr = None;
            SAVED.nr.store(NONE, Release);
            return Err(refused(why, "; writing nr_hugepages failed with ", Some(e)));
        }
        pool.raised_by = short;
        let now = counts(size).map_err(|e| Stop::sys(why, "reading the hugepage counters", e))?;
        judge(size, &now, why)?;
        if now.available() < need && now.total >= target {
            // The kernel gave every page asked for, yet fewer are available: someone
            // reserved or took them meanwhile; no fragmentation explains that.
            return Err(Stop::brok(why.f(
                "the pool changed under us: the kernel gave the {} {size} hugepages asked for, yet {} are available ({} free, {} reserved)",
                &[target, size, now.available(), now.free, now.resv],
            )));
        }
        if now.available() < need {
            return Err(Stop::conf(
                why.f(
                    "asked the kernel for {} {size} hugepages, it gave {} (memory too fragmented or too small); \
                     reserve them at boot: hugepagesz={size} hugepages={}",
                    &[target, size, now.total, size, target],
                ),
            ));
        }
        Ok(pool)
    }

    fn no_overcommit(&mut self, policy: Policy, why: &mut Line) -> Step<()> {
        let Ok(path) = knob_path(self.knobs, self.size, b"nr_overcommit_hugepages") else { return Ok(()) };
        let Ok(v) = read_u64(path.cstr()) else { return Ok(()) };
        if v == 0 {
            return Ok(());
        }
        let refused = |why: &mut Line, err: Option<Errno>| {
            why.f("nr_overcommit_hugepages is {} for {size}: the pool can grow on demand, so no page is ever the last; ", &[v, self.size]);
            if let Some(e) = err {
                why.f("setting it to 0 failed ({errno}); ", &[e.0 as u64]);
            }
            what_to_run(why, self.knobs, self.size, b"nr_overcommit_hugepages", 0);
            Stop::conf(why)
        };
        if !policy.may_change || sys::geteuid() != 0 {
            return Err(refused(why, None));
        }
        save(self.knobs, self.size, None, Some(v));
        if let Err(e) = write_value(path.cstr(), 0) {
            SAVED.overcommit.store(NONE, Release);
            return Err(refused(why, Some(e)));
        }
        self.orig_overcommit = Some(v);
        Ok(())
    }

    pub fn counts(&self) -> Result<Counts, Errno> {
        counts(self.size)
    }

    /// The counters, TBROK when they cannot be read or cannot come from a sound kernel.
    pub fn read(&self, why: &mut Line) -> Step<Counts> {
        let c = self.counts().map_err(|e| Stop::sys(why, "reading the hugepage counters", e))?;
        judge(self.size, &c, why)?;
        Ok(c)
    }

    /// Whether the run changed anything that `restore` will put back.
    pub fn changed(&self) -> bool {
        self.orig_nr.is_some() || self.orig_overcommit.is_some()
    }

    /// Put back the original values. Call it after every page of ours is released: a
    /// lower nr_hugepages is then met at once. On failure `warn` says what is left.
    pub fn restore(&mut self, warn: &mut dyn FnMut(&mut Line)) {
        if let Some(v) = self.orig_nr.take() {
            SAVED.nr.store(NONE, Release);
            // Pages still in use beyond v (another process's) turn surplus and go back when
            // freed: the pool is restored when its persistent part is v. The sysfs knob
            // reads total pages, surplus included, so it is not the measure.
            let path = knob_path(self.knobs, self.size, b"nr_hugepages");
            let ok = path.as_ref().map(|p| write_value(p.cstr(), v).and_then(|_| self.counts()));
            if !matches!(ok, Ok(Ok(c)) if c.total.saturating_sub(c.surplus) == v) {
                let mut l = Line::new();
                l.f("could not restore {size} nr_hugepages to {}", &[self.size, v]);
                warn(&mut l);
            }
        }
        if let Some(v) = self.orig_overcommit.take() {
            SAVED.overcommit.store(NONE, Release);
            let ok = knob_path(self.knobs, self.size, b"nr_overcommit_hugepages").map(|p| write_value(p.cstr(), v));
            if !matches!(ok, Ok(Ok(()))) {
                let mut l = Line::new();
                l.f("could not restore {size} nr_overcommit_hugepages to {}", &[self.size, v]);
                warn(&mut l);
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.restore(&mut |_| {});
    }
}

fn write_value(path: &core::ffi::CStr, v: u64) -> Result<(), Errno> {
    let mut l = Line::new();
    l.u(v).c(b'\n');
    sys::write_file(path, l.as_bytes())
}

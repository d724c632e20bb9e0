//! Which CPUs the racers get: those this process may run on (its affinity mask, sized from the
//! kernel's answer, never a fixed 1024 bits), distinct physical cores first.

use crate::parse;
use crate::step::{Step, Stop};
use crate::sys::{self, Errno, Mapping, PathBuf};

/// The largest CPU number a racer can be pinned to (racer.rs builds masks this big).
pub const MAX_CPU: u32 = 8191;

/// How many racers: a number, or one per allowed CPU.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Racers {
    Count(u32),
    All,
}

/// A `-c` CPU list, checked once, when given: well formed, two CPUs or more, none above
/// MAX_CPU, none twice (two racers on one CPU never race). It keeps the text it checked
/// (no allocator, and a list may name thousands of CPUs) and is read only through `each`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CpuList(&'static [u8]);

impl CpuList {
    /// The list, or why it is refused.
    pub fn new(text: &'static [u8]) -> Result<CpuList, &'static str> {
        let n = parse::cpu_list(text, MAX_CPU, &mut |_| {}).ok_or("not a CPU list (like 2,5 or 0-3)")?;
        if n < 2 {
            return Err("a race needs at least 2 CPUs");
        }
        let mut seen = [0u8; (MAX_CPU as usize + 1) / 8];
        let mut dup = false;
        let _ = parse::cpu_list(text, MAX_CPU, &mut |c| {
            let (byte, bit) = ((c / 8) as usize, 1u8 << (c % 8));
            if let Some(b) = seen.get_mut(byte) {
                dup |= *b & bit != 0;
                *b |= bit;
            }
        });
        if dup {
            return Err("CPU listed twice");
        }
        Ok(CpuList(text))
    }
    /// Each CPU, in the order listed.
    pub fn each(self, f: &mut dyn FnMut(u32)) {
        let _ = parse::cpu_list(self.0, MAX_CPU, f);
    }
    pub fn text(self) -> &'static [u8] {
        self.0
    }
}

/// The allowed-CPU mask of this process.
pub struct Allowed {
    buf: Mapping,
    len: usize,
}

/// Ask for the mask with a buffer that doubles until the kernel stops saying EINVAL (its
/// mask is larger than our buffer), up to 1 MiB (8M CPUs).
pub fn allowed(why: &mut crate::out::Line) -> Step<Allowed> {
    let mut size = 4096;
    loop {
        let mut buf = Mapping::anon(size, false).map_err(|e| Stop::sys(why, "mmap", e))?;
        match sys::sched_getaffinity(buf.bytes_mut()) {
            Ok(len) => return Ok(Allowed { buf, len }),
            Err(Errno::EINVAL) if size < 1 << 20 => size *= 2,
            Err(e) => return Err(Stop::sys(why, "sched_getaffinity", e)),
        }
    }
}

impl Allowed {
    pub fn each(&self, f: &mut dyn FnMut(u32)) {
        // `len` is how much of our buffer the kernel filled.
        parse::mask_cpus(&self.buf.bytes()[..self.len], f)
    }
    pub fn count(&self) -> u32 {
        let mut n = 0;
        self.each(&mut |_| n += 1);
        n
    }
    pub fn contains(&self, cpu: u32) -> bool {
        let mut found = false;
        self.each(&mut |c| found |= c == cpu);
        found
    }
    /// The mask as a CPU list for messages: 0-3,8.
    pub fn write_list(&self, l: &mut crate::out::Line) {
        let mut run: Option<(u32, u32)> = None;
        let mut first = true;
        let flush = |l: &mut crate::out::Line, r: (u32, u32), first: &mut bool| {
            if !*first {
                l.c(b',');
            }
            *first = false;
            l.u(r.0 as u64);
            if r.1 > r.0 {
                l.c(b'-').u(r.1 as u64);
            }
        };
        self.each(&mut |c| {
            run = match run {
                Some((a, b)) if b + 1 == c => Some((a, c)),
                Some(r) => {
                    flush(l, r, &mut first);
                    Some((c, c))
                }
                None => Some((c, c)),
            }
        });
        if let Some(r) = run {
            flush(l, r, &mut first);
        }
    }
}

/// Whether `cpu` is the first thread of its core (or its topology is unknown).
fn first_of_core(cpu: u32) -> bool {
    let mut p = PathBuf::new();
    if p.push(b"/sys/devices/system/cpu/cpu").and_then(|p| p.push_u64(cpu as u64)).and_then(|p| p.push(b"/topology/thread_siblings_list")).is_err() {
        return true;
    }
    let mut buf = [0u8; 64];
    let Ok(n) = sys::read_file(p.cstr(), &mut buf) else { return true };
    let mut first = None;
    let _ = parse::cpu_list(&buf[..n], u32::MAX, &mut |c| {
        if first.is_none() {
            first = Some(c)
        }
    });
    first.is_none_or(|f| f == cpu)
}

/// How many racers `-c` (`cpus`) or `-n` (`racers`) asks for on this machine.
pub fn racer_count(cpus: Option<CpuList>, racers: Racers, allowed: &Allowed, why: &mut crate::out::Line) -> Step<u32> {
    if let Some(list) = cpus {
        let mut n = 0u32;
        let mut bad = None;
        list.each(&mut |c| {
            n += 1;
            if bad.is_none() && !allowed.contains(c) {
                bad = Some(c);
            }
        });
        if let Some(c) = bad {
            why.f("CPU {} given with -c is not one this process may run on (allowed: ", &[c as u64]);
            allowed.write_list(why);
            return Err(Stop::conf(why.c(b')')));
        }
        return Ok(n);
    }
    let have = allowed.count();
    let want = match racers {
        Racers::All => have,
        Racers::Count(n) => n,
    };
    if want > have || have < 2 {
        why.f("the race needs {} CPUs this process may run on, it has {} (", &[want.max(2) as u64, have as u64]);
        allowed.write_list(why);
        return Err(Stop::conf(why.c(b')')));
    }
    Ok(want)
}

/// Give each of the `n` racers a CPU: the -c list in order, or allowed CPUs on distinct
/// physical cores first, then their sibling threads.
pub fn choose(cpus: Option<CpuList>, allowed: &Allowed, n: u32, mut give: impl FnMut(u32, u32)) {
    let mut i = 0;
    if let Some(list) = cpus {
        list.each(&mut |c| {
            if i < n {
                give(i, c);
                i += 1;
            }
        });
        return;
    }
    for pass in 0..2 {
        allowed.each(&mut |c| {
            if i < n && first_of_core(c) == (pass == 0) {
                give(i, c);
                i += 1;
            }
        });
    }
}

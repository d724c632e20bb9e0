//! detect: /init of `make detect`'s test image, which holds it, `/hugerace` and `/forkspin`.
//!
//! Kernel command line, after `--`: `BLOCKS RACES SIZE KEEPGOING [NAMED]`. For each of BLOCKS
//! blocks, for each mode (shared, then private): hugerace races RACES times
//! (`/hugerace -f json -s SIZE -i RACES --keep-going MODE`, one JSON line, at the default
//! level start that users get; KEEPGOING 2 adds `--offset sweep`; with KEEPGOING 0, for a
//! hugerace without --keep-going, RACES runs of `-i 1` instead), then forkspin races
//! RACES times (`/forkspin MODE RACES SIZE`, one `forkspin:` line). Interleaving the two in
//! blocks gives both the same machine state over the boot. With a fifth argument `dontneed`,
//! each block races `--race dontneed` RACES times and then `/madvrace LOOPS` (the sixth
//! argument), the kernel selftest's free-running way. Then `detect: done`, sync, power
//! off. scripts/boot.py --detect reads the lines off the console and sums them.
//!
//! With `/alloc-instantiate-race` in the image (libhugetlbfs's own test, built static:
//! `make detect LIBHUGETLBFS_TEST=PATH`), each block also runs it RACES times per mode, after
//! forkspin, each run from a pool of two free pages on a hugetlbfs mount of the size, and
//! says `airace: mode=M size=S races=N failed=F broken=B`.
//!
//! Each block also runs hugerace as users of libhugetlbfs's runner and of LTP's runtest files
//! do: by the test's name, `alloc-instantiate-race MODE` (one race a run), NAMED times per
//! mode (NAMED, default 10), and says `named: ...` likewise. Every one-race run,
//! the C test's and these, is timed from fork to reaped and said in `runtime: PROG MODE US...`
//! lines (microseconds): item 4 of issue 18, a one-race run no slower than the C test.
//!
//! On a kernel with boot/hugetlb-narrow-stamps.patch, every program's run is followed by the
//! stamps of its hugetlb faults, copied off /proc/hugetlb_stamps between `stamps: begin PROG
//! MODE` and `stamps: end` (the ring is emptied before each run); scripts/stamps.py reads them.
#![no_std]
#![no_main]

use core::ffi::CStr;
use hugerace::out::Line;
use hugerace::parse;
use hugerace::sys::{self, k, Errno, Forked, PathBuf};

hugerace::entry!(start);
hugerace::mem_functions!();

fn say(l: &mut Line) {
    l.c(b'\n').emit(1);
    l.clear();
}

/// The console on fds 0-2, then /proc and /sys, as hugerace's PID-1 mode does.
fn prepare() {
    if let Ok(fd) = sys::open(c"/dev/console", k::O_RDWR) {
        for t in 0..3 {
            if fd.raw() != t {
                let _ = sys::dup3(fd.raw(), t);
            }
        }
        if fd.raw() < 3 {
            core::mem::forget(fd);
        }
    }
    for (dir, fs) in [(c"/proc", c"proc"), (c"/sys", c"sysfs")] {
        let _ = sys::mkdir(dir, 0o755);
        if let Err(e) = sys::mount(fs, dir, fs, 0, c"") {
            let mut l = Line::new();
            l.s("detect: mount ").b(fs.to_bytes()).s(": ").errno(e);
            say(&mut l);
        }
    }
}

const STAMPS: &CStr = c"/proc/hugetlb_stamps";

/// Copy the fault stamps of the run just ended to the console, then empty the ring. Nothing
/// on a kernel without the stamps patch.
fn drain(prog: &[u8], argv: &[&CStr]) {
    let Ok(fd) = sys::open(STAMPS, k::O_RDONLY) else { return };
    let mut l = Line::new();
    l.s("stamps: begin ").b(prog);
    if let Some(mode) = argv.iter().find(|a| matches!(a.to_bytes(), b"shared" | b"private")) {
        l.c(b' ').b(mode.to_bytes());
    }
    say(&mut l);
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = sys::read(fd.raw(), &mut buf) {
        let _ = sys::write_all(1, &buf[..n]);
    }
    l.s("stamps: end");
    say(&mut l);
    reset_stamps();
}

fn reset_stamps() {
    let _ = sys::write_file(STAMPS, b"0");
}

/// Run one program to its end; PID 1 also reaps every orphan on the way.
fn run(argv: &[&CStr]) {
    if let Some((w, _)) = run_wait(argv[0], argv) {
        if let Some(sig) = w.signal() {
            let mut l = Line::new();
            l.s("detect: ").b(argv[0].to_bytes()).s(" killed by signal ").u(sig as u64);
            say(&mut l);
        }
    }
    drain(argv[0].to_bytes(), argv);
}

/// libhugetlbfs's own test, if the image holds it (`make detect LIBHUGETLBFS_TEST=...`).
const C_TEST: &CStr = c"/alloc-instantiate-race";

/// A block's run times of one program in one mode, said 32 to a `runtime:` line.
struct Runtimes<'a> {
    prog: &'a str,
    mode: &'a CStr,
    us: [u64; 32],
    n: usize,
}

impl Runtimes<'_> {
    fn add(&mut self, us: u64) {
        self.us[self.n] = us;
        self.n += 1;
        if self.n == self.us.len() {
            self.say();
        }
    }

    fn say(&mut self) {
        if self.n == 0 {
            return;
        }
        let mut l = Line::new();
        l.s("runtime: ").s(self.prog).c(b' ').b(self.mode.to_bytes());
        for &us in &self.us[..self.n] {
            l.c(b' ').u(us);
        }
        say(&mut l);
        self.n = 0;
    }
}

/// RACES runs of a one-race test `ARGV0 MODE`, each timed, that say PASS or FAIL in
/// libhugetlbfs's exit codes: libhugetlbfs's own test (`airace`) or hugerace by that test's
/// name (`named`). A run failed when it said FAIL (exit 2) or a SIGBUS killed it (the C
/// test's private racers are its threads); anything else broke it. With `pool` (the image
/// holds the C test), each run of either starts from a pool of two free pages of the size,
/// emptied after, as libhugetlbfs's runner sets it up, so that the two are timed alike;
/// without, hugerace raises the pool itself.
fn one_race_runs(label: &str, path: &CStr, words: &[&CStr], mode: &CStr, size: &PathBuf, races: u64, pool: Option<&CStr>) {
    let (mut failed, mut broken) = (0u64, 0u64);
    let mut times = Runtimes { prog: label, mode, us: [0; 32], n: 0 };
    for _ in 0..races {
        if let Some(p) = pool {
            let _ = sys::write_file(p, b"2");
        }
        match run_wait(path, words) {
            Some((w, us)) => {
                times.add(us);
                match (w.exit_code(), w.signal()) {
                    (Some(0), _) => {}
                    (Some(2), _) | (_, Some(k::SIGBUS)) => failed += 1,
                    _ => broken += 1,
                }
            }
            None => broken += 1,
        }
        if let Some(p) = pool {
            let _ = sys::write_file(p, b"0");
        }
        drain(label.as_bytes(), words);
    }
    times.say();
    let mut l = Line::new();
    l.s(label).s(": mode=").b(mode.to_bytes()).s(" size=").b(size.bytes());
    l.s(" races=").u(races).s(" failed=").u(failed).s(" broken=").u(broken);
    say(&mut l);
}

/// Run `path` (named `argv[0]`) to its end and say how it ended and after how many
/// microseconds from the fork (None: it could not be run); PID 1 also reaps every orphan on
/// the way.
fn run_wait(path: &CStr, argv: &[&CStr]) -> Option<(sys::WaitStatus, u64)> {
    reset_stamps();
    let mut l = Line::new();
    let t0 = sys::monotonic_ns();
    let pid = match sys::fork() {
        Ok(Forked::Child) => {
            let e = sys::execve(path, argv);
            l.s("detect: exec ").b(argv[0].to_bytes()).s(": ").errno(e);
            say(&mut l);
            sys::exit_group(127)
        }
        Ok(Forked::Parent(pid)) => pid,
        Err(e) => {
            l.s("detect: fork: ").errno(e);
            say(&mut l);
            return None;
        }
    };
    loop {
        match sys::wait4(-1, 0) {
            Ok(w) if w.pid != pid => continue,
            Ok(w) => return Some((w, sys::monotonic_ns().saturating_sub(t0) / 1000)),
            Err(e) => {
                l.s("detect: wait4: ").errno(e);
                say(&mut l);
                return None;
            }
        }
    }
}

fn word(b: &[u8]) -> PathBuf {
    PathBuf::from(&[b]).unwrap_or_default()
}

extern "C" fn start(sp: *const usize) -> ! {
    // SAFETY: `_start` (arch `entry!`) passes the kernel's initial stack pointer.
    let args = unsafe { sys::start::init(sp) };
    prepare();
    let num = |i: usize, d: u64| args.get(i).and_then(parse::u64_dec).unwrap_or(d);
    let (blocks, races) = (num(1, 4), num(2, 50));
    let size = word(args.get(3).unwrap_or(b"2M"));
    let how = num(4, 1);
    // The dontneed race: hugerace's, then the kernel selftest's free-running way (madvrace)
    // for LOOPS loops, in each block.
    let dontneed = args.get(5) == Some(b"dontneed");
    let loops = word(args.get(6).unwrap_or(b"1000"));
    let named = if dontneed { 0 } else { num(5, 10) };
    let mut l = Line::new();
    l.s("detect: ").u(blocks).s(" blocks of ").u(races).s(" races per mode, size ").b(size.bytes());
    say(&mut l);
    // libhugetlbfs's test beside forkspin, when the image holds it: a hugetlbfs mount of the
    // size and that size's pool knob.
    let c_pool = match (sys::open(C_TEST, k::O_RDONLY), parse::size(size.bytes())) {
        (Ok(_), Some(bytes)) if !dontneed => {
            let _ = sys::mkdir(c"/hugetlbfs", 0o755);
            l.s("pagesize=").b(size.bytes());
            let opts = word(l.as_bytes());
            l.clear();
            if let Err(e) = sys::mount(c"none", c"/hugetlbfs", c"hugetlbfs", 0, opts.cstr()) {
                l.s("detect: mount hugetlbfs: ").errno(e);
                say(&mut l);
            }
            l.s("/sys/kernel/mm/hugepages/hugepages-").u(bytes >> 10).s("kB/nr_hugepages");
            let p = word(l.as_bytes());
            l.clear();
            Some(p)
        }
        _ => None,
    };
    let n = word(l.u(races).as_bytes());
    l.clear();
    for _ in 0..blocks {
        if dontneed {
            run(&[c"/hugerace", c"-f", c"json", c"-s", size.cstr(), c"-i", n.cstr(), c"--keep-going", c"--race", c"dontneed"]);
            run(&[c"/madvrace", loops.cstr(), size.cstr()]);
            continue;
        }
        for mode in [c"shared", c"private"] {
            if how == 1 {
                run(&[c"/hugerace", c"-f", c"json", c"-s", size.cstr(), c"-i", n.cstr(), c"--keep-going", mode]);
            } else if how == 2 {
                run(&[c"/hugerace", c"-f", c"json", c"-s", size.cstr(), c"-i", n.cstr(), c"--keep-going", c"--offset", c"sweep", mode]);
            } else {
                for _ in 0..races {
                    run(&[c"/hugerace", c"-f", c"json", c"-s", size.cstr(), c"-i", c"1", mode]);
                }
            }
            run(&[c"/forkspin", mode, n.cstr(), size.cstr()]);
            if let Some(pool) = &c_pool {
                one_race_runs("airace", C_TEST, &[C_TEST, mode], mode, &size, races, Some(pool.cstr()));
            }
            // hugerace is told the size (the C test races the default page size, which is the
            // size of every detect machine's pool but the large-page ones').
            let words = [c"alloc-instantiate-race", mode, c"-s", size.cstr()];
            one_race_runs("named", c"/hugerace", &words, mode, &size, named, c_pool.as_ref().map(|p| p.cstr()));
        }
    }
    l.s("detect: done");
    say(&mut l);
    sys::sync();
    let e = sys::power_off();
    l.s("detect: reboot(POWER_OFF): ").errno(e);
    say(&mut l);
    let _ = sys::halt();
    loop {
        sys::sleep_ns(1_000_000_000);
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    let _ = sys::write_all(1, b"detect: panic\n");
    let _: Errno = sys::power_off();
    loop {}
}

#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

//! Fuzzing on stable Rust (issue 7): the command-line parser and the /proc and /sys parsers
//! get inputs mutated from the seeds in fuzz/corpus/<target>/ by a small deterministic PRNG.
//! The target is no panic: no out-of-bounds index, no overflow (this build has overflow
//! checks), no unwrap on bad input. Each target runs HUGERACE_FUZZ_SECS seconds (2 in
//! `make test`, 60 in `make fuzz`) from HUGERACE_FUZZ_SEED (fixed by default, so a failure
//! repeats). An input that panics is written to fuzz/crashes/ and fails the test.

use hugerace::cli::{self, Action, Config};
use hugerace::parse;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

/// xorshift64*: small, fast, and the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

/// Pieces that matter to these parsers, spliced in by the mutator.
const TOKENS: &[&[u8]] = &[
    b"0", b"1", b"9", b"-", b",", b":", b"=", b"\n", b" ", b"\t", b"\0", b"kB", b"K", b"M", b"G", b"T", b"KiB", b"all",
    b"18446744073709551615", b"18446744073709551616", b"4294967295", b"1048576", b"99999999999999999999999",
    b"hugepages-", b"2048kB", b"pagesize=", b"hugetlbfs", b"\\040", b"\\", b"\\777", b"HugePages_Total:", b"HugePages_Free:",
    b"HugePages_Rsvd:", b"Hugepagesize:", b"--", b"--mode", b"-m", b"-s", b"-c", b"-n", b"-i", b"-I", b"--leave-free",
    b"--noreserve", b"--hugetlbfs", b"--pagesize=", b"shared", b"private", b"both", b"-f", b"json", b"\xff", b"\xc3(",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], max_len: usize) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(v.len() + 1);
        match rng.below(8) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(at, rng.next() as u8),
            2 if !v.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(v.len());
                v.drain(at.min(end)..end);
            }
            3 | 4 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(at..at, t.iter().copied());
            }
            5 if !v.is_empty() => {
                // Repeat a chunk (long runs of digits, of lines).
                let a = rng.below(v.len());
                let b = (a + 1 + rng.below(32)).min(v.len());
                let chunk = v[a..b].repeat(1 + rng.below(8));
                v.splice(at..at, chunk);
            }
            6 => {
                // Splice in part of another seed.
                let o = &seeds[rng.below(seeds.len())];
                let a = rng.below(o.len() + 1);
                let b = (a + rng.below(64)).min(o.len());
                v.splice(at..at, o[a..b].iter().copied());
            }
            _ => {
                let t = TOKENS[rng.below(TOKENS.len())];
                v.extend_from_slice(t);
            }
        }
    }
    v.truncate(max_len);
    v
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut v: Vec<Vec<u8>> = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten().map(|e| std::fs::read(e.path()).unwrap()).collect();
    v.push(Vec::new());
    v
}

fn secs() -> u64 {
    std::env::var("HUGERACE_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(2)
}

fn seed() -> u64 {
    std::env::var("HUGERACE_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x9e37_79b9_7f4a_7c15) | 1
}

/// Run `check` on mutated inputs for the configured time; fail with the saved crashes.
fn fuzz(target: &str, max_len: usize, mut check: impl FnMut(&[u8], &mut Rng)) {
    let seeds = seeds(target);
    let mut rng = Rng(seed() ^ (target.len() as u64 * 0x100_0000_01b3));
    let end = Instant::now() + Duration::from_secs(secs());
    let (mut cases, mut crashes) = (0u64, Vec::new());
    // Quiet the default hook: a panic here is recorded, not printed for every case.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    while Instant::now() < end {
        for _ in 0..256 {
            let input = if cases < seeds.len() as u64 { seeds[cases as usize].clone() } else { mutate(&mut rng, &seeds, max_len) };
            let mut sub = Rng(rng.next() | 1);
            cases += 1;
            if catch_unwind(AssertUnwindSafe(|| check(&input, &mut sub))).is_err() {
                crashes.push(input);
            }
        }
    }
    std::panic::set_hook(hook);
    eprintln!("fuzz {target}: {cases} inputs in {} s, {} crashes", secs(), crashes.len());
    if !crashes.is_empty() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/crashes");
        std::fs::create_dir_all(&dir).unwrap();
        for (i, c) in crashes.iter().enumerate().take(20) {
            std::fs::write(dir.join(format!("{target}-{i}")), c).unwrap();
        }
        panic!("{target}: {} inputs panicked, first: {:?} (saved in {})", crashes.len(), String::from_utf8_lossy(&crashes[0]), dir.display());
    }
}

#[test]
fn fuzz_cli() {
    // cli::parse keeps &'static words (they come from argv); inputs are leaked into a pool
    // that stops growing at a bound, after which words are recombined.
    let mut pool: Vec<&'static [u8]> = Vec::new();
    let mut leaked = 0usize;
    fuzz("cli", 512, |input, rng| {
        let mut words: Vec<&'static [u8]> = Vec::new();
        for w in input.split(|&b| b == 0).take(24) {
            if leaked < 32 << 20 {
                leaked += w.len() + 16;
                let w: &'static [u8] = Box::leak(w.to_vec().into_boxed_slice());
                pool.push(w);
                words.push(w);
            } else {
                words.push(pool[rng.below(pool.len())]);
            }
        }
        match cli::parse(words.iter().copied(), Config::default()) {
            Ok(Action::Run(c)) => {
                if let Ok(sel) = hugerace::races::select(&c) {
                    assert!(sel.each().any(|k| k.modes_for(c.mode) != 0));
                }
                assert!(c.iterations >= 1);
                assert!(c.leave_free > 0 || c.noreserve);
                if let cli::PageSel::Size(s) = c.pagesize {
                    assert!(s.is_power_of_two());
                }
                if let Some(list) = c.cpus {
                    let mut n = 0;
                    list.each(&mut |_| n += 1);
                    assert!(n >= 2, "{:?}", list);
                }
            }
            Ok(_) => {}
            Err(e) => assert!(!e.msg.is_empty()),
        }
    });
}

#[test]
fn fuzz_numbers_and_sizes() {
    fuzz("numbers", 128, |input, _| {
        if let Some(v) = parse::u64_dec(input) {
            // Only plain digits parse, and they mean what they say.
            assert!(input.iter().all(u8::is_ascii_digit));
            let digits: Vec<u8> = input.iter().copied().skip_while(|&c| c == b'0').collect();
            assert_eq!(v.to_string().as_bytes(), if digits.is_empty() { &b"0"[..] } else { &digits[..] });
        }
        let _ = parse::first_u64(input);
        let _ = parse::trim(input);
        if let Some(s) = parse::size(input) {
            assert!(s.is_power_of_two());
            let mut l = hugerace::out::Line::new();
            l.size(s);
            assert_eq!(parse::size(l.as_bytes()), Some(s), "{:?}", String::from_utf8_lossy(l.as_bytes()));
        }
        if let Some(s) = parse::hugepages_dir(input) {
            assert!(s.is_power_of_two() && s >= 1024);
        }
        let _ = parse::mount_pagesize(input, 2 << 20);
    });
}

#[test]
fn fuzz_meminfo() {
    // The seeds hold both sides of the relation below: one free page left after one
    // reserved, and more reserved than free (a kernel whose count went wrong).
    let seed = |name: &str| std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/meminfo").join(name)).unwrap();
    let (_, c) = parse::meminfo_hugepages(&seed("meminfo.1reserved.txt")).expect("seed parses");
    assert_eq!((c.free, c.resv, c.available()), (4, 1, 3));
    let (_, c) = parse::meminfo_hugepages(&seed("meminfo.reserved.txt")).expect("seed parses");
    assert_eq!((c.free, c.resv, c.available()), (2, 5, 0));
    fuzz("meminfo", 8192, |input, _| {
        for key in [&b"Hugepagesize"[..], b"HugePages_Total", b"HugePages_Free", b"MemTotal", b""] {
            let _ = parse::meminfo(input, key);
        }
        if let Some((size, c)) = parse::meminfo_hugepages(input) {
            assert!(size % 1024 == 0);
            // What a fault can still take: the free pages no reservation holds, none when
            // more are reserved than free.
            assert_eq!(c.available() + c.resv.min(c.free), c.free, "{c:?}");
            assert_eq!(parse::meminfo(input, b"HugePages_Free"), Some(c.free));
            assert_eq!(parse::meminfo(input, b"HugePages_Rsvd").unwrap_or(0), c.resv);
        }
    });
}

#[test]
fn fuzz_mounts() {
    fuzz("mounts", 8192, |input, rng| {
        for m in parse::mounts(input) {
            let _ = parse::mount_pagesize(m.opts, 2 << 20);
            let mut out = vec![0u8; rng.below(300)];
            if let Some(n) = parse::unescape(m.dir, &mut out) {
                assert!(n <= out.len() && n <= m.dir.len());
            }
        }
    });
}

#[test]
fn fuzz_cpu_lists_and_masks() {
    fuzz("cpulist", 256, |input, rng| {
        let max = [0u32, 1, 63, 64, 1023, 1 << 20][rng.below(6)];
        let mut seen = 0usize;
        let mut prev_max = 0u32;
        if let Some(n) = parse::cpu_list(input, max, &mut |c| {
            seen += 1;
            prev_max = prev_max.max(c);
        }) {
            assert_eq!(n, seen);
            assert!(prev_max <= max);
        }
        // The same bytes as a kernel affinity mask, and setting bits in one.
        let mut set = Vec::new();
        parse::mask_cpus(input, &mut |c| set.push(c));
        assert!(set.len() <= input.len() * 8);
        let mut mask = vec![0u8; rng.below(64)];
        let cpu = rng.next() as u32 % 1024;
        if parse::mask_set(&mut mask, cpu) {
            let mut found = false;
            parse::mask_cpus(&mask, &mut |c| found |= c == cpu);
            assert!(found || mask.len() % core::mem::size_of::<usize>() != 0, "cpu {cpu} in a {}-byte mask", mask.len());
        }
    });
}

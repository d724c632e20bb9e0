//! Every target we claim, run under qemu-user on this host against its real hugepages.
//!
//! `make test` builds each target first (`make cross`) and names them in
//! `HUGERACE_CROSS_TARGETS`; then a missing binary is a failure. Run bare (`cargo test`), the
//! tests skip the targets not built yet. A missing `qemu-<arch>-static` skips that target's
//! tests with the reason printed, unless under CI (`make setup` installs qemu,
//! so there it must run). The host target runs natively; 32-bit guests get a 4G-aligned
//! guest base (see `runner`).
//!
//! Per target: the arch smoke test (examples/archcheck) passes; the ELF is the right machine,
//! static, without an interpreter; `--version` names the triple; a bad option exits 2; shared
//! and private PASS with `-i 20`; the negative control (`--leave-free 0 --noreserve`) TFAILs
//! naming SIGBUS. The race tests hold the machine-wide pool lock and check the pool is put
//! back.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Target {
    triple: &'static str,
    /// qemu-user's name for the arch; None for the host, which runs natively.
    qemu: Option<&'static str>,
    /// e_machine, and whether the ELF is big-endian.
    machine: u16,
    big_endian: bool,
}

impl Target {
    fn is_32bit(&self) -> bool {
        matches!(self.machine, 3 | 40)
    }
    /// The base pages the binary must cope with: arm64, ppc64 (and arm binaries, which may
    /// run on an arm64 kernel) may have 64K.
    fn max_page(&self) -> u64 {
        if matches!(self.machine, 183 | 21 | 40) { 65536 } else { 4096 }
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// The paths of this target's binaries and the command prefix that runs them, or None (with
/// the reason printed) when the test must skip.
struct Runner {
    prefix: Vec<PathBuf>,
    bin: PathBuf,
    archcheck: PathBuf,
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()))
}

fn runner(t: &Target) -> Option<Runner> {
    let listed = std::env::var("HUGERACE_CROSS_TARGETS").ok();
    if let Some(l) = &listed
        && !l.split_whitespace().any(|x| x == t.triple) {
            common::skip(&format!("{}: not in HUGERACE_CROSS_TARGETS", t.triple));
            return None;
        }
    let dir = target_dir().join(t.triple).join("release");
    let (bin, archcheck) = (dir.join("hugerace"), dir.join("examples/archcheck"));
    if !bin.exists() || !archcheck.exists() {
        assert!(listed.is_none(), "{} or archcheck missing: `make cross` should have built them", bin.display());
        common::skip(&format!("{}: not built (run `make cross`)", t.triple));
        return None;
    }
    let mut prefix = vec![PathBuf::from("timeout"), "-k".into(), "5".into(), "240".into()];
    if let Some(arch) = t.qemu {
        let name = format!("qemu-{arch}-static");
        match on_path(&name) {
            Some(q) => {
                prefix.push(q);
                if t.is_32bit() {
                    // qemu-user puts a 32-bit guest's 4G at a host base that is only
                    // page-aligned, so a guest address we aligned to 2M is not 2M-aligned
                    // on the host and hugetlb mmap fails with EINVAL. A 4G-aligned base
                    // fixes that; natively there is no base at all.
                    prefix.extend(["-B".into(), "0x100000000".into()]);
                }
            }
            None => {
                common::skip(&format!("{}: {name} not installed (apt-get install qemu-user-static, or `make setup` as root)", t.triple));
                return None;
            }
        }
    }
    Some(Runner { prefix, bin, archcheck })
}

impl Runner {
    fn run(&self, exe: &Path, args: &[&str]) -> Output {
        Command::new(&self.prefix[0]).args(&self.prefix[1..]).arg(exe).args(args).output().expect("spawn")
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn archcheck(t: &Target) {
    let Some(r) = runner(t) else { return };
    let o = r.run(&r.archcheck, &[]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{}: archcheck failed:\n{out}", t.triple);
    assert!(out.contains(&format!("archcheck: PASS {}", t.triple)), "{}: no PASS line:\n{out}", t.triple);
    assert!(!out.contains("not ok"), "{out}");
}

/// The ELF itself: right class, byte order and machine; static (no PT_INTERP, no
/// PT_DYNAMIC). A host binary slipping in by mistake fails here.
fn elf(t: &Target) {
    let Some(r) = runner(t) else { return };
    let f = std::fs::read(&r.bin).expect("read binary");
    assert_eq!(&f[..4], b"\x7fELF", "{}: not an ELF", t.triple);
    assert_eq!(f[4], if t.is_32bit() { 1 } else { 2 }, "{}: wrong ELF class", t.triple);
    assert_eq!(f[5], if t.big_endian { 2 } else { 1 }, "{}: wrong byte order", t.triple);
    let u16_at = |o: usize| if t.big_endian { u16::from_be_bytes([f[o], f[o + 1]]) } else { u16::from_le_bytes([f[o], f[o + 1]]) };
    let u32_at = |o: usize| {
        let b = [f[o], f[o + 1], f[o + 2], f[o + 3]];
        if t.big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
    };
    let u64_at = |o: usize| {
        let b: [u8; 8] = f[o..o + 8].try_into().unwrap();
        if t.big_endian { u64::from_be_bytes(b) } else { u64::from_le_bytes(b) }
    };
    assert_eq!(u16_at(18), t.machine, "{}: wrong e_machine", t.triple);
    assert_eq!(u16_at(16), 2, "{}: not ET_EXEC (static, non-PIE)", t.triple);
    let (phoff, phentsize, phnum) = if t.is_32bit() {
        (u32_at(28) as usize, u16_at(42) as usize, u16_at(44) as usize)
    } else {
        (u64_at(32) as usize, u16_at(54) as usize, u16_at(56) as usize)
    };
    for i in 0..phnum {
        let p = phoff + i * phentsize;
        let (ty, off, vaddr, align) = if t.is_32bit() {
            (u32_at(p), u32_at(p + 4) as u64, u32_at(p + 8) as u64, u32_at(p + 28) as u64)
        } else {
            (u32_at(p), u64_at(p + 8), u64_at(p + 16), u64_at(p + 48))
        };
        assert!(ty != 3 && ty != 2, "{}: has PT_INTERP or PT_DYNAMIC", t.triple);
        if ty == 1 {
            // PT_LOAD: congruent modulo 64K where the kernel may use 64K pages.
            let page = t.max_page();
            assert!(align >= page, "{}: PT_LOAD aligned to {align}, want {page}", t.triple);
            assert_eq!(off % page, vaddr % page, "{}: PT_LOAD offset and address differ modulo {page}", t.triple);
        }
    }
}

fn version(t: &Target) {
    let Some(r) = runner(t) else { return };
    let o = r.run(&r.bin, &["--version"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains(t.triple), "{}: --version does not name the target:\n{out}", t.triple);
}

fn bad_option(t: &Target) {
    let Some(r) = runner(t) else { return };
    let o = r.run(&r.bin, &["--no-such-option"]);
    assert_eq!(o.status.code(), Some(2), "{}: bad option:\n{}", t.triple, text(&o));
}

/// Run a race under the pool lock; check the arch in the TINFO line and that the pool and
/// the process table are left as found.
fn race(t: &Target, args: &[&str]) -> Option<(Option<i32>, String)> {
    let r = runner(t)?;
    if !common::need_root_hugetlb() {
        return None;
    }
    let guard = common::pool_guard();
    let o = r.run(&r.bin, args);
    let out = text(&o);
    eprintln!("{} {args:?}:\n{out}", t.triple);
    guard.assert_restored();
    drop(guard);
    assert!(out.contains(&format!("({})", t.triple)), "{}: the TINFO line does not name the target:\n{out}", t.triple);
    // Racers are forks of the run (qemu-user's, under emulation), with its command line;
    // only this test's own descendants are looked at.
    let cmdline = format!("{} {}", r.bin.display(), args.join(" "));
    let left = common::descendants_alive(&|_, cmd| cmd.contains(&cmdline));
    assert!(left.is_empty(), "{}: racers left running: {left:?}", t.triple);
    Some((o.status.code(), out))
}

fn passes(t: &Target, mode: &str) {
    let Some((code, out)) = race(t, &[mode, "-i", "20"]) else { return };
    assert_eq!(code, Some(0), "{} {mode}: want exit 0:\n{out}", t.triple);
    assert!(out.contains(&format!("TPASS: {mode}")), "{} {mode}: no TPASS:\n{out}", t.triple);
    assert!(!out.contains("TFAIL") && !out.contains("TBROK"), "{out}");
}

fn negative_control(t: &Target) {
    let Some((code, out)) = race(t, &["--leave-free", "0", "--noreserve"]) else { return };
    assert_eq!(code, Some(1), "{}: the negative control must fail:\n{out}", t.triple);
    for mode in ["shared", "private"] {
        let line = out.lines().find(|l| l.contains(&format!("TFAIL: {mode}"))).unwrap_or_else(|| panic!("{} {mode}: no TFAIL:\n{out}", t.triple));
        assert!(line.contains("SIGBUS"), "{} {mode}: the TFAIL does not name SIGBUS: {line}", t.triple);
    }
    assert!(!out.contains("TBROK"), "{out}");
}

macro_rules! target_tests {
    ($($name:ident: $triple:literal, $qemu:expr, $machine:literal, $be:literal;)*) => {$(
        mod $name {
            const T: super::Target = super::Target { triple: $triple, qemu: $qemu, machine: $machine, big_endian: $be };
            #[test]
            fn archcheck() { super::archcheck(&T) }
            #[test]
            fn elf_static_right_machine() { super::elf(&T) }
            #[test]
            fn version_names_target() { super::version(&T) }
            #[test]
            fn bad_option_exits_2() { super::bad_option(&T) }
            #[test]
            fn shared_passes() { super::passes(&T, "shared") }
            #[test]
            fn private_passes() { super::passes(&T, "private") }
            #[test]
            fn negative_control_sigbus() { super::negative_control(&T) }
        }
    )*};
}

target_tests! {
    x86_64: "x86_64-unknown-linux-gnu", None, 62, false;
    aarch64: "aarch64-unknown-linux-gnu", Some("aarch64"), 183, false;
    powerpc64le: "powerpc64le-unknown-linux-gnu", Some("ppc64le"), 21, false;
    powerpc64: "powerpc64-unknown-linux-gnu", Some("ppc64"), 21, true;
    riscv64: "riscv64gc-unknown-linux-gnu", Some("riscv64"), 243, false;
    s390x: "s390x-unknown-linux-gnu", Some("s390x"), 22, true;
    i686: "i686-unknown-linux-gnu", Some("i386"), 3, false;
    armv7: "armv7-unknown-linux-gnueabihf", Some("arm"), 40, false;
}

/// Stripped-size budgets per target: today's size rounded up to the next 4 KiB, so that
/// growth is a decision (raise the number here, in the same commit) and never a drift. The
/// issue's goal, 24 KiB on every target, is printed beside them: it is not met (see the
/// README's "Size" section for what it would take).
const BUDGETS: [(&str, u64); 8] = [
    // Raised from 56/56/68/72/52/60/60/64 KiB (issues 11-15, measured per commit on x86_64:
    // 52,672 B before): the race renewed and checked before every race, private racers in a
    // process of their own, death, OOM and cgroup-hierarchy judgement, --keep-going (+7.0 KB);
    // the OOM victim read from /dev/kmsg (+0.9 KB); leaked-reservation and other-process
    // checks (+1.8 KB); the dontneed race (+3.9 KB); every terminating signal caught and the
    // panic restore (+1.2 KB); the offset and aim sweeps (+0.8 KB); the counters held open
    // for the check before each race (+0.6 KB; races/s +20-40%).
    // Issue 20 raised x86_64 68 -> 72, ppc64le 84 -> 88, ppc64 88 -> 92 KiB: machine-readable
    // output stays whole on a shared terminal (the JSON document assembled and written in
    // one piece, the progress line only on a terminal of its own, --progress, every line
    // ended whole): +1.1 to 1.7 KB per target.
    // Issue 19 (stage A) raised every target: the table of kinds with each one's fix,
    // kernels and refusals, --list, the races part of --help, --race lists and `all` (a
    // TCONF per kind that cannot run, destructive kinds refused unless --destructive or the
    // machine's own init): +4.5 to 6.3 KB (x86_64 70,704 -> 76,648 B).
    // (main raised armv7 88 -> 92 KiB when issue 19's stage A met issue 20's JSON fields.)
    // Issue 19 (stage B2) raised ppc64le 92 -> 96, ppc64 96 -> 100, i686 80 -> 84, armv7
    // 88 -> 92 KiB: each kind of race behind one interface (a dyn Racing called by the
    // racers, the session's steps out of line instead of inlined into one mode's frame,
    // each kind's figures and JSON fields its own): ppc64le +4.2 KB, ppc64 +4.9, i686 +1.3,
    // armv7 +0.6, s390x +2.4, x86_64 +0.2, riscv64 -0.9.
    // Issue 19 (stage C) raised every target: the resv-restore check (its steps in a child
    // process, the counters after each, its judge, TFAIL and figures): x86_64 +6.8 KB
    // (4.3 KB code, 2.5 KB text), ppc64 +7.7 KB.
    // Issue 19 (stage D) raised every target: the subpool check (its own mount, the
    // counters after each of its steps, the TFAIL that tells the two kernel paths apart):
    // x86_64 +7.2 KB, ppc64 +8.2 KB.
    ("x86_64-unknown-linux-gnu", 92 << 10),
    ("aarch64-unknown-linux-gnu", 92 << 10),
    ("powerpc64le-unknown-linux-gnu", 112 << 10),
    ("powerpc64-unknown-linux-gnu", 116 << 10),
    ("riscv64gc-unknown-linux-gnu", 84 << 10),
    ("s390x-unknown-linux-gnu", 100 << 10),
    ("i686-unknown-linux-gnu", 100 << 10),
    ("armv7-unknown-linux-gnueabihf", 108 << 10),
];
const GOAL: u64 = 24 << 10;

/// Prints the size table and asserts that each binary fits its budget. Every target with a
/// budget is measured: one `make cross` was asked to build (HUGERACE_CROSS_TARGETS) must be
/// there; one not built yet is a skip (a failure under CI), never silently left out.
#[test]
fn size_table() {
    let wanted = std::env::var("HUGERACE_CROSS_TARGETS").unwrap_or_default();
    let missing: Vec<&str> = wanted.split_whitespace().filter(|t| !target_dir().join(t).join("release/hugerace").exists()).collect();
    assert!(missing.is_empty(), "targets make cross should have built are missing: {missing:?}");
    let without: Vec<&str> = wanted.split_whitespace().filter(|w| !BUDGETS.iter().any(|(t, _)| t == w)).collect();
    assert!(without.is_empty(), "targets built without a size budget: {without:?}");
    let (mut over, mut measured) = (Vec::new(), 0);
    eprintln!("{:<34} {:>8} {:>8} {:>8}", "target", "bytes", "budget", "goal");
    for (t, budget) in BUDGETS {
        let p = target_dir().join(t).join("release/hugerace");
        let Ok(m) = std::fs::metadata(&p) else {
            common::skip(&format!("{t}: not built, its size unchecked (run `make cross`)"));
            continue;
        };
        measured += 1;
        eprintln!("{t:<34} {:>8} {budget:>8} {GOAL:>8}", m.len());
        if m.len() > budget {
            over.push(format!("{t}: {} > {budget}", m.len()));
        }
    }
    assert!(over.is_empty(), "over budget (stripped bytes): {over:?}");
    // The host's own binary is always there (the integration tests run it).
    assert!(measured > 0, "no binary measured under {}", target_dir().display());
}

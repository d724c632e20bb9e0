//! The initramfs writer (scripts/mkinitramfs.py), checked without booting anything: the
//! archive it writes must be a gzip newc cpio that the kernel unpacks into exactly what
//! hugerace as /init expects. The boots themselves are `make boot-test` (scripts/boot.py),
//! which needs QEMU and the kernels. Also `make detect`'s pieces that run on the host: the
//! image with extra files, and forkspin (examples/forkspin.rs), whose SIGBUS detection must
//! fire on its negative control.

use std::path::PathBuf;
use std::process::Command;

mod common;

struct Entry {
    name: String,
    mode: u32,
    nlink: u32,
    rdev: (u32, u32),
    data: Vec<u8>,
}

fn hex(b: &[u8]) -> u32 {
    u32::from_str_radix(std::str::from_utf8(b).unwrap(), 16).unwrap()
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// Parse a newc archive as the kernel's init/initramfs.c does; stops at TRAILER!!!.
fn parse_newc(mut b: &[u8]) -> Vec<Entry> {
    let mut out = Vec::new();
    loop {
        assert!(b.len() >= 110, "truncated header");
        assert_eq!(&b[..6], b"070701", "newc magic");
        let f = |i: usize| hex(&b[6 + 8 * i..14 + 8 * i]);
        let (mode, uid, gid, nlink, mtime, size) = (f(1), f(2), f(3), f(4), f(5), f(6) as usize);
        let (rmaj, rmin, namesize) = (f(9), f(10), f(11) as usize);
        assert_eq!((uid, gid, mtime), (0, 0, 0), "owner and time are fixed");
        let name = &b[110..110 + namesize];
        assert_eq!(name.last(), Some(&0), "name is NUL-terminated");
        let name = String::from_utf8(name[..namesize - 1].to_vec()).unwrap();
        let data_at = pad4(110 + namesize);
        let data = b[data_at..data_at + size].to_vec();
        b = &b[pad4(data_at + size)..];
        if name == "TRAILER!!!" {
            assert!(b.iter().all(|&c| c == 0), "nothing but padding after the trailer");
            return out;
        }
        out.push(Entry { name, mode, nlink, rdev: (rmaj, rmin), data });
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn build(init: &std::path::Path, out: &std::path::Path) -> Vec<u8> {
    let st = Command::new("python3")
        .arg(root().join("scripts/mkinitramfs.py"))
        .arg(init)
        .arg(out)
        .status()
        .expect("python3");
    assert!(st.success(), "mkinitramfs.py failed");
    std::fs::read(out).unwrap()
}

#[test]
fn initramfs_holds_init_and_console() {
    let dir = std::env::temp_dir().join(format!("hugerace-initramfs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Any ELF will do; the writer refuses anything else.
    let mut elf = b"\x7fELF".to_vec();
    elf.extend((0..1001u32).map(|i| (i * 7) as u8));
    let init = dir.join("init-elf");
    std::fs::write(&init, &elf).unwrap();
    let gz = build(&init, &dir.join("a.cpio.gz"));
    assert_eq!(&gz[..2], b"\x1f\x8b", "gzip");
    // The same input gives the same bytes (no time stamps anywhere).
    assert_eq!(gz, build(&init, &dir.join("b.cpio.gz")), "reproducible");

    let raw = Command::new("gzip").arg("-dc").arg(dir.join("a.cpio.gz")).output().expect("gzip");
    assert!(raw.status.success());
    let entries = parse_newc(&raw.stdout);
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["dev", "dev/console", "proc", "sys", "init"]);
    let get = |n: &str| entries.iter().find(|e| e.name == n).unwrap();
    assert_eq!(get("dev/console").mode, 0o020600, "char device, 0600");
    assert_eq!(get("dev/console").rdev, (5, 1), "the console is 5:1");
    for d in ["dev", "proc", "sys"] {
        assert_eq!(get(d).mode & 0o170000, 0o040000, "{d} is a directory");
        assert_eq!(get(d).nlink, 2);
    }
    assert_eq!(get("init").mode, 0o100755, "executable regular file");
    assert_eq!(get("init").data, elf, "/init is the binary, byte for byte");

    std::fs::write(&init, b"#!/bin/sh\n").unwrap();
    let st = Command::new("python3")
        .arg(root().join("scripts/mkinitramfs.py"))
        .arg(&init)
        .arg(dir.join("c.cpio.gz"))
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!st.success(), "a non-ELF /init is refused");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn initramfs_with_extra_files() {
    let dir = std::env::temp_dir().join(format!("hugerace-initramfs-x-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (init, a, b) = (dir.join("init-elf"), dir.join("a-elf"), dir.join("b-elf"));
    std::fs::write(&init, b"\x7fELFinit").unwrap();
    std::fs::write(&a, b"\x7fELFa").unwrap();
    std::fs::write(&b, b"#!/bin/sh\n").unwrap();
    let mk = |extra: &[String]| {
        Command::new("python3")
            .arg(root().join("scripts/mkinitramfs.py"))
            .arg(&init)
            .arg(dir.join("x.cpio.gz"))
            .args(extra)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
    };
    assert!(mk(&[format!("hugerace={}", a.display())]).success());
    let raw = Command::new("gzip").arg("-dc").arg(dir.join("x.cpio.gz")).output().unwrap();
    let entries = parse_newc(&raw.stdout);
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["dev", "dev/console", "proc", "sys", "init", "hugerace"]);
    let h = entries.iter().find(|e| e.name == "hugerace").unwrap();
    assert_eq!((h.mode, h.data.as_slice()), (0o100755, &b"\x7fELFa"[..]));
    // Refused: a non-ELF extra, a name that is not a new top-level name, no `=`.
    assert!(!mk(&[format!("forkspin={}", b.display())]).success());
    assert!(!mk(&[format!("init={}", a.display())]).success());
    assert!(!mk(&[format!("bin/x={}", a.display())]).success());
    assert!(!mk(&[a.display().to_string()]).success());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An example of `make detect`'s for the host, built if `make test` has not built it yet.
fn example(name: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .current_dir(root())
        .args(["build", "--release", "--target", "x86_64-unknown-linux-gnu", "--example", name])
        .status()
        .expect("cargo");
    assert!(st.success(), "building examples/{name} failed");
    root().join("target/x86_64-unknown-linux-gnu/release/examples").join(name)
}

fn forkspin() -> PathBuf {
    example("forkspin")
}

/// `make detect`'s yardstick for the dontneed race on the host's (fixed) kernel: its loops run
/// to the end without a SIGBUS or a break, the line reads as scripts/judges.py parses it, and the pool
/// (set so that exactly one page is free) is put back.
#[test]
fn madvrace_runs_and_puts_the_pool_back() {
    if !common::need_root_hugetlb() {
        return;
    }
    let bin = example("madvrace");
    let guard = common::pool_guard();
    let o = Command::new(&bin).args(["50", "2M"]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("madvrace: size=2M loops=50 failed=0 broken=0 elapsed_ms="), "{out}");
    assert!(o.status.success());
    guard.assert_restored();
    assert_eq!(Command::new(&bin).output().unwrap().status.code(), Some(2), "no loop count is a usage error");
}

/// `make detect`'s yardstick on the host kernel: its negative control (every page filled, the
/// contested one MAP_NORESERVE) fails every race with SIGBUS, in both modes; the real race
/// runs to the end without breaking; the pool is put back.
#[test]
fn forkspin_detects_sigbus() {
    if !common::need_root_hugetlb() {
        return;
    }
    let bin = forkspin();
    let guard = common::pool_guard();
    for mode in ["shared", "private"] {
        let o = Command::new(&bin).args([mode, "5", "2M", "noreserve"]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout), format!("forkspin: mode={mode} size=2M races=5 failed=5 broken=0\n"));
        assert!(o.status.success());
        guard.assert_restored();
        let o = Command::new(&bin).args([mode, "20", "2M"]).output().unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.starts_with(&format!("forkspin: mode={mode} size=2M races=20 failed=")) && out.ends_with(" broken=0\n"), "{out}");
        assert!(o.status.success());
        guard.assert_restored();
    }
    let o = Command::new(&bin).args(["both", "1"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "a bad mode is a usage error");
}

//! The live progress line: drawn in place on a terminal during a long run, wiped at the end,
//! and never written when stderr is a pipe or when the run is short. The terminal is a
//! pseudo-terminal made by python3's `pty` module.

mod common;
use common::*;
use std::process::Command;

const WIPE: &str = "\r\x1b[K";

/// Run hugerace with stderr on a pty (stdout a pipe); returns (what the terminal got, stdout,
/// status). None when python3 is missing.
fn on_a_terminal(args: &[&str]) -> Option<(String, String, i32)> {
    const DRIVER: &str = r#"
import os, pty, subprocess, sys
tty_path, out_path = sys.argv[1], sys.argv[2]
master, slave = pty.openpty()
p = subprocess.Popen(["timeout", "-k", "5", "120"] + sys.argv[3:], stdin=subprocess.DEVNULL,
                     stdout=subprocess.PIPE, stderr=slave)
os.close(slave)
tty = b""
while True:
    try:
        d = os.read(master, 4096)
    except OSError:
        break
    if not d:
        break
    tty += d
open(out_path, "wb").write(p.stdout.read())
open(tty_path, "wb").write(tty)
sys.exit(p.wait())
"#;
    let dir = std::env::temp_dir();
    let id = format!("{}-{:?}", std::process::id(), std::thread::current().id());
    let (tty_path, out_path) = (dir.join(format!("hugerace-tty-{id}")), dir.join(format!("hugerace-out-{id}")));
    let o = match Command::new("python3").arg("-c").arg(DRIVER).arg(&tty_path).arg(&out_path).arg(bin()).args(args).output() {
        Ok(o) => o,
        Err(_) => {
            need_tool("python3", "python3");
            return None;
        }
    };
    assert!(o.stderr.is_empty(), "pty driver: {}", stderr(&o));
    let read = |p: &std::path::Path| {
        let s = String::from_utf8_lossy(&std::fs::read(p).expect("driver output")).into_owned();
        let _ = std::fs::remove_file(p);
        s
    };
    Some((read(&tty_path), read(&out_path), o.status.code().unwrap_or(-1)))
}

#[test]
fn a_long_run_on_a_terminal_shows_progress_in_place() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    let Some((tty, out, rc)) = on_a_terminal(&["-I", "2", "shared"]) else { return };
    assert_eq!(rc, 0, "{out}{tty:?}");
    let draws: Vec<&str> = tty.split(WIPE).filter(|d| !d.is_empty()).collect();
    assert!(!draws.is_empty(), "no progress drawn on the terminal: {tty:?}");
    // A few redraws a second over two seconds, each one line with no newline.
    assert!(draws.len() <= 12, "{} redraws in 2 s: {tty:?}", draws.len());
    for d in &draws {
        assert!(d.starts_with("hugerace: shared ") && d.contains(" races, ") && d.contains("s of 2s, ") && d.ends_with(" failed"), "{d:?}");
        assert!(!d.contains('\n'), "{d:?}");
    }
    assert!(tty.ends_with(WIPE), "the line is wiped at the end: {tty:?}");
    // stdout (a pipe here) gets the results only.
    assert!(out.contains("TPASS: shared"), "{out}");
    assert!(!out.contains('\r') && !out.contains('\x1b'), "{out:?}");
    g.assert_restored();
}

#[test]
fn a_short_run_on_a_terminal_shows_none() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    let Some((tty, out, rc)) = on_a_terminal(&["-i", "3", "shared"]) else { return };
    assert_eq!(rc, 0, "{out}");
    assert_eq!(tty, "", "a short run drew on the terminal");
    g.assert_restored();
}

#[test]
fn no_progress_when_stderr_is_a_pipe() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    let o = run(&["-I", "1", "private"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(stderr(&o), "", "stderr is a pipe: nothing may be drawn");
    assert!(!stdout(&o).contains('\r'));
    g.assert_restored();
}

#[test]
fn the_progress_line_counts_failed_races() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    g.set_nr(2048, 0);
    let before = PoolState::read();
    // The negative control fails every race; --keep-going races on, and the line says so.
    let Some((tty, out, rc)) = on_a_terminal(&["-I", "2", "--keep-going", "--leave-free", "0", "--noreserve", "shared"]) else { return };
    assert_eq!(rc, 1, "{out}{tty:?}");
    let draws: Vec<&str> = tty.split(WIPE).filter(|d| !d.is_empty()).collect();
    let last = draws.last().unwrap_or_else(|| panic!("no progress drawn: {tty:?}"));
    let failed: u64 = last.rsplit(", ").next().and_then(|f| f.strip_suffix(" failed")).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(failed > 0, "the progress line does not count failed races: {last:?}");
    assert!(out.contains("TFAIL: shared 2M: "), "{out}");
    assert_eq!(PoolState::read(), before, "pool not restored");
}

#[test]
fn no_progress_on_a_terminal_that_also_carries_stdout_unless_asked() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    // stdout and stderr on one pty (a shell, a serial console): the line would land among
    // the results, so none by default...
    let Some((tty, rc)) = in_a_pty(&bin(), &["-I", "1", "shared"]) else { return };
    assert_eq!(rc, 0, "{tty}");
    assert!(!tty.contains(WIPE) && !tty.contains('\r'), "progress drawn among the results: {tty:?}");
    assert!(tty.contains("hugerace: TPASS: shared 2M: "), "{tty}");
    // ...and --progress draws it there all the same (the same terminal, so the absence
    // above is the same-terminal rule's doing).
    let (tty, rc) = in_a_pty(&bin(), &["-I", "1", "--progress", "shared"]).unwrap();
    assert_eq!(rc, 0, "{tty}");
    assert!(tty.contains(&format!("{WIPE}hugerace: shared 2M: ")), "--progress drew nothing: {tty:?}");
    g.assert_restored();
}

#[test]
fn the_progress_flag_draws_on_any_stderr() {
    if !need_root_hugetlb() {
        return;
    }
    let g = pool_guard();
    let o = run(&["-I", "1", "--progress", "private"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let err = stderr(&o);
    let draws: Vec<&str> = err.split(WIPE).filter(|d| !d.is_empty()).collect();
    assert!(!draws.is_empty(), "--progress drew nothing on a piped stderr: {err:?}");
    assert!(draws.iter().all(|d| d.starts_with("hugerace: private 2M: ") && d.ends_with(" failed")), "{err:?}");
    assert!(err.ends_with(WIPE), "the line is wiped at the end: {err:?}");
    assert!(!stdout(&o).contains('\r'), "{}", stdout(&o));
    g.assert_restored();
}

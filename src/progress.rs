//! The live progress line of a long run: mode, size, races done, elapsed time and failures,
//! redrawn in place on stderr a few times a second and wiped when the race ends. Only when
//! stderr is a terminal of its own (stdout elsewhere), so it never lands in a log, a
//! harness's capture, or inside the results on a terminal or console that carries both.

use crate::out::{Line, STDERR, STDOUT};
use crate::sys;

/// From this many races (`-i`) a run counts as long; any `-I` run does.
pub const LONG_RUN: u64 = 10_000;
/// At most four redraws a second.
const REDRAW_NS: u64 = 250_000_000;
/// Back to the start of the line, and erase it.
const WIPE: &str = "\r\x1b[K";

pub struct Progress {
    on: bool,
    drawn: bool,
    mode: &'static str,
    size: u64,
    cfg_iterations: u64,
    cfg_seconds: u64,
    t0: u64,
    next: u64,
}

impl Progress {
    /// `want`: Some(true) draws whatever stderr is (`--progress`), Some(false) never (PID-1
    /// mode's console); None draws for a long run (`races` from -i, or `seconds` from -I)
    /// when stderr is a terminal of its own.
    pub fn start(want: Option<bool>, races: u64, seconds: u64, mode: &'static str, size: u64, t0: u64) -> Progress {
        let long = seconds > 0 || races >= LONG_RUN;
        Progress {
            on: want.unwrap_or_else(|| long && own_terminal()),
            drawn: false,
            mode,
            size,
            cfg_iterations: races,
            cfg_seconds: seconds,
            t0,
            next: t0 + REDRAW_NS,
        }
    }

    /// Called after every race; draws when the last drawing is old enough.
    pub fn tick(&mut self, done: u64, failed: u64) {
        if !self.on {
            return;
        }
        let now = sys::monotonic_ns();
        if now < self.next {
            return;
        }
        self.next = now + REDRAW_NS;
        let mut l = Line::new();
        l.s(WIPE);
        let total = if self.cfg_seconds > 0 { 0 } else { self.cfg_iterations };
        render(&mut l, self.mode, self.size, done, total, now - self.t0, self.cfg_seconds, failed);
        l.emit(STDERR);
        self.drawn = true;
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.drawn {
            let _ = sys::write_all(STDERR, WIPE.as_bytes());
        }
    }
}

/// stderr is a terminal and stdout is not that terminal. An interactive shell, `script` or a
/// serial console carries both on one file: the line would land inside a JSON document or
/// a result line there. When statx cannot tell, the two are taken to be one.
fn own_terminal() -> bool {
    sys::ioctl_is_tty(STDERR) && (!sys::ioctl_is_tty(STDOUT) || sys::same_file(STDOUT, STDERR) == Some(false))
}

/// `hugerace: shared 2M: 1234/100000 races, 3.2s, 0 failed` (or `3.2s of 60s` under `-I`).
#[allow(clippy::too_many_arguments)]
fn render(l: &mut Line, mode: &str, size: u64, done: u64, total: u64, elapsed_ns: u64, seconds: u64, failed: u64) {
    l.s("hugerace: ").s(mode).c(b' ').size(size).s(": ").u(done);
    if total > 0 {
        l.c(b'/').u(total);
    }
    l.f(" races, {.1}s", &[elapsed_ns / 100_000_000]);
    if seconds > 0 {
        l.f(" of {}s", &[seconds]);
    }
    l.f(", {} failed", &[failed]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line() {
        let mut l = Line::new();
        render(&mut l, "shared", 2 << 20, 1234, 100_000, 3_250_000_000, 0, 0);
        assert_eq!(l.as_bytes(), b"hugerace: shared 2M: 1234/100000 races, 3.2s, 0 failed");
        l.clear();
        render(&mut l, "private", 1 << 30, 7, 0, 61_000_000_000, 60, 1);
        assert_eq!(l.as_bytes(), b"hugerace: private 1G: 7 races, 61.0s of 60s, 1 failed");
    }

    #[test]
    fn short_runs_stay_quiet() {
        assert!(!Progress::start(None, LONG_RUN - 1, 0, "shared", 2 << 20, 0).on);
        assert!(!Progress::start(Some(false), 0, 60, "shared", 2 << 20, 0).on);
        assert!(Progress::start(Some(true), 1, 0, "shared", 2 << 20, 0).on);
    }
}

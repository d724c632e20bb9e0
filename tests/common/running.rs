//! hugerace in the background, read line by line, and the small C helpers built once: what
//! the tests of signals, limits and concurrent instances share.

use super::bin;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn pids_alive(pids: &[u32]) -> Vec<u32> {
    pids.iter().copied().filter(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| !s.contains(") Z "))).collect()
}

pub fn assert_gone(pids: &[u32], what: &str) {
    let t0 = Instant::now();
    while !pids_alive(pids).is_empty() && t0.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(pids_alive(pids).is_empty(), "{what}: processes left: {:?}", pids_alive(pids));
}

/// hugerace running in the background with its stdout read line by line.
pub struct Running {
    pub child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

pub fn spawn(pre: &[&str], args: &[&str]) -> Running {
    let mut cmd = if pre.is_empty() {
        Command::new(bin())
    } else {
        let mut c = Command::new(pre[0]);
        c.args(&pre[1..]).arg(bin());
        c
    };
    let mut child = cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    Running { child, lines: rx, seen: Vec::new() }
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    /// Wait for a stdout line containing `s` (at most `secs`).
    pub fn wait_line(&mut self, s: &str, secs: u64) -> bool {
        let end = Instant::now() + Duration::from_secs(secs);
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let hit = l.contains(s);
                    self.seen.push(l);
                    if hit {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
        false
    }
    pub fn signal(&self, sig: i32) {
        let ok = Command::new("kill").arg(format!("-{sig}")).arg(self.pid().to_string()).status().unwrap().success();
        assert!(ok, "kill -{sig}");
    }
    /// Wait for the exit (at most `secs`, then SIGKILL and fail); returns the status and
    /// all of stdout.
    pub fn finish(mut self, secs: u64) -> (Option<i32>, Option<i32>, String) {
        let end = Instant::now() + Duration::from_secs(secs);
        let st = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("hugerace did not end within {secs} s: {}", self.seen.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(l);
        }
        use std::os::unix::process::ExitStatusExt;
        (st.code(), st.signal(), self.seen.join("\n"))
    }
}


/// Small C helpers, built once: `steal` (take hugepages from outside) and `deny` (run a
/// command with some syscalls failing EPERM under seccomp).
pub fn helper(name: &str) -> std::path::PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    BUILT.call_once(|| {
        for h in ["steal", "deny"] {
            let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/helpers/{h}.c"));
            let ok = Command::new("cc").args(["-O2", "-o"]).arg(dir.join(h)).arg(&src).status().expect("cc").success();
            assert!(ok, "cc {}", src.display());
        }
    });
    dir.join(name)
}

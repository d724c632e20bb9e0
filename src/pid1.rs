//! PID-1 mode: hugerace as the only file of a test image, started by the kernel as `/init`.
//!
//! The kernel boots, hugerace races on every hugepage size the kernel has, prints KTAP on the
//! console and powers the machine off, so that a kernel developer (or a bisect script) reads
//! the verdict from the console: the last line hugerace prints is exactly `hugerace: exit N`.
//!
//! The steps, in order:
//! 1. prepare the system: `/dev/console` (devtmpfs when the image has no console node), stdin,
//!    stdout and stderr on it, `/proc` and `/sys` mounted;
//! 2. run hugerace in a child process, with PID-1 defaults under the kernel's arguments (the
//!    words after `--` on the kernel command line): every kind of the table, the destructive
//!    ones too when this is the machine's own init;
//! 3. print `hugerace: exit N`, sync, power off.
//!
//! The race runs in a child so that PID 1 itself only waits: whatever happens to the race (a
//! panic, a signal, a fault the core did not expect), PID 1 still prints the verdict and
//! powers off, and never exits (the kernel panics when init exits). The child is an ordinary
//! process, so the race runs exactly as it does outside PID-1 mode.

use crate::cli::{Config, Format, PageSel};
use crate::out::Line;
use crate::sys::{self, k, Errno, Forked};

/// Iterations per mode and size when the kernel command line does not say: enough rounds to
/// hit the race on a real board, few enough that a TCG guest finishes in seconds.
pub const DEFAULT_ITERATIONS: u64 = 10;

/// The settings PID-1 mode starts from (`--race all -s all -i DEFAULT_ITERATIONS -f ktap`,
/// and `--destructive` on a throwaway machine); the kernel's arguments are parsed over them.
pub fn defaults(args: &sys::start::Args, throwaway: bool) -> Config {
    // The console is a terminal, but a harness parses it line by line: no progress line
    // (unless the kernel's arguments say --progress).
    Config {
        races: b"all",
        destructive: throwaway,
        pagesize: PageSel::All,
        iterations: DEFAULT_ITERATIONS,
        format: Format::Ktap,
        progress: Some(false),
        ..crate::run::defaults(args)
    }
}

/// PID-1 mode's entry point. Never returns.
pub fn main(args: sys::start::Args) -> ! {
    prepare();
    let code = supervise(args, throwaway());
    finish(code)
}

/// Whether this PID 1 is the machine's own init, whose machine is a throwaway boot: then
/// the kinds that can break the kernel's accounting until reboot may run. The init of a
/// PID namespace (a container's, on a kernel others use) is not: there reboot(2) with
/// LINUX_REBOOT_CMD_CAD_OFF fails with EINVAL, in the machine's init it succeeds (and
/// only makes Ctrl-Alt-Del a signal to init, which a test image never gets).
fn throwaway() -> bool {
    sys::getpid() == 1 && sys::ctrl_alt_del_off().is_ok()
}

/// For the panic handler: in PID 1, report and power off; anywhere else, return.
pub fn on_panic() {
    if sys::getpid() == 1 {
        let _ = sys::write_all(2, b"hugerace: TBROK: internal error (panic) in PID 1\n");
        finish(2)
    }
}

fn diag(what: &str, arg: &str, e: Errno) {
    let mut l = Line::new();
    l.s("# hugerace: pid1: ").s(what).s(arg).s(": ").errno(e).c(b'\n');
    l.emit(2);
}

/// Make a directory (it may exist already) and mount `fstype` on it.
fn mount_on(dir: &core::ffi::CStr, fstype: &core::ffi::CStr, name: &str) -> Result<(), Errno> {
    match sys::mkdir(dir, 0o755) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => diag("mkdir ", name, e),
    }
    match sys::mount(fstype, dir, fstype, 0, c"") {
        // EBUSY: already mounted there (a kernel that automounts devtmpfs).
        Ok(()) | Err(Errno::EBUSY) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The console on fds 0, 1 and 2; then /proc and /sys. Failures are printed as KTAP
/// diagnostics and do not stop the run: the race itself reports what it then cannot do.
fn prepare() {
    let console = match sys::open(c"/dev/console", k::O_RDWR) {
        Ok(fd) => Some(fd),
        Err(_) => {
            if let Err(e) = mount_on(c"/dev", c"devtmpfs", "/dev") {
                diag("mount devtmpfs on ", "/dev", e);
            }
            sys::open(c"/dev/console", k::O_RDWR).ok()
        }
    };
    if let Some(fd) = console {
        for target in 0..3 {
            if fd.raw() != target
                && let Err(e) = sys::dup3(fd.raw(), target)
            {
                diag("dup3 console to fd ", "0/1/2", e);
            }
        }
        if fd.raw() < 3 {
            // It is one of 0, 1, 2 itself (the kernel could not open a console for init): keep
            // it open. Its close-on-exec flag does not matter, PID 1 never execs.
            core::mem::forget(fd);
        }
    }
    if let Err(e) = mount_on(c"/proc", c"proc", "/proc") {
        diag("mount proc on ", "/proc", e);
    }
    if let Err(e) = mount_on(c"/sys", c"sysfs", "/sys") {
        diag("mount sysfs on ", "/sys", e);
    }
}

/// Run hugerace in a child and return its exit status (128 + the signal if it was killed).
fn supervise(args: sys::start::Args, throwaway: bool) -> i32 {
    let child = match sys::fork() {
        Ok(Forked::Child) => sys::exit_group(crate::run::main(args, defaults(&args, throwaway))),
        Ok(Forked::Parent(pid)) => pid,
        Err(e) => {
            // No child: run in PID 1 itself rather than not at all.
            diag("fork", "", e);
            return crate::run::main(args, defaults(&args, throwaway));
        }
    };
    let code = loop {
        match sys::wait4(-1, 0) {
            // PID 1 also reaps every orphan; only our child's status is the verdict.
            Ok(ws) if ws.pid != child => continue,
            Ok(ws) => {
                if let Some(sig) = ws.signal() {
                    let mut l = Line::new();
                    l.s("# hugerace: pid1: the run was killed by signal ").u(sig as u64).c(b'\n');
                    l.emit(1);
                    break 128 + sig as i32;
                }
                break ws.exit_code().unwrap_or(2);
            }
            Err(e) => {
                diag("wait4", "", e);
                break 2;
            }
        }
    };
    // Whatever the run left behind (a racer it lost track of) goes before the power-off.
    // kill(-1) from PID 1 reaches every process but PID 1.
    let _ = sys::kill(-1, k::SIGKILL);
    while sys::wait4(-1, 0).is_ok() {}
    code
}

/// The verdict line, then sync and power off. Never returns.
fn finish(code: i32) -> ! {
    let mut l = Line::new();
    l.s("hugerace: exit ").i(code as i64).c(b'\n');
    l.emit(1);
    sys::sync();
    let e = sys::power_off();
    diag("reboot(POWER_OFF)", "", e);
    let e = sys::halt();
    diag("reboot(HALT)", "", e);
    // Still here: not allowed to reboot, so not the machine's init (a PID namespace, such as a
    // container's). Ending is safe there and leaves nothing hanging.
    sys::exit_group(code)
}

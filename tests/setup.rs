//! `make test` sets itself up and hides nothing (issue 12): scripts/setup.sh installs what is
//! missing or says exactly what to run, and a skip is one logged line, or a failure under CI.

mod common;
use common::*;
use std::process::{Command, Output};

fn setup(env: &[(&str, &str)], as_nobody: bool, targets: &[&str]) -> Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/setup.sh");
    let mut c = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", script]);
        c
    } else {
        Command::new(script)
    };
    c.args(targets).env_remove("HUGERACE_SETUP_DRY_RUN").env_remove("HUGERACE_SETUP_PRETEND_MISSING");
    c.envs(env.iter().copied()).output().expect("scripts/setup.sh")
}

const INSTALL: &str = "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends";

fn debian() -> bool {
    has("dpkg-query") && has("apt-get") || skip("not a Debian system (no dpkg-query or apt-get)")
}

#[test]
fn without_root_a_missing_package_stops_setup_with_the_command_to_run() {
    if !is_root() && !skip("needs root, to run setup.sh as another user") || !debian() {
        return;
    }
    let o = setup(&[("HUGERACE_SETUP_PRETEND_MISSING", "strace groff-base")], true, &[]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stderr(&o), format!("setup: missing Debian packages; run as root: {INSTALL} strace groff-base\n"));
}

#[test]
fn as_root_setup_installs_what_is_missing_saying_so_in_one_line() {
    if !need_root_hugetlb() || !debian() {
        return;
    }
    // Dry run: the same decision, the command printed instead of run (a real install needs
    // the network, and CI's fresh machine shows it: .ci/run starts with nothing installed).
    let o = setup(&[("HUGERACE_SETUP_DRY_RUN", "1"), ("HUGERACE_SETUP_PRETEND_MISSING", "strace")], false, &["wasm32-unknown-unknown"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("setup: would install 1 Debian package(s): {INSTALL} strace"), "{out}");
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output().map(|o| stdout(&o)).unwrap_or_default();
    if !installed.lines().any(|l| l == "wasm32-unknown-unknown") {
        assert_eq!(lines[1], "setup: would run: rustup target add wasm32-unknown-unknown", "{out}");
    }
    // The last line tells which kernels a cold run builds, or that all are there.
    let last = lines.last().unwrap();
    assert!(last.starts_with("setup: the boot tests will build ") || *last == "setup: packages, rustup targets and built kernels all present", "{out}");
}

#[test]
fn with_everything_installed_setup_installs_nothing() {
    if !debian() {
        return;
    }
    // `make test` ran setup before any test: by now nothing may be missing.
    let o = setup(&[("HUGERACE_SETUP_DRY_RUN", "1")], false, &[]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(!stdout(&o).contains("would install"), "{}", stdout(&o));
}

/// Not run on its own (ignored): the two tests below run it in a child, with and without
/// the CI flags.
#[test]
#[ignore]
fn a_test_that_skips() {
    skip("the reason, on one line");
}

fn run_skipping_test(ci: bool, log: &std::path::Path) -> Output {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--ignored", "--exact", "a_test_that_skips", "--nocapture"]).env("HUGERACE_SKIP_LOG", log);
    for v in ["CI", "HUGERACE_REQUIRE_ROOT", "HUGERACE_REQUIRE_QEMU"] {
        c.env_remove(v);
    }
    if ci {
        c.env("CI", "true");
    }
    c.output().unwrap()
}

#[test]
fn a_skip_is_one_logged_line_and_a_failure_under_ci() {
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("skips-test.log");
    let _ = std::fs::remove_file(&log);
    let o = run_skipping_test(false, &log);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let line = "SKIP: setup::a_test_that_skips: the reason, on one line";
    assert!(stderr(&o).lines().any(|l| l == line), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), format!("{line}\n"));

    let o = run_skipping_test(true, &log);
    assert!(!o.status.success(), "a skip under CI=true passed:\n{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains(&format!("{line} (a skip fails under CI")), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 1, "a failed skip is not logged as a skip");
}

/// scripts/boot.py on one machine with a PATH where every command but QEMU's is found.
fn boot_without_qemu(ci: bool, log: &std::path::Path) -> Output {
    let bin = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(if ci { "path-noqemu-ci" } else { "path-noqemu" });
    let _ = std::fs::remove_dir_all(&bin);
    std::fs::create_dir_all(&bin).unwrap();
    for dir in ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name();
            if !name.to_string_lossy().starts_with("qemu-system-") && !bin.join(&name).exists() {
                let _ = std::os::unix::fs::symlink(e.path(), bin.join(&name));
            }
        }
    }
    let mut c = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/boot.py"));
    c.arg("x86_64").env("PATH", &bin).env("HUGERACE_SKIP_LOG", log);
    for v in ["CI", "HUGERACE_REQUIRE_ROOT", "HUGERACE_REQUIRE_QEMU"] {
        c.env_remove(v);
    }
    if ci {
        c.env("CI", "true");
    }
    let o = c.output().unwrap();
    let _ = std::fs::remove_dir_all(&bin);
    o
}

#[test]
fn a_boot_skip_is_logged_and_a_failure_under_ci() {
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("boot-skips-test.log");
    let _ = std::fs::remove_file(&log);
    let o = boot_without_qemu(false, &log);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("== boot x86_64 (x86_64-unknown-linux-gnu, kernel amd64): SKIP"), "{}", stdout(&o));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "SKIP: boot::x86_64: qemu-system-x86_64 is not installed (make setup)\n");

    let o = boot_without_qemu(true, &log);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("== boot x86_64 (x86_64-unknown-linux-gnu, kernel amd64): FAIL"), "{}", stdout(&o));
    assert!(stdout(&o).contains("reason: qemu-system-x86_64 is not installed (make setup) (a SKIP fails under CI)"), "{}", stdout(&o));
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 1, "a failed boot is not logged as a skip");
}

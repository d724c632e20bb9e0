//! Link settings for the binary alone (`rustc-link-arg-bins`), so that the host's unit and
//! integration tests still link as usual; and the version facts that `--version` prints.

use std::env;
use std::process::Command;

fn main() {
    let target = env::var("TARGET").unwrap_or_default();
    let host = env::var("HOST").unwrap_or_default();
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rustc-env=HUGERACE_TARGET={target}");

    let commit = Command::new("git")
        .args(["describe", "--always", "--dirty", "--exclude", "*"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=HUGERACE_COMMIT={commit}");

    // The host target links through its C compiler driver (rustc's default, with the bundled
    // rust-lld); every cross target names rust-lld (or GNU ld for ELFv1) in .cargo/config.toml
    // and gets ld-style arguments directly.
    let via_cc = target == host && target.starts_with("x86_64");
    let ld = |a: &str| {
        if via_cc {
            println!("cargo:rustc-link-arg-bins=-Wl,{a}");
        } else {
            println!("cargo:rustc-link-arg-bins={a}");
        }
    };
    if via_cc {
        for a in ["-nostartfiles", "-nostdlib", "-static"] {
            println!("cargo:rustc-link-arg-bins={a}");
        }
    } else {
        ld("-static");
    }
    ld("--gc-sections");
    ld("--build-id=none");
    ld("-znorelro");
    ld("--no-eh-frame-hdr");
    ld("-e_start");
}

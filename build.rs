//! Link settings for the binary alone (`rustc-link-arg-bins`), so that the host's unit and
//! integration tests still link as usual; and the version facts that `--version` prints.

use std::env;
use std::process::Command;

fn main() {
    let target = env::var("TARGET").unwrap_or_default();
    let host = env::var("HOST").unwrap_or_default();
    println!("cargo:rerun-if-changed=build.rs");
    // The commit and its -dirty mark must follow commits on the branch (the ref file, not just
    // HEAD, which names the branch), staging (.git/index) and edits (src/).
    println!("cargo:rerun-if-changed=.git/HEAD");
    if let Ok(head) = std::fs::read_to_string(".git/HEAD")
        && let Some(r) = head.trim().strip_prefix("ref: ")
    {
        println!("cargo:rerun-if-changed=.git/{r}");
    }
    println!("cargo:rerun-if-changed=.git/index");
    println!("cargo:rerun-if-changed=src");
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
    // The same arguments go to the examples (examples/archcheck.rs is another no-libc
    // program, the arch layer's smoke test).
    let arg = |a: &str| {
        println!("cargo:rustc-link-arg-bins={a}");
        println!("cargo:rustc-link-arg-examples={a}");
    };
    let ld = |a: &str| if via_cc { arg(&format!("-Wl,{a}")) } else { arg(a) };
    if via_cc {
        for a in ["-nostartfiles", "-nostdlib", "-static"] {
            arg(a);
        }
    } else {
        ld("-static");
    }
    // Segment alignment: arm64 and ppc64 kernels may run 16K or 64K base pages (and may run
    // 32-bit arm binaries on them), and exec refuses segments that are not congruent modulo
    // the kernel's page size. 64K covers them all. The common page size stays at the
    // linker's default (4K), so that segments are placed by shifting addresses instead of
    // padding the file to 64K boundaries.
    let arch = target.split('-').next().unwrap_or("");
    if !via_cc {
        let page = if arch == "aarch64" || arch.starts_with("arm") || arch.starts_with("powerpc64") { 65536 } else { 4096 };
        ld(&format!("-zmax-page-size={page}"));
        // GNU ld (big-endian ppc64 only) otherwise pads the file up to 4K so that the data
        // segment ends on a common page: it varies from build to build by up to 4K, for no
        // gain on a binary this small. Congruence modulo max-page-size is kept.
        if target.starts_with("powerpc64-") {
            ld("-zcommon-page-size=8");
        }
    }
    // Nothing unwinds (panic = "abort"), yet core arrives with unwind tables (ARM's own
    // exidx/extab on armv7): drop them, and the compilers' version notes (.comment).
    // The script only adds a /DISCARD/ rule to the linker's default layout (INSERT).
    let script = std::path::Path::new(&env::var("OUT_DIR").unwrap_or_default()).join("discard-eh.ld");
    if std::fs::write(
        &script,
        "SECTIONS { /DISCARD/ : { *(.eh_frame) *(.eh_frame_hdr) *(.gcc_except_table .gcc_except_table.*) \
         *(.ARM.exidx .ARM.exidx.*) *(.ARM.extab .ARM.extab.*) *(.comment) } }\nINSERT AFTER .text;\n",
    )
    .is_ok()
    {
        ld(&format!("-T{}", script.display()));
    }
    ld("--gc-sections");
    ld("--build-id=none");
    ld("-znorelro");
    ld("--no-eh-frame-hdr");
    ld("-e_start");
}

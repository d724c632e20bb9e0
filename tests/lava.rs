//! hugerace's LAVA job (issue 21), the parts that boot nothing: scripts/lava.py's self-test
//! (its judge of LAVA's records, and the job's own monitor pattern on made-up consoles), and
//! LAVA's dispatcher validating the job against each device dictionary of lava/devices, as
//! lava-server's qemu.jinja2 renders it. The runs themselves (the twin kernel must pass, the
//! mutant must fail both modes, a job that cannot boot must be incomplete) are `make
//! lava-test` (scripts/lava-test.sh), beside the boots.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

/// Debian's python3: lava-run's, with the jinja2 and yaml that lava-dispatcher brings (the
/// first python3 on PATH may be another).
const PY: &str = "/usr/bin/python3";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn lava_py(args: &[&str]) -> Output {
    Command::new(PY).arg(root().join("scripts/lava.py")).args(args).current_dir(root()).output().expect("/usr/bin/python3")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn need_python() -> bool {
    let ok = Command::new(PY).args(["-c", "import jinja2, yaml"]).output().is_ok_and(|o| o.status.success());
    ok || common::skip("/usr/bin/python3 lacks jinja2 or yaml (apt-get install python3-jinja2 python3-yaml; lava-dispatcher brings both)")
}

/// lava-run --validate on rendered files, with PATH of system directories only; returns its
/// log. LAVA's download directory for the job (validation makes one) is removed.
fn validate(job_id: &str, dir: &Path, job: &Path) -> String {
    let o = Command::new("/usr/bin/lava-run")
        .args(["--validate", "--job-id", job_id, "--output-dir"])
        .arg(dir.join("output"))
        .arg("--device")
        .arg(dir.join("device.yaml"))
        .arg(job)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(Path::new("/var/lib/lava/dispatcher/tmp").join(job_id));
    text(&o.stderr) + &text(&o.stdout)
}

fn need_lava() -> bool {
    if !Path::new("/usr/bin/lava-run").exists() {
        common::skip("lava-run is not installed (apt-get install --no-install-recommends lava-dispatcher, or `make setup` as root)")
    } else if !common::is_root() {
        common::skip("not root (lava-run runs jobs as root only)")
    } else {
        need_python()
    }
}

#[test]
fn lava_py_self_test() {
    if !need_python() {
        return;
    }
    let o = lava_py(&["--self-test"]);
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    // unittest reports on stderr: every test ran, none failed or errored.
    let err = text(&o.stderr);
    assert!(err.lines().any(|l| l.starts_with("Ran ") && l != "Ran 0 tests in 0.000s") && err.trim_end().ends_with("OK"), "{err}");
}

/// Each device dictionary, rendered by LAVA's own device type with the job's context, is a
/// device LAVA's dispatcher accepts the job for, and it is the machine of `make boot-test`.
/// The negative control: the same files with an arch the device does not list are refused,
/// so validation is not a formality.
#[test]
fn lava_validates_the_job_for_every_device_dictionary() {
    if !need_lava() {
        return;
    }
    // Validation boots nothing: any file serves as kernel and initramfs.
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lava-not-a-kernel");
    std::fs::write(&file, [0u8; 4096]).unwrap();
    let file = file.to_str().unwrap();
    let machines = [
        ("x86_64-unknown-linux-gnu", "qemu-system-x86_64", &["-cpu max", "-m 1024"][..]),
        ("aarch64-unknown-linux-gnu", "qemu-system-aarch64", &["-cpu max,pauth-impdef=on", "-machine virt", "-m 6144"][..]),
        ("powerpc64le-unknown-linux-gnu", "qemu-system-ppc64", &["-machine pseries,cap-hpt-max-page-size=16M", "-m 4096"][..]),
    ];
    for (triple, qemu, options) in machines {
        let name = format!("validate-{triple}");
        let o = lava_py(&["--validate", "--name", &name, "--target", triple, "--initrd", file, file]);
        let out = text(&o.stdout);
        assert!(o.status.success() && out.contains("lava: LAVA validated the job for this device"), "{triple}: {out}{}", text(&o.stderr));
        let dir = root().join("target/lava").join(&name);
        let device = std::fs::read_to_string(dir.join("device.yaml")).unwrap();
        for want in [qemu, "'-accel tcg'", "'-smp 2'", "'-no-reboot'"].iter().chain(options) {
            assert!(device.contains(want), "{triple}: the rendered device lacks {want}:\n{device}");
        }
        assert!(!device.contains("-enable-kvm"), "{triple}: TCG, as the boots: {device}");

        let job = std::fs::read_to_string(dir.join("job.yaml")).unwrap();
        let bad = dir.join("bad-arch.yaml");
        let arch = job.lines().find(|l| l.trim_start().starts_with("arch: ")).expect("the job's context names its arch");
        std::fs::write(&bad, job.replace(arch, "  arch: \"no-such-arch\"")).unwrap();
        let log = validate(&format!("hugerace-bad-{}", std::process::id()), &dir, &bad);
        assert!(log.contains(r#""case": "validate", "definition": "lava", "result": "fail""#), "{triple}: a bad arch validated:\n{log}");
        assert!(log.contains("Non existing architecture"), "{triple}: {log}");
    }
}

/// The job for a device with a shell (lava/hugerace-shell.yaml, its test definition
/// lava/hugerace-ktap.yaml) is one LAVA's dispatcher accepts for the qemu device. (Booting it
/// needs a root filesystem image; the definition's reporter is checked by the self-test.)
#[test]
fn lava_validates_the_shell_job() {
    if !need_lava() {
        return;
    }
    let dir = root().join("target/lava/validate-shell");
    std::fs::create_dir_all(&dir).unwrap();
    let rootfs = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lava-rootfs.qcow2");
    std::fs::write(&rootfs, [0u8; 4096]).unwrap();
    let script = format!(
        "import sys, pathlib; sys.path.insert(0, 'scripts'); import lava\n\
         v = {{'job_name': 'hugerace shell', 'rootfs_url': {rootfs:?}, 'hugerace_repository': 'https://example.invalid/hugerace.git', 'hugerace_url': ''}}\n\
         print(*lava.render(v, 'qemu-x86_64', pathlib.Path({dir:?}), lava.LAVA / 'hugerace-shell.yaml'))\n",
        rootfs = format!("file://{}", rootfs.display()),
        dir = dir.display().to_string(),
    );
    let o = Command::new(PY).args(["-c", &script]).current_dir(root()).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let log = validate(&format!("hugerace-shell-{}", std::process::id()), &dir, &dir.join("job.yaml"));
    assert!(log.contains(r#""case": "validate", "definition": "lava", "result": "pass""#), "{log}");
    // LAVA's pipeline for it: the test definition from git, a login, a test shell.
    let description = std::fs::read_to_string(dir.join("output/description.yaml")).unwrap();
    for action in ["git-repo-action", "auto-login-action", "lava-test-shell"] {
        assert!(description.contains(&format!("name: {action}")), "{action}: {description}");
    }
}

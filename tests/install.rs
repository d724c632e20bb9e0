//! `make install` into a temporary DESTDIR installs exactly the binary, the libhugetlbfs
//! symlink and the man page, the symlink works, and `make uninstall` takes them away.

mod common;
use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn make(target: &str, destdir: &Path) {
    let o = Command::new("make")
        .arg("-C")
        .arg(env!("CARGO_MANIFEST_DIR"))
        // The binary under test is already built: install it, not a fresh build.
        .args(["-o", "build", target, "PREFIX=/usr/local"])
        .arg(format!("DESTDIR={}", destdir.display()))
        .arg(format!("BIN={}", bin().display()))
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .output()
        .expect("run make");
    assert!(o.status.success(), "make {target} failed:\n{}{}", stdout(&o), stderr(&o));
}

/// Every file and symlink under `root`, relative to it, sorted.
fn tree(root: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut v = Vec::new();
    walk(root, root, &mut v);
    v.sort();
    v
}

#[test]
fn install_into_destdir_and_uninstall() {
    let dest = std::env::temp_dir().join(format!("hugerace-install-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dest);
    fs::create_dir_all(&dest).unwrap();

    make("install", &dest);
    let want: Vec<PathBuf> =
        ["usr/local/bin/alloc-instantiate-race", "usr/local/bin/hugerace", "usr/local/share/man/man1/hugerace.1"].iter().map(PathBuf::from).collect();
    assert_eq!(tree(&dest), want);

    let exe = dest.join("usr/local/bin/hugerace");
    assert_eq!(fs::read(&exe).unwrap(), fs::read(bin()).unwrap(), "the installed binary is the built one");
    assert_eq!(fs::metadata(&exe).unwrap().permissions().mode() & 0o777, 0o755);
    let man = dest.join("usr/local/share/man/man1/hugerace.1");
    assert_eq!(fs::metadata(&man).unwrap().permissions().mode() & 0o777, 0o644);
    assert_eq!(fs::read(&man).unwrap(), fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("doc/hugerace.1")).unwrap());

    // A relative link, so the tree works wherever DESTDIR puts it.
    let link = dest.join("usr/local/bin/alloc-instantiate-race");
    assert_eq!(fs::read_link(&link).unwrap(), PathBuf::from("hugerace"));

    // Through the link the binary speaks libhugetlbfs: no mode is its usage, status 1.
    let o = Command::new(&link).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).starts_with("Bad configuration: Usage: alloc-instantiate-race"), "{}", stdout(&o));
    let o = Command::new(&exe).arg("--version").output().unwrap();
    assert!(o.status.success() && stdout(&o).starts_with("hugerace "), "{}", stdout(&o));

    // Installing again over an existing tree is fine (the link is replaced, not nested).
    make("install", &dest);
    assert_eq!(tree(&dest), want);

    make("uninstall", &dest);
    assert_eq!(tree(&dest), Vec::<PathBuf>::new(), "uninstall leaves no file behind");
    let _ = fs::remove_dir_all(&dest);
}

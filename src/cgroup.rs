//! The hugetlb cgroup the run is charged to. Its limit refuses a hugepage fault with the same
//! SIGBUS the race bug gives, so a SIGBUS is blamed on the kernel's race only if the cgroup's
//! failure counter did not move during the run.

use crate::out::Line;
use crate::parse;
use crate::sys::{self, PathBuf};

/// How many charges for `size` pages this process's hugetlb cgroup has refused so far (v1
/// `hugetlb.<size>.failcnt`, or the `max` count of v2 `hugetlb.<size>.events`). None when
/// there is no hugetlb controller to ask.
pub fn failures(size: u64) -> Option<u64> {
    let mut cg = [0u8; 1024];
    let n = sys::read_file(c"/proc/self/cgroup", &mut cg).ok()?;
    let mut mounts = [0u8; 8192];
    let m = sys::read_file(c"/proc/mounts", &mut mounts).ok()?;
    let mut name = Line::new();
    parse::cgroup_size_name(&mut name, size);
    for v1 in [true, false] {
        let own = parse::cgroup_path(&cg[..n], if v1 { Some(b"hugetlb") } else { None });
        let mount = parse::mounts(&mounts[..m]).find(|x| {
            if v1 { x.fstype == b"cgroup" && x.opts.split(|&c| c == b',').any(|o| o == b"hugetlb") } else { x.fstype == b"cgroup2" }
        });
        let (Some(own), Some(mount)) = (own, mount) else { continue };
        let mut dir = [0u8; 200];
        let Some(len) = parse::unescape(mount.dir, &mut dir) else { continue };
        let file: &[u8] = if v1 { b".failcnt" } else { b".events" };
        let Ok(path) = PathBuf::from(&[&dir[..len], own, b"/hugetlb.", name.as_bytes(), file]) else { continue };
        let mut buf = [0u8; 128];
        let Ok(k) = sys::read_file(path.cstr(), &mut buf) else { continue };
        let v = if v1 { parse::first_u64(&buf[..k]) } else { parse::events_max(&buf[..k]) };
        if v.is_some() {
            return v;
        }
    }
    None
}

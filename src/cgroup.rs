//! The hugetlb cgroups the run is charged to. A limit refuses a hugepage fault with the same
//! SIGBUS the race bug gives, so a SIGBUS is blamed on the kernel's race only if no failure
//! counter moved during the run: this process's group's and every ancestor's (a parent's
//! limit refuses the child's charge and counts the refusal in the parent), for page charges
//! and for reservation charges (v1 `rsvd.failcnt`).

use crate::out::Line;
use crate::parse;
use crate::sys::{self, PathBuf};

/// How many charges for `size` pages this process's hugetlb cgroup and its ancestors have
/// refused so far (v1 `hugetlb.<size>.failcnt` and `.rsvd.failcnt`, or the `max` count of v2
/// `hugetlb.<size>.events`), summed. None when there is no hugetlb controller to ask.
pub fn failures(size: u64) -> Option<u64> {
    let mut cg = [0u8; 1024];
    let n = sys::read_file(c"/proc/self/cgroup", &mut cg).ok()?;
    let mut mounts = [0u8; 8192];
    let m = sys::read_file(c"/proc/mounts", &mut mounts).ok()?;
    let mut name = Line::new();
    size_name(&mut name, size);
    let mut total = None;
    for v1 in [true, false] {
        let own = parse::cgroup_path(&cg[..n], if v1 { Some(b"hugetlb") } else { None });
        let mount = parse::mounts(&mounts[..m]).find(|x| {
            if v1 { x.fstype == b"cgroup" && x.opts.split(|&c| c == b',').any(|o| o == b"hugetlb") } else { x.fstype == b"cgroup2" }
        });
        let (Some(mut path), Some(mount)) = (own, mount) else { continue };
        let mut dir = [0u8; 200];
        let Some(len) = parse::unescape(mount.dir, &mut dir) else { continue };
        let files: &[&[u8]] = if v1 { &[b".failcnt", b".rsvd.failcnt"] } else { &[b".events"] };
        // From the process's own group up to the hierarchy's root.
        loop {
            for file in files {
                let Ok(p) = PathBuf::from(&[&dir[..len], path, b"/hugetlb.", name.as_bytes(), file]) else { continue };
                let mut buf = [0u8; 128];
                let Ok(k) = sys::read_file(p.cstr(), &mut buf) else { continue };
                let v = if v1 { parse::first_u64(&buf[..k]) } else { parse::events_max(&buf[..k]) };
                if let Some(v) = v {
                    total = Some(total.unwrap_or(0) + v);
                }
            }
            match path.iter().rposition(|&c| c == b'/') {
                Some(0) if path.len() > 1 => path = b"/",
                Some(i) if i > 0 => path = &path[..i],
                _ => break,
            }
        }
        if total.is_some() {
            return total;
        }
    }
    None
}

/// The name the hugetlb cgroup files give a size: 64KB, 2MB, 1GB.
fn size_name(out: &mut Line, bytes: u64) {
    if bytes >= 1 << 30 {
        out.u(bytes >> 30).s("GB");
    } else if bytes >= 1 << 20 {
        out.u(bytes >> 20).s("MB");
    } else {
        out.u(bytes >> 10).s("KB");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn size_names() {
        let mut l = super::Line::new();
        for s in [64u64 << 10, 2 << 20, 32 << 20, 1 << 30, 16 << 30] {
            super::size_name(&mut l, s);
            l.c(b' ');
        }
        assert_eq!(l.as_bytes(), b"64KB 2MB 32MB 1GB 16GB ");
    }
}

//! Other processes' hugetlb mappings: the one thing besides the kernel's accounting that can
//! hold a reservation after our run is over (a mapping reserves its pages when it is made,
//! long before it touches them).

use crate::parse;
use crate::sys::{self, k, PathBuf};

/// Whether a process other than this one maps hugetlb pages of `size` bytes now.
pub fn map_hugetlb(size: u64) -> bool {
    let me = sys::getpid() as u64;
    let mut found = false;
    let _ = sys::read_dir(c"/proc", |name| {
        if let Some(pid) = parse::u64_dec(name)
            && !found
            && pid != me
        {
            found = maps(pid, size);
        }
    });
    found
}

/// Whether /proc/<pid>/smaps has a mapping of `size` pages, read a chunk at a time.
fn maps(pid: u64, size: u64) -> bool {
    let mut p = PathBuf::new();
    let Ok(fd) = p.push(b"/proc/").and_then(|p| p.push_u64(pid)).and_then(|p| p.push(b"/smaps")).and_then(|p| sys::open(p.cstr(), k::O_RDONLY)) else {
        return false;
    };
    let mut buf = [0u8; 4096];
    let mut len = 0;
    loop {
        let Ok(n) = sys::read(fd.raw(), &mut buf[len..]) else { return false };
        if n == 0 {
            return false;
        }
        len += n;
        let lines = &buf[..len];
        let done = lines.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
        if lines[..done].split(|&c| c == b'\n').any(|l| parse::smaps_pagesize_is(l, size)) {
            return true;
        }
        // Keep an unfinished line for the next chunk (or drop it: no line we look for is
        // long, and a line that fills the buffer is not one of them).
        let rest = len - done;
        if rest >= buf.len() / 2 {
            len = 0;
        } else {
            buf.copy_within(done..len, 0);
            len = rest;
        }
    }
}

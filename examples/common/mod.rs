//! What the comparison helpers of `make detect` (forkspin, madvrace) share: a size's sysfs
//! knobs, and two threads run to their end.

use core::sync::atomic::{AtomicU32, Ordering::SeqCst};
use hugerace::out::Line;
use hugerace::parse;
use hugerace::sys::{self, Errno, PathBuf, Stacks};

/// `/sys/kernel/mm/hugepages/hugepages-<kB>kB/<name>`, with `dir` the part before the name.
pub fn knob(dir: &[u8], name: &[u8]) -> Result<PathBuf, Errno> {
    PathBuf::from(&[dir, name])
}

pub fn read_knob(dir: &[u8], name: &[u8]) -> Result<u64, Errno> {
    let mut buf = [0u8; 32];
    let n = sys::read_file(knob(dir, name)?.cstr(), &mut buf)?;
    parse::first_u64(&buf[..n]).ok_or(Errno::EINVAL)
}

pub fn write_knob(dir: &[u8], name: &[u8], v: u64) -> Result<(), Errno> {
    let mut l = Line::new();
    l.u(v);
    sys::write_file(knob(dir, name)?.cstr(), l.as_bytes())
}

/// Run `f(0, arg)` and `f(1, arg)` as two threads of this process and wait for both; Err if
/// either could not start. A fatal signal in either ends the whole process.
pub fn two_threads<T: Sync>(f: fn(usize, &T) -> usize, arg: &T) -> Result<(), Errno> {
    let stacks = Stacks::new(2, 64 << 10)?;
    let tids = [AtomicU32::new(0), AtomicU32::new(0)];
    for (i, tid) in tids.iter().enumerate() {
        stacks.spawn(i, sys::THREAD_FLAGS, tid, f, arg)?;
    }
    for tid in &tids {
        loop {
            let t = tid.load(SeqCst);
            if t == 0 {
                break;
            }
            let _ = sys::futex_wait(tid, t, 0);
        }
    }
    Ok(())
}

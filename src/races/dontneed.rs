//! The dontneed race: `MADV_DONTNEED` on a private hugetlb page unmaps it but frees it only
//! after the TLB flush, and a write fault on the same address in between finds no free page:
//! SIGBUS. One page, the last free one; racer 1 madvises, racer 2 writes.

use super::given;
use crate::cli::{Config, Error, Key, Racers};

/// The race takes exactly two racers (one madvises, one writes), aims the write itself, and
/// races on exactly one free page.
pub(super) fn refuses(cfg: &Config) -> Option<Error> {
    if cfg.racers != Racers::Count(2) || given(cfg, Key::Offset) {
        return Some(Error { msg: "takes 2 racers and aims its own offset: no -n or --offset with race", arg: b"dontneed" });
    }
    if cfg.leave_free != 1 {
        return Some(Error { msg: "the dontneed race needs exactly one free page", arg: b"--leave-free" });
    }
    None
}

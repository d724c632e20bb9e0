//! The alloc-instantiate race (libhugetlbfs's `alloc-instantiate-race`): racers pinned to
//! distinct CPUs fault the last free hugepage at once, and a kernel that does not serialise
//! the allocation and the instantiation fails the loser's fault with SIGBUS.

use crate::cli::{Config, Error};

/// It honours every option.
pub(super) fn refuses(_: &Config) -> Option<Error> {
    None
}

//! hugerace: a reproducer for the Linux hugetlb alloc-instantiate race.
//!
//! Layers, top to bottom: `run` (one whole invocation) over `cli`, `report`, `race`, `pool`,
//! `hugefile`, `cpus` and `out`; then `sys`, the typed syscalls; then `arch`, the per-arch asm.
//! `parse` holds the pure text parsers.
#![cfg_attr(not(test), no_std)]

pub mod arch;
pub mod out;
pub mod parse;
pub mod sys;

//! hugerace: a reproducer for the Linux hugetlb alloc-instantiate race.
//!
//! Layers, top to bottom, each using only those below it:
//! - `run`: one whole invocation; `pid1`: hugerace as a test image's /init;
//! - `races`: the table of the hugetlb bugs hugerace knows, a module per kind;
//! - `cli`, `report`, `race`, `pool`, `hugefile`, `cpus`, `cgroup`, `lock`, `others`, `stats`,
//!   `progress`: the steps;
//! - `step`: the words they share (`Step`, `Stop`, `Res`, `Mode`); `out`: the line they write;
//! - `parse`: pure parsers of /proc, /sys and command-line text;
//! - `sys`: typed syscalls returning `Result<T, Errno>` (with `arch`, the only `unsafe`);
//! - `arch`: the syscall instruction, `_start`, clone, the signal restorer, the cycle counter.
#![cfg_attr(not(test), no_std)]
// `unsafe` belongs to `arch` and `sys` alone, which opt out below: anywhere else it is an error.
#![deny(unsafe_code)]

#[allow(unsafe_code)]
pub mod arch;
pub mod cgroup;
pub mod cli;
pub mod cpus;
pub mod hugefile;
pub mod lock;
pub mod others;
pub mod out;
pub mod parse;
pub mod pid1;
pub mod pool;
pub mod progress;
pub mod race;
pub mod races;
pub mod report;
pub mod run;
pub mod stats;
pub mod step;
#[allow(unsafe_code)]
pub mod sys;

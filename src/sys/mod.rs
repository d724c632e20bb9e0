//! The typed syscall layer: every call returns `Result<T, Errno>`. All `unsafe` of the
//! program lives here and in `arch`; the layers above are safe code.

mod boot;
pub mod errno;
mod fs;
pub mod memfns;
mod mem;
mod net;
mod proc;
mod raw;
pub mod start;

pub use boot::*;
pub use errno::{bus_code, Errno};
pub use fs::*;
pub use mem::*;
pub use net::*;
pub use proc::*;
pub use raw::Result;

pub use linux_raw_sys::general as k;


//! memcpy, memmove, memset, memcmp, bcmp and strlen for the binary: the compiler emits calls to
//! them and there is no libc to provide them. Expanded by `main.rs` only, so the host's test
//! builds keep libc's. Volatile accesses stop the optimiser from turning the loops back into
//! calls to the very functions they define.

#[macro_export]
macro_rules! mem_functions {
    () => {
        #[unsafe(no_mangle)]
        unsafe extern "C" fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
            // SAFETY: the caller (compiler-generated code) passes valid, non-overlapping ranges.
            unsafe { $crate::sys::memfns::copy_fwd(d, s, n) };
            d
        }
        #[unsafe(no_mangle)]
        unsafe extern "C" fn memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
            // SAFETY: valid ranges that may overlap; the direction is chosen to suit.
            unsafe {
                if (d as usize) <= (s as usize) {
                    $crate::sys::memfns::copy_fwd(d, s, n)
                } else {
                    $crate::sys::memfns::copy_back(d, s, n)
                }
            };
            d
        }
        #[unsafe(no_mangle)]
        unsafe extern "C" fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
            // SAFETY: d is valid for n bytes.
            unsafe { $crate::sys::memfns::fill(d, c as u8, n) };
            d
        }
        #[unsafe(no_mangle)]
        unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            // SAFETY: both ranges are readable for n bytes.
            unsafe { $crate::sys::memfns::compare(a, b, n) }
        }
        #[unsafe(no_mangle)]
        unsafe extern "C" fn strlen(s: *const u8) -> usize {
            // SAFETY: s is NUL-terminated.
            unsafe { $crate::sys::memfns::length(s) }
        }
        #[unsafe(no_mangle)]
        unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            // SAFETY: as memcmp.
            unsafe { $crate::sys::memfns::compare(a, b, n) }
        }
    };
}

/// # Safety
/// d and s valid for n bytes; d must not overlap s ahead of it.
pub unsafe fn copy_fwd(d: *mut u8, s: *const u8, n: usize) {
    for i in 0..n {
        // SAFETY: in bounds per the contract.
        unsafe { core::ptr::write_volatile(d.add(i), core::ptr::read_volatile(s.add(i))) }
    }
}

/// # Safety
/// d and s valid for n bytes.
pub unsafe fn copy_back(d: *mut u8, s: *const u8, n: usize) {
    for i in (0..n).rev() {
        // SAFETY: in bounds per the contract.
        unsafe { core::ptr::write_volatile(d.add(i), core::ptr::read_volatile(s.add(i))) }
    }
}

/// # Safety
/// d valid for n bytes.
pub unsafe fn fill(d: *mut u8, c: u8, n: usize) {
    for i in 0..n {
        // SAFETY: in bounds per the contract.
        unsafe { core::ptr::write_volatile(d.add(i), c) }
    }
}

/// # Safety
/// a and b valid for n bytes.
pub unsafe fn compare(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: in bounds per the contract.
        let (x, y) = unsafe { (core::ptr::read_volatile(a.add(i)), core::ptr::read_volatile(b.add(i))) };
        if x != y {
            return x as i32 - y as i32;
        }
    }
    0
}

/// # Safety
/// s is NUL-terminated.
pub unsafe fn length(s: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: every byte up to the NUL is readable.
    while unsafe { core::ptr::read_volatile(s.add(n)) } != 0 {
        n += 1;
    }
    n
}

//! Gives the allocator's free memory back to the system. glibc keeps freed memory inside its
//! heaps when live allocations sit between the holes (a burst of calls or of malformed
//! requests leaves exactly that), so RSS stays at the burst's level long after every call
//! ended: measured here, 2,000 abusive INVITEs left a debug daemon at 52.7 MB, and one
//! `malloc_trim(0)` brought it to 38.2 MB. Must not: decide when (the caller does).

/// Returns free pages of every heap to the kernel (`malloc_trim(0)`); true when some were.
/// Elsewhere than glibc it does nothing.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_free_memory() -> bool {
    // SAFETY: malloc_trim takes no pointers and only walks the allocator's own state under
    // its locks; glibc documents it as thread-safe (MT-Safe) and callable at any time.
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() -> bool {
    false
}

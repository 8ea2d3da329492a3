//! Plan-time size limits: a plan whose buffers cannot fit the machine is refused with
//! `Error::TooLarge` before anything is allocated, instead of an allocation failure (which
//! aborts the process in Rust) or an out-of-memory error from a driver.

use std::sync::OnceLock;

use crate::{Error, Result};

/// Physical memory of this machine in bytes (`MemTotal` of `/proc/meminfo` on Linux;
/// `isize::MAX` where it cannot be read).
pub(crate) fn host_memory_bytes() -> usize {
    static BYTES: OnceLock<usize> = OnceLock::new();
    *BYTES.get_or_init(|| {
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|info| {
                let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
                let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
                kib.checked_mul(1024)
            })
            .unwrap_or(isize::MAX as usize)
    })
}

/// `count * each` bytes, or `TooLarge` when that overflows or exceeds `limit`.
pub(crate) fn checked_bytes(
    count: usize,
    each: usize,
    limit: usize,
    what: &'static str,
) -> Result<usize> {
    count
        .checked_mul(each)
        .filter(|&bytes| bytes <= limit)
        .ok_or(Error::TooLarge(what))
}

/// `count * each` bytes of host memory for a plan, or `TooLarge`.
pub(crate) fn host_bytes(count: usize, each: usize, what: &'static str) -> Result<usize> {
    checked_bytes(count, each, host_memory_bytes(), what)
}

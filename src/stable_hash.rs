//! A hash whose value never changes: for names and checksums of files kept between runs
//! (calibration files, the CUDA kernel cache).

/// FNV-1a (Fowler, Noll, Vo), 64-bit: file names and checksums must not change between Rust
/// releases, as `std`'s `DefaultHasher` may.
pub(crate) fn stable_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    /// The FNV-1a reference values of the empty string and "a" (from the algorithm's
    /// published test vectors), so a change to the constants cannot pass unnoticed.
    #[test]
    fn matches_the_published_fnv1a_vectors() {
        assert_eq!(super::stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}

//! The one copy `uplo` can need: every matrix transposed into the plan's buffer, so that the
//! crate, which reads lower triangles of row-major matrices, reads the triangle asked for.

/// Writes the transpose of every matrix of `src` (row-major, orders `orders`, packed one after
/// another) to `dst` at the same offsets. `dst.len() == src.len() == sum of n^2`.
pub fn transpose_each<T: Copy>(src: &[T], dst: &mut [T], orders: impl Iterator<Item = usize>) {
    debug_assert_eq!(src.len(), dst.len());
    let mut start = 0;
    for n in orders {
        let (s, d) = (&src[start..start + n * n], &mut dst[start..start + n * n]);
        for r in 0..n {
            for c in 0..n {
                d[c * n + r] = s[r * n + c];
            }
        }
        start += n * n;
    }
}

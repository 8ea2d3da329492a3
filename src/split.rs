//! Splitting a sequence of work items into a given number of contiguous parts of about equal
//! work, for several devices or MPI ranks (`EighSpec::split_by_work`, `Multi`'s reductions).

/// The end index of each of `parts` contiguous parts of items `0..n`, where `prefix[i]` is the
/// work of items `0..i` (`prefix.len() == n + 1`, non-decreasing): part `k` ends at the item
/// boundary whose running work is nearest to `(k + 1) / parts` of the total, so each part's
/// work is within one item's work of the ideal. Parts may be empty; the last ends at `n`.
pub(crate) fn balanced_ends(prefix: &[f64], parts: usize) -> Vec<usize> {
    let count = prefix.len() - 1;
    let total = prefix[count];
    let mut ends = Vec::with_capacity(parts);
    let mut start = 0;
    for k in 1..parts {
        let target = total * k as f64 / parts as f64;
        // The first boundary at or past the target, or the one before it if nearer.
        let past = (start + prefix[start..].partition_point(|&p| p < target)).min(count);
        let end = if past > start && target - prefix[past - 1] < prefix[past] - target {
            past - 1
        } else {
            past
        };
        ends.push(end);
        start = end;
    }
    ends.push(count);
    ends
}

//! Splitting a sequence of work items into contiguous, roughly equal-work parts (plan time).

/// Start indices of at most `parts` contiguous ranges covering `0..count`, each holding about
/// `1 / parts` of the total `weight`, followed by `count` (so part `p` is
/// `starts[p]..starts[p + 1]`). Empty ranges are dropped; `count == 0` gives `[0]`.
pub(crate) fn balanced_starts(
    count: usize,
    parts: usize,
    weight: impl Fn(usize) -> f64,
) -> Vec<usize> {
    let total: f64 = (0..count).map(&weight).sum();
    let per_part = total / parts.max(1) as f64;
    let mut starts = vec![0];
    let mut acc = 0.0;
    for i in 0..count {
        acc += weight(i);
        if acc >= per_part && i + 1 < count {
            starts.push(i + 1);
            acc = 0.0;
        }
    }
    starts.push(count);
    starts.dedup();
    starts
}

//! Reduction operations by name: one kebab-case spelling (`max-abs-diff`) for the help, the
//! errors, and every table the tool prints or writes.

use megabatch::ReduceOp;

/// The kebab-case name of `op` ([`ReduceOp::name`]).
pub fn op_name(op: ReduceOp) -> &'static str {
    op.name()
}

/// clap's `value_parser` of `--op`: an operation by its kebab-case name. Case, `-` and `_`
/// are ignored, so older spellings (`MaxAbsDiff`, `max_abs_diff`) still parse.
pub fn parse_op(name: &str) -> Result<ReduceOp, String> {
    let bare = |s: &str| s.to_ascii_lowercase().replace(['-', '_'], "");
    ReduceOp::ALL
        .into_iter()
        .find(|&op| bare(op_name(op)) == bare(name))
        .ok_or_else(|| {
            let names: Vec<&str> = ReduceOp::ALL.into_iter().map(op_name).collect();
            format!("unknown operation `{name}`; one of {}", names.join(", "))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_round_trips_through_its_name() {
        for op in ReduceOp::ALL {
            let name = op_name(op);
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{name}"
            );
            assert_eq!(parse_op(name), Ok(op));
        }
        assert_eq!(parse_op("MaxAbsDiff"), Ok(ReduceOp::MaxAbsDiff));
        assert!(parse_op("max-abs-dif")
            .unwrap_err()
            .contains("max-abs-diff"));
    }
}

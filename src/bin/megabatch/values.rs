//! Parsers of numeric arguments shared by every subcommand, so each rule is stated once.

use std::str::FromStr;

/// A float argument that must be finite and > 0 (seconds, scales): clap's `value_parser` for
/// every such argument. NaN and infinities parse as floats but mean nothing here.
pub fn positive_finite<T>(text: &str) -> Result<T, String>
where
    T: FromStr + Into<f64> + Copy,
{
    let value: T = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    let x: f64 = value.into();
    if x.is_finite() && x > 0.0 {
        Ok(value)
    } else {
        Err(format!("`{text}` must be finite and greater than 0"))
    }
}

#[cfg(test)]
mod tests {
    use super::positive_finite;

    #[test]
    fn only_finite_positive_numbers_pass() {
        assert_eq!(positive_finite::<f64>("0.25"), Ok(0.25));
        assert_eq!(positive_finite::<f32>("2"), Ok(2.0));
        for bad in ["0", "-1", "nan", "NaN", "inf", "-inf", "1e999", "x", ""] {
            assert!(positive_finite::<f64>(bad).is_err(), "{bad}");
        }
    }
}

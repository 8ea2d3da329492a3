//! Result tables, printed aligned, as CSV or as JSON lines.

use serde_json::{Map, Value};

use crate::{CliError, CliResult, Format};

/// Named columns and rows of JSON values (numbers stay numbers in CSV and JSON; the aligned
/// table writes each column's floats in one notation).
pub struct Table {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Value>>,
}

/// How a column's floating-point cells are written: one notation per column, so the digits
/// of a column line up and compare at a glance.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Notation {
    /// Fixed point with this many decimals.
    Fixed(usize),
    /// Scientific with four significant digits.
    Scientific,
}

/// Fixed point when every nonzero value lies in [1e-3, 1e6) and within three decades of the
/// others, with enough decimals for four significant digits of the smallest; else scientific.
fn notation(values: impl Iterator<Item = f64>) -> Notation {
    let magnitudes: Vec<f64> = values.map(f64::abs).filter(|&x| x != 0.0).collect();
    let (lo, hi) = magnitudes
        .iter()
        .fold((f64::INFINITY, 0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    if magnitudes.is_empty() {
        return Notation::Fixed(0);
    }
    let decade = |x: f64| x.log10().floor() as i32;
    if (1e-3..1e6).contains(&lo) && hi < 1e6 && decade(hi) - decade(lo) <= 3 {
        Notation::Fixed((3 - decade(lo)).clamp(0, 6) as usize)
    } else {
        Notation::Scientific
    }
}

fn float_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) if n.is_f64() => n.as_f64(),
        _ => None,
    }
}

fn cell_text(value: &Value, notation: Notation) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Number(n) => match (float_of(value), notation) {
            (Some(x), Notation::Fixed(decimals)) => format!("{x:.decimals$}"),
            (Some(x), Notation::Scientific) => format!("{x:.3e}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

impl Table {
    pub fn new(columns: Vec<&'static str>) -> Self {
        Self {
            columns,
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<Value>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }

    /// Writes the table to stdout.
    pub fn print(&self, format: Format) -> CliResult {
        match format {
            Format::Table => {
                let notations: Vec<Notation> = (0..self.columns.len())
                    .map(|c| notation(self.rows.iter().filter_map(|r| float_of(&r[c]))))
                    .collect();
                let text: Vec<Vec<String>> = self
                    .rows
                    .iter()
                    .map(|r| {
                        r.iter()
                            .zip(&notations)
                            .map(|(v, &n)| cell_text(v, n))
                            .collect()
                    })
                    .collect();
                let widths: Vec<usize> = (0..self.columns.len())
                    .map(|c| {
                        text.iter()
                            .map(|r| r[c].len())
                            .chain([self.columns[c].len()])
                            .max()
                            .unwrap_or(0)
                    })
                    .collect();
                let line = |cells: Vec<&str>| {
                    let padded: Vec<String> = cells
                        .iter()
                        .zip(&widths)
                        .map(|(cell, w)| format!("{cell:>w$}"))
                        .collect();
                    println!("{}", padded.join("  ").trim_end());
                };
                line(self.columns.clone());
                for row in &text {
                    line(row.iter().map(String::as_str).collect());
                }
            }
            Format::Csv => {
                let mut out = csv::Writer::from_writer(std::io::stdout());
                let csv_err = |e: csv::Error| CliError::Usage(format!("writing CSV: {e}"));
                out.write_record(&self.columns).map_err(csv_err)?;
                for row in &self.rows {
                    let cells: Vec<String> = row
                        .iter()
                        .map(|v| match v {
                            Value::String(s) => s.clone(),
                            Value::Null => String::new(),
                            other => other.to_string(),
                        })
                        .collect();
                    out.write_record(&cells).map_err(csv_err)?;
                }
                out.flush()
                    .map_err(|e| CliError::Usage(format!("writing CSV: {e}")))?;
            }
            Format::Json => {
                for row in &self.rows {
                    let object: Map<String, Value> = self
                        .columns
                        .iter()
                        .map(|c| c.to_string())
                        .zip(row.iter().cloned())
                        .collect();
                    println!("{}", Value::Object(object));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_has_one_notation() {
        // The bench column that mixed `8.110e-7` and `0.002845`.
        let n = notation([8.11e-7, 0.002845].into_iter());
        assert_eq!(n, Notation::Scientific);
        let cells: Vec<String> = [8.11e-7, 0.002845]
            .iter()
            .map(|&x| cell_text(&serde_json::json!(x), n))
            .collect();
        assert_eq!(cells, ["8.110e-7", "2.845e-3"]);
        let n = notation([0.002845, 0.5, 1.0].into_iter());
        assert_eq!(n, Notation::Fixed(6));
        assert_eq!(cell_text(&serde_json::json!(0.5), n), "0.500000");
        assert_eq!(notation([12.5, 300.0].into_iter()), Notation::Fixed(2));
        assert_eq!(notation([1.0, 1e5].into_iter()), Notation::Scientific);
    }
}

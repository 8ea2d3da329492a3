//! Result tables, printed aligned, as CSV or as JSON lines.

use serde_json::{Map, Value};

use crate::{CliError, CliResult, Format};

/// Named columns and rows of JSON values (numbers stay numbers in CSV and JSON).
pub struct Table {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Value>>,
}

fn cell_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() => format_number(x),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// Four significant digits, scientific outside [1e-3, 1e6).
pub fn format_number(x: f64) -> String {
    if x == 0.0 || (1e-3..1e6).contains(&x.abs()) {
        let digits = (3 - x.abs().log10().floor() as i32).clamp(0, 6) as usize;
        format!("{x:.digits$}")
    } else {
        format!("{x:.3e}")
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
                let text: Vec<Vec<String>> = self
                    .rows
                    .iter()
                    .map(|r| r.iter().map(cell_text).collect())
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

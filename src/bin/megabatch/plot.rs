//! `megabatch plot crossover`: eigh time against n per backend, with Auto's switch points.

use std::path::PathBuf;

use megabatch::{Auto, BackendKind, EighSpec, Residency};
use plotters::prelude::*;

use crate::bench::RealArg;
use crate::outputs::Outputs;
use crate::progress::Progress;
use crate::timing::{auto_for, backends_to_run, time_eigh};
use crate::values::positive_finite;
use crate::{BackendArg, CliError, CliResult};

#[derive(clap::Subcommand)]
pub enum PlotCommand {
    /// Seconds per eigh call against the matrix order, one curve per backend (measured, or
    /// predicted with --from-model), with the orders where Auto's choice changes marked.
    Crossover {
        /// The SVG file to write.
        #[arg(long)]
        out: PathBuf,
        /// Matrices per call.
        #[arg(long, default_value_t = 16_384)]
        batch: usize,
        /// Element type.
        #[arg(long, value_enum, default_value_t = RealArg::F64)]
        dtype: RealArg,
        /// Matrix orders on the x axis.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "2,3,4,6,8,12,16,24,32,48,64,96,128"
        )]
        n: Vec<usize>,
        /// Plot the cost model's predictions instead of measuring (instant).
        #[arg(long)]
        from_model: bool,
        /// Seconds of repeated calls per measured point, finite and > 0.
        #[arg(long, default_value_t = 0.05, value_parser = positive_finite::<f64>, allow_negative_numbers = true)]
        min_time: f64,
    },
}

/// Runs `megabatch plot`.
pub fn run(command: PlotCommand) -> CliResult {
    let PlotCommand::Crossover {
        out,
        batch,
        dtype,
        n,
        from_model,
        min_time,
    } = command;
    let mut outputs = Outputs::new();
    let svg = outputs.add("--out", &out)?;
    let auto = Auto::new()?;
    let spec = |n: usize| EighSpec::uniform(n, batch).with_vectors(true);
    let explain = |n: usize| match dtype {
        RealArg::F32 => auto.explain_eigh::<f32>(&spec(n), Residency::Host),
        RealArg::F64 => auto.explain_eigh::<f64>(&spec(n), Residency::Host),
    };
    let mut orders = n;
    orders.sort_unstable();
    orders.dedup();
    orders.retain(|&n| n > 0);
    if orders.len() < 2 || batch == 0 {
        return Err(CliError::Usage(
            "need at least two orders n >= 1 and batch >= 1".into(),
        ));
    }
    let kinds: Vec<BackendArg> = backends_to_run(&auto, &[])?
        .into_iter()
        .filter(|&a| a != BackendArg::Auto)
        .collect();
    let mut curves: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    let dtype_name = format!("{dtype:?}").to_lowercase();
    let mut bar = (!from_model).then(|| {
        Progress::new(
            format!("crossover {dtype_name}"),
            kinds.len() * orders.len(),
        )
    });
    for arg in kinds {
        let forced = auto_for(&auto, arg)?;
        let kind = forced.forced().unwrap_or(BackendKind::Cpu);
        let mut points = Vec::new();
        for &n in &orders {
            let seconds = if from_model {
                explain(n)
                    .predictions
                    .iter()
                    .find(|p| p.backend == kind)
                    .and_then(|p| p.seconds)
            } else {
                if let Some(bar) = &mut bar {
                    bar.start(format!("{} n = {n}", kind.name()));
                }
                let timed = match dtype {
                    RealArg::F32 => time_eigh::<f32>(&forced, &spec(n), Residency::Host, min_time),
                    RealArg::F64 => time_eigh::<f64>(&forced, &spec(n), Residency::Host, min_time),
                };
                if let Some(bar) = &bar {
                    bar.done();
                }
                Some(timed?.0)
            };
            if let Some(s) = seconds {
                points.push((n as f64, s));
            }
        }
        let what = if from_model { "predicted" } else { "measured" };
        curves.push((format!("{} ({what})", kind.name()), points));
    }
    if let Some(bar) = bar {
        bar.finish();
    }
    // Orders where the model's pick changes, scanning every integer order in the range.
    let mut switches = Vec::new();
    let (first, last) = (orders[0], orders[orders.len() - 1]);
    let mut previous = explain(first).chosen;
    for n in first + 1..=last {
        let chosen = explain(n).chosen;
        if chosen != previous {
            let label = format!("Auto: {} -> {} at n = {n}", previous.name(), chosen.name());
            switches.push((n as f64, label));
            previous = chosen;
        }
    }
    draw(outputs.temp(svg), &curves, &switches, batch, dtype)?;
    outputs.commit()?;
    eprintln!("wrote {}", out.display());
    for (_, label) in &switches {
        eprintln!("{label}");
    }
    if switches.is_empty() {
        eprintln!(
            "Auto: {} for every n plotted",
            explain(orders[0]).chosen.name()
        );
    }
    Ok(())
}

/// Axis ticks at the powers of two in `[lo, hi]` (matrix orders are read that way).
fn powers_of_two(lo: f64, hi: f64) -> Vec<f64> {
    (0..31)
        .map(|p| f64::from(1u32 << p))
        .filter(|&x| x >= lo && x <= hi)
        .collect()
}

fn plot_err(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(format!("drawing the plot: {e}"))
}

fn draw(
    path: &std::path::Path,
    curves: &[(String, Vec<(f64, f64)>)],
    switches: &[(f64, String)],
    batch: usize,
    dtype: RealArg,
) -> CliResult {
    let all = curves.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, 0f64, f64::MAX, 0f64);
    for &(x, y) in all {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x1 <= 0.0 || y1 <= 0.0 {
        return Err(CliError::Usage("nothing to plot".into()));
    }
    let (y0, y1) = (y0 / 1.5, y1 * 1.5);
    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let title = format!(
        "batched eigh {}, values + vectors, batch {batch}: seconds per call",
        format!("{dtype:?}").to_lowercase()
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(
            (x0..x1).log_scale().with_key_points(powers_of_two(x0, x1)),
            (y0..y1).log_scale(),
        )
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .x_desc("matrix order n")
        .y_desc("seconds per call (host to host)")
        .y_label_formatter(&|y| format!("{y:.0e}"))
        .draw()
        .map_err(plot_err)?;
    for (i, (name, points)) in curves.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(plot_err)?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(plot_err)?;
    }
    for (x, label) in switches {
        chart
            .draw_series(LineSeries::new([(*x, y0), (*x, y1)], BLACK.stroke_width(1)))
            .map_err(plot_err)?
            .label(label.as_str())
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)
}

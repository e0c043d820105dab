//! The CSV table and the SVG plot of a sweep.

use std::fmt::Write as _;
use std::path::Path;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::operator::Operator;
use super::sweep::Measurement;
use crate::error::{Error, Result};

/// Formats the measurements as CSV: an optional `# comment` line, the header
/// `operator,n,seconds_per_step`, then one row per measurement, the layout
/// `scripts/torch/speed.py` writes too.
///
/// ```
/// use experiments::speed::{csv_table, Measurement, Operator};
///
/// let row = Measurement {
///     operator: Operator::SoftsortAbs,
///     n: 100,
///     seconds_per_step: 0.0125,
///     first_loss: 3.0,
///     final_loss: 1.5,
/// };
/// let text = csv_table(&[row], Some("f32"));
/// assert_eq!(text, "# f32\noperator,n,seconds_per_step\nsoftsort_abs,100,1.250000e-2\n");
/// ```
pub fn csv_table(measurements: &[Measurement], comment: Option<&str>) -> String {
    let mut text = String::new();
    if let Some(comment) = comment {
        let _ = writeln!(text, "# {comment}");
    }
    text.push_str("operator,n,seconds_per_step\n");
    for m in measurements {
        let _ = writeln!(text, "{},{},{:.6e}", m.operator, m.n, m.seconds_per_step);
    }
    text
}

/// Writes [`csv_table`] to `path`.
///
/// # Errors
/// [`Error::Write`] if the file cannot be written.
pub fn write_csv(path: &Path, measurements: &[Measurement], comment: Option<&str>) -> Result<()> {
    std::fs::write(path, csv_table(measurements, comment)).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The scale of the plot's n axis. The time axis is always logarithmic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AxisScale {
    /// Logarithmic, so that sizes from 100 to 10⁵ share one plot.
    #[default]
    Log,
    /// Linear, as in the SoftSort paper's figure of n = 100 to 4000.
    Linear,
}

/// One operator's line: its colour and its `(n, seconds)` points.
type Line = (Operator, RGBColor, Vec<(f64, f64)>);

/// Line colours of the operators, in the order of [`Operator::ALL`].
const COLORS: [RGBColor; 7] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];

/// Draws the seconds per step against n, one line per operator, to an 800 × 560 SVG file
/// with a logarithmic time axis.
///
/// # Errors
/// [`Error::InvalidArgument`] if no measurement has a positive time, [`Error::Write`] if
/// drawing or writing the file fails.
pub fn write_svg(
    path: &Path,
    measurements: &[Measurement],
    title: &str,
    x_scale: AxisScale,
) -> Result<()> {
    let positive: Vec<&Measurement> = measurements
        .iter()
        .filter(|m| m.seconds_per_step > 0.0 && m.seconds_per_step.is_finite())
        .collect();
    if positive.is_empty() {
        return Err(Error::invalid(
            "write_svg",
            "measurements",
            format!("{} rows", measurements.len()),
            "at least one positive, finite time is needed for a logarithmic axis",
        ));
    }
    let (n_min, n_max) = span(positive.iter().map(|m| m.n as f64));
    let (t_min, t_max) = span(positive.iter().map(|m| m.seconds_per_step));
    // Pad the time axis by a factor of 1.5 so that no line runs along the frame.
    let (t_low, t_high) = (t_min / 1.5, t_max * 1.5);
    let (n_low, n_high) = if n_min == n_max {
        (n_min / 2.0, n_max * 2.0)
    } else {
        (n_min, n_max)
    };

    let lines: Vec<Line> = Operator::ALL
        .iter()
        .zip(COLORS)
        .map(|(&operator, color)| {
            let points = positive
                .iter()
                .filter(|m| m.operator == operator)
                .map(|m| (m.n as f64, m.seconds_per_step))
                .collect();
            (operator, color, points)
        })
        .collect();

    let root = SVGBackend::new(path, (800, 560)).into_drawing_area();
    let drawn = match x_scale {
        AxisScale::Log => draw_chart(
            &root,
            title,
            (n_low..n_high).log_scale(),
            (t_low, t_high),
            &lines,
        ),
        AxisScale::Linear => draw_chart(&root, title, n_low..n_high, (t_low, t_high), &lines),
    };
    drawn
        .and_then(|()| root.present().map_err(|e| e.to_string()))
        .map_err(|message| Error::Write {
            path: path.to_path_buf(),
            source: std::io::Error::other(message),
        })
}

/// Draws the axes, one line per operator and a legend in the upper left corner.
fn draw_chart<X>(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    x_range: X,
    time_range: (f64, f64),
    lines: &[Line],
) -> std::result::Result<(), String>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x_range, (time_range.0..time_range.1).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("n (scores per row)")
        .y_desc("seconds per training step")
        .draw()
        .map_err(|e| e.to_string())?;
    for (operator, color, points) in lines {
        if points.is_empty() {
            continue;
        }
        let color = *color;
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(operator.name())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

/// Returns the minimum and maximum of a non-empty sequence.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), v| {
        (low.min(v), high.max(v))
    })
}

//! Shared SVG charts (plotters; text as SVG text, so no font files are needed).
use crate::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

pub const PALETTE: [RGBColor; 4] =
    [RGBColor(66, 133, 244), RGBColor(219, 68, 55), RGBColor(244, 180, 0), RGBColor(15, 157, 88)];

fn err(e: impl std::fmt::Display) -> Error {
    Error::Msg(format!("plotting: {e}"))
}

/// Renders an SVG of `size` in memory with `draw`, then writes it atomically (no half-written chart on disk).
fn write_svg(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<()>,
) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root).map_err(|e| Error::Msg(format!("{}: {e}", path.display())))?;
        root.present().map_err(err)?;
    }
    crate::output::write_atomic(path, |f| std::io::Write::write_all(f, svg.as_bytes()))
}

/// One named series of a grouped bar chart; `None` values are not drawn.
pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
    pub color: RGBColor,
}

/// Grouped bar chart, one group per category label (bar i centred on x = i so integer ticks carry the
/// names); handles negative values; a legend when there are several series.
pub fn bar_chart(path: &Path, title: &str, labels: &[String], series: &[Series], y_label: &str) -> Result<()> {
    let n = labels.len().max(1);
    // Many categories: wider chart, names written vertically in full (up to 18 characters).
    let many = n > 8;
    let width = if many { (n * (18 + 10 * series.len().max(1)) + 120).max(900) as u32 } else { 900 };
    write_svg(path, (width, if many { 560 } else { 480 }), |root| draw_bars(root, title, labels, series, y_label, many))
}

fn draw_bars(
    root: &DrawingArea<SVGBackend, Shift>,
    title: &str,
    labels: &[String],
    series: &[Series],
    y_label: &str,
    many: bool,
) -> Result<()> {
    let n = labels.len().max(1);
    let vals = series.iter().flat_map(|s| s.values.iter().flatten().copied());
    let (lo, hi) = vals.fold((0.0f64, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    // Headroom above the tallest bar for the legend.
    let head = if series.len() > 1 { 1.3 } else { 1.1 };
    let (lo, hi) = (lo * 1.1, (hi * head).max(lo * 1.1 + 1e-9));
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(if many { 130 } else { 50 })
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, lo..hi)
        .map_err(err)?;
    let style = ("sans-serif", 13).into_font();
    let names = labels.to_vec();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_style(style)
        .x_label_formatter(&move |x| {
            let i = x.round();
            if (x - i).abs() > 1e-6 || i < 0.0 {
                return String::new();
            }
            if many {
                return String::new(); // drawn vertically below
            }
            names.get(i as usize).cloned().unwrap_or_default()
        })
        .y_desc(y_label)
        .draw()
        .map_err(err)?;
    if many {
        // Vertical category names, starting just below the axis (the mesh would centre rotated text on the tick).
        let vertical = ("sans-serif", 12).into_font().transform(FontTransform::Rotate90).color(&BLACK);
        for (i, l) in labels.iter().enumerate() {
            let l: String =
                if l.chars().count() > 18 { l.chars().take(17).chain(['…']).collect() } else { l.clone() };
            let (x, y) = chart.backend_coord(&(i as f64, lo));
            root.draw(&Text::new(l, (x + 6, y + 8), vertical.clone())).map_err(err)?;
        }
    }
    let w = 0.8 / series.len().max(1) as f64;
    for (si, s) in series.iter().enumerate() {
        let color = s.color;
        chart
            .draw_series(s.values.iter().enumerate().filter_map(|(i, v)| {
                let x0 = i as f64 - 0.4 + si as f64 * w;
                v.map(|v| Rectangle::new([(x0, 0.0), (x0 + w * 0.95, v)], color.filled()))
            }))
            .map_err(err)?
            .label(s.name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    if series.len() > 1 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

/// One line-plot panel: the points joined by a line (dots on them with `markers`), axes from 0 to `x_max` /
/// `y_max`, and an optional vertical red line at x = `mark`.
pub struct Line<'a> {
    pub title: String,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub points: Vec<(f64, f64)>,
    pub x_max: f64,
    pub y_max: f64,
    pub color: RGBColor,
    pub markers: bool,
    pub mark: Option<f64>,
}

/// Line plots side by side in one SVG (900 × 480 for one panel), written atomically.
pub fn line_charts(path: &Path, lines: &[Line]) -> Result<()> {
    let size = if lines.len() > 1 { (550 * lines.len() as u32, 440) } else { (900, 480) };
    write_svg(path, size, |root| {
        for (area, line) in root.split_evenly((1, lines.len().max(1))).iter().zip(lines) {
            draw_line(area, line)?;
        }
        Ok(())
    })
}

fn draw_line(area: &DrawingArea<SVGBackend, Shift>, l: &Line) -> Result<()> {
    let mut chart = ChartBuilder::on(area)
        .caption(&l.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..l.x_max, 0f64..l.y_max)
        .map_err(err)?;
    chart.configure_mesh().x_desc(l.x_label).y_desc(l.y_label).draw().map_err(err)?;
    chart.draw_series(LineSeries::new(l.points.iter().copied(), l.color.stroke_width(2))).map_err(err)?;
    if l.markers {
        chart.draw_series(l.points.iter().map(|&p| Circle::new(p, 3, l.color.filled()))).map_err(err)?;
    }
    if let Some(m) = l.mark {
        chart.draw_series(LineSeries::new([(m, 0.0), (m, l.y_max)], RED.stroke_width(1))).map_err(err)?;
    }
    Ok(())
}

/// One line over x in [0, 1] (e.g. a threshold sweep), y from 0, with an optional vertical mark.
pub fn line_chart(
    path: &Path,
    title: &str,
    xs: &[f64],
    ys: &[f64],
    x_label: &str,
    y_label: &str,
    mark: Option<f64>,
) -> Result<()> {
    let y_max = ys.iter().cloned().fold(0.0f64, f64::max).max(1.0) * 1.05;
    let points = xs.iter().cloned().zip(ys.iter().cloned()).collect();
    line_charts(
        path,
        &[Line { title: title.into(), x_label, y_label, points, x_max: 1.0, y_max, color: BLUE, markers: false, mark }],
    )
}

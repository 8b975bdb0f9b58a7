//! Linear-probe report in the layout of the EmotionCLIP paper's Table 4 (rows: metric, columns: split): `probe.md`, `probe.json` and a per-class bar chart `per_class.svg` (plotters SVG, as `prep/report.rs`).
use super::eval::ProbeResult;
use crate::output::write_atomic;
use crate::{Error, Result};
use plotters::prelude::*;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

fn err(e: impl std::fmt::Display) -> Error {
    Error::Msg(format!("plotting: {e}"))
}

fn fmt(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "n/a".into()
    }
}

/// Extra context for the report header.
#[derive(Debug, Clone, Default)]
pub struct ReportInfo {
    pub manifest: String,
    pub model: String,
    pub weights: String,
    pub skipped: Vec<String>,
}

/// The Markdown page.
pub fn markdown(r: &ProbeResult, info: &ReportInfo) -> String {
    let mut s = String::from("# Linear-probe evaluation\n\n");
    s += &format!("- manifest: `{}`\n- model: {} (weights `{}`)\n- task: {}\n", info.manifest, info.model, info.weights, r.task.name());
    s += &format!("- items: train {}, val {}, test {}\n", r.counts[0], r.counts[1], r.counts[2]);
    match r.c {
        Some(c) => s += &format!("- C = {c:.6} ({})\n", r.c_source),
        None => s += &format!("- {}\n", r.c_source),
    }
    s += "\n| metric |";
    for sp in &r.splits {
        s += &format!(" {sp} |");
    }
    s += "\n|---|";
    s += &"---:|".repeat(r.splits.len());
    s += "\n";
    for (m, vals) in &r.metrics {
        s += &format!("| {m} |");
        for v in vals {
            let cell = if m.starts_with("classes without") && v.is_finite() { format!("{v:.0}") } else { fmt(*v) };
            s += &format!(" {cell} |");
        }
        s += "\n";
    }
    if !r.per_class.is_empty() {
        s += "\n## Per class\n\n| class |";
        for pc in &r.per_class {
            s += &format!(" {} {} |", pc.metric, pc.split);
        }
        s += "\n|---|";
        s += &"---:|".repeat(r.per_class.len());
        s += "\n";
        for (k, name) in r.names.iter().enumerate() {
            s += &format!("| {name} |");
            for pc in &r.per_class {
                s += &format!(" {} |", pc.values.get(k).copied().flatten().map_or("n/a".into(), fmt));
            }
            s += "\n";
        }
        s += "\n![per-class scores](per_class.svg)\n";
    }
    if !r.notes.is_empty() || !info.skipped.is_empty() {
        s += "\n## Notes\n\n";
        for n in &r.notes {
            s += &format!("- {n}\n");
        }
        for k in &info.skipped {
            s += &format!("- skipped: {k}\n");
        }
    }
    s
}

/// The JSON document.
pub fn to_json(r: &ProbeResult, info: &ReportInfo) -> Value {
    let metrics: serde_json::Map<String, Value> = r
        .metrics
        .iter()
        .map(|(m, vals)| (m.clone(), r.splits.iter().cloned().zip(vals.iter().map(|v| json!(v))).collect()))
        .collect();
    json!({
        "manifest": info.manifest,
        "model": info.model,
        "weights": info.weights,
        "task": r.task.name(),
        "counts": {"train": r.counts[0], "val": r.counts[1], "test": r.counts[2]},
        "c": r.c,
        "c_source": r.c_source,
        "trials": r.trials.iter().map(|(c, s)| json!({"c": c, "score": s})).collect::<Vec<_>>(),
        "splits": r.splits,
        "metrics": metrics,
        "metric_order": r.metrics.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>(),
        "names": r.names,
        "per_class": r.per_class.iter().map(|p| json!({"metric": p.metric, "split": p.split, "values": p.values})).collect::<Vec<_>>(),
        "notes": r.notes,
        "skipped": info.skipped,
    })
}

/// Bar chart of per-class values (one series per metric × split entry of `r.per_class`).
pub fn per_class_chart(path: &Path, r: &ProbeResult) -> Result<()> {
    let root = SVGBackend::new(path, (900, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let labels = r.names.clone();
    let n = labels.len().max(1);
    let all = r.per_class.iter().flat_map(|p| p.values.iter().flatten().copied());
    let (lo, hi) = all.fold((0.0f64, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let (lo, hi) = (lo * 1.1, (hi * 1.1).max(lo * 1.1 + 1e-9));
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("Per-class scores ({})", r.task.name()), ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(90)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, lo..hi)
        .map_err(err)?;
    let style = ("sans-serif", if n > 8 { 11 } else { 13 }).into_font();
    let lc = labels.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_style(style)
        .x_label_formatter(&move |x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                let l = lc.get(i as usize).cloned().unwrap_or_default();
                if n > 8 && l.chars().count() > 8 {
                    l.chars().take(7).chain(['…']).collect()
                } else {
                    l
                }
            } else {
                String::new()
            }
        })
        .y_desc("score")
        .draw()
        .map_err(err)?;
    let palette = [RGBColor(66, 133, 244), RGBColor(219, 68, 55), RGBColor(244, 180, 0), RGBColor(15, 157, 88)];
    let k = r.per_class.len().max(1) as f64;
    for (si, pc) in r.per_class.iter().enumerate() {
        let w = 0.8 / k;
        let color = palette[si % palette.len()];
        chart
            .draw_series(pc.values.iter().enumerate().filter_map(|(i, v)| {
                let v = (*v)?;
                let x0 = i as f64 - 0.4 + si as f64 * w;
                Some(Rectangle::new([(x0, 0.0), (x0 + w * 0.95, v)], color.filled()))
            }))
            .map_err(err)?
            .label(format!("{} {}", pc.metric, pc.split))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    if !r.per_class.is_empty() {
        chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw().map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Writes `<dir>/probe.md`, `<dir>/probe.json` and `<dir>/per_class.svg`; returns their paths.
pub fn write_report(r: &ProbeResult, info: &ReportInfo, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let md = dir.join("probe.md");
    let js = dir.join("probe.json");
    let svg = dir.join("per_class.svg");
    let text = markdown(r, info);
    write_atomic(&md, |f| f.write_all(text.as_bytes()))?;
    let j = serde_json::to_string_pretty(&to_json(r, info)).map_err(|e| Error::Msg(format!("{}: {e}", js.display())))?;
    write_atomic(&js, |f| f.write_all(j.as_bytes()))?;
    per_class_chart(&svg, r)?;
    Ok(vec![md, js, svg])
}

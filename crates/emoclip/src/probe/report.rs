//! Linear-probe report in the layout of the EmotionCLIP paper's Table 4 (rows: metric, columns: split): `probe.md`, `probe.json` and a per-class bar chart `per_class.svg` (SVG through `crate::plot`).
use super::eval::ProbeResult;
use crate::output::write_atomic;
use crate::plot::{bar_chart, Series, PALETTE};
use crate::{Error, Result};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

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
    /// Dataset task (`meld/emotion`, ...) when run through a dataset adapter; empty for a manifest.
    pub dataset: String,
    pub model: String,
    pub weights: String,
    pub skipped: Vec<String>,
}

/// The Markdown page.
pub fn markdown(r: &ProbeResult, info: &ReportInfo) -> String {
    let mut s = String::from("# Linear-probe evaluation\n\n");
    if !info.dataset.is_empty() {
        s += &format!("- dataset task: {}\n", info.dataset);
    }
    s += &format!(
        "- manifest: `{}`\n- model: {} (weights `{}`)\n- task: {}\n",
        info.manifest,
        info.model,
        info.weights,
        r.task.name()
    );
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
        "dataset": info.dataset,
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
    let series: Vec<Series> = r
        .per_class
        .iter()
        .enumerate()
        .map(|(i, pc)| Series {
            name: format!("{} {}", pc.metric, pc.split),
            values: pc.values.clone(),
            color: PALETTE[i % PALETTE.len()],
        })
        .collect();
    bar_chart(path, &format!("Per-class scores ({})", r.task.name()), &r.names, &series, "score")
}

/// Writes `<dir>/probe.md`, `<dir>/probe.json` and `<dir>/per_class.svg`; returns their paths.
pub fn write_report(r: &ProbeResult, info: &ReportInfo, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let md = dir.join("probe.md");
    let js = dir.join("probe.json");
    let svg = dir.join("per_class.svg");
    let text = markdown(r, info);
    write_atomic(&md, |f| f.write_all(text.as_bytes()))?;
    let j =
        serde_json::to_string_pretty(&to_json(r, info)).map_err(|e| Error::Msg(format!("{}: {e}", js.display())))?;
    write_atomic(&js, |f| f.write_all(j.as_bytes()))?;
    per_class_chart(&svg, r)?;
    Ok(vec![md, js, svg])
}

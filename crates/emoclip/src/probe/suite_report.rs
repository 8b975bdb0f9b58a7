//! Cross-dataset, cross-model linear-probe report in the layout of the EmotionCLIP paper's Table 4 (one row per model, the five datasets' metrics as columns) and appendix Table 5 (per-category AP / AUC on BoLD and Emotic), as Markdown + JSON (+ an SVG bar chart), built from the per-task `probe.json` files of [`super::report`].
//!
//! Columns and the split each one is read from (`linear_eval.py` logs): BoLD mAP / AUC / R² on val (BoLD has
//! no test split); MovieGraphs accuracy on val and test (Table 4b); MELD accuracy and weighted F1, Emotic mAP
//! and AUC, LIRIS-ACCEDE MSE and Pearson r per dimension on test. mAP, AUC, accuracy and F1 are in percent;
//! R², MSE and r are plain numbers, as in the paper. A missing result is shown as "—" (Markdown) / `null`
//! (JSON). AUC is the mean over the classes where it is defined (the `ROC-AUC (defined classes)` row; the
//! official `roc_auc_score(average='macro')` is NaN as soon as one class has no positive in the split).
use crate::output::write_atomic;
use crate::plot::{bar_chart, Series, PALETTE};
use crate::{Error, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One Table-4 column: header, task (`DatasetTask::name`), metric row of `probe.json`, split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Column {
    pub group: &'static str,
    pub header: &'static str,
    pub task: &'static str,
    pub metric: &'static str,
    pub split: &'static str,
    /// Lower is better (MSE).
    pub lower_better: bool,
}

const fn col(
    group: &'static str,
    header: &'static str,
    task: &'static str,
    metric: &'static str,
    split: &'static str,
) -> Column {
    Column { group, header, task, metric, split, lower_better: false }
}

/// The columns of paper Table 4 (a)–(e), plus LIRIS-ACCEDE Pearson r (reported by `linear_eval.py`).
pub const TABLE4: [Column; 14] = [
    col("BoLD", "mAP ↑", "bold/categories", "mAP (macro)", "val"),
    col("BoLD", "AUC ↑", "bold/categories", "ROC-AUC (defined classes)", "val"),
    col("BoLD", "R² ↑", "bold/vad", "R2 (uniform average)", "val"),
    col("MovieGraphs", "Val Acc ↑", "moviegraphs/emotion", "Accuracy (top-1 in labels)", "val"),
    col("MovieGraphs", "Test Acc ↑", "moviegraphs/emotion", "Accuracy (top-1 in labels)", "test"),
    col("MELD", "Acc ↑", "meld/emotion", "Accuracy", "test"),
    col("MELD", "W. F1 ↑", "meld/emotion", "F1 (weighted)", "test"),
    col("Emotic", "mAP ↑", "emotic/categories", "mAP (macro)", "test"),
    col("Emotic", "AUC ↑", "emotic/categories", "ROC-AUC (defined classes)", "test"),
    Column { lower_better: true, ..col("LIRIS-ACCEDE", "V. MSE ↓", "liris/valence-arousal", "MSE valence", "test") },
    Column { lower_better: true, ..col("LIRIS-ACCEDE", "A. MSE ↓", "liris/valence-arousal", "MSE arousal", "test") },
    col("LIRIS-ACCEDE", "V. r ↑", "liris/valence-arousal", "Pearson r valence", "test"),
    col("LIRIS-ACCEDE", "A. r ↑", "liris/valence-arousal", "Pearson r arousal", "test"),
    Column {
        lower_better: true, ..col("LIRIS-ACCEDE", "MSE (mean) ↓", "liris/valence-arousal", "MSE (mean)", "test")
    },
];

/// Table 5 sources: (dataset label, task, split).
pub const TABLE5: [(&str, &str, &str); 2] =
    [("BoLD", "bold/categories", "val"), ("Emotic", "emotic/categories", "test")];

/// One `probe.json`, reduced to what the suite tables need.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRun {
    pub file: PathBuf,
    /// `DatasetTask::name` (`meld/emotion`, ...), from the JSON `dataset` field.
    pub task: String,
    /// `emotionclip` or `clip`.
    pub model: String,
    pub weights: String,
    /// (metric, split) → value.
    pub metrics: BTreeMap<(String, String), f64>,
    /// Class names of the per-class lists.
    pub names: Vec<String>,
    /// (metric, split) → per-class values.
    pub per_class: BTreeMap<(String, String), Vec<Option<f64>>>,
}

impl ProbeRun {
    /// Parses one `probe.json` written by [`super::report::write_report`] for a dataset task.
    pub fn from_json(v: &Value, file: &Path) -> Result<Self> {
        let err = |m: &str| Error::Msg(format!("{}: {m}", file.display()));
        let task = v.get("dataset").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or_else(|| {
            err("no `dataset` field: not the report of a dataset task (run `emoclip probe --dataset NAME --root DIR`)")
        })?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let mut metrics = BTreeMap::new();
        if let Some(m) = v.get("metrics").and_then(Value::as_object) {
            for (name, by_split) in m {
                for (split, val) in by_split.as_object().into_iter().flatten() {
                    if let Some(x) = val.as_f64() {
                        metrics.insert((name.clone(), split.clone()), x);
                    }
                }
            }
        }
        let names: Vec<String> = v
            .get("names")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
            .unwrap_or_default();
        let mut per_class = BTreeMap::new();
        for pc in v.get("per_class").and_then(Value::as_array).into_iter().flatten() {
            let key = (
                pc.get("metric").and_then(Value::as_str).unwrap_or_default().to_string(),
                pc.get("split").and_then(Value::as_str).unwrap_or_default().to_string(),
            );
            let vals = pc
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(Value::as_f64).collect())
                .unwrap_or_default();
            per_class.insert(key, vals);
        }
        Ok(Self {
            file: file.to_path_buf(),
            task: task.to_string(),
            model: s("model"),
            weights: s("weights"),
            metrics,
            names,
            per_class,
        })
    }

    /// Reads a `probe.json`.
    pub fn load(file: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| Error::json_file(file, e))?;
        Self::from_json(&v, file)
    }
}

/// Every `probe.json` under `paths` (files, or directories searched recursively), sorted by path.
pub fn find_results(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let p = e.map_err(|e| Error::io(dir, e))?.path();
            if p.is_dir() {
                walk(&p, out)?;
            } else if p.file_name().is_some_and(|n| n == "probe.json") {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(Error::Msg(format!(
                "{}: not found (pass probe.json files or directories holding them)",
                p.display()
            )));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Category names equal up to case and punctuation.
fn same_name(a: &str, b: &str) -> bool {
    let key = |s: &str| s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect::<String>();
    key(a) == key(b)
}

/// Display name of a model kind.
fn model_label(model: &str) -> String {
    match model {
        "emotionclip" => "EmotionCLIP".into(),
        "clip" => "CLIP (baseline)".into(),
        o => o.to_string(),
    }
}

/// The suite: runs grouped by model row.
#[derive(Debug, Clone)]
pub struct Suite {
    /// Row labels, in order of first appearance (EmotionCLIP first when present).
    pub rows: Vec<String>,
    /// (row, task) → run.
    pub runs: BTreeMap<(String, String), ProbeRun>,
    pub notes: Vec<String>,
}

impl Suite {
    /// Groups runs by model (and by weights when one model kind was run with several weights).
    pub fn new(runs: Vec<ProbeRun>) -> Result<Self> {
        if runs.is_empty() {
            return Err(Error::Msg("no dataset probe results (probe.json with a `dataset` field) given".into()));
        }
        let mut weights_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in &runs {
            let w = weights_of.entry(r.model.clone()).or_default();
            if !w.contains(&r.weights) {
                w.push(r.weights.clone());
            }
        }
        let label = |r: &ProbeRun| {
            let base = model_label(&r.model);
            if weights_of[&r.model].len() > 1 {
                format!("{base} ({})", r.weights)
            } else {
                base
            }
        };
        let mut rows: Vec<String> = Vec::new();
        let mut map = BTreeMap::new();
        let mut notes = Vec::new();
        let mut order: Vec<&ProbeRun> = runs.iter().collect();
        order.sort_by_key(|r| (r.model != "emotionclip", r.model.clone(), r.weights.clone()));
        for r in order {
            let row = label(r);
            if !rows.contains(&row) {
                rows.push(row.clone());
            }
            if let Some(old) = map.insert((row.clone(), r.task.clone()), r.clone()) {
                notes.push(format!("{row} / {}: {} replaces {}", r.task, r.file.display(), old.file.display()));
            }
        }
        for ((row, task), r) in &map {
            if !TABLE4.iter().any(|c| c.task == task) {
                notes.push(format!("{row} / {task}: not a Table 4 task ({}), left out", r.file.display()));
            }
        }
        Ok(Self { rows, runs: map, notes })
    }

    /// Table-4 value of `row` in column `c`.
    pub fn cell(&self, row: &str, c: &Column) -> Option<f64> {
        let r = self.runs.get(&(row.to_string(), c.task.to_string()))?;
        r.metrics.get(&(c.metric.to_string(), c.split.to_string())).copied().filter(|v| v.is_finite())
    }

    /// Table-5 category names: the 26 Emotic categories in the paper's order (as named there) that occur in a
    /// BoLD / Emotic result, then any other names. Names match ignoring case and punctuation
    /// (`doubt confusion` = `Doubt/Confusion`).
    fn categories(&self) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        for (_, task, _) in TABLE5 {
            for ((_, t), r) in &self.runs {
                if t == task {
                    for n in &r.names {
                        if !seen.iter().any(|o| same_name(o, n)) {
                            seen.push(n.clone());
                        }
                    }
                }
            }
        }
        let canon = super::datasets::moviegraphs::CLASSES;
        let mut out: Vec<String> =
            canon.iter().filter(|c| seen.iter().any(|n| same_name(n, c))).map(|c| c.to_string()).collect();
        out.extend(seen.into_iter().filter(|n| !canon.iter().any(|c| same_name(n, c))));
        out
    }

    /// Table-5 per-category value (`metric` = `AP` or `ROC-AUC`), in percent.
    fn category_value(&self, row: &str, task: &str, split: &str, metric: &str, category: &str) -> Option<f64> {
        let r = self.runs.get(&(row.to_string(), task.to_string()))?;
        let k = r.names.iter().position(|n| same_name(n, category))?;
        r.per_class.get(&(metric.to_string(), split.to_string()))?.get(k).copied().flatten()
    }

    fn fmt(v: Option<f64>, c: Option<&Column>) -> String {
        match v {
            None => "—".into(),
            Some(v) => match c {
                Some(c)
                    if c.metric.starts_with("MSE") || c.metric.starts_with("R2") || c.metric.starts_with("Pearson") =>
                {
                    format!("{v:.3}")
                }
                _ => format!("{v:.2}"),
            },
        }
    }

    /// The Markdown page (Table 4, then Table 5 when BoLD or Emotic results exist).
    pub fn markdown(&self) -> String {
        let mut s = String::from("# Linear-probe suite (paper Table 4 / appendix Table 5 layout)\n\n");
        s += "Splits: BoLD val; MovieGraphs val and test; MELD, Emotic, LIRIS-ACCEDE test. mAP, AUC, accuracy and F1 in %.\n\n";
        s += "## Table 4\n\n| model |";
        for c in &TABLE4 {
            s += &format!(" {} {} |", c.group, c.header);
        }
        s += "\n|---|";
        s += &"---:|".repeat(TABLE4.len());
        s += "\n";
        for row in &self.rows {
            s += &format!("| {row} |");
            for c in &TABLE4 {
                s += &format!(" {} |", Self::fmt(self.cell(row, c), Some(c)));
            }
            s += "\n";
        }
        let cats = self.categories();
        if !cats.is_empty() {
            s += "\n## Table 5: per-category AP / AUC (%)\n\n| category |";
            for row in &self.rows {
                for (d, _, _) in TABLE5 {
                    s += &format!(" {row} {d} AP | {row} {d} AUC |");
                }
            }
            s += "\n|---|";
            s += &"---:|".repeat(self.rows.len() * TABLE5.len() * 2);
            s += "\n";
            for cat in &cats {
                s += &format!("| {cat} |");
                for row in &self.rows {
                    for (_, task, split) in TABLE5 {
                        for m in ["AP", "ROC-AUC"] {
                            s += &format!(" {} |", Self::fmt(self.category_value(row, task, split, m, cat), None));
                        }
                    }
                }
                s += "\n";
            }
            s += "| Average |";
            for row in &self.rows {
                for (_, task, split) in TABLE5 {
                    for m in ["mAP (macro)", "ROC-AUC (defined classes)"] {
                        let v = self
                            .runs
                            .get(&(row.clone(), task.to_string()))
                            .and_then(|r| r.metrics.get(&(m.to_string(), split.to_string())).copied());
                        s += &format!(" {} |", Self::fmt(v, None));
                    }
                }
            }
            s += "\n";
        }
        s += "\n## Sources\n\n";
        for ((row, task), r) in &self.runs {
            s += &format!("- {row} / {task}: `{}` (weights `{}`)\n", r.file.display(), r.weights);
        }
        for n in &self.notes {
            s += &format!("- note: {n}\n");
        }
        s
    }

    /// The JSON document (`null` for missing cells).
    pub fn to_json(&self) -> Value {
        let columns: Vec<Value> = TABLE4
            .iter()
            .map(|c| json!({"dataset": c.group, "header": c.header, "task": c.task, "metric": c.metric, "split": c.split, "lower_is_better": c.lower_better}))
            .collect();
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|row| json!({"model": row, "values": TABLE4.iter().map(|c| json!(self.cell(row, c))).collect::<Vec<_>>()}))
            .collect();
        let cats = self.categories();
        let t5: Vec<Value> = self
            .rows
            .iter()
            .map(|row| {
                let per: serde_json::Map<String, Value> = TABLE5
                    .iter()
                    .map(|(d, task, split)| {
                        let v = json!({
                            "AP": cats.iter().map(|c| json!(self.category_value(row, task, split, "AP", c))).collect::<Vec<_>>(),
                            "AUC": cats.iter().map(|c| json!(self.category_value(row, task, split, "ROC-AUC", c))).collect::<Vec<_>>(),
                        });
                        (d.to_string(), v)
                    })
                    .collect();
                json!({"model": row, "datasets": per})
            })
            .collect();
        let sources: Vec<Value> = self
            .runs
            .iter()
            .map(|((row, task), r)| json!({"model": row, "task": task, "file": r.file.display().to_string(), "weights": r.weights}))
            .collect();
        json!({
            "table4": {"columns": columns, "rows": rows},
            "table5": {"categories": cats, "rows": t5},
            "sources": sources,
            "notes": self.notes,
        })
    }

    /// Grouped bar chart of the Table-4 columns in percent (mAP, AUC, accuracy, F1), one series per model.
    pub fn chart(&self, path: &Path) -> Result<()> {
        let cols: Vec<&Column> = TABLE4
            .iter()
            .filter(|c| !c.lower_better && !c.metric.starts_with("R2") && !c.metric.starts_with("Pearson"))
            .collect();
        let labels: Vec<String> = cols
            .iter()
            .map(|c| format!("{} {}", c.group.replace("MovieGraphs", "MG"), c.header.trim_end_matches(" ↑")))
            .collect();
        let series: Vec<Series> = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, row)| Series {
                name: row.clone(),
                values: cols.iter().map(|c| self.cell(row, c)).collect(),
                color: PALETTE[i % PALETTE.len()],
            })
            .collect();
        bar_chart(path, "Linear probe (paper Table 4 metrics in %)", &labels, &series, "%")
    }

    /// Writes `<dir>/suite.md`, `<dir>/suite.json` and `<dir>/suite.svg` (each under a temporary name, then
    /// renamed); returns their paths.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let md = dir.join("suite.md");
        let js = dir.join("suite.json");
        let text = self.markdown();
        write_atomic(&md, |f| f.write_all(text.as_bytes()))?;
        let j =
            serde_json::to_string_pretty(&self.to_json()).map_err(|e| Error::Msg(format!("{}: {e}", js.display())))?;
        write_atomic(&js, |f| f.write_all(j.as_bytes()))?;
        let svg = dir.join("suite.svg");
        let tmp = dir.join(".suite.svg.tmp");
        self.chart(&tmp)?;
        std::fs::rename(&tmp, &svg).map_err(|e| Error::io(&svg, e))?;
        Ok(vec![md, js, svg])
    }
}

/// Loads every dataset-task `probe.json` under `paths` into a [`Suite`]; reports of manifest runs (no
/// `dataset` field) are skipped with a note.
pub fn load_suite(paths: &[PathBuf]) -> Result<Suite> {
    let files = find_results(paths)?;
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(|e| Error::io(f, e))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| Error::json_file(f, e))?;
        if v.get("dataset").and_then(Value::as_str).is_none_or(str::is_empty) {
            skipped.push(format!("{}: a manifest run (no dataset task), left out", f.display()));
            continue;
        }
        runs.push(ProbeRun::from_json(&v, f)?);
    }
    let mut suite = Suite::new(runs)?;
    suite.notes.extend(skipped);
    Ok(suite)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(task: &str, model: &str, metrics: &[(&str, &str, f64)]) -> ProbeRun {
        ProbeRun {
            file: PathBuf::from(format!("{model}/{task}/probe.json")),
            task: task.into(),
            model: model.into(),
            weights: "w".into(),
            metrics: metrics.iter().map(|(m, s, v)| ((m.to_string(), s.to_string()), *v)).collect(),
            names: vec!["Anger".into(), "Happiness".into()],
            per_class: [(("AP".to_string(), "test".to_string()), vec![Some(10.0), None])].into_iter().collect(),
        }
    }

    #[test]
    fn table4_cells_and_missing() {
        let s = Suite::new(vec![
            run("meld/emotion", "clip", &[("Accuracy", "test", 40.0), ("F1 (weighted)", "test", 30.5)]),
            run("meld/emotion", "emotionclip", &[("Accuracy", "test", 48.28), ("Accuracy", "val", 1.0)]),
            run("emotic/categories", "emotionclip", &[("mAP (macro)", "test", 32.91)]),
        ])
        .unwrap();
        assert_eq!(s.rows, ["EmotionCLIP", "CLIP (baseline)"]);
        let md = s.markdown();
        let line = md.lines().find(|l| l.starts_with("| EmotionCLIP |")).unwrap();
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // model, BoLD x3, MG x2, MELD acc, MELD F1, Emotic mAP, ...
        assert_eq!(&cells[1..10], ["EmotionCLIP", "—", "—", "—", "—", "—", "48.28", "—", "32.91"]);
        assert!(md.contains("| Anger | — | — | 10.00 | — |"), "{md}");
        let j = s.to_json();
        assert_eq!(j["table4"]["rows"][1]["values"][6], json!(30.5));
        assert!(j["table4"]["rows"][1]["values"][0].is_null());
        assert!(Suite::new(vec![]).is_err());
    }
}

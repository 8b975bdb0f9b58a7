//! Generic linear-probe manifest (CSV or JSONL: `path`, `split`, optional `boxes`, and `label` / `labels` / target columns), the dataset-agnostic counterpart of the per-dataset loaders of EmotionCLIP `linear_eval.py`.
use crate::media::{load_boxes, BoxFile, MediaOptions, PersonBox};
use crate::{Error, Result};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The probe task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// One class per item (`label`): multinomial logistic regression.
    Single,
    /// Any number of classes per item (`labels`): one-vs-rest logistic regression.
    Multi,
    /// One or more numeric targets: ridge regression.
    Regression,
}

impl Task {
    pub fn name(self) -> &'static str {
        match self {
            Task::Single => "single",
            Task::Multi => "multi",
            Task::Regression => "regression",
        }
    }
}

/// Dataset split of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "train" | "training" => Some(Split::Train),
            "val" | "valid" | "validation" | "dev" => Some(Split::Val),
            "test" | "testing" => Some(Split::Test),
            _ => None,
        }
    }
}

/// Person boxes of an item: a box JSON file or inline `[[x1,y1,x2,y2,conf],...]` (one set for every frame).
#[derive(Debug, Clone, PartialEq)]
pub enum BoxesSpec {
    File(PathBuf),
    Inline(Vec<[f32; 5]>),
    /// Boxes built in code (dataset adapters converting an official per-frame box file).
    Built(BoxFile),
}

impl BoxesSpec {
    /// Loads the boxes.
    pub fn load(&self) -> Result<BoxFile> {
        match self {
            BoxesSpec::File(p) => load_boxes(p),
            BoxesSpec::Inline(v) => {
                Ok(BoxFile::clip(v.iter().map(|b| PersonBox::new(b[0], b[1], b[2], b[3], Some(b[4]))).collect()))
            }
            BoxesSpec::Built(b) => Ok(b.clone()),
        }
    }

    /// What identifies these boxes in a feature-cache key: a file's fingerprint (path, size, mtime), or the
    /// boxes themselves.
    pub fn fingerprint(&self) -> String {
        match self {
            BoxesSpec::File(p) => crate::hash::file_fingerprint(p),
            BoxesSpec::Inline(v) => format!("{v:?}"),
            BoxesSpec::Built(b) => format!("{b:?}"),
        }
    }
}

/// The label of one item.
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    /// Index into [`Manifest::classes`].
    Class(usize),
    /// Indices into [`Manifest::classes`] (sorted, unique).
    Classes(Vec<usize>),
    /// One value per [`Manifest::targets`].
    Targets(Vec<f64>),
}

/// One usable manifest row.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// 1-based line number in the manifest (the header is line 1 in CSV).
    pub row: usize,
    /// Media path, resolved against the manifest's directory.
    pub path: PathBuf,
    pub split: Split,
    pub boxes: Option<BoxesSpec>,
    pub label: Label,
    /// Dataset-specific media handling (explicit frames, mask mode); the default for manifest rows.
    pub media: MediaOptions,
}

/// A row left out because its media (or box) file is missing.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub row: usize,
    pub path: PathBuf,
    pub reason: String,
}

/// A parsed manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub source: PathBuf,
    pub task: Task,
    /// Class names (single / multi-label), in index order.
    pub classes: Vec<String>,
    /// Target names (regression).
    pub targets: Vec<String>,
    pub items: Vec<Item>,
    pub skipped: Vec<Skipped>,
}

/// Parsing options.
#[derive(Debug, Clone, Default)]
pub struct ManifestOptions {
    /// Force the task (default: `targets` given → regression, a `labels` column → multi, `label` → single,
    /// a `target` column → regression).
    pub task: Option<Task>,
    /// Regression target columns (default `["target"]`).
    pub targets: Vec<String>,
    /// Class list and order; default: `<manifest stem>.classes.txt` beside the manifest (one name a line)
    /// when present, else the sorted distinct labels (numerically when all are integers).
    pub classes: Option<Vec<String>>,
    /// Check that media / box files exist (missing ones are reported in [`Manifest::skipped`]). Default false
    /// here; [`Manifest::load`] sets it.
    pub check_files: bool,
}

type Row = (usize, BTreeMap<String, Value>);

/// Splits simple RFC 4180 CSV (quotes, doubled quotes, separators and newlines inside quotes) into records,
/// each with the 1-based line it starts on.
fn csv_records(text: &str) -> Result<Vec<(usize, Vec<String>)>> {
    let mut out = Vec::new();
    let mut rec: Vec<String> = Vec::new();
    let mut field = String::new();
    let (mut line, mut start) = (1usize, 1usize);
    let mut quoted = false;
    let mut any = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                any = true;
            }
            ',' => {
                rec.push(std::mem::take(&mut field));
                any = true;
            }
            '\r' => {}
            '\n' => {
                if any || !field.is_empty() {
                    rec.push(std::mem::take(&mut field));
                    out.push((start, std::mem::take(&mut rec)));
                }
                any = false;
                line += 1;
                start = line;
            }
            _ => {
                field.push(c);
                any = true;
            }
        }
    }
    if quoted {
        return Err(Error::Msg(format!("manifest line {start}: unterminated quoted field")));
    }
    if any || !field.is_empty() {
        rec.push(field);
        out.push((start, rec));
    }
    Ok(out)
}

fn parse_csv(text: &str) -> Result<Vec<Row>> {
    let recs = csv_records(text)?;
    let Some(((_, header), body)) = recs.split_first() else {
        return Err(Error::Msg("manifest is empty (a CSV manifest needs a header line)".into()));
    };
    let header: Vec<String> = header.iter().map(|h| h.trim().trim_start_matches('\u{feff}').to_string()).collect();
    let mut rows = Vec::new();
    for (line, rec) in body {
        if rec.len() != header.len() {
            return Err(Error::Msg(format!(
                "manifest row {line}: {} field(s), the header has {}",
                rec.len(),
                header.len()
            )));
        }
        let map = header.iter().cloned().zip(rec.iter().map(|v| Value::String(v.trim().to_string()))).collect();
        rows.push((*line, map));
    }
    Ok(rows)
}

fn parse_jsonl(text: &str) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        if l.is_empty() {
            continue;
        }
        let v: Value =
            serde_json::from_str(l).map_err(|e| Error::Msg(format!("manifest row {}: invalid JSON ({e})", i + 1)))?;
        let Value::Object(o) = v else {
            return Err(Error::Msg(format!("manifest row {}: each line must be a JSON object", i + 1)));
        };
        rows.push((i + 1, o.into_iter().collect()));
    }
    Ok(rows)
}

fn is_jsonl(path: &Path, text: &str) -> bool {
    match path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()) {
        Some(e) if e == "jsonl" || e == "json" || e == "ndjson" => true,
        Some(e) if e == "csv" => false,
        _ => text.trim_start().starts_with('{'),
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Sorted distinct names, numerically when all are integers.
fn infer_classes(names: &BTreeSet<String>) -> Vec<String> {
    let mut v: Vec<String> = names.iter().cloned().collect();
    if v.iter().all(|s| s.parse::<i64>().is_ok()) {
        v.sort_by_key(|s| s.parse::<i64>().unwrap_or(0));
    }
    v
}

fn sidecar_classes(path: &Path) -> Result<Option<Vec<String>>> {
    let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    let p = path.with_file_name(format!("{stem}.classes.txt"));
    if !p.is_file() {
        return Ok(None);
    }
    let t = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
    Ok(Some(t.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()))
}

/// The task: forced by the options, else from the columns (`targets` given → regression, a `labels` column →
/// multi, `label` → single, a `target` column → regression).
fn infer_task(rows: &[Row], opts: &ManifestOptions) -> Result<Task> {
    let has = |k: &str| rows.iter().any(|(_, r)| r.contains_key(k));
    match opts.task {
        Some(t) => Ok(t),
        None if !opts.targets.is_empty() => Ok(Task::Regression),
        None if has("labels") => Ok(Task::Multi),
        None if has("label") => Ok(Task::Single),
        None if has("target") => Ok(Task::Regression),
        None => Err(Error::Msg(
            "manifest has no label column: add `label` (single-label), `labels` (multi-label) or numeric target columns (pass --targets)".into(),
        )),
    }
}

/// The class names a row gives (`label`, or `labels` as a list or `a;b`); none for regression.
fn label_names(r: &BTreeMap<String, Value>, line: usize, task: Task) -> Result<Vec<String>> {
    Ok(match task {
        Task::Single => {
            let v = r.get("label").and_then(as_text).filter(|s| !s.is_empty());
            vec![v.ok_or_else(|| Error::Msg(format!("manifest row {line}: missing `label`")))?]
        }
        Task::Multi => match r.get("labels") {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    as_text(v).ok_or_else(|| {
                        Error::Msg(format!("manifest row {line}: `labels` entries must be names or integers"))
                    })
                })
                .collect::<Result<_>>()?,
            Some(Value::String(s)) => s.split(';').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect(),
            Some(v) => vec![as_text(v).ok_or_else(|| Error::Msg(format!("manifest row {line}: bad `labels`")))?],
        },
        Task::Regression => vec![],
    })
}

/// The class list (given, or inferred from the rows' names) and how a name becomes an index.
struct Classes {
    names: Vec<String>,
    /// The list was given (`--classes` or a sidecar): integer labels are then indices into it.
    given: bool,
}

impl Classes {
    fn new(opts: &ManifestOptions, task: Task, raw_names: &[Vec<String>]) -> Result<Self> {
        let names: Vec<String> = match (&opts.classes, task) {
            (_, Task::Regression) => vec![],
            (Some(c), _) => c.clone(),
            (None, _) => infer_classes(&raw_names.iter().flatten().cloned().collect()),
        };
        if task != Task::Regression && names.len() < 2 {
            return Err(Error::Msg(format!("manifest needs at least 2 classes, found {}", names.len())));
        }
        Ok(Self { names, given: opts.classes.is_some() })
    }

    fn index_of(&self, name: &str, line: usize) -> Result<usize> {
        if let Some(i) = self.names.iter().position(|c| c == name) {
            return Ok(i);
        }
        if self.given {
            if let Ok(i) = name.parse::<i64>() {
                if i >= 0 && (i as usize) < self.names.len() {
                    return Ok(i as usize);
                }
                return Err(Error::Msg(format!(
                    "manifest row {line}: label {i} is out of range for {} classes",
                    self.names.len()
                )));
            }
        }
        Err(Error::Msg(format!("manifest row {line}: unknown class {name:?} (classes: {})", self.names.join(", "))))
    }
}

/// The regression targets of a row, each a finite number.
fn target_values(r: &BTreeMap<String, Value>, line: usize, targets: &[String]) -> Result<Vec<f64>> {
    let mut vals = Vec::with_capacity(targets.len());
    for t in targets {
        let v = match r.get(t) {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match v {
            Some(x) if x.is_finite() => vals.push(x),
            _ => {
                return Err(Error::NonFinite(format!(
                    "manifest row {line}: target `{t}` is {} (a finite number is needed)",
                    r.get(t).map_or("missing".to_string(), |v| v.to_string())
                )))
            }
        }
    }
    Ok(vals)
}

/// The `boxes` of a row: a box file (relative to `base`) or inline `[[x1,y1,x2,y2,conf],...]`.
fn row_boxes(r: &BTreeMap<String, Value>, line: usize, base: &Path) -> Result<Option<BoxesSpec>> {
    Ok(match r.get("boxes") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(BoxesSpec::File(base.join(s.trim()))),
        Some(Value::Array(a)) => {
            let mut v = Vec::with_capacity(a.len());
            for b in a {
                let nums: Option<Vec<f32>> =
                    b.as_array().map(|x| x.iter().filter_map(|n| n.as_f64().map(|f| f as f32)).collect());
                match nums {
                    Some(n) if (n.len() == 4 || n.len() == 5) && b.as_array().is_some_and(|x| x.len() == n.len()) => {
                        v.push([n[0], n[1], n[2], n[3], n.get(4).copied().unwrap_or(1.0)])
                    }
                    _ => {
                        return Err(Error::Msg(format!(
                            "manifest row {line}: inline `boxes` must be [[x1,y1,x2,y2,conf],...]"
                        )))
                    }
                }
            }
            Some(BoxesSpec::Inline(v))
        }
        Some(_) => return Err(Error::Msg(format!("manifest row {line}: `boxes` must be a path or a list of boxes"))),
    })
}

/// Why a row is skipped: its media file or its box file does not exist.
fn missing_file(line: usize, path: &Path, boxes: &Option<BoxesSpec>) -> Option<Skipped> {
    if !path.is_file() {
        return Some(Skipped { row: line, path: path.to_path_buf(), reason: "media file not found".into() });
    }
    match boxes {
        Some(BoxesSpec::File(b)) if !b.is_file() => {
            Some(Skipped { row: line, path: b.clone(), reason: "box file not found".into() })
        }
        _ => None,
    }
}

impl Manifest {
    /// Reads and validates a manifest file (missing media are skipped and listed in [`Manifest::skipped`]).
    pub fn load(path: &Path, opts: &ManifestOptions) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut o = opts.clone();
        o.check_files = true;
        if o.classes.is_none() {
            o.classes = sidecar_classes(path)?;
        }
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, path, &base, &o)
    }

    /// Parses manifest text; `source` picks CSV vs JSONL (by extension, else by content) and names the file in
    /// messages; relative media / box paths are resolved against `base`.
    pub fn parse(text: &str, source: &Path, base: &Path, opts: &ManifestOptions) -> Result<Self> {
        let ctx = |e: Error| match e {
            Error::Msg(m) => Error::Msg(format!("{}: {m}", source.display())),
            Error::NonFinite(m) => Error::NonFinite(format!("{}: {m}", source.display())),
            e => e,
        };
        let rows = if is_jsonl(source, text) { parse_jsonl(text) } else { parse_csv(text) }.map_err(ctx)?;
        Self::from_rows(rows, source, base, opts).map_err(ctx)
    }

    fn from_rows(rows: Vec<Row>, source: &Path, base: &Path, opts: &ManifestOptions) -> Result<Self> {
        if rows.is_empty() {
            return Err(Error::Msg("manifest has no rows".into()));
        }
        let has = |k: &str| rows.iter().any(|(_, r)| r.contains_key(k));
        for k in ["path", "split"] {
            if !has(k) {
                return Err(Error::Msg(format!("manifest has no `{k}` column")));
            }
        }
        let targets: Vec<String> = if opts.targets.is_empty() { vec!["target".into()] } else { opts.targets.clone() };
        let task = infer_task(&rows, opts)?;
        // Raw label names per row (classification), to build the class list before indexing.
        let raw_names = rows.iter().map(|(line, r)| label_names(r, *line, task)).collect::<Result<Vec<_>>>()?;
        let classes = Classes::new(opts, task, &raw_names)?;
        let mut items = Vec::new();
        let mut skipped = Vec::new();
        for ((line, r), names) in rows.iter().zip(raw_names) {
            let line = *line;
            let path_s = r
                .get("path")
                .and_then(as_text)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| Error::Msg(format!("manifest row {line}: missing `path`")))?;
            let split_s = r.get("split").and_then(as_text).unwrap_or_default();
            let split = Split::parse(&split_s).ok_or_else(|| {
                Error::Msg(format!("manifest row {line}: split {split_s:?} is not train, val or test"))
            })?;
            let label = match task {
                Task::Single => Label::Class(classes.index_of(&names[0], line)?),
                Task::Multi => {
                    let mut v = names.iter().map(|n| classes.index_of(n, line)).collect::<Result<Vec<_>>>()?;
                    v.sort_unstable();
                    v.dedup();
                    Label::Classes(v)
                }
                Task::Regression => Label::Targets(target_values(r, line, &targets)?),
            };
            let boxes = row_boxes(r, line, base)?;
            let path = base.join(&path_s);
            if opts.check_files {
                if let Some(why) = missing_file(line, &path, &boxes) {
                    skipped.push(why);
                    continue;
                }
            }
            items.push(Item { row: line, path, split, boxes, label, media: MediaOptions::default() });
        }
        let m = Manifest {
            source: source.to_path_buf(),
            task,
            classes: classes.names,
            targets: if task == Task::Regression { targets } else { vec![] },
            items,
            skipped,
        };
        m.check_splits()?;
        Ok(m)
    }

    /// Number of usable items per split.
    pub fn count(&self, s: Split) -> usize {
        self.items.iter().filter(|i| i.split == s).count()
    }

    /// Errors when the train split is empty, or both val and test are.
    pub fn check_splits(&self) -> Result<()> {
        let counts = format!(
            "train {}, val {}, test {} usable item(s); {} row(s) skipped",
            self.count(Split::Train),
            self.count(Split::Val),
            self.count(Split::Test),
            self.skipped.len()
        );
        if self.count(Split::Train) == 0 {
            return Err(Error::Msg(format!("the train split is empty ({counts})")));
        }
        if self.count(Split::Val) == 0 && self.count(Split::Test) == 0 {
            return Err(Error::Msg(format!(
                "the val and test splits are both empty: nothing to evaluate on ({counts})"
            )));
        }
        Ok(())
    }

    /// Keeps the items for which `keep(index)` is true (e.g. after failed embeddings), re-checking the splits.
    pub fn retain_items(&mut self, keep: &[bool]) -> Result<()> {
        if keep.len() != self.items.len() {
            return Err(Error::Shape(format!("retain_items: {} flags for {} items", keep.len(), self.items.len())));
        }
        let mut it = keep.iter();
        self.items.retain(|_| *it.next().unwrap_or(&false));
        self.check_splits()
    }
}

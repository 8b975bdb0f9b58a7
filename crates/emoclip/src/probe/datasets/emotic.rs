//! Emotic adapter: the preprocessed-CSV layout of the Tandon-A/emotic repository (`mat2py.py`) as read by EmotionCLIP src/datasets/emotic.py and `linear_eval.py --dataset emotic`.
//!
//! # Layout (under `root`)
//!
//! ```text
//! emotic/<Folder>/<Filename>                    the images (mscoco/, framesdb/, emodb_small/, ade20k/ ...)
//! annotations_pre/{train,val,test}.csv          one row per annotated person, with a header
//! annotations_pre/{train,val,test}_cat_arr.npy  [rows, 26] one-hot categories, row i ↔ CSV row i
//! ```
//!
//! CSV columns (`mat2py.py`): `Index, Folder, Filename, Image Size, BBox, Categorical_Labels,
//! Continuous_Labels, Gender, Age` (later versions add `Crop_Name`; extra columns are ignored). `Image Size` is
//! `[width, height]` of the original image and `BBox` the annotated body box `[x1, y1, x2, y2]` in its pixels,
//! both Python list literals. Labels come from `{split}_cat_arr.npy` as in the official loader (columns in
//! the order of [`CLASSES`], `mat2py.py`'s `cat`), read with candle's `.npy` parser; every value must be 0 or 1.
//!
//! # Items and task
//!
//! Each row is one image encoded with `encode_image` (T = 1), preprocessed as the official Emotic loader:
//! short side resized to the crop size (`Resize(224)`, not 256: [`MediaOptions::resize_to_crop`]), centre crop,
//! and the subject mask from the body box scaled by `1 / min(W/w', H/h')` with `W×H` the CSV `Image Size`
//! ([`MaskMode::Scaled`]); an image whose real size differs from `Image Size` is refused when it is embedded.
//! One task, `emotic/categories`: 26 categories, one-vs-rest logistic regression with the official `C = 2.5`,
//! fitted on train, macro mAP and ROC-AUC on val and test. With [`AdapterOptions::official_c`] false, C is
//! chosen by random search on val.
//!
//! Rows whose image is missing are listed in [`Manifest::skipped`]. A missing CSV or label array, a label array
//! whose shape does not match the CSV, a label other than 0/1, or a malformed `Image Size` / `BBox` is an
//! error naming the file (and line).
use std::path::Path;

use super::{AdapterOptions, DatasetTask};
use crate::media::{BoxFile, MaskMode, MediaOptions, PersonBox};
use crate::probe::manifest::{BoxesSpec, Item, Label, Manifest, Skipped, Split, Task};
use crate::{Error, Result};

/// The 26 Emotic categories in `cat_arr` column order (Tandon-A/emotic `mat2py.py`).
pub const CLASSES: [&str; 26] = crate::labels::EMOTIC_CATEGORIES;
/// Official one-vs-rest C (`linear_eval.py`).
pub const OFFICIAL_C: f64 = 2.5;

/// One parsed CSV row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 1-based line in the CSV (the header is line 1).
    pub line: usize,
    pub folder: String,
    pub filename: String,
    /// `Image Size`: original `[width, height]`.
    pub size: (u32, u32),
    /// `BBox`: `[x1, y1, x2, y2]` in original pixels.
    pub bbox: [f32; 4],
}

/// Numbers of a Python list literal such as `[640, 480]` or `[86.0, 58.0, 564.0, 628.0]`.
fn parse_list(s: &str) -> Option<Vec<f64>> {
    let inner = s.trim().strip_prefix('[')?.strip_suffix(']')?;
    inner.split(',').map(|v| v.trim().parse::<f64>().ok().filter(|v| v.is_finite())).collect()
}

/// Parses `annotations_pre/{split}.csv`.
pub fn read_annotations(path: &Path) -> Result<Vec<Row>> {
    let data = |msg: String| Error::Data { path: path.to_path_buf(), msg };
    if !path.is_file() {
        return Err(data(
            "annotation file not found; pass the Emotic root holding annotations_pre/{train,val,test}.csv (Tandon-A/emotic mat2py.py output) and emotic/<Folder>/<Filename>".into(),
        ));
    }
    let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut rdr = csv::ReaderBuilder::new().from_reader(text.as_slice());
    let headers = rdr.headers().map_err(|e| data(format!("malformed CSV header ({e})")))?.clone();
    let col = |name: &str| -> Result<usize> {
        headers.iter().position(|h| h.trim() == name).ok_or_else(|| {
            data(format!(
                "no `{name}` column (header: {}); expected the Tandon-A/emotic columns Index, Folder, Filename, Image Size, BBox, Categorical_Labels, ...",
                headers.iter().collect::<Vec<_>>().join(", ")
            ))
        })
    };
    let (cf, cn, cs, cb) = (col("Folder")?, col("Filename")?, col("Image Size")?, col("BBox")?);
    let mut rows = Vec::new();
    let mut lines = super::LineCounter::new(&text);
    for rec in rdr.records() {
        let rec = rec.map_err(|e| data(format!("malformed CSV ({e})")))?;
        let line = rec.position().map_or(0, |p| lines.line_at(p.byte()));
        let bad = |msg: String| data(format!("line {line}: {msg}"));
        let get = |j: usize| rec.get(j).unwrap_or("").trim();
        let size = match parse_list(get(cs)).as_deref() {
            Some(&[w, h]) if w >= 1.0 && h >= 1.0 && w.fract() == 0.0 && h.fract() == 0.0 => (w as u32, h as u32),
            _ => return Err(bad(format!("`Image Size` is `{}`, expected [width, height] in pixels", get(cs)))),
        };
        let bbox = match parse_list(get(cb)).as_deref() {
            Some(&[x1, y1, x2, y2]) if x2 >= x1 && y2 >= y1 => [x1 as f32, y1 as f32, x2 as f32, y2 as f32],
            _ => {
                return Err(bad(format!("`BBox` is `{}`, expected [x1, y1, x2, y2] with x2 >= x1, y2 >= y1", get(cb))))
            }
        };
        let (folder, filename) = (get(cf).to_string(), get(cn).to_string());
        if filename.is_empty() {
            return Err(bad("empty `Filename`".into()));
        }
        rows.push(Row { line, folder, filename, size, bbox });
    }
    Ok(rows)
}

/// Reads `annotations_pre/{split}_cat_arr.npy`: `rows × 26`, entries 0 or 1 → class indices per row.
pub fn read_categories(path: &Path, rows: usize) -> Result<Vec<Vec<usize>>> {
    let data = |msg: String| Error::Data { path: path.to_path_buf(), msg };
    if !path.is_file() {
        return Err(data(
            "category array not found; it is written by Tandon-A/emotic `mat2py.py --generate_npy`".into(),
        ));
    }
    let t = candle_core::Tensor::read_npy(path).map_err(|e| data(format!("not a readable .npy array ({e})")))?;
    let dims = t.dims().to_vec();
    if dims != [rows, CLASSES.len()] {
        return Err(data(format!(
            "category array has shape {dims:?} but the CSV has {rows} row(s): expected [{rows}, {}]; the CSV and the .npy must come from the same mat2py.py run",
            CLASSES.len()
        )));
    }
    let v: Vec<Vec<f64>> = t
        .to_dtype(candle_core::DType::F64)
        .and_then(|t| t.to_vec2())
        .map_err(|e| data(format!("cannot convert the labels to numbers ({e})")))?;
    v.iter()
        .enumerate()
        .map(|(i, r)| {
            if let Some(k) = r.iter().position(|&x| x != 0.0 && x != 1.0) {
                return Err(data(format!(
                    "row {i}, category `{}` = {} is out of range: the category array must be one-hot (0 or 1)",
                    CLASSES[k], r[k]
                )));
            }
            Ok((0..r.len()).filter(|&k| r[k] == 1.0).collect())
        })
        .collect()
}

/// Reads Emotic laid out as the Tandon-A preprocessing under `root` (see the module documentation).
pub fn load(root: &Path, opts: &AdapterOptions) -> Result<Vec<DatasetTask>> {
    let media = MediaOptions { mask: MaskMode::Scaled, resize_to_crop: true, ..MediaOptions::default() };
    let ann = root.join("annotations_pre");
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    for (split, name) in [(Split::Train, "train"), (Split::Val, "val"), (Split::Test, "test")] {
        let csv = ann.join(format!("{name}.csv"));
        let rows = read_annotations(&csv)?;
        let labels = read_categories(&ann.join(format!("{name}_cat_arr.npy")), rows.len())?;
        for (r, classes) in rows.into_iter().zip(labels) {
            let path = root.join("emotic").join(&r.folder).join(&r.filename);
            if !path.is_file() {
                skipped.push(Skipped { row: r.line, path, reason: format!("{}: image not found", csv.display()) });
                continue;
            }
            let [x1, y1, x2, y2] = r.bbox;
            let boxes = BoxFile::clip(vec![PersonBox::new(x1, y1, x2, y2, None)])
                .with_size(r.size.0, r.size.1)
                .with_origin(&csv);
            items.push(Item {
                row: r.line,
                path,
                split,
                boxes: Some(BoxesSpec::Built(boxes)),
                label: Label::Classes(classes),
                media: media.clone(),
            });
        }
    }
    let manifest = Manifest {
        source: ann,
        task: Task::Multi,
        classes: CLASSES.iter().map(|s| s.to_string()).collect(),
        targets: vec![],
        items,
        skipped,
    };
    manifest.check_splits().map_err(|e| Error::Data { path: root.to_path_buf(), msg: format!("Emotic: {e}") })?;
    Ok(vec![DatasetTask { name: "emotic/categories".into(), manifest, options: opts.eval_with_c(OFFICIAL_C) }])
}

//! BoLD and Emotic probe adapters (probe/datasets/{bold,emotic}.rs) on tiny fixtures in the official layouts: mask parity with the official code paths (torch bilinear resize + threshold; Emotic get_correct_bbox), adapter → features (random micro model) → evaluate end to end, and bad input.
use crate::common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use emoclip::emotionclip::SubjectMode;
use emoclip::encoder::{load_encoder, preprocessor_for, Embedder, MediaInput, ModelKind};
use emoclip::media::joints::{joints_box, ClipJoints};
use emoclip::media::mask_bilinear::resize_bilinear;
use emoclip::media::{self, MaskMode, PersonBox, Preprocessor};
use emoclip::probe::datasets::{bold, emotic, AdapterOptions, DatasetTask};
use emoclip::probe::eval::evaluate;
use emoclip::probe::manifest::{BoxesSpec, Label, Split};
use emoclip::probe::Mat;
use serde_json::Value;

fn root(name: &str) -> PathBuf {
    common::fixture(&format!("probe_datasets/{name}"))
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Run-length decoding (row-major runs, first run of zeros).
fn unrle(runs: &Value) -> Vec<f32> {
    let mut out = Vec::new();
    for (i, r) in runs.as_array().unwrap().iter().enumerate() {
        out.extend(std::iter::repeat_n((i % 2) as f32, r.as_u64().unwrap() as usize));
    }
    out
}

fn u(v: &Value) -> u32 {
    v.as_u64().unwrap() as u32
}

fn pre(resize: u32, crop: u32) -> Preprocessor {
    Preprocessor { resize_short: resize, crop, norm: media::IMAGENET }
}

#[test]
fn bold_mask_matches_official_bilinear_threshold() {
    let fx = json(&root("bold").join("mask_parity.json"));
    let cases = fx["cases"].as_array().unwrap();
    let (mut wrong, mut total, mut ones) = (0usize, 0usize, 0usize);
    for (i, c) in cases.iter().enumerate() {
        let b: Vec<f32> = c["box_yxyx"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let pbox = PersonBox::new(b[1], b[0], b[3], b[2], None);
        if let Some(j) = c["joints"].as_array() {
            let j: Vec<f64> = j.iter().map(|v| v.as_f64().unwrap()).collect();
            assert_eq!(joints_box(&j), Some(pbox), "case {i}: box from joints");
        }
        let got =
            pre(u(&c["resize"]), u(&c["crop"])).mask_with(MaskMode::Bilinear, u(&c["width"]), u(&c["height"]), &[pbox]);
        let want = unrle(&c["rle"]);
        assert_eq!(got.len(), want.len(), "case {i}");
        let diff = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        wrong += diff;
        total += want.len();
        ones += want.iter().filter(|v| **v == 1.0).count();
        assert_eq!(diff, 0, "case {i} ({}x{}): {diff} pixel(s) differ from the official mask", c["width"], c["height"]);
    }
    assert!(cases.len() >= 50 && ones > 10_000, "{} cases, {ones} mask pixels", cases.len());
    eprintln!("BoLD masks: {} cases, {total} pixels ({ones} inside), {wrong} differ", cases.len());

    // the resize itself against torch F.interpolate(bilinear, align_corners=False), f32
    let mut worst = 0f32;
    for p in fx["planes"].as_array().unwrap() {
        let f = |v: &Value| -> Vec<f32> { v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect() };
        let got =
            resize_bilinear(&f(&p["input"]), u(&p["width"]), u(&p["height"]), u(&p["out_width"]), u(&p["out_height"]));
        let want = f(&p["output"]);
        assert_eq!(got.len(), want.len());
        worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(worst, f32::max);
    }
    eprintln!("bilinear resize vs torch: max abs diff {worst:e}");
    assert!(worst <= 1e-6, "max abs diff {worst}");
}

#[test]
fn emotic_mask_matches_official_get_correct_bbox() {
    let fx = json(&root("emotic").join("mask_parity.json"));
    let cases = fx["cases"].as_array().unwrap();
    for (i, c) in cases.iter().enumerate() {
        let b: Vec<f32> = c["bbox"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let got = pre(u(&c["resize"]), u(&c["crop"])).mask_with(
            MaskMode::Scaled,
            u(&c["width"]),
            u(&c["height"]),
            &[PersonBox::new(b[0], b[1], b[2], b[3], None)],
        );
        let want = unrle(&c["rle"]);
        let diff = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert!(got.len() == want.len() && diff == 0, "case {i}: {diff} pixel(s) differ");
    }
    assert!(cases.len() >= 40);
}

fn embedder() -> Embedder {
    let cfg = common::micro_config(SubjectMode::Sap);
    let enc = load_encoder("random", Some(&cfg), ModelKind::EmotionClip, DType::F32, &Device::Cpu).unwrap();
    let pre = preprocessor_for(enc.image_size(), media::IMAGENET);
    Embedder::new(enc, pre, Device::Cpu, DType::F32, 8).unwrap()
}

/// Features of every item of the task, as the CLI computes them (prepare → encode).
fn features(emb: &Embedder, task: &DatasetTask) -> Mat {
    let prepared: Vec<_> = task
        .manifest
        .items
        .iter()
        .map(|it| {
            let boxes = it.boxes.as_ref().map(BoxesSpec::load).transpose().unwrap();
            emb.prepare(&MediaInput::new(it.path.clone(), boxes).with_options(it.media.clone()))
                .unwrap_or_else(|e| panic!("row {}: {e}", it.row))
        })
        .collect();
    let rows: Vec<Vec<f64>> =
        emb.encode(&prepared).unwrap().into_iter().map(|r| r.into_iter().map(f64::from).collect()).collect();
    Mat::from_rows(&rows).unwrap()
}

fn finite_metric(r: &emoclip::probe::eval::ProbeResult, metric: &str, split: &str) -> f64 {
    let v = r.get(metric, split).unwrap_or_else(|| panic!("no {metric} on {split}: {:?}", r.metrics));
    assert!(v.is_finite(), "{metric} on {split} = {v}");
    v
}

#[test]
fn bold_end_to_end() {
    let tasks = bold::load(&root("bold"), &AdapterOptions::default()).unwrap();
    let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["bold/categories", "bold/vad"]);
    let (cat, vad) = (&tasks[0], &tasks[1]);
    assert_eq!(cat.options.c, Some(bold::OFFICIAL_C));
    assert_eq!(cat.manifest.classes.len(), 26);
    assert_eq!(vad.manifest.targets, ["valence", "arousal", "dominance"]);
    for t in &tasks {
        assert_eq!(
            (t.manifest.count(Split::Train), t.manifest.count(Split::Val), t.manifest.count(Split::Test)),
            (7, 4, 0)
        );
        assert_eq!(t.manifest.skipped.len(), 1);
        let s = &t.manifest.skipped[0];
        assert!(
            s.path.ends_with("mmextract/009/missing.mp4/0001.mp4") && s.reason.contains("frame directory not found"),
            "{s:?}"
        );
        assert!(t.manifest.items.iter().all(|it| it.media.mask == MaskMode::Bilinear && it.path.is_dir()));
    }
    // labels: categories binarised at >= 0.5 (first val row of the fixture CSV), VAD copied
    let line = std::fs::read_to_string(root("bold").join("annotations/val.csv")).unwrap();
    let first: Vec<f64> =
        line.lines().next().unwrap().split(',').skip(4).take(29).map(|v| v.parse().unwrap()).collect();
    let v0 = cat.manifest.items.iter().position(|it| it.split == Split::Val).unwrap();
    let want: Vec<usize> = (0..26).filter(|&k| first[k] >= 0.5).collect();
    assert_eq!(cat.manifest.items[v0].label, Label::Classes(want));
    assert_eq!(vad.manifest.items[v0].label, Label::Targets(first[26..29].to_vec()));
    // boxes from joints, frames renumbered from 1; frame 5 of person 0 has no detection (no box, no carry-over)
    let b = cat.manifest.items[0].boxes.as_ref().unwrap().load().unwrap();
    assert_eq!(b.boxes_for_frame(1).len(), 1);
    assert!(b.boxes_for_frame(5).is_empty());
    assert_eq!(b.boxes_for_frame(6).len(), 1);
    let j = ClipJoints::load(&bold::joints_path(&root("bold"), "001/clip0.mp4/0001.mp4")).unwrap();
    assert_eq!(j.rows.iter().map(|r| r[0] as usize).min(), Some(1));

    let emb = embedder();
    let t0 = std::time::Instant::now();
    let x = features(&emb, cat);
    let embed_s = t0.elapsed().as_secs_f64();
    let rc = evaluate(&cat.manifest, &x, &cat.options).unwrap();
    assert_eq!(rc.c, Some(3.16));
    let map = finite_metric(&rc, "mAP (macro)", "val");
    let auc = finite_metric(&rc, "ROC-AUC (defined classes)", "val");
    assert!((0.0..=100.0).contains(&map) && (0.0..=100.0).contains(&auc));
    let rv = evaluate(&vad.manifest, &x, &vad.options).unwrap();
    let r2 = rv.metrics.iter().find(|(m, _)| m.starts_with("R")).unwrap_or_else(|| panic!("{:?}", rv.metrics));
    assert!(r2.1.iter().all(|v| v.is_finite()), "{r2:?}");
    eprintln!("BoLD fixture: embed {embed_s:.2}s, val mAP {map:.1}, AUC {auc:.1}, {} {:?}", r2.0, r2.1);

    // random search instead of the official C
    let opts = AdapterOptions { official_c: false, ..AdapterOptions::default() };
    let t = bold::load(&root("bold"), &opts).unwrap();
    assert_eq!(t[0].options.c, None);
}

#[test]
fn emotic_end_to_end() {
    let tasks = emotic::load(&root("emotic"), &AdapterOptions::default()).unwrap();
    assert_eq!(tasks.len(), 1);
    let t = &tasks[0];
    assert_eq!(t.name, "emotic/categories");
    assert_eq!(t.options.c, Some(emotic::OFFICIAL_C));
    let m = &t.manifest;
    assert_eq!((m.count(Split::Train), m.count(Split::Val), m.count(Split::Test)), (8, 4, 4));
    assert_eq!(m.skipped.len(), 1);
    assert!(m.skipped[0].path.ends_with("missing.jpg") && m.skipped[0].reason.contains("image not found"));
    assert!(m.items.iter().all(|it| it.media.mask == MaskMode::Scaled && it.media.resize_to_crop));
    // labels from the one-hot array agree with the CSV's Categorical_Labels text
    let csv = std::fs::read_to_string(root("emotic").join("annotations_pre/train.csv")).unwrap();
    let line2 = csv.lines().nth(1).unwrap();
    if let Label::Classes(c) = &m.items[0].label {
        assert!(!c.is_empty());
        for &k in c {
            assert!(line2.contains(&format!("'{}'", emotic::CLASSES[k])), "{} not in {line2}", emotic::CLASSES[k]);
        }
    } else {
        panic!("not multi-label");
    }

    let emb = embedder();
    // the subject mask of an item is the box scaled onto the Resize(crop) image
    let it = &m.items[0];
    let p = emb
        .prepare(
            &MediaInput::new(it.path.clone(), it.boxes.as_ref().map(|b| b.load().unwrap()))
                .with_options(it.media.clone()),
        )
        .unwrap();
    assert_eq!(p.kind, media::MediaKind::Image);
    assert!(p.has_subject);
    let x = features(&emb, t);
    let r = evaluate(m, &x, &t.options).unwrap();
    for split in ["val", "test"] {
        let map = finite_metric(&r, "mAP (macro)", split);
        let auc = finite_metric(&r, "ROC-AUC (defined classes)", split);
        eprintln!("Emotic fixture {split}: mAP {map:.1}, AUC {auc:.1}");
    }
}

// ------------------------------------------------------------------------------------------------ bad input

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

fn err<T>(r: emoclip::Result<T>) -> String {
    match r {
        Ok(_) => panic!("should fail"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bold_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path().join("bold");
    copy_dir(&root("bold"), &r);
    let opts = AdapterOptions::default();
    let jp = bold::joints_path(&r, "001/clip0.mp4/0001.mp4");

    // missing joints: reported skip (clip0 has two annotated persons, both in train)
    std::fs::rename(&jp, tmp.path().join("j.npy")).unwrap();
    let t = bold::load(&r, &opts).unwrap();
    let s: Vec<_> = t[0].manifest.skipped.iter().filter(|s| s.path == jp).collect();
    assert!(
        s.len() == 2 && s.iter().all(|s| s.reason.contains("joints file not found")),
        "{:?}",
        t[0].manifest.skipped
    );
    assert_eq!((t[0].manifest.skipped.len(), t[0].manifest.count(Split::Train)), (3, 5));

    // joints of the wrong shape: error naming the file
    std::fs::write(&jp, emoclip::output::npy_bytes(&[vec![1.0; 10], vec![2.0; 10]], 10)).unwrap();
    let e = err(bold::load(&r, &opts));
    assert!(e.contains("0001.npy") && e.contains("[2, 10]") && e.contains("56"), "{e}");
    std::fs::rename(tmp.path().join("j.npy"), &jp).unwrap();
    bold::load(&r, &opts).unwrap();

    // a category score out of range / not a number / too few columns: error with file and line
    let train = r.join("annotations/train.csv");
    let orig = std::fs::read_to_string(&train).unwrap();
    let mut lines: Vec<String> = orig.lines().map(String::from).collect();
    let mut cols: Vec<String> = lines[2].split(',').map(String::from).collect();
    cols[10] = "1.5".into();
    lines[2] = cols.join(",");
    std::fs::write(&train, lines.join("\n")).unwrap();
    let e = err(bold::load(&r, &opts));
    assert!(
        e.contains("train.csv") && e.contains("line 3") && e.contains("out of range") && e.contains(bold::CLASSES[6]),
        "{e}"
    );
    cols[10] = "abc".into();
    lines[2] = cols.join(",");
    std::fs::write(&train, lines.join("\n")).unwrap();
    let e = err(bold::load(&r, &opts));
    assert!(e.contains("line 3") && e.contains("`abc`"), "{e}");
    lines[2] = cols[..20].join(",");
    std::fs::write(&train, lines.join("\n")).unwrap();
    let e = err(bold::load(&r, &opts));
    assert!(e.contains("line 3") && e.contains("20 column(s)"), "{e}");
    std::fs::write(&train, &orig).unwrap();

    // an empty val split: error, not a silent metric
    std::fs::write(r.join("annotations/val.csv"), "").unwrap();
    let e = err(bold::load(&r, &opts));
    assert!(e.contains("BoLD") && e.contains("val and test splits are both empty"), "{e}");

    // the wrong root
    let e = err(bold::load(tmp.path(), &opts));
    assert!(e.contains("train.csv") && e.contains("annotation file not found"), "{e}");
}

#[test]
fn emotic_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path().join("emotic");
    copy_dir(&root("emotic"), &r);
    let opts = AdapterOptions::default();
    let ann = r.join("annotations_pre");
    let arr = ann.join("val_cat_arr.npy");
    let orig_arr = std::fs::read(&arr).unwrap();

    // a label that is not 0/1
    let mut rows: Vec<Vec<f32>> = (0..4).map(|i| (0..26).map(|k| ((i + k) % 2) as f32).collect()).collect();
    rows[2][5] = 2.0;
    std::fs::write(&arr, emoclip::output::npy_bytes(&rows, 26)).unwrap();
    let e = err(emotic::load(&r, &opts));
    assert!(
        e.contains("val_cat_arr.npy") && e.contains("row 2") && e.contains("Confidence") && e.contains("out of range"),
        "{e}"
    );
    // rows do not match the CSV
    std::fs::write(&arr, emoclip::output::npy_bytes(&rows[..3], 26)).unwrap();
    let e = err(emotic::load(&r, &opts));
    assert!(e.contains("[3, 26]") && e.contains("4 row(s)"), "{e}");
    std::fs::write(&arr, &orig_arr).unwrap();

    // malformed BBox
    let val = ann.join("val.csv");
    let orig = std::fs::read_to_string(&val).unwrap();
    let first_box = orig.lines().nth(1).unwrap().split('"').nth(3).unwrap().to_string();
    std::fs::write(&val, orig.replacen(&first_box, "[5, 6, 1]", 1)).unwrap();
    let e = err(emotic::load(&r, &opts));
    assert!(e.contains("val.csv") && e.contains("line 2") && e.contains("BBox"), "{e}");
    std::fs::write(&val, &orig).unwrap();

    // Image Size that does not match the image: refused when embedded
    let first_size = orig.lines().nth(1).unwrap().split('"').nth(1).unwrap().to_string();
    std::fs::write(&val, orig.replacen(&first_size, "[400, 300]", 1)).unwrap();
    let t = emotic::load(&r, &opts).unwrap();
    let it = t[0].manifest.items.iter().find(|it| it.split == Split::Val).unwrap();
    let emb = embedder();
    let e = err(emb.prepare(
        &MediaInput::new(it.path.clone(), Some(it.boxes.as_ref().unwrap().load().unwrap()))
            .with_options(it.media.clone()),
    ));
    assert!(e.contains("val.csv") && e.contains("400x300"), "{e}");
    std::fs::write(&val, &orig).unwrap();

    // every train image missing → empty train split
    std::fs::remove_dir_all(r.join("emotic")).unwrap();
    let e = err(emotic::load(&r, &opts));
    assert!(e.contains("Emotic") && e.contains("train split is empty"), "{e}");
    // missing label array
    std::fs::remove_file(ann.join("test_cat_arr.npy")).unwrap();
    let e = err(emotic::load(&r, &opts));
    assert!(e.contains("test_cat_arr.npy") && e.contains("not found"), "{e}");
}

//! MELD, LIRIS-ACCEDE and MovieGraphs adapters (official layouts, EmotionCLIP src/datasets/{meld,liris_accede,movie_graphs}.py) on the tiny fixtures of `scripts/fixtures/gen_probe_datasets_p2.py`: parsing, skips, media options, bad input, and the official `linear_eval.py` metrics on fixed features against scikit-learn.
use emoclip::media::{FrameSelection, MaskMode};
use emoclip::probe::datasets::{load, AdapterOptions, DatasetKind, DatasetTask};
use emoclip::probe::eval::evaluate;
use emoclip::probe::manifest::{BoxesSpec, Item, Label, Split};
use emoclip::probe::Mat;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/probe_datasets").join(name)
}

fn json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn one(kind: DatasetKind, root: &Path, opts: &AdapterOptions) -> DatasetTask {
    let mut t = load(kind, root, opts).unwrap();
    assert_eq!(t.len(), 1);
    t.remove(0)
}

fn count(t: &DatasetTask, s: Split) -> usize {
    t.manifest.count(s)
}

fn numbers(it: &Item) -> Vec<u64> {
    match &it.media.frames {
        FrameSelection::Numbers(n) => n.clone(),
        o => panic!("expected frame numbers, got {o:?}"),
    }
}

fn name_of(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().to_string()
}

/// Rows of `features.json` in item order, keyed by `key(item)`.
fn features(t: &DatasetTask, root: &Path, key: impl Fn(&Item) -> String) -> Mat {
    let f = json(&root.join("features.json"));
    let rows: Vec<Vec<f64>> = t
        .manifest
        .items
        .iter()
        .map(|it| {
            let k = key(it);
            f[&k]
                .as_array()
                .unwrap_or_else(|| panic!("no features for {k}"))
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        })
        .collect();
    Mat::from_rows(&rows).unwrap()
}

fn check_metrics(r: &emoclip::probe::eval::ProbeResult, expected: &Value, tol: f64) {
    let mut n = 0;
    for (split, ms) in expected["metrics"].as_object().unwrap() {
        for (m, v) in ms.as_object().unwrap() {
            let got = r.get(m, split).unwrap_or_else(|| panic!("metric {m} / {split} missing"));
            let want = v.as_f64().unwrap();
            assert!((got - want).abs() <= tol * (1.0 + want.abs()), "{m} {split}: {got} vs sklearn {want}");
            n += 1;
        }
    }
    assert!(n >= 2);
}

#[test]
fn meld_layout_media_boxes_and_skips() {
    let root = fixture("meld");
    let t = one(DatasetKind::Meld, &root, &AdapterOptions::default());
    assert_eq!(t.name, "meld/emotion");
    assert_eq!(t.manifest.classes, ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"]);
    assert_eq!((count(&t, Split::Train), count(&t, Split::Val), count(&t, Split::Test)), (16, 9, 8));
    assert_eq!(t.options.c, Some(8.0));
    // the official corrupted train sample has no media here: reported, not dropped silently
    assert_eq!(t.manifest.skipped.len(), 1);
    assert!(t.manifest.skipped[0].reason.contains("dia125_utt3") && t.manifest.skipped[0].reason.contains("not found"));
    // the quoted utterance with a comma and a newline did not shift rows: first train item is dia0_utt0 = joy
    let first = &t.manifest.items[0];
    assert_eq!(name_of(&first.path), "dia0_utt0");
    assert!(first.path.is_dir());
    assert_eq!(first.label, Label::Class(4));
    assert_eq!(t.manifest.items[1].label, Label::Class(3));
    // letterbox boxes -> original pixels (32x24 frames: r0 = 20)
    let Some(BoxesSpec::Built(b)) = &first.boxes else { panic!("dia0_utt0 should have boxes") };
    let b0 = b.boxes_for_frame(0)[0];
    assert_eq!((b0.x1, b0.y1, b0.x2, b0.y2, b0.conf), (0.0, 0.0, 16.0, 20.0, Some(0.9)));
    assert!(b.boxes_for_frame(1).is_empty());
    assert_eq!(b.boxes_for_frame(2)[0].x2, 25.0);
    // one test clip only exists as the release's mp4
    let mp4: Vec<&Item> =
        t.manifest.items.iter().filter(|it| it.path.extension().is_some_and(|e| e == "mp4")).collect();
    assert_eq!(mp4.len(), 1);
    assert!(mp4[0].path.to_string_lossy().contains("output_repeated_splits_test"));
    assert_eq!(mp4[0].split, Split::Test);
    // optional: drop the official corrupted samples unconditionally
    let opts = AdapterOptions {
        meld: emoclip::probe::datasets::MeldOptions { drop_official_corrupt: true },
        ..Default::default()
    };
    let t2 = one(DatasetKind::Meld, &root, &opts);
    assert_eq!(count(&t2, Split::Val), 8);
    assert!(t2.manifest.skipped.iter().any(|s| s.reason.contains("dia110_utt7") && s.reason.contains("official")));
    // random search instead of the official C
    let t3 = one(DatasetKind::Meld, &root, &AdapterOptions { official_c: false, ..Default::default() });
    assert_eq!(t3.options.c, None);
}

#[test]
fn meld_metrics_match_sklearn() {
    let root = fixture("meld");
    let t = one(DatasetKind::Meld, &root, &AdapterOptions::default());
    let x = features(&t, &root, |it| {
        let split = match it.split {
            Split::Train => "train",
            Split::Val => "dev",
            Split::Test => "test",
        };
        format!("{split}/{}", it.path.file_stem().unwrap().to_string_lossy())
    });
    let r = evaluate(&t.manifest, &x, &t.options).unwrap();
    assert_eq!(r.c, Some(8.0));
    check_metrics(&r, &json(&root.join("expected.json")), 1e-9);
}

#[test]
fn liris_layout_items_and_skips() {
    let root = fixture("liris");
    let t = one(DatasetKind::Liris, &root, &AdapterOptions::default());
    assert_eq!(t.name, "liris/valence-arousal");
    assert_eq!(t.manifest.targets, ["valence", "arousal"]);
    // train: 2 movies x 14 usable seconds minus the official edges (first 4, last 3); test: every second
    assert_eq!((count(&t, Split::Train), count(&t, Split::Test)), (14, 12));
    assert_eq!(t.options.savgol, Some((100, 3)));
    assert_eq!(t.options.c, None);
    // MEDIAEVAL18_01 has 15 annotated seconds but 14 frames: the last one is reported
    assert_eq!(t.manifest.skipped.len(), 1, "{:?}", t.manifest.skipped);
    assert!(t.manifest.skipped[0].reason.contains("MEDIAEVAL18_01 t=14"));
    // the label frame repeated 8 times (official), bilinear mask mode, 1 fps numbering from 1
    let it = &t.manifest.items[0];
    assert_eq!(name_of(&it.path), "MEDIAEVAL18_00.mp4");
    assert_eq!(numbers(it), vec![5; 8]);
    assert_eq!(it.media.mask, MaskMode::Bilinear);
    let Some(BoxesSpec::Built(b)) = &it.boxes else { panic!("MEDIAEVAL18_00 has boxes") };
    let b0 = b.boxes_for_frame(5)[0];
    assert_eq!((b0.x1, b0.y1, b0.x2, b0.y2), (2.0, 1.0, 20.0, 23.0));
    // test items in movie/time order (the smoothing runs over the concatenated vector)
    let test: Vec<u64> = t.manifest.items.iter().filter(|i| i.split == Split::Test).map(|i| numbers(i)[0]).collect();
    assert_eq!(test, (1..=12).collect::<Vec<u64>>());
    match &t.manifest.items.last().unwrap().label {
        Label::Targets(v) => assert_eq!(v.len(), 2),
        l => panic!("{l:?}"),
    }
    // the window alternative and no edge trimming
    let mut o = AdapterOptions::default();
    o.liris.repeat_label_frame = false;
    o.liris.trim_train_edges = false;
    let t2 = one(DatasetKind::Liris, &root, &o);
    assert_eq!(count(&t2, Split::Train), 28);
    assert_eq!(numbers(&t2.manifest.items[0]), (1..=8).collect::<Vec<u64>>());
    assert_eq!(numbers(&t2.manifest.items[6]), (3..=10).collect::<Vec<u64>>());
}

#[test]
fn liris_metrics_match_sklearn_scipy() {
    let root = fixture("liris");
    let mut o = AdapterOptions::default();
    o.liris.savgol = Some((7, 3)); // the fixture has 12 test seconds (official window: 100)
    let t = one(DatasetKind::Liris, &root, &o);
    let x = features(&t, &root, |it| format!("{}/{}", name_of(&it.path).trim_end_matches(".mp4"), numbers(it)[0]));
    let r = evaluate(&t.manifest, &x, &t.options).unwrap();
    check_metrics(&r, &json(&root.join("expected.json")), 1e-9);
    // with the official window the 12-second test vector is too short: a clear error, not a wrong metric
    let t100 = one(DatasetKind::Liris, &root, &AdapterOptions::default());
    let e = evaluate(&t100.manifest, &x, &t100.options).unwrap_err().to_string();
    assert!(e.contains("window_length (100)"), "{e}");
}

#[test]
fn moviegraphs_layout_keywords_and_scenes() {
    let root = fixture("moviegraphs");
    let t = one(DatasetKind::MovieGraphs, &root, &AdapterOptions::default());
    assert_eq!(t.name, "moviegraphs/emotion");
    assert_eq!(t.manifest.classes.len(), 26);
    assert_eq!(t.manifest.classes[9], "Doubt/Confusion");
    assert_eq!((count(&t, Split::Train), count(&t, Split::Val), count(&t, Split::Test)), (11, 4, 4));
    assert_eq!(t.options.c, Some(10.0));
    assert!(t.options.top1_in_labels);
    // a clip whose only word is outside the keyword dictionary is reported
    assert_eq!(t.manifest.skipped.len(), 1);
    assert!(t.manifest.skipped[0].reason.contains("tt0000001 clip 5"));
    // tt0000001 clip 0: "happy" -> Happiness; scene 0 = shot 1 = frames 0..9 -> linspace(0, 9, 8)
    let it = &t.manifest.items[0];
    assert_eq!(name_of(&it.path), "tt0000001");
    assert_eq!(it.label, Label::Classes(vec![16]));
    assert_eq!(numbers(it), vec![0, 1, 2, 3, 5, 6, 7, 9]);
    assert!(matches!(&it.boxes, Some(BoxesSpec::Built(b)) if b.boxes_for_frame(0)[0].x2 == 15.0));
    // clip 1: "cheerful", "excited" -> Happiness + Excitement
    assert_eq!(t.manifest.items[1].label, Label::Classes(vec![13, 16]));
    // the last scene's shot has no end: the official start + 8*24 frames
    let last = t.manifest.items.iter().rfind(|i| name_of(&i.path) == "tt0000004").unwrap();
    assert_eq!(numbers(last), vec![30, 57, 84, 112, 139, 167, 194, 222]);
}

#[test]
fn moviegraphs_top1_accuracy_matches_sklearn() {
    let root = fixture("moviegraphs");
    let t = one(DatasetKind::MovieGraphs, &root, &AdapterOptions::default());
    let x = features(&t, &root, |it| format!("{}/{}", name_of(&it.path), numbers(it)[0]));
    let r = evaluate(&t.manifest, &x, &t.options).unwrap();
    check_metrics(&r, &json(&root.join("expected.json")), 1e-9);
}

/// Copies a fixture tree into a temporary directory.
fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

fn err(kind: DatasetKind, root: &Path) -> String {
    load(kind, root, &AdapterOptions::default()).unwrap_err().to_string()
}

#[test]
fn bad_input_gives_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    // missing root
    let e = err(DatasetKind::Meld, &tmp.path().join("nope"));
    assert!(e.contains("dataset root not found"), "{e}");
    // MELD: no train CSV
    let e = err(DatasetKind::Meld, tmp.path());
    assert!(e.contains("train_sent_emo.csv"), "{e}");

    let meld = tmp.path().join("meld");
    copy_tree(&fixture("meld"), &meld);
    let csv = meld.join("MELD.Raw/train_sent_emo.csv");
    let good = std::fs::read_to_string(&csv).unwrap();
    // label not in the class list
    std::fs::write(&csv, good.replacen(",joy,", ",happiness,", 1)).unwrap();
    let e = err(DatasetKind::Meld, &meld);
    assert!(
        e.contains("train_sent_emo.csv") && e.contains("unknown emotion \"happiness\"") && e.contains("line 2"),
        "{e}"
    );
    // broken CSV: a record with a missing field
    std::fs::write(&csv, format!("{good}99,Hi,Joey,joy,neutral,7\n")).unwrap();
    let e = err(DatasetKind::Meld, &meld);
    assert!(e.contains("broken CSV"), "{e}");
    // missing column
    std::fs::write(&csv, good.replacen("Emotion", "Feeling", 1)).unwrap();
    let e = err(DatasetKind::Meld, &meld);
    assert!(e.contains("no `Emotion` column"), "{e}");
    // empty evaluation splits
    std::fs::write(&csv, &good).unwrap();
    std::fs::remove_file(meld.join("MELD.Raw/dev_sent_emo.csv")).unwrap();
    std::fs::remove_file(meld.join("MELD.Raw/test_sent_emo.csv")).unwrap();
    let e = err(DatasetKind::Meld, &meld);
    assert!(e.contains("val and test splits are both empty"), "{e}");
    // every media missing: empty train split, with the skips counted
    std::fs::remove_dir_all(meld.join("frames/train_splits")).unwrap();
    let e = err(DatasetKind::Meld, &meld);
    assert!(e.contains("train split is empty") && e.contains("skipped"), "{e}");

    // LIRIS: no annotations, and a non-numeric value
    let e = err(DatasetKind::Liris, tmp.path());
    assert!(e.contains("annotations") && e.contains("MediaEval 2018"), "{e}");
    let liris = tmp.path().join("liris");
    copy_tree(&fixture("liris"), &liris);
    let f = liris.join(
        "annotations/MEDIAEVAL18-DevSet-Valence_Arousal-annotations/annotations/MEDIAEVAL18_00_Valence-Arousal.txt",
    );
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(&f, text.replacen("\n3\t", "\n3\tx", 1)).unwrap();
    let e = err(DatasetKind::Liris, &liris);
    assert!(e.contains("MEDIAEVAL18_00_Valence-Arousal.txt") && e.contains("line 5"), "{e}");
    // a movie without frames: its seconds are reported as skipped
    std::fs::write(&f, &text).unwrap();
    std::fs::remove_dir_all(liris.join("frames/MEDIAEVAL18_01.mp4")).unwrap();
    let t = one(DatasetKind::Liris, &liris, &AdapterOptions::default());
    assert_eq!(t.manifest.skipped.len(), 15);
    assert_eq!(count(&t, Split::Train), 7);

    // MovieGraphs: no split.json; a missing frame is a reported skip
    let e = err(DatasetKind::MovieGraphs, tmp.path());
    assert!(e.contains("split.json"), "{e}");
    let mg = tmp.path().join("mg");
    copy_tree(&fixture("moviegraphs"), &mg);
    std::fs::remove_file(mg.join("frames/tt0000003/frame_12.jpg")).unwrap();
    let t = one(DatasetKind::MovieGraphs, &mg, &AdapterOptions::default());
    assert_eq!(count(&t, Split::Val), 3);
    assert!(t.manifest.skipped.iter().any(|s| s.reason.contains("tt0000003 clip 1: frame 12 not found")));
    // a label naming a clip the scene file does not have
    std::fs::write(mg.join("official/mg_videoinfo/scene_boundaries/tt0000003.scenes.gt"), "1 1 1\n").unwrap();
    let e = err(DatasetKind::MovieGraphs, &mg);
    assert!(e.contains("tt0000003.scenes.gt has 1 clip(s)"), "{e}");
}

#[test]
fn dataset_names_parse() {
    assert_eq!(DatasetKind::parse("mg").unwrap(), DatasetKind::MovieGraphs);
    assert_eq!(DatasetKind::parse("LA").unwrap(), DatasetKind::Liris);
    for k in DatasetKind::ALL {
        assert_eq!(DatasetKind::parse(k.name()).unwrap(), k);
    }
    assert!(DatasetKind::parse("imagenet")
        .unwrap_err()
        .to_string()
        .contains("bold, emotic, meld, liris or moviegraphs"));
}

/// Subject masks from official YOLO-letterbox boxes through [`letterbox_boxes`] + the two mask modes the
/// adapters use, against the official code (meld.py / movie_graphs.py: boxes on the resized frame;
/// liris_accede.py: boxes on the original frame, bilinear resize, `> 0.5`) on 60 random frames and boxes.
#[test]
fn letterbox_masks_match_official_code() {
    use emoclip::media::{Preprocessor, IMAGENET};
    use emoclip::probe::datasets::letterbox_boxes;
    let fx = json(&fixture("meld").join("mask_parity.json"));
    let unrle = |runs: &Value| -> Vec<f32> {
        let mut out = Vec::new();
        for (i, r) in runs.as_array().unwrap().iter().enumerate() {
            out.extend(std::iter::repeat_n((i % 2) as f32, r.as_u64().unwrap() as usize));
        }
        out
    };
    let pre = Preprocessor { resize_short: 256, crop: 224, norm: IMAGENET };
    let cases = fx["cases"].as_array().unwrap();
    let mut ones = 0;
    for (i, c) in cases.iter().enumerate() {
        let (w, h) = (c["width"].as_u64().unwrap() as u32, c["height"].as_u64().unwrap() as u32);
        let boxes = letterbox_boxes(&c["boxes"], w, h, "case").unwrap();
        for (mode, key) in [(MaskMode::Letterbox, "letterbox"), (MaskMode::Bilinear, "bilinear")] {
            let got = pre.mask_with(mode, w, h, &boxes);
            let want = unrle(&c[key]);
            assert_eq!(got.len(), want.len());
            let diff = got.iter().zip(&want).filter(|(a, b)| a != b).count();
            assert_eq!(diff, 0, "case {i} ({w}x{h}, {key}): {diff} pixel(s) differ from the official mask");
            ones += want.iter().filter(|v| **v == 1.0).count();
        }
    }
    assert!(cases.len() == 60 && ones > 100_000, "{ones}");
}

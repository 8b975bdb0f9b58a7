//! Generic probe manifest, feature cache and `probe::eval` (the official `linear_eval.py` flow) checked against direct calls of the scikit-learn-tested primitives.
use emoclip::embed::FeatureCache;
use emoclip::hash::fnv1a64;
use emoclip::probe::eval::{evaluate, f1_per_class, EvalOptions};
use emoclip::probe::manifest::{BoxesSpec, Label, Manifest, ManifestOptions, Split, Task};
use emoclip::probe::report::{write_report, ReportInfo};
use emoclip::probe::{
    accuracy_score, average_precision_macro, f1_weighted, holdout_split, mean_squared_error, pearsonr, r2_score,
    roc_auc_macro, savgol_filter, CSearch, LogisticRegression, Mat, OneVsRest, Ridge,
};
use emoclip::Error;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/probe_manifest")
}

fn parse(text: &str, name: &str, opts: &ManifestOptions) -> emoclip::Result<Manifest> {
    Manifest::parse(text, Path::new(name), Path::new("/data"), opts)
}

/// Deterministic pseudo-random in [-1, 1).
fn noise(i: usize, j: usize) -> f64 {
    let h = fnv1a64(format!("{i}/{j}").as_bytes());
    (h >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

const D: usize = 6;

/// Features with a per-class signal in the first dimensions.
fn features(classes_of: &[Vec<usize>]) -> Mat {
    let rows: Vec<Vec<f64>> = classes_of
        .iter()
        .enumerate()
        .map(|(i, cs)| {
            (0..D).map(|j| noise(i, j) + cs.iter().map(|&c| if c == j { 1.5 } else { 0.0 }).sum::<f64>()).collect()
        })
        .collect();
    Mat::from_rows(&rows).unwrap()
}

fn split_of(i: usize) -> &'static str {
    match i % 5 {
        0..=2 => "train",
        3 => "val",
        _ => "test",
    }
}

fn idx(m: &Manifest, s: Split) -> Vec<usize> {
    m.items.iter().enumerate().filter(|(_, it)| it.split == s).map(|(i, _)| i).collect()
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() <= 1e-9 * (1.0 + b.abs()), "{a} vs {b}");
}

#[test]
fn single_label_eval_matches_primitives() {
    let names = ["angry", "happy", "sad"];
    let n = 60;
    let mut text = String::from("path,split,label\n");
    let mut cls = Vec::new();
    for i in 0..n {
        let c = (i / 5 + i) % 3;
        cls.push(vec![c]);
        text += &format!("v{i}.mp4,{},{}\n", split_of(i), names[c]);
    }
    let m = parse(&text, "m.csv", &ManifestOptions::default()).unwrap();
    assert_eq!(m.task, Task::Single);
    assert_eq!(m.classes, names);
    let x = features(&cls);
    let (tr, va, te) = (idx(&m, Split::Train), idx(&m, Split::Val), idx(&m, Split::Test));
    let y = |ix: &[usize]| ix.iter().map(|&i| cls[i][0] as i64).collect::<Vec<i64>>();

    // Fixed C.
    let r = evaluate(&m, &x, &EvalOptions { c: Some(0.7), ..Default::default() }).unwrap();
    let model = LogisticRegression::new(0.7).fit(&x.select_rows(&tr).unwrap(), &y(&tr)).unwrap();
    for (s, ix) in [("val", &va), ("test", &te)] {
        let p = model.predict(&x.select_rows(ix).unwrap()).unwrap();
        close(r.get("Accuracy", s).unwrap(), accuracy_score(&y(ix), &p).unwrap() * 100.0);
        close(r.get("F1 (weighted)", s).unwrap(), f1_weighted(&y(ix), &p).unwrap() * 100.0);
        let pc = r.per_class.iter().find(|p| p.split == s && p.metric == "F1").unwrap();
        let want: Vec<Option<f64>> = f1_per_class(&y(ix), &p, 3).into_iter().map(|v| v.map(|f| f * 100.0)).collect();
        assert_eq!(pc.values, want);
    }
    assert_eq!(r.c, Some(0.7));

    // Searched C on val.
    let search = CSearch { n_trials: 5, seed: 3, ..CSearch::default() };
    let r = evaluate(&m, &x, &EvalOptions { search: search.clone(), ..Default::default() }).unwrap();
    let (xt, xv) = (x.select_rows(&tr).unwrap(), x.select_rows(&va).unwrap());
    let s = search
        .run(|c| {
            let mdl = LogisticRegression::new(c).fit(&xt, &y(&tr))?;
            accuracy_score(&y(&va), &mdl.predict(&xv)?)
        })
        .unwrap();
    assert_eq!(r.c, Some(s.best_c));
    assert_eq!(r.trials, s.trials);
    let model = LogisticRegression::new(s.best_c).fit(&xt, &y(&tr)).unwrap();
    let p = model.predict(&x.select_rows(&te).unwrap()).unwrap();
    close(r.get("Accuracy", "test").unwrap(), accuracy_score(&y(&te), &p).unwrap() * 100.0);

    // No val split: the search uses a hold-out of train; only test is reported.
    let text_nv = text.replace(",val,", ",train,");
    let m2 = parse(&text_nv, "m.csv", &ManifestOptions::default()).unwrap();
    let r2 = evaluate(&m2, &x, &EvalOptions { search: search.clone(), ..Default::default() }).unwrap();
    assert_eq!(r2.splits, vec!["test".to_string()]);
    let tr2 = idx(&m2, Split::Train);
    let (a, b) = holdout_split(tr2.len(), 0.2, 3).unwrap();
    let (fa, fb): (Vec<usize>, Vec<usize>) = (a.iter().map(|&i| tr2[i]).collect(), b.iter().map(|&i| tr2[i]).collect());
    let (xa, xb) = (x.select_rows(&fa).unwrap(), x.select_rows(&fb).unwrap());
    let s2 =
        search.run(|c| accuracy_score(&y(&fb), &LogisticRegression::new(c).fit(&xa, &y(&fa))?.predict(&xb)?)).unwrap();
    assert_eq!(r2.c, Some(s2.best_c));
    assert!(r2.c_source.contains("hold-out"));
}

#[test]
fn multi_label_eval_matches_primitives() {
    let n = 50;
    let mut text = String::new();
    let mut cls = Vec::new();
    for i in 0..n {
        let mut cs: Vec<usize> = (0..3).filter(|&k| noise(i, 50 + k) > 0.0).collect();
        if i % 11 == 0 {
            cs.clear();
        }
        let names: Vec<String> = cs.iter().map(|k| format!("\"c{k}\"")).collect();
        text +=
            &format!("{{\"path\": \"v{i}.mp4\", \"split\": \"{}\", \"labels\": [{}]}}\n", split_of(i), names.join(","));
        cls.push(cs);
    }
    let m = parse(&text, "m.jsonl", &ManifestOptions::default()).unwrap();
    assert_eq!(m.task, Task::Multi);
    assert_eq!(m.classes, ["c0", "c1", "c2"]);
    let x = features(&cls);
    let ymat = |ix: &[usize]| {
        let mut y = Mat::zeros(ix.len(), 3);
        for (r, &i) in ix.iter().enumerate() {
            for &c in &cls[i] {
                y.data[r * 3 + c] = 1.0;
            }
        }
        y
    };
    let (tr, te) = (idx(&m, Split::Train), idx(&m, Split::Test));
    let r = evaluate(&m, &x, &EvalOptions { c: Some(2.0), ..Default::default() }).unwrap();
    let model = OneVsRest::new(LogisticRegression::new(2.0)).fit(&x.select_rows(&tr).unwrap(), &ymat(&tr)).unwrap();
    let p = model.predict_proba(&x.select_rows(&te).unwrap()).unwrap();
    let ap = average_precision_macro(&ymat(&te), &p).unwrap();
    let auc = roc_auc_macro(&ymat(&te), &p).unwrap();
    close(r.get("mAP (macro)", "test").unwrap(), ap.sklearn * 100.0);
    close(r.get("ROC-AUC (defined classes)", "test").unwrap(), auc.defined_mean * 100.0);
    assert_eq!(r.get("classes without AP", "test").unwrap(), ap.undefined.len() as f64);
}

#[test]
fn regression_eval_matches_primitives() {
    let n = 40;
    let mut text = String::from("path,split,valence,arousal\n");
    let mut ys = Vec::new();
    for i in 0..n {
        let (v, a) = (noise(i, 100), noise(i, 200));
        ys.push(vec![v, a]);
        text += &format!("v{i}.mp4,{},{v},{a}\n", split_of(i));
    }
    let opts = ManifestOptions { targets: vec!["valence".into(), "arousal".into()], ..Default::default() };
    let m = parse(&text, "m.csv", &opts).unwrap();
    assert_eq!(m.task, Task::Regression);
    // Features correlated with the targets.
    let rows: Vec<Vec<f64>> =
        (0..n).map(|i| (0..D).map(|j| noise(i, j) * 0.3 + if j < 2 { ys[i][j] } else { 0.0 }).collect()).collect();
    let x = Mat::from_rows(&rows).unwrap();
    let (tr, te) = (idx(&m, Split::Train), idx(&m, Split::Test));
    let ym = |ix: &[usize]| Mat::from_rows(&ix.iter().map(|&i| ys[i].clone()).collect::<Vec<_>>()).unwrap();
    let model = Ridge::new(1.0).fit(&x.select_rows(&tr).unwrap(), &ym(&tr)).unwrap();
    let pred = model.predict(&x.select_rows(&te).unwrap()).unwrap();
    for savgol in [None, Some((5, 2))] {
        let r = evaluate(&m, &x, &EvalOptions { savgol, ..Default::default() }).unwrap();
        let mut p = pred.clone();
        if let Some((w, o)) = savgol {
            for j in 0..2 {
                for (i, v) in savgol_filter(&pred.col(j), w, o).unwrap().into_iter().enumerate() {
                    p.data[i * 2 + j] = v;
                }
            }
        }
        let yt = ym(&te);
        close(r.get("R2 (uniform average)", "test").unwrap(), r2_score(&yt, &p).unwrap());
        close(r.get("MSE valence", "test").unwrap(), mean_squared_error(&yt.col(0), &p.col(0)).unwrap());
        close(r.get("Pearson r arousal", "test").unwrap(), pearsonr(&yt.col(1), &p.col(1)).unwrap());
        assert_eq!(r.c, None);
        // Report files.
        let dir = tempfile::tempdir().unwrap();
        let files = write_report(&r, &ReportInfo::default(), dir.path()).unwrap();
        assert!(files.iter().all(|f| f.is_file()));
    }
}

fn msg(e: Error) -> String {
    e.to_string()
}

#[test]
fn manifest_errors_name_the_row() {
    let d = ManifestOptions::default();
    // Unknown class with a given class list.
    let with = ManifestOptions { classes: Some(vec!["happy".into(), "sad".into()]), ..Default::default() };
    let e = msg(parse("path,split,label\na.jpg,train,happy\nb.jpg,test,angry\n", "m.csv", &with).unwrap_err());
    assert!(e.contains("row 3") && e.contains("unknown class \"angry\""), "{e}");
    // Integer label out of range.
    let e = msg(parse("path,split,label\na.jpg,train,0\nb.jpg,test,5\n", "m.csv", &with).unwrap_err());
    assert!(e.contains("row 3") && e.contains("out of range"), "{e}");
    // Integer labels index the class list.
    let m = parse("path,split,label\na.jpg,train,0\nb.jpg,test,1\n", "m.csv", &with).unwrap();
    assert_eq!(m.items[1].label, Label::Class(1));
    // Multi-label unknown class.
    let e = msg(parse(
        "path,split,labels\na.jpg,train,happy;sad\nb.jpg,test,sad;meh\n",
        "m.csv",
        &ManifestOptions { task: Some(Task::Multi), ..with.clone() },
    )
    .unwrap_err());
    assert!(e.contains("row 3") && e.contains("meh"), "{e}");
    // Empty split.
    let e = msg(parse("path,split,label\na.jpg,test,x\nb.jpg,test,y\n", "m.csv", &d).unwrap_err());
    assert!(e.contains("train split is empty"), "{e}");
    let e = msg(parse("path,split,label\na.jpg,train,x\nb.jpg,train,y\n", "m.csv", &d).unwrap_err());
    assert!(e.contains("val and test splits are both empty"), "{e}");
    // Bad split name.
    let e = msg(parse("path,split,label\na.jpg,holdout,x\nb.jpg,test,y\n", "m.csv", &d).unwrap_err());
    assert!(e.contains("row 2") && e.contains("holdout"), "{e}");
    // Non-finite / non-numeric regression targets.
    let t = ManifestOptions { targets: vec!["valence".into()], ..Default::default() };
    for bad in ["nan", "inf", "abc", ""] {
        let e = parse(&format!("path,split,valence\na.jpg,train,0.5\nb.jpg,test,{bad}\n"), "m.csv", &t).unwrap_err();
        assert!(matches!(e, Error::NonFinite(_)), "{bad}: {e}");
        assert!(e.to_string().contains("row 3"), "{e}");
    }
    let e = parse(
        "{\"path\":\"a\",\"split\":\"train\",\"target\":1}\n{\"path\":\"b\",\"split\":\"test\",\"target\":null}\n",
        "m.jsonl",
        &d,
    )
    .unwrap_err();
    assert!(e.to_string().contains("row 2"), "{e}");
    // Ragged CSV row and no label column.
    let e = msg(parse("path,split,label\na.jpg,train\n", "m.csv", &d).unwrap_err());
    assert!(e.contains("row 2"), "{e}");
    let e = msg(parse("path,split\na.jpg,train\n", "m.csv", &d).unwrap_err());
    assert!(e.contains("no label column"), "{e}");
    // Quoted CSV fields.
    let m = parse("path,split,labels\n\"a, b.jpg\",train,\"x;y\"\nc.jpg,test,\"y\"\"\"\n", "m.csv", &d).unwrap();
    assert_eq!(m.items[0].path, Path::new("/data/a, b.jpg"));
    assert_eq!(m.classes, ["x", "y", "y\""]);
}

#[test]
fn fixture_manifests_load_and_report_missing_files() {
    let dir = fixtures();
    let m = Manifest::load(&dir.join("single.csv"), &ManifestOptions::default()).unwrap();
    assert_eq!(m.task, Task::Single);
    assert_eq!(m.items.len(), 6);
    assert_eq!(m.skipped.len(), 1);
    assert_eq!(m.skipped[0].row, 8);
    assert!(m.skipped[0].path.ends_with("missing_on_purpose.jpg"));
    assert!(matches!(&m.items[0].boxes, Some(BoxesSpec::File(p)) if p.ends_with("person_small.boxes.json")));
    assert!(m.items[0].boxes.as_ref().unwrap().load().is_ok());

    let m = Manifest::load(&dir.join("multi.jsonl"), &ManifestOptions::default()).unwrap();
    assert_eq!(m.classes, ["anger", "joy", "surprise"]); // from multi.classes.txt
    assert_eq!(m.items[0].label, Label::Classes(vec![1, 2]));
    assert_eq!(m.items[2].label, Label::Classes(vec![]));
    assert_eq!(m.items[3].label, Label::Classes(vec![2]));
    assert_eq!(m.items[0].boxes, Some(BoxesSpec::Inline(vec![[0.0, 0.0, 32.0, 32.0, 0.8]])));
    assert!(m.items[0].boxes.as_ref().unwrap().load().is_ok());

    let opts = ManifestOptions { targets: vec!["valence".into(), "arousal".into()], ..Default::default() };
    let m = Manifest::load(&dir.join("regression.csv"), &opts).unwrap();
    assert_eq!(m.items[1].label, Label::Targets(vec![-1.0, 0.75]));

    // Everything in train missing → empty train split, a clear error.
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("m.csv");
    std::fs::write(&p, "path,split,label\nnope.jpg,train,a\n../x.jpg,test,b\n").unwrap();
    let e = Manifest::load(&p, &ManifestOptions::default()).unwrap_err().to_string();
    assert!(e.contains("train split is empty") && e.contains("2 row(s) skipped"), "{e}");
}

#[test]
fn feature_cache_roundtrip() {
    let tmp = tempfile::tempdir().unwrap();
    let c = FeatureCache::new(&tmp.path().join("c")).unwrap();
    assert_eq!(c.get("k1"), None);
    let p = c.put("k1", &[1.0, -2.5, 3.25]).unwrap();
    assert!(p.file_name().unwrap().to_string_lossy().ends_with(".safetensors"));
    assert_eq!(c.get("k1"), Some(vec![1.0, -2.5, 3.25]));
    assert_eq!(c.get("k2"), None);
    // A file under k2's name holding another key is not returned.
    std::fs::copy(&p, c.path_for("k2")).unwrap();
    assert_eq!(c.get("k2"), None);
    // Corrupt entries count as absent.
    std::fs::write(c.path_for("k3"), b"garbage").unwrap();
    assert_eq!(c.get("k3"), None);
    assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
}

//! The main inference path end to end against the official EmotionCLIP code (fixtures/e2e/ from
//! scripts/fixtures/gen_e2e.py): real videos decoded by the ffmpeg CLI, the official MELD sampling / preprocessing /
//! `get_correct_bbox` + `bbox_to_mask`, and the official model in PyTorch (float64) → `emoclip embed` (npy and
//! safetensors read back) and `emoclip similarity`, elementwise.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fx(rel: &str) -> PathBuf {
    root().join("fixtures").join(rel)
}

/// Elementwise bound on the unit-norm embeddings: |emoclip − official| ≤ ATOL + RTOL·|official|. Measured (f32
/// against the float64 reference): max |Δ| 8.0e-8 for decoded videos, frame directories and the image alike.
const ATOL: f64 = 2.5e-7;
const RTOL: f64 = 0.0;
/// Similarity scores (exp(logit_scale) ≈ 19.3 times a cosine, |score| ≤ 11 here): measured max |Δ| 3.4e-6; and
/// exp(logit_scale) itself: 8.4e-7.
const SCORE_ATOL: f64 = 1e-5;
const SCALE_ATOL: f64 = 2.5e-6;

fn expected() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fx("e2e/expected.json")).unwrap()).unwrap()
}

/// A sample video from scripts/fetch_media.sh (media/). Missing: a failure under CI (the test script fetches
/// them), a notice elsewhere.
fn sample_media(name: &str) -> Option<PathBuf> {
    let p = root().join("media").join(name);
    if p.is_file() {
        return Some(p);
    }
    assert!(std::env::var_os("CI").is_none(), "{} missing: CI must run scripts/fetch_media.sh first", p.display());
    eprintln!("skip {name}: not present (run scripts/fetch_media.sh)");
    None
}

/// (reference name, input path) of every input whose file is present.
fn inputs() -> Vec<(&'static str, PathBuf)> {
    let mut v = vec![("clip_vtest40", fx("media/clip_vtest40.mp4"))];
    if let Some(p) = sample_media("Megamind.avi") {
        v.push(("Megamind", p));
    }
    if let Some(p) = sample_media("carphone_pristine.mp4") {
        v.push(("carphone_pristine", p));
    }
    v.push(("clip_frame_0", fx("media/clip_frame_0.png")));
    v
}

fn model_args() -> Vec<String> {
    vec![
        "--weights".into(),
        fx("e2e/official_tiny.pt").display().to_string(),
        "--config".into(),
        fx("e2e/official_tiny_config.json").display().to_string(),
        "--boxes-dir".into(),
        fx("e2e/boxes").display().to_string(),
    ]
}

fn emoclip(args: &[String]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_emoclip")).args(args).env("RUST_LOG", "warn").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "emoclip {args:?}:\n{}", String::from_utf8_lossy(&o.stderr));
    o
}

fn reference(name: &str) -> serde_json::Value {
    let e = expected();
    e["results"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap().clone()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

/// Max |got − want| over the pairs; panics on any element outside ATOL + RTOL·|want|.
fn compare(what: &str, got: &[f64], want: &[f64]) -> f64 {
    compare_tol(what, got, want, ATOL, RTOL)
}

fn compare_tol(what: &str, got: &[f64], want: &[f64], atol: f64, rtol: f64) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0f64;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let d = (g - w).abs();
        worst = worst.max(d);
        assert!(d <= atol + rtol * w.abs(), "{what}[{i}]: emoclip {g} vs official {w} (|Δ| {d:e})");
    }
    worst
}

/// Float32 .npy written by emoclip: rows of `dim`.
fn read_npy(p: &Path) -> Vec<Vec<f64>> {
    let b = std::fs::read(p).unwrap();
    let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + hl]).unwrap();
    let shape = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let dims: Vec<usize> = shape.split(',').filter_map(|s| s.trim().parse().ok()).collect();
    let data: Vec<f64> = b[10 + hl..].chunks(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect();
    data.chunks(dims[1]).map(<[f64]>::to_vec).collect()
}

/// The `embeddings` tensor and the `files` metadata of an emoclip .safetensors output.
fn read_safetensors(p: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let b = std::fs::read(p).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
    let files: Vec<String> = serde_json::from_str(header["__metadata__"]["files"].as_str().unwrap()).unwrap();
    let t = &header["embeddings"];
    assert_eq!(t["dtype"], "F32");
    let dim = t["shape"][1].as_u64().unwrap() as usize;
    let (a, z) = (t["data_offsets"][0].as_u64().unwrap() as usize, t["data_offsets"][1].as_u64().unwrap() as usize);
    let data: Vec<f64> =
        b[8 + n + a..8 + n + z].chunks(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect();
    (files, data.chunks(dim).map(<[f64]>::to_vec).collect())
}

/// Checks the rows (in input order) against the official embeddings; returns the max |Δ|.
fn check_rows(rows: &[Vec<f64>], names: &[&str]) -> f64 {
    assert_eq!(rows.len(), names.len());
    let mut worst = 0f64;
    for (row, name) in rows.iter().zip(names) {
        let w = compare(name, row, &floats(&reference(name)["embedding"]));
        eprintln!("{name}: max |emoclip − official| = {w:.2e}");
        worst = worst.max(w);
    }
    worst
}

#[test]
fn embed_videos_matches_the_official_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs();
    let names: Vec<&str> = inputs.iter().map(|(n, _)| *n).collect();
    let mut worst = 0f64;
    for out in ["e.npy", "e.safetensors"] {
        let out = dir.path().join(out);
        let mut args = vec!["embed".to_string()];
        args.extend(inputs.iter().map(|(_, p)| p.display().to_string()));
        args.extend(model_args());
        args.extend(["--out".into(), out.display().to_string()]);
        emoclip(&args);
        let rows = if out.extension().unwrap() == "npy" {
            let list = std::fs::read_to_string(out.with_extension("files.txt")).unwrap();
            let files: Vec<&str> = list.lines().collect();
            assert_eq!(files.len(), inputs.len());
            read_npy(&out)
        } else {
            let (files, rows) = read_safetensors(&out);
            for (f, (_, p)) in files.iter().zip(&inputs) {
                assert_eq!(Path::new(f), p.as_path());
            }
            rows
        };
        worst = worst.max(check_rows(&rows, &names));
    }
    eprintln!("embed (decoded videos) vs official: max |Δ| {worst:.2e} (bound {ATOL:e} + {RTOL:e}·|ref|)");
}

/// The same clips as frame directories extracted by the ffmpeg CLI (`embed --frame-dirs`): isolates the pipeline
/// after decoding from the decoder.
#[test]
fn embed_frame_dirs_matches_the_official_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let inputs: Vec<_> = inputs().into_iter().filter(|(n, _)| *n != "clip_frame_0").collect();
    let mut dirs = Vec::new();
    for (name, video) in &inputs {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        let st = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(video)
            .args(["-pix_fmt", "rgb24", "-c:v", "png", "-start_number", "0"])
            .arg(d.join("frame_%d.png"))
            .status()
            .expect("the ffmpeg CLI (scripts/install_deps.sh installs it)");
        assert!(st.success());
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count() as u64,
            reference(name)["frames"].as_u64().unwrap(),
            "{name}: frame count"
        );
        dirs.push(d);
    }
    let out = dir.path().join("e.npy");
    let mut args = vec!["embed".to_string(), "--frame-dirs".into()];
    args.extend(dirs.iter().map(|p| p.display().to_string()));
    args.extend(model_args());
    args.extend(["--out".into(), out.display().to_string()]);
    emoclip(&args);
    let names: Vec<&str> = inputs.iter().map(|(n, _)| *n).collect();
    let worst = check_rows(&read_npy(&out), &names);
    eprintln!("embed --frame-dirs vs official: max |Δ| {worst:.2e}");
}

#[test]
fn similarity_matches_the_official_model() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs();
    let e = expected();
    let prompts: Vec<String> = e["prompts"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().into()).collect();
    let out = dir.path().join("s.json");
    let mut args = vec!["similarity".to_string()];
    args.extend(inputs.iter().map(|(_, p)| p.display().to_string()));
    args.extend(model_args());
    for p in &prompts {
        args.extend(["--prompt".into(), p.clone()]);
    }
    args.extend(["--out".into(), out.display().to_string()]);
    emoclip(&args);
    let got: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let scale = [got["logit_scale"].as_f64().unwrap()];
    let d_scale = compare_tol("exp(logit_scale)", &scale, &[e["logit_scale"].as_f64().unwrap().exp()], SCALE_ATOL, 0.0);
    let mut worst = 0f64;
    for (r, (name, _)) in got["results"].as_array().unwrap().iter().zip(&inputs) {
        let (got, want) = (floats(&r["scores"]), floats(&reference(name)["scores"]));
        let w = compare_tol(&format!("{name} scores"), &got, &want, SCORE_ATOL, 0.0);
        worst = worst.max(w);
    }
    eprintln!("similarity vs official: max |Δ| {worst:.2e} on the scores, {d_scale:.2e} on exp(logit_scale)");
}

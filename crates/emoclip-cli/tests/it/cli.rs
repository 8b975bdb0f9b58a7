//! End-to-end tests of the `emoclip` binary on committed fixtures: tiny random-weight models in the
//! official formats and a short real video clip (no network, no downloaded media).
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fx(rel: &str) -> String {
    root().join("fixtures").join(rel).display().to_string()
}

fn emoclip(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_emoclip")).args(args).env("RUST_LOG", "warn").output().expect("run emoclip")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Reads a float32 .npy written by emoclip: (rows, cols, data).
fn read_npy(p: &Path) -> (usize, usize, Vec<f32>) {
    let b = std::fs::read(p).unwrap();
    assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
    let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + hl]).unwrap();
    assert!(header.contains("'descr': '<f4'") && header.ends_with('\n') && (10 + hl).is_multiple_of(64), "{header}");
    let shape = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let dims: Vec<usize> = shape.split(',').filter_map(|s| s.trim().parse().ok()).collect();
    let data: Vec<f32> = b[10 + hl..].chunks(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    assert_eq!(data.len(), dims[0] * dims[1]);
    (dims[0], dims[1], data)
}

const TINY: [&str; 4] = ["--weights", "", "--config", ""];

fn tiny_model() -> Vec<String> {
    let mut v: Vec<String> = TINY.iter().map(|s| s.to_string()).collect();
    v[1] = fx("models/emotionclip_sap.pt");
    v[3] = fx("cli/tiny_emotionclip.json");
    v
}

fn run_with_model(mut args: Vec<String>, model: Vec<String>) -> Output {
    args.extend(model);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    emoclip(&refs)
}

#[test]
fn embed_video_and_image_to_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let boxes = dir.path().join("b.json");
    std::fs::write(&boxes, r#"{"boxes": [[100, 40, 220, 280, 0.9]]}"#).unwrap();
    let mut first: Option<Vec<f32>> = None;
    for name in ["e.npy", "e.safetensors", "e.jsonl"] {
        let out = dir.path().join(name);
        let o = run_with_model(
            vec!["embed".into(), fx("media/clip_vtest40.mp4"), "--out".into(), out.display().to_string()],
            tiny_model(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(out.is_file());
        if name == "e.npy" {
            let (r, c, d) = read_npy(&out);
            assert_eq!((r, c), (1, 32));
            let n: f32 = d.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((n - 1.0).abs() < 1e-4, "not normalised: {n}");
            first = Some(d);
            let names = emoclip::output::read_names(&out.with_extension("files.txt")).unwrap();
            assert!(names.len() == 1 && names[0].to_string_lossy().ends_with("clip_vtest40.mp4"), "{names:?}");
        }
        if name == "e.jsonl" {
            let line = std::fs::read_to_string(&out).unwrap();
            let v: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
            let e: Vec<f32> = v["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
            let f = first.as_ref().unwrap();
            assert!(e.iter().zip(f).all(|(a, b)| (a - b).abs() < 1e-6), "jsonl and npy differ");
        }
    }
    // With a subject box the embedding changes (SAP uses the mask).
    let out = dir.path().join("boxed.npy");
    let o = run_with_model(
        vec![
            "embed".into(),
            fx("media/clip_vtest40.mp4"),
            "--boxes".into(),
            boxes.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ],
        tiny_model(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let (_, _, d) = read_npy(&out);
    let diff: f32 = d.iter().zip(first.unwrap()).map(|(a, b)| (a - b).abs()).sum();
    assert!(diff > 1e-3, "subject box had no effect");
    // Images go through encode_image.
    let out = dir.path().join("img.npy");
    let o = run_with_model(
        vec!["embed".into(), fx("media/person_small.jpg"), "--out".into(), out.display().to_string()],
        tiny_model(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_npy(&out).0, 1);
}

#[test]
fn batch_embed_skips_bad_files_lists_them_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let clip = std::fs::read(fx("media/clip_vtest40.mp4")).unwrap();
    let cut = dir.path().join("truncated.mp4");
    std::fs::write(&cut, &clip[..clip.len() / 4]).unwrap();
    let junk = dir.path().join("junk.mp4");
    std::fs::write(&junk, vec![7u8; 5000]).unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "hello").unwrap();
    let out = dir.path().join("e.npy");
    let o = run_with_model(
        vec![
            "embed".into(),
            fx("media/clip_vtest40.mp4"),
            cut.display().to_string(),
            junk.display().to_string(),
            notes.display().to_string(),
            dir.path().join("missing.mp4").display().to_string(),
            fx("media/person_small.jpg"),
            "--batch".into(),
            "2".into(),
            "--out".into(),
            out.display().to_string(),
        ],
        tiny_model(),
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("4 input(s) failed"), "{err}");
    for f in ["truncated.mp4", "junk.mp4", "notes.txt", "missing.mp4"] {
        assert!(err.contains(f), "{f} not reported: {err}");
    }
    let (rows, _, _) = read_npy(&out);
    assert_eq!(rows, 2, "the two good inputs must still be written");
}

#[test]
fn convert_then_embed_gives_the_same_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let conv = dir.path().join("converted");
    let o = run_with_model(
        vec![
            "convert".into(),
            fx("models/emotionclip_sap.pt"),
            "--out".into(),
            conv.display().to_string(),
            "--config".into(),
            fx("cli/tiny_emotionclip.json"),
        ],
        vec![],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(conv.join("model.safetensors").is_file() && conv.join("config.json").is_file());
    let a = dir.path().join("a.npy");
    let b = dir.path().join("b.npy");
    let o = run_with_model(
        vec!["embed".into(), fx("media/clip_vtest40.mp4"), "--out".into(), a.display().to_string()],
        tiny_model(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = emoclip(&[
        "embed",
        &fx("media/clip_vtest40.mp4"),
        "--weights",
        &conv.display().to_string(),
        "--out",
        &b.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_npy(&a).2, read_npy(&b).2);
}

#[test]
fn wrong_config_and_partial_checkpoint_are_clear_errors() {
    // open_clip state dict as EmotionCLIP: no temporal head → told to use --model clip.
    let o = emoclip(&[
        "embed",
        &fx("media/person_small.jpg"),
        "--weights",
        &fx("models/openclip_state.pt"),
        "--config",
        &fx("cli/tiny_emotionclip.json"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("openclip_state.pt") && stderr(&o).contains("--model clip"), "{}", stderr(&o));
    // The inferred config of the tiny checkpoint assumes 64-wide heads; heads do not change shapes, but a
    // config for a different model does: every mismatch is listed.
    let o = emoclip(&[
        "embed",
        &fx("media/person_small.jpg"),
        "--weights",
        &fx("models/emotionclip_sap.pt"),
        "--config",
        &fx("cli/micro_random.json"),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("emotionclip_sap.pt") && err.contains("wrong shape") && err.contains("fix:"), "{err}");
}

#[test]
fn embed_text_and_similarity_with_the_real_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    let model = vec!["--weights".to_string(), "random".into(), "--config".into(), fx("cli/micro_random.json")];
    let out = dir.path().join("t.npy");
    let o = run_with_model(
        vec![
            "embed-text".into(),
            "a person who is happy".into(),
            "someone furious!".into(),
            "--out".into(),
            out.display().to_string(),
        ],
        model.clone(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_npy(&out).0, 2);
    let o = run_with_model(
        vec![
            "similarity".into(),
            fx("media/person_small.jpg"),
            fx("media/clip_vtest40.mp4"),
            "--prompt".into(),
            "happy".into(),
            "--prompt".into(),
            "sad".into(),
        ],
        model,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("| file | happy | sad |")
            && table.contains("person_small.jpg")
            && table.contains("clip_vtest40.mp4"),
        "{table}"
    );
}

#[test]
fn hf_weights_resolve_from_the_local_cache() {
    let cache = tempfile::tempdir().unwrap();
    let snap = cache.path().join("models--someone--tiny-clip/snapshots/0123abcd");
    std::fs::create_dir_all(&snap).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(root().join("fixtures/models/hf_clip").join(f), snap.join(f)).unwrap();
    }
    std::fs::create_dir_all(cache.path().join("models--someone--tiny-clip/refs")).unwrap();
    std::fs::write(cache.path().join("models--someone--tiny-clip/refs/main"), "0123abcd").unwrap();
    let out = cache.path().join("e.npy");
    let o = Command::new(env!("CARGO_BIN_EXE_emoclip"))
        .args([
            "embed",
            &fx("media/person_small.jpg"),
            "--model",
            "clip",
            "--weights",
            "hf:someone/tiny-clip",
            "--out",
            &out.display().to_string(),
        ])
        .env("HF_HUB_CACHE", cache.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_npy(&out).1, 32);
    // A malformed repo id is refused before any lookup.
    let o = emoclip(&["embed-text", "x", "--weights", "hf:not-a-repo"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("expected hf:<org>/<name>"), "{}", stderr(&o));
}

#[test]
fn prepare_is_resumable_and_reports_bad_videos() {
    let dir = tempfile::tempdir().unwrap();
    let vids = dir.path().join("videos");
    std::fs::create_dir_all(&vids).unwrap();
    for name in ["a", "b"] {
        std::fs::copy(fx("media/clip_vtest40.mp4"), vids.join(format!("{name}.mp4"))).unwrap();
        std::fs::write(
            vids.join(format!("{name}.srt")),
            "1\n00:00:00,500 --> 00:00:03,500\nWhat on earth are you doing here?\n",
        )
        .unwrap();
    }
    let clip = std::fs::read(fx("media/clip_vtest40.mp4")).unwrap();
    std::fs::write(vids.join("bad.mp4"), &clip[..clip.len() / 5]).unwrap();
    std::fs::write(vids.join("bad.srt"), "1\n00:00:00,500 --> 00:00:03,500\nThis one is broken!\n").unwrap();
    let out = dir.path().join("out");
    let args = [
        "prepare",
        &vids.display().to_string(),
        "--emotion-model",
        &fx("text_emotion"),
        "--out",
        &out.display().to_string(),
        "--neutral-max",
        "1",
    ];
    let o = emoclip(&args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("bad.mp4") && err.contains("1 video(s) failed"), "{err}");
    let shard_bytes = |n: &str| std::fs::read(out.join("shards").join(n)).unwrap();
    let (a1, b1) = (shard_bytes("a.tar"), shard_bytes("b.tar"));
    // Simulate a kill before b finished: its index (the completion marker) is missing.
    std::fs::remove_file(out.join("index/b.jsonl")).unwrap();
    let o = emoclip(&args);
    assert!(stderr(&o).contains("(1 already done)"), "{}", stderr(&o));
    assert_eq!(shard_bytes("a.tar"), a1);
    assert_eq!(shard_bytes("b.tar"), b1, "redone shard must be identical (deterministic)");
    assert!(!out.join("shards/bad.tar").exists() && !out.join("index/bad.jsonl").exists());
}

#[test]
fn prepare_killed_midway_then_rerun_gives_every_sample_once() {
    let dir = tempfile::tempdir().unwrap();
    let vids = dir.path().join("videos");
    std::fs::create_dir_all(&vids).unwrap();
    for i in 0..6 {
        std::fs::copy(fx("media/clip_vtest40.mp4"), vids.join(format!("v{i}.mp4"))).unwrap();
        std::fs::write(
            vids.join(format!("v{i}.srt")),
            "1\n00:00:00,500 --> 00:00:03,500\nWhat on earth are you doing here?\n",
        )
        .unwrap();
    }
    // Captions in a broken encoding, and a video without captions: reported, the others still processed.
    std::fs::copy(fx("media/clip_vtest40.mp4"), vids.join("enc.mp4")).unwrap();
    std::fs::write(vids.join("enc.srt"), [0xff, 0xfe, 0x00, 0xd8, 0x31, 0x00, 0x0a, 0xc3, 0x28, 0xa0, 0xa1]).unwrap();
    std::fs::copy(fx("media/clip_vtest40.mp4"), vids.join("nocaps.mp4")).unwrap();
    let out = dir.path().join("out");
    let args: Vec<String> = [
        "prepare",
        &vids.display().to_string(),
        "--emotion-model",
        &fx("text_emotion"),
        "--out",
        &out.display().to_string(),
        "--neutral-max",
        "1",
        "--threads",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Kill the first run part-way (wherever it is), then run again to completion.
    let mut child =
        Command::new(env!("CARGO_BIN_EXE_emoclip")).args(&args).stderr(std::process::Stdio::null()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    let _ = child.kill();
    let _ = child.wait();
    let o = Command::new(env!("CARGO_BIN_EXE_emoclip")).args(&args).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("enc.srt") && err.contains("nocaps.mp4") && err.contains("2 video(s) failed"), "{err}");
    let mut keys = Vec::new();
    for i in 0..6 {
        let shard = out.join(format!("shards/v{i}.tar"));
        for s in emoclip::shards::read_shard(&shard).unwrap() {
            keys.push(s.key);
        }
        assert!(out.join(format!("index/v{i}.jsonl")).is_file());
    }
    keys.sort();
    let n = keys.len();
    keys.dedup();
    assert_eq!((n, keys.len()), (6, 6), "every video's sample exactly once");
    for e in std::fs::read_dir(out.join("shards")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(!name.starts_with('.'), "leftover temporary file {name}");
    }
}

#[test]
fn embed_frame_directory_as_one_clip() {
    let dir = tempfile::tempdir().unwrap();
    let frames = fx("probe_datasets/meld/frames/train_splits/dia1_utt0");
    let n_files = std::fs::read_dir(&frames).unwrap().count();
    assert!(n_files > 1);
    let clip = dir.path().join("clip.npy");
    let o = run_with_model(
        vec!["embed".into(), frames.clone(), "--frame-dirs".into(), "--out".into(), clip.display().to_string()],
        tiny_model(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_npy(&clip).0, 1, "a frame directory is one clip");
    // Without the flag the directory is a folder of images, one vector each.
    let imgs = dir.path().join("imgs.npy");
    let o = run_with_model(vec!["embed".into(), frames, "--out".into(), imgs.display().to_string()], tiny_model());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_npy(&imgs).0, n_files);
}

/// Runs emoclip with extra environment variables (stderr piped, as in a batch job).
fn emoclip_env(args: &[String], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_emoclip"));
    c.args(args).env("RUST_LOG", "warn").env_remove("NO_COLOR");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run emoclip")
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn missing_boxes_dir_or_file_is_an_error_and_missing_or_outside_boxes_are_warned_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e.npy").display().to_string();
    let gone = dir.path().join("no-such-boxes").display().to_string();
    // A --boxes-dir that does not exist: an error before any work (it used to embed without masks, exit 0).
    for cmd in [["embed", "--out", &out], ["similarity", "--prompt", "happy"]] {
        let mut args = strings(&[cmd[0], &fx("media/clip_vtest40.mp4"), "--boxes-dir", &gone, cmd[1], cmd[2]]);
        args.extend(tiny_model());
        let o = emoclip_env(&args, &[]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{}: {err}", cmd[0]);
        assert!(
            err.contains("--boxes-dir") && err.contains("no-such-boxes") && err.contains("no such directory"),
            "{err}"
        );
    }
    let prep = strings(&["prepare", &fx("media/clip_vtest40.mp4"), "--emotion-model", &fx("text_emotion")]);
    let o =
        emoclip_env(&[prep, strings(&["--boxes-dir", &gone, "--out", &out.replace(".npy", "-prep")])].concat(), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--boxes-dir") && stderr(&o).contains("no such directory"), "{}", stderr(&o));
    let mut args = strings(&["embed", &fx("media/clip_vtest40.mp4"), "--boxes", &gone, "--out", &out]);
    args.extend(tiny_model());
    let o = emoclip_env(&args, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--boxes") && stderr(&o).contains("no such file"), "{}", stderr(&o));
    // An existing directory: inputs without a box file are counted in ONE warning; a box entirely outside the
    // frame gives one warning too.
    let media = dir.path().join("media");
    let boxes = dir.path().join("boxes");
    std::fs::create_dir_all(&media).unwrap();
    std::fs::create_dir_all(&boxes).unwrap();
    for n in ["a", "b", "c"] {
        std::fs::copy(fx("media/person_small.jpg"), media.join(format!("{n}.jpg"))).unwrap();
    }
    std::fs::write(boxes.join("a.boxes.json"), r#"{"boxes": [[5000, 5000, 6000, 6000, 0.9]]}"#).unwrap();
    let mut args = strings(&["embed", &media.display().to_string(), "--boxes-dir", &boxes.display().to_string()]);
    args.extend(strings(&["--out", &out]));
    args.extend(tiny_model());
    let o = emoclip_env(&args, &[]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(err.matches("2 of 3 input(s) have no <stem>.boxes.json").count(), 1, "{err}");
    assert_eq!(err.matches("lie entirely outside the frame").count(), 1, "{err}");
    assert!(err.contains("a.jpg: [5000, 5000, 6000, 6000]"), "{err}");
}

#[test]
fn outputs_are_checked_before_any_work_in_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain.txt");
    std::fs::write(&file, "not a directory").unwrap();
    let file = file.display().to_string();
    let under_file = format!("{file}/e.npy");
    let none = dir.path().join("nonexistent").display().to_string();
    let clip = fx("media/clip_vtest40.mp4");
    let dir_s = dir.path().display().to_string();
    let cfg = root().join("configs/train_tiny.toml").display().to_string();
    // Each command gets an output it cannot write AND inputs that fail later (missing weights, data, ...): the
    // output must be the error, found before any decoding or model loading.
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["embed", &clip, "--weights", &none, "--out", "result.csv"], "unsupported output type `.csv`"),
        (vec!["embed", &clip, "--weights", &none, "--out", &under_file], "is a file, not a directory"),
        (vec!["embed", &clip, "--weights", &none, "--out", &dir_s], "is a directory"),
        (vec!["embed-text", "x", "--weights", &none, "--out", "t.csv"], "unsupported output type `.csv`"),
        (
            vec!["similarity", &clip, "--prompt", "x", "--weights", &none, "--out", "s.csv"],
            "use a file name ending in .json",
        ),
        (vec!["convert", &none, "--out", &file], "is a file, not a directory"),
        (vec!["probe", &none, "--weights", &none, "--out", &file], "is a file, not a directory"),
        (vec!["probe", &none, "--weights", &none, "--cache", &file], "is a file, not a directory"),
        (vec!["probe-report", &none, "--out", &file], "is a file, not a directory"),
        (vec!["prepare", &clip, "--emotion-model", &none, "--out", &file], "is a file, not a directory"),
        (vec!["report", &none, "--out", &file], "is a file, not a directory"),
        (vec!["train", "--config", &cfg, "--out", &file], "is a file, not a directory"),
        (
            vec!["mer", "train", "--task", "sentiment", "--dataset", "mosi", "--data", &none, "--out", &file],
            "is a file, not a directory",
        ),
        (vec!["mer", "eval", "--model", &none, "--data", &none, "--out", "scores.csv"], "unsupported output type"),
    ];
    for (args, want) in cases {
        let o = emoclip_env(&strings(&args), &[]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("--out") || err.contains("--cache"), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: expected {want:?} in {err}");
    }
    assert!(!std::path::Path::new("result.csv").exists());
    // A directory the user cannot write (meaningless as root, which may write anywhere).
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(ro.join("probe"), "").is_err() {
        let out = ro.join("e.npy").display().to_string();
        let o = emoclip_env(&strings(&["embed", &clip, "--weights", &none, "--out", &out]), &[]);
        assert!(stderr(&o).contains("cannot write in"), "{}", stderr(&o));
    }
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn row_names_with_newlines_and_non_utf8_bytes_round_trip_in_every_format() {
    use std::ffi::OsString;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    let names = [OsString::from("two\nlines.jpg"), OsString::from_vec(b"caf\xe9 \"q\".jpg".to_vec())];
    for n in &names {
        std::fs::copy(fx("media/person_small.jpg"), media.join(n)).unwrap();
    }
    let mut want: Vec<OsString> = names.iter().map(|n| media.join(n).into_os_string()).collect();
    want.sort();
    for ext in ["npy", "safetensors", "jsonl"] {
        let out = dir.path().join(format!("e.{ext}"));
        let mut args = strings(&["embed", &media.display().to_string(), "--out", &out.display().to_string()]);
        args.extend(tiny_model());
        let o = emoclip_env(&args, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        let got: Vec<OsString> = match ext {
            "npy" => {
                assert_eq!(read_npy(&out).0, 2);
                emoclip::output::read_names(&out.with_extension("files.txt")).unwrap()
            }
            "safetensors" => {
                // Header: u64 length + JSON; the metadata `files` holds a JSON list of encoded names.
                let bytes = std::fs::read(&out).unwrap();
                let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
                let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
                let list = header["__metadata__"]["files"].as_str().unwrap();
                emoclip::output::decode_name_list(list).unwrap()
            }
            _ => std::fs::read_to_string(&out)
                .unwrap()
                .lines()
                .map(|l| {
                    let field = l.strip_prefix("{\"file\":").unwrap().split(",\"embedding\":").next().unwrap();
                    emoclip::output::decode_name(field).unwrap()
                })
                .collect(),
        };
        assert_eq!(got, want, "{ext}");
        assert!(got.iter().any(|n| n.as_bytes().ends_with(b"caf\xe9 \"q\".jpg")), "the raw byte survives");
    }
    // Texts with a newline keep their row too.
    let out = dir.path().join("t.npy");
    let model = strings(&["--weights", "random", "--config", &fx("cli/micro_random.json")]);
    let mut args = strings(&["embed-text", "first\nsecond", "third", "--out", &out.display().to_string()]);
    args.extend(model);
    let o = emoclip_env(&args, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = emoclip::output::read_names(&out.with_extension("files.txt")).unwrap();
    assert_eq!(got, vec![OsString::from("first\nsecond"), OsString::from("third")]);
}

#[test]
fn batch_logs_have_no_colour_codes_and_show_progress_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e.npy").display().to_string();
    let model = strings(&["--weights", "random", "--config", &fx("cli/micro_random.json")]);
    let mut args = strings(&["embed", &fx("media/person_small.jpg"), &fx("media/clip_vtest40.mp4"), "--out", &out]);
    args.extend(model);
    args.extend(strings(&["--batch", "1"]));
    let o = emoclip_env(&args, &[("EMOCLIP_PROGRESS_SECS", "0"), ("RUST_LOG", "info")]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("RANDOM weights"), "a log line is expected: {err}");
    assert!(!o.stderr.contains(&0x1b), "ANSI escape in non-terminal stderr: {err:?}");
    assert!(err.contains("embedding: 1/2 (50%)") && err.contains("embedding: done, 2/2 (100%)"), "{err}");
    // With the default 30 s interval a short job prints no progress line.
    let o = emoclip_env(&args, &[]);
    assert!(!stderr(&o).contains("embedding: "), "{}", stderr(&o));
    // prepare and train use the same progress lines.
    let vids = dir.path().join("videos");
    std::fs::create_dir_all(&vids).unwrap();
    std::fs::copy(fx("media/clip_vtest40.mp4"), vids.join("a.mp4")).unwrap();
    std::fs::write(vids.join("a.srt"), "1\n00:00:00,500 --> 00:00:03,500\nWhat on earth are you doing here?\n")
        .unwrap();
    let args = strings(&[
        "prepare",
        &vids.display().to_string(),
        "--emotion-model",
        &fx("text_emotion"),
        "--out",
        &dir.path().join("prep").display().to_string(),
    ]);
    let o = emoclip_env(&args, &[("EMOCLIP_PROGRESS_SECS", "0")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("prepare (videos): 1/1 (100%)"), "{}", stderr(&o));
    assert!(!o.stderr.contains(&0x1b));
    let toml = std::fs::read_to_string(root().join("configs/train_tiny.toml"))
        .unwrap()
        .replace("batch_size = 16", "batch_size = 4")
        .replace("max_steps = 150", "max_steps = 2")
        .replace("n = 64", "n = 8");
    assert!(toml.contains("max_steps = 2"), "configs/train_tiny.toml changed; update this test");
    let cfg = dir.path().join("train.toml");
    std::fs::write(&cfg, toml).unwrap();
    let args = strings(&[
        "--threads",
        "1",
        "train",
        "--config",
        &cfg.display().to_string(),
        "--out",
        &dir.path().join("run").display().to_string(),
    ]);
    let o = emoclip_env(&args, &[("EMOCLIP_PROGRESS_SECS", "0")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("training steps: 2/2 (100%)"), "{}", stderr(&o));
    assert!(!o.stderr.contains(&0x1b));
    let args = strings(&[
        "mer",
        "train",
        "--task",
        "sentiment",
        "--dataset",
        "mosi",
        "--data",
        &fx("mmsa/mosi_tiny.pkl"),
        "--tiny",
        "--epochs",
        "1",
        "--out",
        &dir.path().join("mer").display().to_string(),
    ]);
    let o = emoclip_env(&args, &[("EMOCLIP_PROGRESS_SECS", "0"), ("RUST_LOG", "info")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("training steps: 1/"), "{}", stderr(&o));
    assert!(!o.stderr.contains(&0x1b), "{:?}", stderr(&o));
}

#[test]
fn zero_counts_and_a_wrong_frame_count_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e.npy").display().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["embed", "--frames", "4"], "--frames 4: this model's temporal head takes exactly 8 frames"),
        (vec!["embed", "--frames", "0"], "must be 1 or more"),
        (vec!["embed", "--batch", "0"], "must be 1 or more"),
        (vec!["--threads", "0", "embed"], "leave --threads out"),
    ];
    for (pre, want) in cases {
        let mut args = strings(&pre);
        args.extend(strings(&[&fx("media/clip_vtest40.mp4"), "--out", &out]));
        args.extend(tiny_model());
        let o = emoclip_env(&args, &[]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{pre:?}: {err}");
        assert!(err.contains(want), "{pre:?}: expected {want:?} in {err}");
        assert!(!err.contains("skipped"), "refused before decoding: {err}");
    }
    assert!(!std::path::Path::new(&out).exists());
}

#[test]
fn os_errors_are_not_repeated_in_one_message() {
    let dir = tempfile::tempdir().unwrap();
    // A directory given as the config file: one I/O error, named once.
    let args = strings(&["embed-text", "x", "--weights", "random", "--config", &dir.path().display().to_string()]);
    let o = emoclip_env(&args, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("(os error 21)").count(), 1, "{err}");
}

#[test]
fn hf_specs_respect_hf_hub_offline_and_hf_endpoint() {
    use std::io::Read;
    use std::net::TcpListener;
    let cache = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let cache_s = cache.path().display().to_string();
    let args = strings(&["embed-text", "x", "--weights", "hf:someone/absent-model"]);
    let env = |offline: &'static str| {
        vec![("HF_HUB_CACHE", cache_s.clone()), ("HF_ENDPOINT", endpoint.clone()), ("HF_HUB_OFFLINE", offline.into())]
    };
    let run = |env: Vec<(&'static str, String)>| {
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        emoclip_env(&args, &pairs)
    };
    // Offline: an error that says so, and no connection at all.
    let o = run(env("1"));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("not in the local Hugging Face cache") && err.contains("HF_HUB_OFFLINE"), "{err}");
    assert!(listener.accept().is_err(), "HF_HUB_OFFLINE=1 must not open a connection");
    // Online: the download goes to HF_ENDPOINT (here a server that closes every connection) and its failure is
    // reported with the endpoint.
    let server = std::thread::spawn(move || {
        let mut hits = 0;
        let t0 = std::time::Instant::now();
        while t0.elapsed() < std::time::Duration::from_secs(20) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    hits += 1;
                    let mut buf = [0u8; 512];
                    let _ = s.set_read_timeout(Some(std::time::Duration::from_millis(200)));
                    let _ = s.read(&mut buf);
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
            if hits >= 1 && t0.elapsed() > std::time::Duration::from_secs(2) {
                break;
            }
        }
        hits
    });
    let o = run(env("0"));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("download attempt from {endpoint}")), "{err}");
    assert!(server.join().unwrap() >= 1, "the download must go to HF_ENDPOINT");
}

#[test]
fn a_malicious_torch_pickle_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        strings(&["convert", &fx("cli/evil_checkpoint.pt"), "--out", &dir.path().join("c").display().to_string()]),
        strings(&["embed-text", "x", "--weights", &fx("cli/evil_checkpoint.pt")]),
    ] {
        let o = emoclip_env(&args, &[]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("evil_checkpoint.pt") && err.contains("refused object posix.system"), "{err}");
        assert!(!err.contains("holds no tensors") && !String::from_utf8_lossy(&o.stdout).contains("would-run-this"));
    }
}

#[test]
fn directory_expansion_reports_media_named_entries_it_skips() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(media.join("sub.png")).unwrap();
    std::fs::copy(fx("media/person_small.jpg"), media.join("ok.jpg")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("gone.jpg"), media.join("dangling.jpg")).unwrap();
    let fifo = media.join("pipe.mp4");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    std::fs::write(media.join("notes.txt"), "not media").unwrap();
    let out = dir.path().join("e.npy");
    let mut args = strings(&["embed", &media.display().to_string(), "--out", &out.display().to_string()]);
    args.extend(tiny_model());
    let o = emoclip_env(&args, &[]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(read_npy(&out).0, 1);
    assert_eq!(err.matches("skipped 3 media-named entries").count(), 1, "{err}");
    for want in ["dangling.jpg (a dangling symbolic link)", "pipe.mp4 (a FIFO)", "sub.png (a directory"] {
        assert!(err.contains(want), "{want}: {err}");
    }
    assert!(!err.contains("notes.txt"), "{err}");
}

/// `--dtype bf16` end to end (the embedder keeps only the packed bf16 weights on a CPU with AVX-512 BF16):
/// video and text embeddings within bf16 accuracy of f32 (cosine ≥ 0.999) and not identical to them where the
/// kernel ran.
#[test]
fn embed_and_embed_text_in_bf16_match_f32() {
    let dir = tempfile::tempdir().unwrap();
    let cos = |a: &[f32], b: &[f32]| {
        let d: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        d / (a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt())
    };
    let mut got: Vec<(Vec<f32>, Vec<f32>)> = vec![];
    for dtype in ["f32", "bf16"] {
        let video = dir.path().join(format!("v_{dtype}.npy"));
        let mut args: Vec<String> =
            vec!["embed".into(), fx("media/clip_vtest40.mp4"), "--out".into(), video.display().to_string()];
        args.extend(["--dtype".into(), dtype.into()]);
        let o = run_with_model(args, tiny_model());
        assert!(o.status.success(), "embed --dtype {dtype}: {}", stderr(&o));
        let text = dir.path().join(format!("t_{dtype}.npy"));
        let args: Vec<String> =
            ["embed-text", "a person who is happy", "--out", &text.display().to_string(), "--dtype", dtype]
                .iter()
                .map(|s| s.to_string())
                .collect();
        // The real tokenizer's ids need the full vocabulary: a random micro model.
        let micro = vec!["--weights".to_string(), "random".into(), "--config".into(), fx("cli/micro_random.json")];
        let o = run_with_model(args, micro);
        assert!(o.status.success(), "embed-text --dtype {dtype}: {}", stderr(&o));
        got.push((read_npy(&video).2, read_npy(&text).2));
    }
    let (v, t) = (cos(&got[0].0, &got[1].0), cos(&got[0].1, &got[1].1));
    assert!(v >= 0.999 && t >= 0.999, "bf16 vs f32 cosine: video {v}, text {t}");
    if emoclip::nn::cpu::gemm_bf16::cpu_supported() {
        assert_ne!(got[0].0, got[1].0, "bf16 gave the f32 result: the kernel did not run");
    }
}

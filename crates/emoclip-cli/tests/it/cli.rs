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
    assert!(header.contains("'descr': '<f4'") && header.ends_with('\n') && (10 + hl) % 64 == 0, "{header}");
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
            let list = std::fs::read_to_string(out.with_extension("files.txt")).unwrap();
            assert!(list.trim().ends_with("clip_vtest40.mp4"));
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

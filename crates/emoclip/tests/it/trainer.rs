//! Training loop (official `src/engine/trainer.py`): exact resume, learning on paired synthetic data, frozen parts, NaN handling.
use candle_core::{Device, Tensor};
use emoclip::emotionclip::EmotionClipConfig;
use emoclip::train::config::{DataSection, ModelSection, Precision, SyntheticSection};
use emoclip::train::data::{Dataset, Item, SyntheticDataset};
use emoclip::train::param_groups::Part;
use emoclip::train::{TrainConfig, Trainer};
use emoclip::weights::{Checkpoint, LoadOptions};
use emoclip::Error;
use rand::rngs::StdRng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn tiny(out: &Path, n: usize, classes: usize, batch: usize, accum: usize, max_steps: usize) -> TrainConfig {
    let toml = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/train_tiny.toml"))
        .unwrap();
    let mut cfg = TrainConfig::from_toml_str(&toml, Path::new("configs/train_tiny.toml")).unwrap();
    cfg.data = DataSection { shards: None, synthetic: Some(SyntheticSection { n, classes, seed: 3, noise: 0.5 }) };
    cfg.model = ModelSection {
        name: "tiny".into(),
        config: None,
        subject: emoclip::emotionclip::SubjectMode::Sap,
        temporal: emoclip::emotionclip::TemporalFusion::Transformer,
    };
    cfg.batch_size = batch;
    cfg.grad_accum = accum;
    cfg.max_steps = Some(max_steps);
    cfg.warmup_steps = 2;
    cfg.checkpoint_every = 0;
    cfg.out_dir = out.to_path_buf();
    cfg
}

fn weights(t: &Trainer) -> HashMap<String, Vec<f32>> {
    let data = t.varmap().data().lock().unwrap();
    data.iter().map(|(k, v)| (k.clone(), v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap())).collect()
}

#[test]
fn resume_is_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    // 16 clips, micro-batch 4, 2 accumulation steps: 2 steps per epoch, so 6 steps cross 3 epochs and the
    // interruption at step 3 falls mid-epoch.
    let a_out = dir.path().join("a");
    let mut a = Trainer::new(tiny(&a_out, 16, 4, 4, 2, 6), Device::Cpu, false).unwrap();
    let mut losses_a = Vec::new();
    a.run(None, |m| losses_a.push(m.loss)).unwrap();
    assert_eq!(a.step(), 6);
    let wa = weights(&a);
    drop(a);

    let b_out = dir.path().join("b");
    let mut b = Trainer::new(tiny(&b_out, 16, 4, 4, 2, 6), Device::Cpu, false).unwrap();
    let mut losses_b = Vec::new();
    b.run(Some(3), |m| losses_b.push(m.loss)).unwrap();
    assert_eq!(b.step(), 3);
    assert!(b_out.join("ckpt-3/model.safetensors").is_file());
    drop(b);
    let mut b = Trainer::new(tiny(&b_out, 16, 4, 4, 2, 6), Device::Cpu, true).unwrap();
    assert_eq!(b.step(), 3);
    b.run(None, |m| losses_b.push(m.loss)).unwrap();
    assert_eq!(b.step(), 6);
    let wb = weights(&b);

    assert_eq!(losses_a, losses_b, "per-step losses differ");
    assert_eq!(wa.len(), wb.len());
    for (k, va) in &wa {
        let vb = &wb[k];
        let same = va.len() == vb.len() && va.iter().zip(vb).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "{k} differs after resume");
    }
    // The training changed the weights (the comparison is not vacuous).
    let init = Trainer::new(tiny(&dir.path().join("c"), 16, 4, 4, 2, 6), Device::Cpu, false).unwrap();
    let w0 = weights(&init);
    assert!(wa.iter().any(|(k, v)| v != &w0[k]));
    // metrics.jsonl has one line per step.
    assert!(std::fs::read_to_string(a_out.join("loss.svg")).unwrap().contains("<svg"));
    let lines = std::fs::read_to_string(a_out.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 6);
    // The checkpoint is loadable for inference (`emoclip embed --weights <dir>/model.safetensors`).
    let ck = Checkpoint::open(&b_out.join("ckpt-6/model.safetensors")).unwrap();
    ck.load_emotionclip(&LoadOptions::default()).unwrap();
}

#[test]
fn learns_paired_synthetic_data() {
    let dir = tempfile::tempdir().unwrap();
    let classes = 8;
    let cfg = tiny(dir.path(), 64, classes, 16, 1, 150);
    let mut t = Trainer::new(cfg, Device::Cpu, false).unwrap();
    let probe: Vec<usize> = (0..classes).collect();
    let r0 = t.retrieval_r1(&probe).unwrap();
    let mut losses = Vec::new();
    let t0 = std::time::Instant::now();
    t.run(None, |m| losses.push(m.loss)).unwrap();
    let r1 = t.retrieval_r1(&probe).unwrap();
    let first: f64 = losses[..10].iter().sum::<f64>() / 10.0;
    let last: f64 = losses[losses.len() - 10..].iter().sum::<f64>() / 10.0;
    eprintln!(
        "tiny synthetic: {} steps in {:.1}s, loss {first:.3} -> {last:.3}, v->t R@1 {r0:.3} -> {r1:.3} (chance {:.3})",
        losses.len(),
        t0.elapsed().as_secs_f64(),
        1.0 / classes as f64
    );
    assert!(last < first * 0.7, "loss did not fall: {first} -> {last}");
    assert!(r1 >= 3.0 / classes as f64, "R@1 {r1} not clearly above chance {}", 1.0 / classes as f64);
}

#[test]
fn frozen_parts_are_not_updated() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny(dir.path(), 16, 4, 4, 1, 3);
    cfg.freeze = vec![Part::Text, Part::LogitScale];
    let mut t = Trainer::new(cfg, Device::Cpu, false).unwrap();
    let w0 = weights(&t);
    t.run(None, |_| {}).unwrap();
    let w1 = weights(&t);
    let mut text = 0;
    for (k, v) in &w0 {
        let is_text = k.starts_with("backbone.") && !k.starts_with("backbone.visual");
        if is_text || k == "logit_scale" {
            text += 1;
            assert_eq!(v, &w1[k], "frozen {k} changed");
        }
    }
    assert!(text > 10);
    assert_ne!(
        w0["backbone.visual.conv1.weight"], w1["backbone.visual.conv1.weight"],
        "unfrozen frame encoder did not train"
    );
}

/// Synthetic data that turns to NaN once `poison` is set.
struct Poisoned {
    inner: SyntheticDataset,
    poison: Arc<AtomicBool>,
}

impl Dataset for Poisoned {
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn get(&self, index: usize, rng: &mut StdRng) -> emoclip::Result<Item> {
        let mut it = self.inner.get(index, rng)?;
        if self.poison.load(Ordering::SeqCst) {
            it.frames[0] = f32::NAN;
        }
        Ok(it)
    }
}

#[test]
fn nan_loss_stops_with_a_clear_error_and_keeps_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny(dir.path(), 16, 4, 4, 1, 10);
    cfg.checkpoint_every = 2;
    let mc = EmotionClipConfig::tiny();
    let poison = Arc::new(AtomicBool::new(false));
    let data = Poisoned {
        inner: SyntheticDataset::new(16, 4, 3, mc.video_len, 32, 64, 12, 0.5).unwrap(),
        poison: poison.clone(),
    };
    let mut t = Trainer::with_dataset(cfg, Box::new(data), Device::Cpu, false).unwrap();
    t.run(Some(2), |_| {}).unwrap();
    poison.store(true, Ordering::SeqCst);
    let err = t.run(None, |_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::NonFinite(_)), "{msg}");
    assert!(msg.contains("step 3"), "{msg}");
    assert!(msg.contains("ckpt-2"), "{msg}");
    assert!(!dir.path().join("ckpt-3").exists());
    let ck = Checkpoint::open(&dir.path().join("ckpt-2")).unwrap();
    let (model, _) = ck.load_emotionclip(&LoadOptions::default()).unwrap();
    let x = model.logit_scale().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(x[0].is_finite());
    let _ = Tensor::zeros(1, candle_core::DType::F32, &Device::Cpu);
}

#[test]
fn configs_parse() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    for f in ["configs/train_tiny.toml", "configs/train_vitb32.toml"] {
        let cfg = TrainConfig::from_file(&root.join(f)).unwrap();
        cfg.model_config().unwrap();
    }
    let bad =
        TrainConfig::from_toml_str("batch_size = 4\nbogus = 1\n[model]\n[data]\nsynthetic = {}\n", Path::new("x.toml"));
    assert!(matches!(bad, Err(Error::Config { .. })));
}

/// Writes one shard of `n` samples with 10 frames of 64×48: a white subject box on a dark background.
fn write_shards(dir: &Path, n: usize) {
    use emoclip::shards::SampleMeta;
    use emoclip::shards::{Sample, ShardWriter};
    let mut w = ShardWriter::new(dir, "emo", 100, u64::MAX).unwrap();
    for i in 0..n {
        let mut files = Vec::new();
        for f in 0..10 {
            let img = image::RgbImage::from_fn(64, 48, |x, y| {
                if (10..40).contains(&x) && (8..30).contains(&y) {
                    image::Rgb([255, 255, 255])
                } else {
                    image::Rgb([(f * 5) as u8, 0, 0])
                }
            });
            let mut buf = std::io::Cursor::new(Vec::new());
            img.write_to(&mut buf, image::ImageFormat::Jpeg).unwrap();
            files.push((format!("frame{f:03}.jpg"), buf.into_inner()));
        }
        let meta = SampleMeta {
            video_id: format!("v{i}"),
            start: 0.0,
            end: 1.0,
            text: format!("caption number {i} is happy"),
            emotion_labels: (0..7).map(|k| format!("e{k}")).collect(),
            emotion_logits: (0..7).map(|k| ((i + k) % 7) as f32).collect(),
            neutral: 0.0,
            fps: 10.0,
            frame_times: (0..10).map(|f| f as f64 / 10.0).collect(),
            boxes: vec![vec![[10.0, 8.0, 40.0, 30.0, 0.9]]; 10],
            frame_size: [64, 48],
        };
        files.push(("json".into(), serde_json::to_vec(&meta).unwrap()));
        w.write(&Sample { key: format!("s{i:04}"), files }).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn shard_data_random_frames_and_matching_crops() {
    use emoclip::train::data::ShardDataset;
    use rand::SeedableRng;
    let dir = tempfile::tempdir().unwrap();
    write_shards(dir.path(), 3);
    let ds = ShardDataset::open(&dir.path().join("emo-*.tar"), 8, 32, 77).unwrap();
    assert_eq!(ds.len(), 3);
    let a = ds.get(1, &mut StdRng::seed_from_u64(7)).unwrap();
    let b = ds.get(1, &mut StdRng::seed_from_u64(7)).unwrap();
    assert_eq!(a.frames, b.frames, "not deterministic for a fixed seed");
    assert_eq!(a.frames.len(), 8 * 3 * 32 * 32);
    assert_eq!(a.mask.len(), 8 * 32 * 32);
    assert_eq!(a.ids.len(), 77);
    assert_eq!(a.ids[0], emoclip::tokenizer::SOT);
    assert_eq!(a.emotion, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0]);
    // The mask is cropped like the frame: bright (white box) pixels under the mask, dark ones outside.
    for t in 0..8 {
        let (mut inside, mut outside, mut ni, mut no) = (0f32, 0f32, 0, 0);
        for p in 0..32 * 32 {
            let g = a.frames[(t * 3 + 1) * 32 * 32 + p];
            if a.mask[t * 32 * 32 + p] > 0.5 {
                inside += g;
                ni += 1;
            } else {
                outside += g;
                no += 1;
            }
        }
        assert!(ni > 0, "frame {t}: empty mask");
        if no > 0 {
            assert!(inside / (ni as f32) > 1.5 && outside / (no as f32) < -1.0, "frame {t}: mask and crop disagree");
        }
    }
    // Different seeds pick different crops / frames.
    let c = ds.get(1, &mut StdRng::seed_from_u64(8)).unwrap();
    assert_ne!(a.frames, c.frames);
}

#[test]
fn trains_on_shards() {
    let dir = tempfile::tempdir().unwrap();
    write_shards(&dir.path().join("shards"), 4);
    let mut mc = EmotionClipConfig::tiny();
    mc.backbone.text_cfg.vocab_size = 49408;
    mc.backbone.text_cfg.context_length = 77;
    let cj = dir.path().join("model.json");
    std::fs::write(&cj, mc.to_json()).unwrap();
    let mut cfg = tiny(&dir.path().join("out"), 4, 1, 2, 1, 2);
    cfg.data = DataSection { shards: Some(dir.path().join("shards")), synthetic: None };
    cfg.model.config = Some(cj);
    let mut t = Trainer::new(cfg, Device::Cpu, false).unwrap();
    let mut losses = Vec::new();
    t.run(None, |m| losses.push(m.loss)).unwrap();
    assert_eq!(losses.len(), 2);
    assert!(losses.iter().all(|l| l.is_finite()));
}

#[test]
fn random_frame_sampling_is_sorted_without_replacement() {
    use emoclip::train::data::random_frame_indices;
    use rand::SeedableRng;
    let mut rng = StdRng::seed_from_u64(1);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..50 {
        let p = random_frame_indices(20, 8, &mut rng);
        assert_eq!(p.len(), 8);
        assert!(p.windows(2).all(|w| w[0] < w[1]), "{p:?}");
        assert!(p.iter().all(|&i| i < 20));
        seen.insert(p);
    }
    assert!(seen.len() > 40, "draws are not random");
    let short = random_frame_indices(3, 8, &mut rng);
    assert!(short.len() == 8 && short.windows(2).all(|w| w[0] <= w[1]) && short.iter().all(|&i| i < 3));
}

#[test]
fn learns_in_bf16_mixed_precision() {
    let dir = tempfile::tempdir().unwrap();
    let classes = 8;
    let mut cfg = tiny(dir.path(), 64, classes, 16, 1, 80);
    cfg.precision = Precision::Bf16;
    cfg.validate(Some(Path::new("test.toml"))).unwrap();
    let mut t = Trainer::new(cfg, Device::Cpu, false).unwrap();
    let mut losses = Vec::new();
    t.run(None, |m| losses.push(m.loss)).unwrap();
    let first: f64 = losses[..10].iter().sum::<f64>() / 10.0;
    let last: f64 = losses[losses.len() - 10..].iter().sum::<f64>() / 10.0;
    eprintln!("bf16 autocast: loss {first:.3} -> {last:.3}");
    assert!(losses.iter().all(|l| l.is_finite()));
    assert!(last < first * 0.7, "bf16 loss did not fall: {first} -> {last}");
    // Master weights stay f32.
    assert!(t.varmap().data().lock().unwrap().values().all(|v| v.dtype() == candle_core::DType::F32));
    // An unknown precision is refused when the config is read.
    let toml = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/train_tiny.toml"))
        .unwrap();
    let err = TrainConfig::from_toml_str(&format!("precision = \"fp8\"\n{toml}"), Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("precision") && err.contains("x.toml"), "{err}");
}

/// Every regular file under `dir` (recursively).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The mode a file created here gets (0666 less this process's umask).
#[cfg(unix)]
fn new_file_mode(dir: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("mode-probe");
    std::fs::File::create(&p).unwrap();
    let m = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    std::fs::remove_file(&p).unwrap();
    m
}

/// Issue 11 §2.3: a fresh run refuses a directory holding a run (naming the ways out), an empty directory is
/// fine, and `Start::Overwrite` deletes exactly the old run's entries before the new run writes.
#[test]
fn fresh_run_refuses_an_existing_run_and_overwrite_replaces_it() {
    use emoclip::run::Start;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    std::fs::create_dir_all(&out).unwrap();
    let mut cfg = tiny(&out, 16, 4, 4, 1, 4);
    cfg.checkpoint_every = 2;
    // An existing empty directory is fine.
    Trainer::new(cfg.clone(), Device::Cpu, false).unwrap().run(None, |_| {}).unwrap();
    assert!(out.join("ckpt-4").is_dir() && out.join("ckpt-2").is_dir());
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let short = TrainConfig { max_steps: Some(1), ..cfg.clone() };
    let err = Trainer::new(short.clone(), Device::Cpu, false).err().expect("a second fresh run is refused").to_string();
    assert!(
        err.contains("already holds a training run")
            && err.contains("ckpt-2")
            && err.contains("--resume")
            && err.contains("--out")
            && err.contains("--overwrite"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(out.join("LATEST")).unwrap().trim(), "ckpt-4", "refused before writing");
    let mut t = Trainer::new(short, Device::Cpu, Start::Overwrite).unwrap();
    t.run(None, |_| {}).unwrap();
    assert!(!out.join("ckpt-4").exists() && !out.join("ckpt-2").exists() && out.join("ckpt-1").is_dir());
    assert_eq!(std::fs::read_to_string(out.join("LATEST")).unwrap().trim(), "ckpt-1");
    assert_eq!(std::fs::read_to_string(out.join("metrics.jsonl")).unwrap().lines().count(), 1);
    assert_eq!(std::fs::read_to_string(out.join("notes.txt")).unwrap(), "mine", "other files stay");
}

/// Issue 11 §2.4: a run killed after logging steps past its last checkpoint, then resumed, has each step once
/// in `metrics.jsonl` (the rows after the checkpoint are dropped, not kept beside their repeats), with the
/// same values as an uninterrupted run.
#[test]
fn resumed_metrics_have_each_step_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny(&dir.path().join("a"), 16, 4, 4, 1, 6);
    cfg.checkpoint_every = 2;
    Trainer::new(cfg.clone(), Device::Cpu, false).unwrap().run(None, |_| {}).unwrap();
    let full = std::fs::read_to_string(dir.path().join("a/metrics.jsonl")).unwrap();
    let cfg = TrainConfig { out_dir: dir.path().join("b"), ..cfg };
    let mut t = Trainer::new(cfg.clone(), Device::Cpu, false).unwrap();
    // A kill right after step 3 was logged (the last checkpoint is step 2).
    let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        t.run(None, |m| assert!(m.step < 3, "killed after logging step 3")).unwrap()
    }));
    assert!(killed.is_err());
    drop(t);
    assert_eq!(std::fs::read_to_string(cfg.out_dir.join("LATEST")).unwrap().trim(), "ckpt-2");
    let mut t = Trainer::new(cfg.clone(), Device::Cpu, true).unwrap();
    assert_eq!(t.step(), 2);
    t.run(None, |_| {}).unwrap();
    let text = std::fs::read_to_string(cfg.out_dir.join("metrics.jsonl")).unwrap();
    let rows: Vec<emoclip::train::StepMetrics> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.iter().map(|m| m.step).collect::<Vec<_>>(), (1..=6).collect::<Vec<_>>(), "{text}");
    let want: Vec<emoclip::train::StepMetrics> = full.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for (a, b) in rows.iter().zip(&want) {
        assert_eq!(a.loss.to_bits(), b.loss.to_bits(), "step {} loss", a.step);
    }
}

/// Issue 11 §2.7: every file of a run directory (checkpoint tensors included) has ordinary permissions.
#[cfg(unix)]
#[test]
fn run_files_have_ordinary_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let want = new_file_mode(dir.path());
    let out = dir.path().join("run");
    Trainer::new(tiny(&out, 16, 4, 4, 1, 2), Device::Cpu, false).unwrap().run(None, |_| {}).unwrap();
    let files = files_under(&out);
    assert!(files.iter().any(|p| p.ends_with("ckpt-2/optimizer.safetensors")), "{files:?}");
    for f in files {
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, want, "{}: mode {mode:o}, a new file here gets {want:o}", f.display());
    }
}

/// Issue 11 §2.12: configs that cannot train anything are refused when read, naming the file.
#[test]
fn configs_that_train_nothing_are_refused() {
    let toml = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/train_tiny.toml"))
        .unwrap();
    let zero = toml.replace("max_steps = 150", "max_steps = 0");
    let frozen = toml.replace("freeze = []", r#"freeze = ["text", "visual", "temporal", "logit_scale"]"#);
    assert!(zero != toml && frozen != toml, "configs/train_tiny.toml changed; update this test");
    for (text, what) in [(zero, "max_steps = 0"), (frozen, "nothing would be trained")] {
        let err = TrainConfig::from_toml_str(&text, Path::new("my_run.toml")).unwrap_err().to_string();
        assert!(err.contains("my_run.toml") && err.contains(what), "{err}");
    }
    // Built in code, the same settings are refused by the trainer before it writes anything.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut cfg = tiny(&out, 16, 4, 4, 1, 2);
    cfg.freeze = Part::ALL.to_vec();
    let err = Trainer::new(cfg, Device::Cpu, false).err().expect("refused").to_string();
    assert!(err.contains("nothing would be trained"), "{err}");
    assert!(!out.exists());
}

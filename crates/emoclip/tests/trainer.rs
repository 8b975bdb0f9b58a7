//! Training loop (official `src/engine/trainer.py`): exact resume, learning on paired synthetic data, frozen parts, NaN handling.
use candle_core::{Device, Tensor};
use emoclip::train::data::{Dataset, Item, SyntheticDataset};
use emoclip::train::trainer::{tiny_config, DataSection, ModelSection, SyntheticSection};
use emoclip::train::{TrainConfig, Trainer};
use emoclip::weights::{Checkpoint, LoadOptions};
use emoclip::Error;
use rand::rngs::StdRng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn tiny(out: &Path, n: usize, classes: usize, batch: usize, accum: usize, max_steps: usize) -> TrainConfig {
    let toml = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/train_tiny.toml")).unwrap();
    let mut cfg = TrainConfig::from_toml_str(&toml, Path::new("configs/train_tiny.toml")).unwrap();
    cfg.data = DataSection { shards: None, synthetic: Some(SyntheticSection { n, classes, seed: 3, noise: 0.5 }) };
    cfg.model = ModelSection { name: "tiny".into(), config: None, subject: emoclip::emotionclip::SubjectMode::Sap, temporal: emoclip::emotionclip::TemporalFusion::Transformer };
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
    cfg.freeze = vec!["text".into(), "logit_scale".into()];
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
    assert_ne!(w0["backbone.visual.conv1.weight"], w1["backbone.visual.conv1.weight"], "unfrozen frame encoder did not train");
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
    let mc = tiny_config();
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
    let bad = TrainConfig::from_toml_str("batch_size = 4\nbogus = 1\n[model]\n[data]\nsynthetic = {}\n", Path::new("x.toml"));
    assert!(matches!(bad, Err(Error::Config { .. })));
}

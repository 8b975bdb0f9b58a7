//! MER-CLIP training (`mer::train`) with a tiny model: learning a synthetic task whose labels depend on the
//! features (well above chance / the majority baseline), exact resume, the best-on-valid + test outputs on the
//! tiny MOSI / MOSEI pickles, and a clear stop on a NaN loss.
use crate::common;
use candle_core::Device;
use emoclip::mer::data::{MmsaData, SyntheticSpec};
use emoclip::mer::train::{model_config, MerTrainConfig, MerTrainer, MetricLine, Scores};
use emoclip::mer::MerTask;

fn train_cfg(out: &std::path::Path, lr: f64, epochs: usize, batch: usize) -> MerTrainConfig {
    MerTrainConfig { lr, epochs, batch_size: batch, seed: 5, out_dir: out.to_path_buf(), ..Default::default() }
}

#[test]
fn learns_the_synthetic_tasks_well_above_chance() {
    let t0 = std::time::Instant::now();
    for task in [MerTask::Sentiment, MerTask::Emotion] {
        let spec =
            SyntheticSpec { sizes: [256, 64, 128], len: 6, dims: [16, 5, 4], emotion: true, noise: 0.5, seed: 1 };
        let data = MmsaData::synthetic(&spec).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mcfg = model_config(task, &data, Some(task.default_query_word()), true);
        let mut tr =
            MerTrainer::new(train_cfg(dir.path(), 3e-3, 6, 16), mcfg, data.clone(), None, Device::Cpu, false).unwrap();
        let test = tr
            .run(None, |l| {
                if let MetricLine::Epoch { epoch, valid, train_loss, .. } = l {
                    eprintln!("{task:?} epoch {epoch} loss {train_loss:.4} {}", valid.summary())
                }
            })
            .unwrap()
            .unwrap();
        eprintln!("{task:?} test {} ({:.1}s)", test.scores.summary(), t0.elapsed().as_secs_f64());
        match test.scores {
            Scores::Sentiment(m) => {
                let pos = data.test.sentiment_positive().iter().filter(|&&p| p).count() as f64 / data.test.len() as f64;
                let majority = pos.max(1.0 - pos);
                assert!(
                    m.acc2_has0 > 0.85 && m.acc2_has0 > majority + 0.2,
                    "Acc-2 {} vs majority {majority}",
                    m.acc2_has0
                );
            }
            Scores::Emotion(m) => {
                // Predicting every emotion present gives micro-F1 = 2p/(1+p) with p the positive rate (~0.35).
                let t = data.test.emotion_targets().unwrap();
                let p = t.iter().flatten().filter(|&&x| x).count() as f64 / (t.len() * 6) as f64;
                let all_on = 2.0 * p / (1.0 + p);
                assert!(
                    m.micro_f1 > 0.75 && m.micro_f1 > all_on + 0.2,
                    "micro-F1 {} vs predict-all {all_on}",
                    m.micro_f1
                );
                assert!(m.accuracy > 0.6, "Jaccard accuracy {}", m.accuracy);
            }
        }
    }
}

fn weights(tr: &MerTrainer) -> Vec<(String, Vec<f32>)> {
    let data = tr.varmap().data().lock().unwrap();
    let mut v: Vec<(String, Vec<f32>)> =
        data.iter().map(|(k, v)| (k.clone(), v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn resume_mid_epoch_is_bit_identical_to_an_uninterrupted_run() {
    let data = MmsaData::read(&common::fixture("mmsa/mosi_tiny.pkl")).unwrap();
    let mcfg = model_config(MerTask::Sentiment, &data, Some("Sentiment".into()), true);
    // 24 training utterances, batch 8: 3 steps per epoch, 3 epochs; stop at step 4 (inside epoch 1).
    let a = tempfile::tempdir().unwrap();
    let mut full =
        MerTrainer::new(train_cfg(a.path(), 2e-3, 3, 8), mcfg.clone(), data.clone(), None, Device::Cpu, false).unwrap();
    let test_full = full.run(None, |_| {}).unwrap().unwrap();
    let b = tempfile::tempdir().unwrap();
    let mut first =
        MerTrainer::new(train_cfg(b.path(), 2e-3, 3, 8), mcfg.clone(), data.clone(), None, Device::Cpu, false).unwrap();
    assert!(first.run(Some(4), |_| {}).unwrap().is_none());
    assert_eq!((first.step(), first.epoch()), (4, 1));
    let w_mid = weights(&first);
    drop(first);
    let mut second = MerTrainer::new(train_cfg(b.path(), 2e-3, 3, 8), mcfg, data, None, Device::Cpu, true).unwrap();
    assert_eq!(second.step(), 4);
    assert_eq!(weights(&second), w_mid, "the checkpoint restores the weights exactly");
    let test_resumed = second.run(None, |_| {}).unwrap().unwrap();
    assert_eq!(second.step(), full.step());
    let (wf, wr) = (weights(&full), weights(&second));
    assert_eq!(wf.len(), wr.len());
    for ((n, x), (_, y)) in wf.iter().zip(&wr) {
        assert!(x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()), "{n} differs after resume");
    }
    assert_ne!(weights(&full), w_mid, "training moved the weights");
    assert_eq!(test_full.predictions, test_resumed.predictions);
    assert_eq!(test_full.scores, test_resumed.scores);
    // The resumed run's metrics.jsonl has every step once (steps 1-4 from the first part, 5-9 after resuming).
    let lines = std::fs::read_to_string(b.path().join("metrics.jsonl")).unwrap();
    let steps: Vec<usize> = lines
        .lines()
        .filter_map(|l| match serde_json::from_str::<MetricLine>(l).unwrap() {
            MetricLine::Step { step, .. } => Some(step),
            _ => None,
        })
        .collect();
    assert_eq!(steps, (1..=9).collect::<Vec<_>>());
}

#[test]
fn tiny_mosei_emotion_run_writes_best_checkpoint_test_and_plot() {
    let data = MmsaData::read(&common::fixture("mmsa/mosei_tiny.pkl")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mcfg = model_config(MerTask::Emotion, &data, None, true);
    let tc = MerTrainConfig { checkpoint_every: 1, ..train_cfg(dir.path(), 2e-3, 2, 12) };
    let mut tr = MerTrainer::new(tc, mcfg, data.clone(), None, Device::Cpu, false).unwrap();
    let mut epochs = 0;
    let test = tr.run(None, |l| epochs += matches!(l, MetricLine::Epoch { .. }) as usize).unwrap().unwrap();
    assert_eq!(epochs, 2);
    assert_eq!((test.predictions.len(), test.predictions[0].len()), (8, 6));
    for f in [
        "best/model.safetensors",
        "best/config.json",
        "best/valid.json",
        "test.json",
        "training.svg",
        "LATEST",
        "ckpt-4/optimizer.safetensors",
        "ckpt-4/mer_state.json",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    // Checkpoints after every step, only the newest two kept.
    let mut ckpts: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str().filter(|n| n.starts_with("ckpt-")).map(String::from))
        .collect();
    ckpts.sort();
    assert_eq!(ckpts, ["ckpt-3", "ckpt-4"]);
    let svg = std::fs::read_to_string(dir.path().join("training.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("micro_f1"));
    // The best/ model evaluates to the reported test scores.
    let (m, _) = emoclip::mer::train::load_model(&dir.path().join("best"), &Device::Cpu).unwrap();
    let again = emoclip::mer::train::evaluate(&m, &data.test, 4, &Device::Cpu).unwrap();
    assert_eq!(again.predictions, test.predictions);
    // MOSI has no emotion labels: a clear error.
    let mosi = MmsaData::read(&common::fixture("mmsa/mosi_tiny.pkl")).unwrap();
    let mcfg = model_config(MerTask::Emotion, &mosi, None, true);
    let err = MerTrainer::new(train_cfg(&dir.path().join("mosi"), 1e-3, 1, 8), mcfg, mosi, None, Device::Cpu, false)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("mosi_tiny.pkl") && err.contains("emotion_labels") && err.contains("--task sentiment"),
        "{err}"
    );
}

#[test]
fn nan_loss_stops_with_a_clear_error() {
    let mut data = MmsaData::synthetic(&SyntheticSpec {
        sizes: [8, 2, 2],
        len: 3,
        dims: [4, 3, 2],
        emotion: false,
        noise: 0.1,
        seed: 2,
    })
    .unwrap();
    data.train.audio.data[5] = f32::NAN;
    let dir = tempfile::tempdir().unwrap();
    let mcfg = model_config(MerTask::Sentiment, &data, None, true);
    let mut tr = MerTrainer::new(train_cfg(dir.path(), 1e-3, 1, 8), mcfg, data, None, Device::Cpu, false).unwrap();
    let err = tr.run(None, |_| {}).unwrap_err().to_string();
    assert!(err.contains("NaN") && err.contains("step 1") && err.contains("last good checkpoint"), "{err}");
}

#[test]
fn clip_init_takes_the_text_tower_and_seeds_the_rest() {
    use emoclip::mer::train::build_model;
    let dev = Device::Cpu;
    let data = MmsaData::read(&common::fixture("mmsa/mosei_tiny.pkl")).unwrap();
    let cfg = model_config(MerTask::Emotion, &data, Some("Emotion".into()), true);
    let get = |vm: &candle_nn::VarMap, k: &str| {
        vm.data().lock().unwrap()[k].as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    // An open_clip-layout text tower (from a differently seeded model) with its config beside it.
    let (_, donor) = build_model(&cfg, None, 9, &dev).unwrap();
    let text: std::collections::HashMap<String, candle_core::Tensor> = donor
        .data()
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("text.").map(|r| (r.to_string(), v.as_tensor().clone())))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.safetensors");
    candle_core::safetensors::save(&text, &path).unwrap();
    std::fs::write(dir.path().join("clip.json"), serde_json::to_string(&cfg.clip).unwrap()).unwrap();
    let (_, plain) = build_model(&cfg, None, 3, &dev).unwrap();
    let (_, a) = build_model(&cfg, Some(&path), 3, &dev).unwrap();
    let (_, b) = build_model(&cfg, Some(&path), 3, &dev).unwrap();
    for k in
        ["text.token_embedding.weight", "text.transformer.resblocks.1.attn.in_proj_weight", "text.positional_embedding"]
    {
        assert_eq!(get(&a, k), get(&donor, k), "{k} from the checkpoint");
        assert_ne!(get(&a, k), get(&plain, k));
    }
    for k in ["prompt.ctx", "proj.audio.weight", "cmd.vision.layers.0.linear1.weight"] {
        assert_eq!(get(&a, k), get(&plain, k), "{k} seeded as without --clip");
        assert_eq!(get(&a, k), get(&b, k));
    }
    let tp = donor.data().lock().unwrap()["text.text_projection"]
        .as_tensor()
        .t()
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_eq!(get(&a, "out_proj.weight"), tp, "out_proj starts as text_projectionᵀ");
    // Training with it leaves the frozen text tower untouched.
    let out = tempfile::tempdir().unwrap();
    let mut tr = MerTrainer::new(train_cfg(out.path(), 1e-2, 1, 12), cfg, data, Some(&path), dev, false).unwrap();
    tr.train_step().unwrap();
    assert_eq!(
        get(tr.varmap(), "text.transformer.resblocks.0.mlp.c_fc.weight"),
        get(&donor, "text.transformer.resblocks.0.mlp.c_fc.weight")
    );
    assert_ne!(get(tr.varmap(), "prompt.ctx"), get(&plain, "prompt.ctx"));
}

#[test]
fn learns_from_bert_text_features() {
    // mosi_bert_tiny.pkl: only the BERT token ids carry the sentiment (vision / audio are noise, no GloVe `text`).
    let t0 = std::time::Instant::now();
    let bert =
        emoclip::text_emotion::BertModel::load(&common::fixture("bert_tiny").display().to_string(), &Device::Cpu)
            .unwrap();
    let opts = emoclip::mer::bert_text::BertText { model: &bert, batch_size: 32, cache_dir: None, device: Device::Cpu };
    let data = MmsaData::read_bert(&common::fixture("mmsa/mosi_bert_tiny.pkl"), &opts, |_, _, _| {}).unwrap();
    assert_eq!(data.dims()[0], 32);
    let dir = tempfile::tempdir().unwrap();
    let mut mcfg = model_config(MerTask::Sentiment, &data, Some("Sentiment".into()), true);
    mcfg.bert = Some(common::fixture("bert_tiny").display().to_string());
    let mut tr =
        MerTrainer::new(train_cfg(dir.path(), 3e-3, 8, 16), mcfg, data.clone(), None, Device::Cpu, false).unwrap();
    let test = tr.run(None, |_| {}).unwrap().unwrap();
    let Scores::Sentiment(m) = test.scores else { panic!("sentiment scores") };
    let pos = data.test.sentiment_positive().iter().filter(|&&p| p).count() as f64 / data.test.len() as f64;
    let majority = pos.max(1.0 - pos);
    eprintln!("BERT text: test {} (majority {majority:.3}, {:.1}s)", test.scores.summary(), t0.elapsed().as_secs_f64());
    assert!(m.acc2_has0 > 0.85 && m.acc2_has0 > majority + 0.2, "Acc-2 {} vs majority {majority}", m.acc2_has0);
    // The run's config records where the text features came from.
    let cfg = emoclip::mer::MerConfig::from_file(&dir.path().join("best/config.json")).unwrap();
    assert!(cfg.bert.unwrap().ends_with("bert_tiny"));
}

/// The kinds of `metrics.jsonl` lines in order: `s<step>`, `e<epoch>`, `test`.
fn metric_kinds(out: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| match serde_json::from_str::<MetricLine>(l).unwrap() {
            MetricLine::Step { step, .. } => format!("s{step}"),
            MetricLine::Epoch { epoch, .. } => format!("e{epoch}"),
            MetricLine::Test { .. } => "test".into(),
        })
        .collect()
}

/// Issue 11 §2.4: a run killed after logging steps past its last checkpoint, then resumed, and a finished run
/// resumed again, have every step, epoch and test line once in `metrics.jsonl`.
#[test]
fn resumed_metrics_have_each_line_once() {
    let data = MmsaData::read(&common::fixture("mmsa/mosi_tiny.pkl")).unwrap();
    let mcfg = model_config(MerTask::Sentiment, &data, Some("Sentiment".into()), true);
    let dir = tempfile::tempdir().unwrap();
    // 24 training utterances, batch 8: 3 steps per epoch; checkpoints at steps 2, 3 (epoch end), 4, 6, ...
    let tc = MerTrainConfig { checkpoint_every: 2, ..train_cfg(dir.path(), 2e-3, 3, 8) };
    let mut tr = MerTrainer::new(tc.clone(), mcfg.clone(), data.clone(), None, Device::Cpu, false).unwrap();
    // A kill right after step 5 was logged (the last checkpoint is step 4).
    let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tr.run(None, |l| assert!(!matches!(l, MetricLine::Step { step: 5, .. }), "killed after step 5")).unwrap()
    }));
    assert!(killed.is_err());
    drop(tr);
    assert_eq!(metric_kinds(dir.path()), ["s1", "s2", "s3", "e0", "s4", "s5"]);
    let want: Vec<String> =
        ["s1", "s2", "s3", "e0", "s4", "s5", "s6", "e1", "s7", "s8", "s9", "e2", "test"].map(String::from).to_vec();
    for _ in 0..2 {
        // Resumed from step 4, then the finished run resumed once more (it only evaluates test again).
        let mut tr = MerTrainer::new(tc.clone(), mcfg.clone(), data.clone(), None, Device::Cpu, true).unwrap();
        tr.run(None, |_| {}).unwrap().unwrap();
        assert_eq!(metric_kinds(dir.path()), want);
    }
}

/// Issue 11 §2.3 for MER-CLIP: a fresh run refuses a directory holding a run; `Start::Overwrite` replaces it,
/// leaving other files alone.
#[test]
fn fresh_run_refuses_an_existing_run_and_overwrite_replaces_it() {
    use emoclip::run::Start;
    let data = MmsaData::read(&common::fixture("mmsa/mosi_tiny.pkl")).unwrap();
    let mcfg = model_config(MerTask::Sentiment, &data, None, true);
    let dir = tempfile::tempdir().unwrap();
    let tc = train_cfg(dir.path(), 2e-3, 2, 8);
    MerTrainer::new(tc.clone(), mcfg.clone(), data.clone(), None, Device::Cpu, false)
        .unwrap()
        .run(None, |_| {})
        .unwrap();
    assert!(dir.path().join("ckpt-6").is_dir());
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let one = MerTrainConfig { epochs: 1, ..tc };
    let err = MerTrainer::new(one.clone(), mcfg.clone(), data.clone(), None, Device::Cpu, false)
        .err()
        .expect("a second fresh run is refused")
        .to_string();
    assert!(
        err.contains("already holds a training run") && err.contains("--resume") && err.contains("--overwrite"),
        "{err}"
    );
    let mut tr = MerTrainer::new(one, mcfg, data, None, Device::Cpu, Start::Overwrite).unwrap();
    tr.run(None, |_| {}).unwrap().unwrap();
    assert!(!dir.path().join("ckpt-6").exists() && dir.path().join("ckpt-3").is_dir());
    assert_eq!(metric_kinds(dir.path()), ["s1", "s2", "s3", "e0", "test"]);
    assert_eq!(std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(), "mine");
}

/// Issue 11 §2.7 for MER-CLIP: checkpoints and `best/` have ordinary permissions (0666 less the umask).
#[cfg(unix)]
#[test]
fn run_files_have_ordinary_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let data = MmsaData::read(&common::fixture("mmsa/mosi_tiny.pkl")).unwrap();
    let mcfg = model_config(MerTask::Sentiment, &data, None, true);
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("probe");
    std::fs::File::create(&probe).unwrap();
    let want = std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777;
    let out = dir.path().join("run");
    let mut tr = MerTrainer::new(train_cfg(&out, 2e-3, 1, 8), mcfg, data, None, Device::Cpu, false).unwrap();
    tr.run(None, |_| {}).unwrap().unwrap();
    let mut n = 0;
    for sub in ["", "best", "ckpt-3"] {
        for e in std::fs::read_dir(out.join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, want, "{}: mode {mode:o}, a new file here gets {want:o}", p.display());
                n += 1;
            }
        }
    }
    assert!(
        n >= 10 && out.join("best/model.safetensors").is_file() && out.join("ckpt-3/optimizer.safetensors").is_file()
    );
}

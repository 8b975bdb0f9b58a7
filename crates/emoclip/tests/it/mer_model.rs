//! MER-CLIP model (crates/emoclip/src/mer/): PyTorch parity on `fixtures/mer_model/` (written by
//! `scripts/fixtures/gen_mer_model.py`: open_clip `TextTransformer` + `nn.TransformerDecoderLayer` stacks),
//! gradients of every trainable parameter, frozen text tower, loading the text tower from a CLIP
//! checkpoint, and input / config errors.
use crate::common;
use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarMap;
use common::{fixture, rel_err, Tol};
use emoclip::mer::{FeatureDims, MerClip, MerConfig, MerInputs, MerTask};
use emoclip::weights::{CheckedTensors, Missing};
use std::collections::HashMap;

/// Parity tolerance: max |rust − torch| / max |torch| per tensor (f32 Rust vs float64 PyTorch).
/// 3× the measured worst element over forward outputs, loss and gradients (max |Δ| 3.8e-6, on logits up to 8.4).
const TOL: Tol = Tol::new(2.8e-6, 2.8e-5);
const CASES: [&str; 4] = ["emo_word", "emo_noword", "sent_word", "sent_noword"];

fn load(name: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture(&format!("mer_model/{name}")), &Device::Cpu).unwrap()
}

/// The fixture weights with the token-embedding table rebuilt (stored rows scattered into zeros).
fn weights(task: MerTask) -> HashMap<String, Tensor> {
    let mut w = load("weights.safetensors");
    let ids: Vec<i64> = w.remove("text.token_embedding.ids").unwrap().to_vec1().unwrap();
    let rows: Vec<Vec<f32>> = w.remove("text.token_embedding.rows").unwrap().to_vec2().unwrap();
    let width = rows[0].len();
    let mut table = vec![0f32; 49408 * width];
    for (id, row) in ids.iter().zip(&rows) {
        table[*id as usize * width..(*id as usize + 1) * width].copy_from_slice(row);
    }
    w.insert("text.token_embedding.weight".into(), Tensor::from_vec(table, (49408, width), &Device::Cpu).unwrap());
    if task == MerTask::Emotion {
        w.remove("logit_scale");
    }
    w
}

fn config(case: &str) -> MerConfig {
    MerConfig::from_file(&fixture(&format!("mer_model/config_{case}.json"))).unwrap()
}

/// Builds the model from the fixture weights, every tensor a `Var` in `varmap`; the load must be clean.
fn fixture_model(cfg: &MerConfig, varmap: &VarMap) -> MerClip {
    let checked = CheckedTensors::new(weights(cfg.task), Missing::Error, Some(varmap.clone()));
    let model = MerClip::new(cfg, checked.var_builder(DType::F32, &Device::Cpu), &Device::Cpu).unwrap();
    let report = checked.report(&[]);
    assert!(report.is_clean(), "fixture weights do not fit the model:{}", report.describe());
    model
}

fn inputs(io: &HashMap<String, Tensor>, lens: bool) -> MerInputs {
    let len = |m: &str| -> Option<Vec<usize>> {
        lens.then(|| io[&format!("{m}_len")].to_vec1::<i64>().unwrap().iter().map(|&x| x as usize).collect())
    };
    MerInputs {
        text: io["text"].clone(),
        vision: io["vision"].clone(),
        audio: io["audio"].clone(),
        text_len: len("text"),
        vision_len: len("vision"),
        audio_len: len("audio"),
    }
}

fn check(case: &str, name: &str, got: &Tensor, want: &Tensor) {
    common::assert_close(&format!("MER-CLIP {case} {name}"), got, want, TOL);
}

#[test]
fn matches_pytorch_forward_loss_and_gradients() {
    let io = load("io.safetensors");
    for case in CASES {
        let cfg = config(case);
        let varmap = VarMap::new();
        let model = fixture_model(&cfg, &varmap);
        let g = |k: &str| io[&format!("{case}.{k}")].clone();
        // Tokenisation agrees with open_clip.
        let qids: Vec<u32> = g("query_ids").to_vec1::<i64>().unwrap().iter().map(|&x| x as u32).collect();
        assert_eq!(model.query.ids(), qids, "{case}: query token ids");
        let lids = g("label_ids").to_dtype(DType::U32).unwrap().to_vec2::<u32>().unwrap();
        assert_eq!(model.labels.ids.to_vec2::<u32>().unwrap(), lids, "{case}: label token ids");

        let out = model.forward_detailed(&inputs(&io, case != "sent_noword"), false).unwrap();
        check(case, "query Z^E", &out.query, &g("query"));
        check(case, "labels Z^L", &out.labels, &g("labels"));
        for (i, z) in out.stages.iter().enumerate() {
            check(case, &format!("Z^[{}]", i + 1), z, &g(&format!("z{}", i + 1)));
        }
        check(case, "features", &out.features, &g("features"));
        check(case, "sims", &out.sims, &g("sims"));
        check(case, "logits", &out.logits, &g("logits"));
        check(case, "probabilities", &model.probabilities(&out.logits).unwrap(), &g("probs"));
        let pred = model.predict(&out.logits).unwrap();
        assert_eq!(
            pred.to_vec2::<f32>().unwrap(),
            g("pred").to_dtype(DType::F32).unwrap().to_vec2::<f32>().unwrap(),
            "{case}: predictions"
        );
        let loss = model.loss(&out.logits, &g("targets")).unwrap();
        check(case, "loss", &loss, &g("loss"));

        let grads = loss.backward().unwrap();
        let vars = varmap.data().lock().unwrap();
        for (k, want) in
            io.iter().filter_map(|(k, v)| k.strip_prefix(&format!("{case}.grad.")).map(|p| (p.to_string(), v)))
        {
            let var = vars.get(&k).unwrap_or_else(|| panic!("{case}: no parameter {k}"));
            let got = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{case}: no gradient for {k}"));
            check(case, &format!("grad {k}"), got, want);
        }
        // Frozen text tower: nothing reaches it.
        for (k, v) in vars.iter().filter(|(k, _)| k.starts_with("text.")) {
            assert!(grads.get(v.as_tensor()).is_none(), "{case}: frozen {k} received a gradient");
        }
    }
}

#[test]
fn padding_is_masked_out() {
    // Changing features beyond each sample's length must not change anything; changing a valid step must.
    let io = load("io.safetensors");
    let cfg = config("emo_word");
    let model = fixture_model(&cfg, &VarMap::new());
    let base = inputs(&io, true);
    let want = model.forward(&base, false).unwrap();
    let mut noisy = base.clone();
    let v = base.vision.to_vec3::<f32>().unwrap();
    let lens = base.vision_len.clone().unwrap();
    let mut v2 = v.clone();
    for (b, row) in v2.iter_mut().enumerate() {
        for (t, step) in row.iter_mut().enumerate() {
            if t >= lens[b] {
                step.iter_mut().for_each(|x| *x = 100.0);
            }
        }
    }
    let flat: Vec<f32> = v2.into_iter().flatten().flatten().collect();
    noisy.vision = Tensor::from_vec(flat, base.vision.dims(), &Device::Cpu).unwrap();
    assert!(rel_err(&model.forward(&noisy, false).unwrap(), &want) < 1e-6);
    let changed = (base.vision.clone() * 1.5).unwrap();
    noisy.vision = changed;
    assert!(rel_err(&model.forward(&noisy, false).unwrap(), &want) > 1e-3);
}

/// Every trainable parameter gets a finite, non-zero gradient; frozen `text.*` ones get none.
fn check_gradients(task: MerTask, query_word: Option<&str>, freeze_text: bool) {
    let dev = Device::Cpu;
    let mut cfg = MerConfig::tiny(task, FeatureDims { text: 9, vision: 4, audio: 3 });
    cfg.query_word = query_word.map(String::from);
    cfg.freeze_text = freeze_text;
    cfg.cmd.layers = 2;
    if query_word.is_none() {
        // Also exercise the ReLU feed-forward option.
        cfg.cmd.activation = emoclip::mer::CmdActivation::Relu;
    }
    let varmap = VarMap::new();
    let model = MerClip::new(&cfg, common::seeded_var_builder(&varmap, 1), &dev).unwrap();
    let b = 4;
    let batch = MerInputs {
        text: common::randn(101, &[b, 7, 9]),
        vision: common::randn(102, &[b, 5, 4]),
        audio: common::randn(103, &[b, 6, 3]),
        text_len: Some(vec![7, 3, 5, 1]),
        vision_len: Some(vec![5, 5, 2, 4]),
        audio_len: None,
    };
    emoclip::nn::seed_dropout(3);
    let logits = model.forward(&batch, true).unwrap();
    let targets = match task {
        MerTask::Emotion => Tensor::new(
            &[[1f32, 0., 0., 1., 0., 0.], [0., 1., 0., 0., 0., 1.], [0., 0., 1., 0., 1., 0.], [1., 1., 0., 0., 0., 0.]],
            &dev,
        )
        .unwrap(),
        MerTask::Sentiment => Tensor::new(&[1u32, 0, 0, 1], &dev).unwrap(),
    };
    let loss = model.loss(&logits, &targets).unwrap();
    assert!(loss.to_scalar::<f32>().unwrap().is_finite());
    let grads = loss.backward().unwrap();
    let trainable = model.trainable_vars(&varmap);
    let frozen = model.frozen_names(&varmap);
    let data = varmap.data().lock().unwrap();
    assert_eq!(trainable.len() + frozen.len(), data.len());
    if freeze_text {
        assert!(!frozen.is_empty() && frozen.iter().all(|k| k.starts_with("text.")), "{frozen:?}");
    } else {
        assert!(frozen.is_empty());
    }
    assert!(trainable.iter().any(|(k, _)| k == "prompt.ctx"));
    assert_eq!(trainable.iter().any(|(k, _)| k == "logit_scale"), task == MerTask::Sentiment);
    let mut bad = Vec::new();
    for (name, var) in data.iter() {
        let g = grads.get(var.as_tensor());
        if !model.is_trainable(name) {
            if g.is_some() {
                bad.push(format!("{name}: frozen but has a gradient"));
            }
            continue;
        }
        match g {
            None => bad.push(format!("{name}: no gradient")),
            Some(g) => {
                let v = g.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                if v.iter().any(|x| !x.is_finite()) {
                    bad.push(format!("{name}: non-finite gradient"));
                } else if v.iter().all(|&x| x == 0.0) {
                    bad.push(format!("{name}: zero gradient"));
                }
            }
        }
    }
    bad.sort();
    assert!(bad.is_empty(), "{task:?} word {query_word:?} freeze {freeze_text}:\n{}", bad.join("\n"));
}

#[test]
fn gradients_emotion_frozen_text() {
    check_gradients(MerTask::Emotion, Some("Emotion"), true);
}

#[test]
fn gradients_sentiment_frozen_text_no_word() {
    check_gradients(MerTask::Sentiment, None, true);
}

#[test]
fn gradients_reach_the_text_tower_when_it_is_trained() {
    check_gradients(MerTask::Emotion, Some("Feeling"), false);
}

#[test]
fn predictions_follow_the_heads() {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let emo = MerClip::new(
        &MerConfig::tiny(MerTask::Emotion, FeatureDims::MOSI),
        common::seeded_var_builder(&varmap, 8),
        &dev,
    )
    .unwrap();
    // sigmoid(0.4055) = 0.6: strictly greater is needed.
    let logits = Tensor::new(&[[0.5f32, 0.40, -1.0, 3.0, 0.41, -0.2]], &dev).unwrap();
    assert_eq!(emo.predict(&logits).unwrap().to_vec2::<f32>().unwrap(), vec![vec![1., 0., 0., 1., 1., 0.]]);
    let sent = MerClip::new(
        &MerConfig::tiny(MerTask::Sentiment, FeatureDims::MOSI),
        common::seeded_var_builder(&VarMap::new(), 9),
        &dev,
    )
    .unwrap();
    let logits = Tensor::new(&[[0.1f32, 0.3], [2.0, -1.0], [0.5, 0.5]], &dev).unwrap();
    assert_eq!(
        sent.predict(&logits).unwrap().to_vec2::<f32>().unwrap(),
        vec![vec![0., 1.], vec![1., 0.], vec![1., 0.]]
    );
    let p = sent.probabilities(&logits).unwrap().sum(D::Minus1).unwrap().to_vec1::<f32>().unwrap();
    assert!(p.iter().all(|s| (s - 1.0).abs() < 1e-6));
    // The same loss from class indices and from one-hot targets.
    let a = sent.loss(&logits, &Tensor::new(&[1u32, 0, 1], &dev).unwrap()).unwrap().to_scalar::<f32>().unwrap();
    let b = sent
        .loss(&logits, &Tensor::new(&[[0f32, 1.], [1., 0.], [0., 1.]], &dev).unwrap())
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!((a - b).abs() < 1e-6 && a > 0.0);
    let e = sent.loss(&logits, &Tensor::new(&[2u32, 0, 1], &dev).unwrap()).unwrap_err().to_string();
    assert!(e.contains("class 2"), "{e}");
}

#[test]
fn mismatched_inputs_give_clear_errors() {
    let dev = Device::Cpu;
    let cfg = MerConfig::tiny(MerTask::Emotion, FeatureDims::MOSEI);
    let model = MerClip::new(&cfg, common::seeded_var_builder(&VarMap::new(), 2), &dev).unwrap();
    let f = |t: usize, d: usize| Tensor::zeros((2, t, d), DType::F32, &dev).unwrap();
    let ok = MerInputs::new(f(5, 300), f(4, 35), f(3, 74));
    assert_eq!(model.forward(&ok, false).unwrap().dims(), [2, 6]);
    let err = |b: MerInputs| model.forward(&b, false).unwrap_err().to_string();

    let e = err(MerInputs::new(f(5, 300), f(4, 20), f(3, 74)));
    assert!(e.contains("vision features have 20 dims") && e.contains("expects 35") && e.contains("dims.vision"), "{e}");
    let e = err(MerInputs::new(f(5, 300), f(4, 35), f(3, 5)));
    assert!(e.contains("audio features have 5 dims") && e.contains("expects 74"), "{e}");
    let e = err(MerInputs::new(f(5, 768), f(4, 35), f(3, 74)));
    assert!(e.contains("text features have 768 dims") && e.contains("expects 300"), "{e}");
    let e = err(MerInputs::new(Tensor::zeros((2, 300), DType::F32, &dev).unwrap(), f(4, 35), f(3, 74)));
    assert!(e.contains("text features have shape [2, 300]"), "{e}");
    let e = err(MerInputs::new(f(5, 300), Tensor::zeros((3, 4, 35), DType::F32, &dev).unwrap(), f(3, 74)));
    assert!(e.contains("vision features hold 3 samples but text features hold 2"), "{e}");
    let e = err(MerInputs { audio_len: Some(vec![3, 4]), ..ok.clone() });
    assert!(e.contains("audio_len holds 4") && e.contains("1..=3"), "{e}");
    let e = err(MerInputs { text_len: Some(vec![0, 4]), ..ok.clone() });
    assert!(e.contains("text_len holds 0"), "{e}");
    let e = err(MerInputs { vision_len: Some(vec![1]), ..ok.clone() });
    assert!(e.contains("vision_len has 1 entries for a batch of 2"), "{e}");
    // Targets of the wrong shape.
    let logits = model.forward(&ok, false).unwrap();
    let e = model.loss(&logits, &Tensor::zeros((2, 2), DType::F32, &dev).unwrap()).unwrap_err().to_string();
    assert!(e.contains("emotion targets [2, 2] do not match the logits [2, 6]"), "{e}");
}

#[test]
fn text_tower_loads_from_a_clip_checkpoint() {
    // An open_clip-layout text tower (plus its model config beside it) made from the fixture weights.
    let dev = Device::Cpu;
    let cfg = config("emo_word");
    let w = weights(MerTask::Emotion);
    let dir = tempfile::tempdir().unwrap();
    let text: HashMap<String, Tensor> =
        w.iter().filter_map(|(k, v)| k.strip_prefix("text.").map(|r| (r.to_string(), v.clone()))).collect();
    let path = dir.path().join("clip.safetensors");
    candle_core::safetensors::save(&text, &path).unwrap();
    std::fs::write(dir.path().join("clip.json"), serde_json::to_string(&cfg.clip).unwrap()).unwrap();

    let varmap = VarMap::new();
    let (model, report) = MerClip::from_clip_checkpoint(&cfg, &path, &varmap, Missing::Init, &dev).unwrap();
    assert!(report.initialised.iter().all(|k| !k.starts_with("text.")), "{:?}", report.initialised);
    assert!(report.initialised.iter().any(|k| k == "prompt.ctx"));
    // The label embeddings only depend on the text tower: they must equal PyTorch's.
    let io = load("io.safetensors");
    common::assert_close(
        "MER-CLIP label embeddings after loading",
        &model.label_embeddings().unwrap(),
        &io["emo_word.labels"],
        TOL,
    );
    // out_proj starts as text_projectionᵀ.
    let tp = &w["text.text_projection"];
    assert_eq!(rel_err(&model.out_proj.weight, &tp.t().unwrap()), 0.0);
    assert!(model.trainable_vars(&varmap).iter().all(|(k, _)| !k.starts_with("text.")));

    // A config whose text tower differs is refused, naming the difference and the fix.
    let mut other = cfg.clone();
    other.clip.text_cfg.heads = 2;
    let e =
        MerClip::from_clip_checkpoint(&other, &path, &VarMap::new(), Missing::Init, &dev).err().unwrap().to_string();
    assert!(
        e.contains("clip.safetensors") && e.contains("text heads: config 2, checkpoint 4") && e.contains("fix"),
        "{e}"
    );
}

#[test]
fn config_errors_name_the_problem() {
    let mut cfg = MerConfig::tiny(MerTask::Emotion, FeatureDims::MOSI);
    cfg.clip.text_cfg.vocab_size = 1000;
    let e = MerClip::new(&cfg, common::seeded_var_builder(&VarMap::new(), 3), &Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("vocab_size 1000") && e.contains("fix"), "{e}");
    let mut cfg = MerConfig::tiny(MerTask::Emotion, FeatureDims::MOSI);
    cfg.n_prompt = 80;
    let e = MerClip::new(&cfg, common::seeded_var_builder(&VarMap::new(), 4), &Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("more than the context length 77"), "{e}");
}

#[test]
fn weights_loaded_into_the_varmap_after_construction_are_used() {
    // The trainer builds a random model and then loads a checkpoint into its VarMap: the frozen (detached)
    // text tower shares storage with its Vars, and Z^E / Z^L are recomputed per forward, so the loaded
    // values must be what the model computes with.
    let dev = Device::Cpu;
    let cfg = MerConfig::tiny(MerTask::Sentiment, FeatureDims { text: 6, vision: 3, audio: 2 });
    let batch =
        MerInputs::new(common::randn(104, &[2, 4, 6]), common::randn(105, &[2, 3, 3]), common::randn(106, &[2, 5, 2]));
    let vm_a = VarMap::new();
    let a = MerClip::new(&cfg, common::seeded_var_builder(&vm_a, 5), &dev).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mer.safetensors");
    vm_a.save(&path).unwrap();
    let want = a.forward_detailed(&batch, false).unwrap();

    let mut vm_b = VarMap::new();
    let b = MerClip::new(&cfg, common::seeded_var_builder(&vm_b, 6), &dev).unwrap();
    let before = b.forward_detailed(&batch, false).unwrap();
    assert!(rel_err(&before.labels, &want.labels) > 1e-3, "two random models should differ");
    vm_b.load(&path).unwrap();
    let got = b.forward_detailed(&batch, false).unwrap();
    assert_eq!(rel_err(&got.labels, &want.labels), 0.0);
    assert_eq!(rel_err(&got.query, &want.query), 0.0);
    assert_eq!(rel_err(&got.logits, &want.logits), 0.0);
}

#[test]
fn query_without_prompt_vectors() {
    // n_prompt = 0: the query is `[SOT] <word> . [EOT]` from the frozen tower alone.
    let dev = Device::Cpu;
    let mut cfg = MerConfig::tiny(MerTask::Emotion, FeatureDims { text: 4, vision: 3, audio: 2 });
    cfg.n_prompt = 0;
    let varmap = VarMap::new();
    let model = MerClip::new(&cfg, common::seeded_var_builder(&varmap, 7), &dev).unwrap();
    assert_eq!(model.query.ids().len(), 4);
    assert!(model.trainable_vars(&varmap).iter().all(|(k, _)| k != "prompt.ctx"));
    let batch =
        MerInputs::new(common::randn(107, &[2, 3, 4]), common::randn(108, &[2, 3, 3]), common::randn(109, &[2, 3, 2]));
    let out = model.forward_detailed(&batch, false).unwrap();
    assert_eq!(out.query.dims(), [1, 4, 32]);
    assert_eq!(out.logits.dims(), [2, 6]);
}

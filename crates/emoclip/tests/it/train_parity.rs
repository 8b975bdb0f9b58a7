//! Parity of the pre-training building blocks (SNCE loss, AdamW, LR schedules) with PyTorch on fixtures from
//! `scripts/fixtures/gen_train.py`, and the parameter groups on the tiny EmotionCLIP.
use crate::common;
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, IndexOp, Tensor, Var};
use candle_nn::VarMap;
use common::{fixture, Tol};
use emoclip::emotionclip::{EmotionClip, SubjectMode};
use emoclip::optim::{AdamW, LrSchedule, ParamGroup};
use emoclip::train::{self, SnceConfig};
use std::collections::{HashMap, HashSet};

/// SNCE loss and gradients: 3× the measured worst element (max |Δ| 1.9e-6 on values up to 15).
const SNCE_TOL: Tol = Tol::new(6e-7, 6e-6);
/// AdamW parameters and moments after 1–5 steps: 3× the measured worst element (max |Δ| 1.2e-7).
const ADAMW_TOL: Tol = Tol::new(3.1e-8, 3.1e-7);

fn load(name: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture(&format!("train/{name}")), &Device::Cpu).unwrap()
}

fn check(name: &str, got: &Tensor, want: &Tensor, tol: Tol) {
    common::assert_close(name, got, want, tol);
}

fn snce_case(case: &str) {
    let d = load("snce.safetensors");
    let g = |k: &str| d[&format!("{case}.{k}")].clone();
    let v = Var::from_tensor(&g("v")).unwrap();
    let t = Var::from_tensor(&g("t")).unwrap();
    let ls = Var::from_tensor(&g("logit_scale")).unwrap();
    let cfg = SnceConfig {
        beta: g("beta").to_scalar::<f64>().unwrap(),
        transpose_w_for_t2v: g("transpose").to_scalar::<i64>().unwrap() != 0,
    };
    let loss = train::snce_loss(v.as_tensor(), t.as_tensor(), ls.as_tensor(), &g("e"), &cfg).unwrap();
    check(&format!("{case} loss"), &loss, &g("loss"), SNCE_TOL);
    let grads = loss.backward().unwrap();
    check(&format!("{case} dL/dV"), grads.get(v.as_tensor()).unwrap(), &g("grad_v"), SNCE_TOL);
    check(&format!("{case} dL/dT"), grads.get(t.as_tensor()).unwrap(), &g("grad_t"), SNCE_TOL);
    check(&format!("{case} dL/dlogit_scale"), grads.get(ls.as_tensor()).unwrap(), &g("grad_logit_scale"), SNCE_TOL);
    if cfg.beta == 0.0 {
        let clip = train::clip_loss(v.as_tensor(), t.as_tensor(), ls.as_tensor()).unwrap();
        assert_eq!(
            clip.to_scalar::<f32>().unwrap(),
            loss.to_scalar::<f32>().unwrap(),
            "beta = 0 must be the CLIP loss exactly"
        );
    }
}

#[test]
fn snce_default_matches_pytorch() {
    snce_case("default");
}

#[test]
fn snce_identical_emotions_masked_matches_pytorch() {
    let d = load("snce.safetensors");
    let ew = train::emotion_weights(&d["kl0.e"]).unwrap();
    assert_eq!(ew.masked(), 2, "rows 2 and 5 have identical emotion logits");
    assert!(!ew.keep[2 * ew.n + 5] && !ew.keep[5 * ew.n + 2]);
    snce_case("kl0");
}

#[test]
fn snce_beta_zero_is_clip_loss() {
    snce_case("beta0");
}

#[test]
fn snce_transposed_weights_match_pytorch() {
    snce_case("transpose");
}

fn adamw_run(fused: bool) {
    let d = load("adamw.safetensors");
    let p0 = Var::from_tensor(&d["p0.init"]).unwrap();
    let p1 = Var::from_tensor(&d["p1.init"]).unwrap();
    let vars = HashMap::from([("p0".to_string(), p0.clone()), ("p1".to_string(), p1.clone())]);
    let groups = vec![
        ParamGroup {
            name: "official".into(),
            lr: 1e-2,
            betas: (0.98, 0.9),
            eps: 1e-6,
            weight_decay: 0.1,
            params: vec!["p0".into()],
        },
        ParamGroup { weight_decay: 0.01, ..ParamGroup::new("defaults", 3e-3, vec!["p1".into()]) },
    ];
    let mut opt = AdamW::from_named_vars(&vars, groups).unwrap();
    opt.set_fused(fused).unwrap();
    let tag = if fused { "fused" } else { "generic" };
    for k in 0..5 {
        let mut grads = GradStore::default();
        grads.insert(p0.as_tensor(), d["p0.grads"].i(k).unwrap());
        grads.insert(p1.as_tensor(), d["p1.grads"].i(k).unwrap());
        opt.step(&grads).unwrap();
        check(&format!("{tag} step {} p0", k + 1), p0.as_tensor(), &d["p0.after"].i(k).unwrap(), ADAMW_TOL);
        check(&format!("{tag} step {} p1", k + 1), p1.as_tensor(), &d["p1.after"].i(k).unwrap(), ADAMW_TOL);
    }
    let st = opt.state_tensors().unwrap();
    for k in ["p0.exp_avg", "p0.exp_avg_sq", "p1.exp_avg", "p1.exp_avg_sq"] {
        check(&format!("{tag} {k}"), &st[k], &d[k], ADAMW_TOL);
    }
    assert_eq!(st["p0.step"].to_scalar::<i64>().unwrap(), 5);
}

#[test]
fn fused_adamw_matches_pytorch() {
    adamw_run(true);
}

#[test]
fn generic_adamw_matches_pytorch() {
    adamw_run(false);
}

#[test]
fn adamw_resume_from_exported_state_is_exact() {
    // 5 uninterrupted steps == 3 steps, export, new optimiser, import, 2 steps (bit-exact).
    let d = load("adamw.safetensors");
    let run = |split: Option<usize>| -> Vec<f32> {
        let p0 = Var::from_tensor(&d["p0.init"]).unwrap();
        let vars = HashMap::from([("p0".to_string(), p0.clone())]);
        let groups = || {
            vec![ParamGroup {
                name: "g".into(),
                lr: 1e-2,
                betas: (0.98, 0.9),
                eps: 1e-6,
                weight_decay: 0.1,
                params: vec!["p0".into()],
            }]
        };
        let mut opt = AdamW::from_named_vars(&vars, groups()).unwrap();
        for k in 0..5 {
            if Some(k) == split {
                let st = opt.state_tensors().unwrap();
                opt = AdamW::from_named_vars(&vars, groups()).unwrap();
                opt.load_state_tensors(&st).unwrap();
            }
            let mut grads = GradStore::default();
            grads.insert(p0.as_tensor(), d["p0.grads"].i(k).unwrap());
            opt.step(&grads).unwrap();
        }
        p0.flatten_all().unwrap().to_vec1().unwrap()
    };
    assert_eq!(run(None), run(Some(3)));
}

fn check_lrs(name: &str, sched: LrSchedule, want: &Tensor) {
    sched.validate().unwrap();
    let want: Vec<Vec<f64>> = want.to_vec2().unwrap();
    let bases = [5e-5, 1e-8];
    let mut worst = 0f64;
    for (n, row) in want.iter().enumerate() {
        for (base, w) in bases.iter().zip(row) {
            let got = sched.lr(*base, n);
            let e = (got - w).abs() / w.abs();
            worst = worst.max(e);
            assert!(e < 1e-9, "{name} step {n} base {base}: {got} vs PyTorch {w}");
        }
    }
    eprintln!("{name}: {} steps, worst relative error {worst:.1e}", want.len());
}

#[test]
fn schedules_match_pytorch() {
    let d = load("schedule.safetensors");
    check_lrs(
        "paper",
        LrSchedule::StepCosine { warmup_steps: 5, warmup_init_factor: 1e-5, total_steps: 20, eta_min: 1e-10 },
        &d["paper.lrs"],
    );
    for w in [0usize, 8, 10] {
        check_lrs(
            &format!("official warm-up {w}"),
            LrSchedule::EpochCosine {
                warmup_steps: w,
                warmup_init_factor: 1e-5,
                steps_per_epoch: 4,
                epochs: 6,
                eta_min: 1e-10,
            },
            &d[&format!("official_w{w}.lrs")],
        );
    }
}

fn tiny_model(subject: SubjectMode) -> (VarMap, EmotionClip) {
    let varmap = VarMap::new();
    let model = EmotionClip::load(common::seeded_var_builder(&varmap, 11), &common::micro_config(subject)).unwrap();
    (varmap, model)
}

#[test]
fn every_tiny_model_parameter_is_in_exactly_one_group() {
    for subject in [SubjectMode::Sap, SubjectMode::Saam, SubjectMode::None] {
        let (varmap, _model) = tiny_model(subject);
        let all: HashSet<String> = varmap.data().lock().unwrap().keys().cloned().collect();
        for preset in [&train::OFFICIAL, &train::PAPER] {
            let groups = train::param_groups(&varmap, preset).unwrap();
            assert_eq!(groups.len(), 7);
            let mut seen = HashSet::new();
            for g in &groups {
                for p in &g.params {
                    assert!(seen.insert(p.clone()), "{p} in two groups");
                }
            }
            assert_eq!(seen, all, "{subject:?}: groups do not cover the VarMap");
            for g in &groups {
                assert!(!g.params.is_empty(), "{subject:?}: group {} is empty", g.name);
            }
            if subject == SubjectMode::Sap && preset == &train::OFFICIAL {
                for g in &groups {
                    eprintln!("{}: lr {:e} wd {} — {}", g.name, g.lr, g.weight_decay, g.params.join(" "));
                }
            }
            let ls = groups.iter().find(|g| g.name == "logit_scale").unwrap();
            assert_eq!(ls.params, vec!["logit_scale".to_string()]);
        }
    }
}

#[test]
fn snce_and_adamw_train_the_tiny_model() {
    let dev = Device::Cpu;
    let (varmap, model) = tiny_model(SubjectMode::Sap);
    let mut groups = train::param_groups(&varmap, &train::OFFICIAL).unwrap();
    for g in &mut groups {
        g.lr = 1e-3; // large enough for every parameter to move
    }
    let mut opt = AdamW::new(&varmap, groups).unwrap();
    let (b, t, s) = (3usize, 8usize, 32usize);
    let video = common::randn(111, &[b, t, 3, s, s]);
    let masks = Tensor::ones((b, t, s, s), DType::F32, &dev).unwrap();
    let ids = Tensor::new(
        &[
            [62u32, 5, 9, 63, 0, 0, 0, 0, 0, 0, 0, 0],
            [62, 7, 7, 7, 11, 63, 0, 0, 0, 0, 0, 0],
            [62, 1, 2, 3, 4, 5, 6, 8, 10, 12, 13, 63],
        ],
        &dev,
    )
    .unwrap();
    let emo = Tensor::new(
        &[[1f32, 0., 0., 0., 0., 0., 0.], [0., 2., 0., 0., 0., 0., 1.], [1., 0., 0., 0., 0., 0., 0.]],
        &dev,
    )
    .unwrap();
    let before: HashMap<String, Tensor> =
        varmap.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.as_tensor().copy().unwrap())).collect();
    let norm = |x: &Tensor| x.broadcast_div(&x.sqr().unwrap().sum_keepdim(1).unwrap().sqrt().unwrap()).unwrap();
    let v = norm(&model.encode_video_t(&video, Some(&masks), true).unwrap());
    let tx = norm(&model.encode_text(&ids).unwrap());
    // Rows 0 and 2 have identical emotion logits: one masked pair each way.
    let loss = train::snce_loss(&v, &tx, model.logit_scale(), &emo, &SnceConfig::default()).unwrap();
    let grads = loss.backward().unwrap();
    opt.step(&grads).unwrap();
    let data = varmap.data().lock().unwrap();
    let mut unchanged = Vec::new();
    for (name, var) in data.iter() {
        let after = var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(after.iter().all(|x| x.is_finite()), "{name}: non-finite after the step");
        let diff = (var.as_tensor() - &before[name]).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
        if diff.to_scalar::<f32>().unwrap() == 0.0 {
            unchanged.push(name.clone());
        }
    }
    assert!(unchanged.is_empty(), "parameters not updated: {unchanged:?}");
}

//! Every EmotionCLIP parameter's gradient against PyTorch autograd (fixtures/grads/ from scripts/fixtures/gen_grads.py),
//! elementwise: SAP against the official model, SAAM against the project's reference (no official code exists),
//! through its −inf attention masks and the fused backward kernels. Loss: the official SNCE (β = 10) of the
//! normalised video / text features, training mode, dropout 0.
use crate::common;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use emoclip::train::{snce_loss, SnceConfig};
use emoclip::weights::{load::read_config, Checkpoint, LoadOptions, Missing};
use std::collections::HashMap;

/// |rust − pytorch| ≤ ATOL·max|g_param| + RTOL·|g| per element, max|g_param| being the largest gradient entry of the
/// same parameter (gradients of different parameters differ by orders of magnitude). Measured max |Δ|/max|g_param|:
/// 2.9e-6 (SAP), 1.8e-6 (SAAM).
const ATOL: f64 = 1e-5;
const RTOL: f64 = 0.0;

fn f64s(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

fn check(case: &str, weights: &str) {
    let dev = Device::Cpu;
    let e: HashMap<String, Tensor> =
        candle_core::safetensors::load(common::fixture(&format!("grads/{case}_expected.safetensors")), &dev).unwrap();
    let cfg = read_config(&common::fixture(&format!("grads/{case}_config.json"))).unwrap();
    let ck = Checkpoint::open(&common::fixture(&format!("grads/{weights}"))).unwrap();
    let varmap = VarMap::new();
    let opts =
        LoadOptions { config: Some(cfg), missing: Missing::Error, varmap: Some(varmap.clone()), ..Default::default() };
    let (model, _) = ck.load_emotionclip(&opts).unwrap();
    let video = e["video"].to_dtype(DType::F32).unwrap();
    let mask = e["mask"].to_dtype(DType::F32).unwrap();
    let ids = e["ids"].to_dtype(DType::U32).unwrap();
    let emotion = e["emotion"].to_dtype(DType::F32).unwrap();
    let v = emoclip::nn::l2_normalize(&model.encode_video_t(&video, Some(&mask), true).unwrap()).unwrap();
    let t = emoclip::nn::l2_normalize(&model.encode_text(&ids).unwrap()).unwrap();
    let cfg = SnceConfig { beta: 10.0, ..Default::default() };
    let loss = snce_loss(&v, &t, model.logit_scale(), &emotion, &cfg).unwrap();
    let (got_loss, want_loss) = (loss.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap(), f64s(&e["loss"])[0]);
    eprintln!("{case}: loss {got_loss:.9} (PyTorch {want_loss:.9})");
    assert!((got_loss - want_loss).abs() <= 1e-5 * want_loss.abs(), "{case}: loss");
    let grads = loss.backward().unwrap();
    let data = varmap.data().lock().unwrap();
    let (mut bad, mut seen) = (Vec::new(), 0usize);
    let (mut worst_rel, mut worst_key) = (0f64, String::new());
    for (key, want) in e.iter().filter_map(|(k, v)| k.strip_prefix("grad.").map(|k| (k, v))) {
        let name = if key == "backbone.logit_scale" { "logit_scale" } else { key };
        let var = data.get(name).unwrap_or_else(|| panic!("{case}: {key} is not a model parameter"));
        let got = f64s(grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{case}: {key} got no gradient")));
        let want = f64s(want);
        assert_eq!(got.len(), want.len(), "{key}");
        let scale = want.iter().fold(0f64, |m, x| m.max(x.abs()));
        assert!(scale > 0.0, "{case}: {key}: the reference gradient is zero, nothing to compare");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let d = (g - w).abs();
            // error in units of the bound's absolute part, for the report
            let rel = d / scale;
            if rel > worst_rel {
                (worst_rel, worst_key) =
                    (rel, format!("{key}[{i}] (|Δ| {d:.2e}, |g| {:.2e}, max|g| {scale:.2e})", w.abs()));
            }
            if d > ATOL * scale + RTOL * w.abs() {
                bad.push(format!("{key}[{i}]: rust {g:e} vs pytorch {w:e} (max|g| of the parameter {scale:e})"));
            }
        }
        seen += 1;
    }
    assert_eq!(seen, data.len(), "{case}: {} parameters, {} reference gradients", data.len(), seen);
    eprintln!("{case}: {seen} parameters, max |Δ|/max|g_param| = {worst_rel:.2e} at {worst_key}");
    assert!(
        bad.is_empty(),
        "{case}: {} gradient entries off:\n{}",
        bad.len(),
        bad.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn sap_gradients_match_official_autograd() {
    check("sap", "sap.pt");
}

#[test]
fn saam_gradients_match_reference_autograd() {
    check("saam", "saam.safetensors");
}

//! Every EmotionCLIP parameter must receive a finite, non-zero gradient from a contrastive loss: catches
//! graph cuts (fused kernels without backward, detached tensors) and unused parameters.
use crate::common;
use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarMap;
use emoclip::emotionclip::{EmotionClip, SubjectMode};

fn contrastive_loss(v: &Tensor, t: &Tensor, scale: &Tensor) -> candle_core::Result<Tensor> {
    let v = emoclip::nn::l2_normalize(v)?;
    let t = emoclip::nn::l2_normalize(t)?;
    let logits = v.matmul(&t.t()?)?.broadcast_mul(&scale.exp()?)?;
    let n = logits.dim(0)?;
    let labels = Tensor::arange(0u32, n as u32, logits.device())?;
    let a = candle_nn::loss::cross_entropy(&logits, &labels)?;
    let b = candle_nn::loss::cross_entropy(&logits.t()?, &labels)?;
    (a + b)? / 2.0
}

fn check_all_params_get_gradients(subject: SubjectMode) {
    check_gradients(subject, None)
}

/// `autocast`: run the step under `nn::autocast` (mixed precision); the loss must then stay close to the f32 loss.
fn check_gradients(subject: SubjectMode, autocast: Option<DType>) {
    let dev = Device::Cpu;
    let cfg = common::micro_config(subject);
    let varmap = VarMap::new();
    let model = EmotionClip::load(common::seeded_var_builder(&varmap, 12), &cfg).unwrap();
    let (b, t, s) = (3usize, 8usize, 32usize);
    let video = common::randn(112, &[b, t, 3, s, s]);
    // Subject boxes covering part of the grid so SAP / SAAM have subject and context patches.
    let mut mask = vec![0f32; b * t * s * s];
    for bi in 0..b {
        for ti in 0..t {
            for y in 4..20 {
                for x in (2 + bi)..(14 + ti) {
                    mask[((bi * t + ti) * s + y) * s + x] = 1.0;
                }
            }
        }
    }
    let masks = Tensor::from_vec(mask, (b, t, s, s), &dev).unwrap();
    let ids = Tensor::new(
        &[
            [62u32, 5, 9, 63, 0, 0, 0, 0, 0, 0, 0, 0],
            [62, 7, 7, 7, 11, 63, 0, 0, 0, 0, 0, 0],
            [62, 1, 2, 3, 4, 5, 6, 8, 10, 12, 13, 63],
        ],
        &dev,
    )
    .unwrap();
    let step = || {
        emoclip::nn::seed_dropout(7); // the same dropout masks for the f32 and the autocast pass
        let v = model.encode_video_t(&video, Some(&masks), true).unwrap();
        let txt = model.encode_text(&ids).unwrap();
        contrastive_loss(&v, &txt, model.logit_scale()).unwrap()
    };
    let f32_loss = step().to_scalar::<f32>().unwrap();
    let _guard = emoclip::nn::autocast::autocast(autocast);
    let loss = step();
    let value = loss.to_scalar::<f32>().unwrap();
    assert!(value.is_finite());
    if autocast.is_some() {
        assert_ne!(value, f32_loss, "autocast changed nothing: the matrix products did not run in low precision");
        common::assert_close_slice(
            &format!("contrastive loss under {autocast:?} autocast vs f32"),
            &[f64::from(value)],
            &[f64::from(f32_loss)],
            &[1],
            common::Tol::new(0.0, 1.9e-3), // 3× measured (bf16: |Δ| 1.5e-3 on a loss of 2.31)
        );
    }
    let grads = loss.backward().unwrap();
    let data = varmap.data().lock().unwrap();
    assert!(data.len() > 40, "only {} parameters registered", data.len());
    let mut bad = Vec::new();
    for (name, var) in data.iter() {
        match grads.get(var.as_tensor()) {
            None => bad.push(format!("{name}: no gradient")),
            Some(g) => {
                let g = g.flatten_all().unwrap();
                let max = g.abs().unwrap().max(D::Minus1).unwrap().to_scalar::<f32>().unwrap();
                let finite = g.to_vec1::<f32>().unwrap().iter().all(|x| x.is_finite());
                if !finite {
                    bad.push(format!("{name}: non-finite gradient"));
                } else if max == 0.0 {
                    bad.push(format!("{name}: zero gradient"));
                }
            }
        }
    }
    bad.sort();
    assert!(bad.is_empty(), "{subject:?}: parameters without a usable gradient:\n{}", bad.join("\n"));
}

#[test]
fn every_parameter_gets_a_gradient_sap() {
    check_all_params_get_gradients(SubjectMode::Sap);
}

#[test]
fn every_parameter_gets_a_gradient_under_bf16_autocast() {
    check_gradients(SubjectMode::Sap, Some(DType::BF16));
}

#[test]
fn every_parameter_gets_a_gradient_saam() {
    check_all_params_get_gradients(SubjectMode::Saam);
}

#[test]
fn every_parameter_gets_a_gradient_vanilla() {
    check_all_params_get_gradients(SubjectMode::None);
}

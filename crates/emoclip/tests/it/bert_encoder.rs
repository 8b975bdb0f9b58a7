//! Parity of the BERT encoder (`text_emotion::bert`, loaded by `text_emotion::bert_load`) with transformers
//! `BertModel` on a tiny random-weight model (fixture: `scripts/fixtures/gen_bert.py`): last hidden states of a
//! padded batch with segment ids of both types; the `bert.`-prefixed / legacy gamma-beta layouts; strict errors.
use crate::common;
use candle_core::{Device, Tensor};
use emoclip::text_emotion::{BertModel, EncoderInput};
use std::collections::HashMap;

fn expected() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture("bert_tiny/expected.json")).unwrap()).unwrap()
}

fn input(e: &serde_json::Value) -> EncoderInput {
    let get = |k: &str| serde_json::from_value::<Vec<Vec<u32>>>(e[k].clone()).unwrap();
    EncoderInput { ids: get("input_ids"), mask: get("attention_mask"), segments: get("token_type_ids") }
}

fn hidden(m: &BertModel, x: &EncoderInput) -> Vec<Vec<Vec<f32>>> {
    m.encoder.forward(x, &Device::Cpu).unwrap().to_vec3().unwrap()
}

#[test]
fn last_hidden_state_matches_transformers_with_padding_and_segments() {
    let e = expected();
    let x = input(&e);
    assert!(
        x.segments.iter().flatten().any(|&s| s == 1) && x.mask.iter().flatten().any(|&m| m == 0),
        "fixture has both"
    );
    let m = BertModel::load(&common::fixture("bert_tiny").display().to_string(), &Device::Cpu).unwrap();
    assert_eq!((m.encoder.hidden_size, m.config.vocab_size, m.config.layer_norm_eps), (32, 120, 1e-12));
    let got = hidden(&m, &x);
    let want: Vec<Vec<Vec<f32>>> = serde_json::from_value(e["last_hidden_state"].clone()).unwrap();
    let flat = |v: &Vec<Vec<Vec<f32>>>| v.iter().flatten().flatten().map(|&x| f64::from(x)).collect::<Vec<f64>>();
    let dims = [want.len(), want[0].len(), want[0][0].len()];
    common::assert_close_slice(
        "BERT last hidden state",
        &flat(&got),
        &flat(&want),
        &dims,
        common::Tol::new(2.7e-7, 2.7e-6),
    ); // 3× measured (max |Δ| 9.5e-7 on |h| ≤ 3.3)
       // Segment ids matter: the same ids as one segment give different states.
    let mut one = x.clone();
    one.segments.iter_mut().flatten().for_each(|s| *s = 0);
    assert_ne!(hidden(&m, &one)[0], got[0]);
}

#[test]
fn prefixed_legacy_checkpoint_with_heads_loads_the_same_encoder() {
    // A BertForPreTraining-style file (bert-base-uncased): keys under `bert.`, LayerNorm gamma/beta, pooler and
    // `cls.*` heads, a position_ids buffer; written as pytorch-less safetensors beside a copy of config.json.
    let src = candle_core::safetensors::load(common::fixture("bert_tiny/model.safetensors"), &Device::Cpu).unwrap();
    let mut t: HashMap<String, Tensor> = HashMap::new();
    for (k, v) in &src {
        let k = k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta");
        t.insert(format!("bert.{k}"), v.clone());
    }
    t.insert("cls.predictions.bias".into(), Tensor::zeros(120, candle_core::DType::F32, &Device::Cpu).unwrap());
    t.insert("bert.embeddings.position_ids".into(), Tensor::arange(0i64, 40, &Device::Cpu).unwrap());
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(common::fixture("bert_tiny/config.json"), dir.path().join("config.json")).unwrap();
    let w = dir.path().join("weights.safetensors");
    candle_core::safetensors::save(&t, &w).unwrap();
    let x = input(&expected());
    let a = BertModel::load(&common::fixture("bert_tiny").display().to_string(), &Device::Cpu).unwrap();
    let b = BertModel::load(&w.display().to_string(), &Device::Cpu).unwrap();
    assert_eq!(hidden(&a, &x), hidden(&b, &x));
    assert_ne!(a.fingerprint, b.fingerprint);
    // Strict: a missing tensor and a stray one are both named.
    t.remove("bert.encoder.layer.1.output.dense.bias");
    t.insert("bert.encoder.layer.9.extra".into(), Tensor::zeros(2, candle_core::DType::F32, &Device::Cpu).unwrap());
    candle_core::safetensors::save(&t, &w).unwrap();
    let err = BertModel::load(&w.display().to_string(), &Device::Cpu).err().unwrap().to_string();
    assert!(
        err.contains("weights.safetensors")
            && err.contains("encoder.layer.1.output.dense.bias")
            && err.contains("bert.encoder.layer.9.extra"),
        "{err}"
    );
    // No config beside the weights, no weights in a directory, an uncached hf: name.
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    let err = BertModel::load(&w.display().to_string(), &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("config.json"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let err = BertModel::load(&empty.path().display().to_string(), &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("no model.safetensors or pytorch_model.bin"), "{err}");
    // Out-of-vocabulary ids are refused, not read out of bounds.
    let mut bad = x.clone();
    bad.ids[1][2] = 500;
    let err = a.encoder.forward(&bad, &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("token id 500") && err.contains("120"), "{err}");
}

//! Parity of the RoBERTa text-emotion classifier with transformers on a tiny random-weight
//! `RobertaForSequenceClassification` (fixture: `scripts/fixtures/gen_text_emotion.py`).
use crate::common;
use candle_core::Device;
use emoclip::text_emotion::EmotionClassifier;

fn expected() -> serde_json::Value {
    let s = std::fs::read_to_string(common::fixture("text_emotion/expected.json")).unwrap();
    serde_json::from_str(&s).unwrap()
}

#[test]
fn logits_match_transformers_with_tokenizer_json_and_safetensors() {
    let exp = expected();
    let clf = EmotionClassifier::from_dir(&common::fixture("text_emotion"), &Device::Cpu).unwrap();
    let labels: Vec<String> = serde_json::from_value(exp["labels"].clone()).unwrap();
    assert_eq!(clf.labels(), labels.as_slice());
    let texts: Vec<String> = serde_json::from_value(exp["texts"].clone()).unwrap();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    // Token ids equal RobertaTokenizerFast's (without the padding).
    let ids = clf.encode(&refs).unwrap();
    let want_ids: Vec<Vec<u32>> = serde_json::from_value(exp["input_ids"].clone()).unwrap();
    let mask: Vec<Vec<u32>> = serde_json::from_value(exp["attention_mask"].clone()).unwrap();
    for ((got, want), m) in ids.iter().zip(&want_ids).zip(&mask) {
        let n = m.iter().filter(|&&x| x == 1).count();
        assert_eq!(got.as_slice(), &want[..n]);
    }
    let logits = clf.logits(&refs).unwrap();
    let want: Vec<Vec<f32>> = serde_json::from_value(exp["logits"].clone()).unwrap();
    let flat = |v: &Vec<Vec<f32>>| v.iter().flatten().map(|&x| f64::from(x)).collect::<Vec<f64>>();
    let dims = [want.len(), want[0].len()];
    // 3× the measured worst element (max |Δ| 7.5e-9 on logits ≤ 0.14)
    common::assert_close_slice("RoBERTa logits", &flat(&logits), &flat(&want), &dims, common::Tol::new(1.8e-8, 1.8e-7));
    let neutral: Vec<f32> = serde_json::from_value(exp["neutral_prob"].clone()).unwrap();
    let ni = clf.label_index("neutral").unwrap();
    let got_neutral: Vec<f64> =
        logits.iter().map(|row| f64::from(emoclip::text_emotion::classifier::softmax(row)[ni])).collect();
    let want_neutral: Vec<f64> = neutral.iter().map(|&x| f64::from(x)).collect();
    common::assert_close_slice(
        "neutral probability",
        &got_neutral,
        &want_neutral,
        &[neutral.len()],
        common::Tol::new(1.8e-8, 1.8e-7),
    ); // 3× measured (max |Δ| 1.5e-8)
}

#[test]
fn vocab_merges_and_pytorch_bin_give_the_same_logits() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "pytorch_model.bin", "vocab.json", "merges.txt"] {
        std::fs::copy(common::fixture("text_emotion").join(f), dir.path().join(f)).unwrap();
    }
    let a = EmotionClassifier::from_dir(&common::fixture("text_emotion"), &Device::Cpu).unwrap();
    let b = EmotionClassifier::from_dir(dir.path(), &Device::Cpu).unwrap();
    let texts = ["I'm so happy to see you!", "Why would you do this to me? I hate it."];
    assert_eq!(a.encode(&texts).unwrap(), b.encode(&texts).unwrap());
    let (la, lb) = (a.logits(&texts).unwrap(), b.logits(&texts).unwrap());
    for (x, y) in la.iter().flatten().zip(lb.iter().flatten()) {
        assert!((x - y).abs() < 1e-6);
    }
}

#[test]
fn partial_checkpoint_and_missing_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(common::fixture("text_emotion").join(f), dir.path().join(f)).unwrap();
    }
    let err = EmotionClassifier::from_dir(dir.path(), &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("no model.safetensors or pytorch_model.bin"), "{err}");
    let mut t =
        candle_core::safetensors::load(common::fixture("text_emotion/model.safetensors"), &Device::Cpu).unwrap();
    t.remove("roberta.encoder.layer.1.output.dense.bias");
    candle_core::safetensors::save(&t, dir.path().join("model.safetensors")).unwrap();
    let err = EmotionClassifier::from_dir(dir.path(), &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("model.safetensors") && err.contains("roberta.encoder.layer.1.output.dense.bias"), "{err}");
}

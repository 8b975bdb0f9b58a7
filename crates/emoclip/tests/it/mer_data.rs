//! The MMSA feature-file reader (`mer::data`) on the tiny MOSI / MOSEI pickles and malformed variants written
//! by `scripts/fixtures/gen_mmsa.py`, the synthetic generator and the seeded batching.
use crate::common;
use candle_core::Device;
use emoclip::mer::data::{batches, MmsaData, SyntheticSpec};

fn expected() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture("mmsa/mer_expected.json")).unwrap()).unwrap()
}

fn sum(v: &[f32]) -> f64 {
    v.iter().map(|&x| x as f64).sum()
}

#[test]
fn tiny_mosi_and_mosei_pickles_load_with_their_values() {
    let exp = expected();
    for name in ["mosi_tiny", "mosei_tiny"] {
        let d = MmsaData::read(&common::fixture(&format!("mmsa/{name}.pkl"))).unwrap();
        assert_eq!(d.dims(), [16, 5, 4], "{name}");
        assert_eq!(d.has_emotion(), name == "mosei_tiny");
        let mut inf = 0;
        for split in ["train", "valid", "test"] {
            let (s, e) = (d.split(split).unwrap(), &exp[name][split]);
            assert_eq!(s.len(), e["n"].as_u64().unwrap() as usize, "{name} {split}");
            assert_eq!((s.text.len, s.vision.len, s.audio.len), (10, 10, 10));
            inf += e["neg_inf"].as_u64().unwrap() as usize;
            for (key, ours) in [
                ("text_sum", sum(&s.text.data)),
                ("vision_sum", sum(&s.vision.data)),
                ("audio_finite_sum", sum(&s.audio.data)),
            ] {
                let want = e[key].as_f64().unwrap();
                assert!((ours - want).abs() < 1e-3, "{name} {split} {key}: {ours} vs {want}");
            }
            assert!(s.audio.data.iter().all(|x| x.is_finite()));
            let reg: Vec<f32> =
                e["regression"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
            assert_eq!(s.regression, reg);
            assert!(s.regression.contains(&0.0), "fixture has zero labels");
            let lens: Vec<usize> =
                e["vision_lengths"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
            assert_eq!(s.vision.lengths.as_ref(), Some(&lens));
            assert_eq!(s.ids[0], e["first_id"].as_str().unwrap());
            match (s.emotion_targets(), e["emotion"].as_array()) {
                (Some(t), Some(w)) => {
                    for (row, wrow) in t.iter().zip(w) {
                        let want: Vec<bool> =
                            wrow.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() > 0.0).collect();
                        assert_eq!(row, &want);
                    }
                }
                (None, None) => {}
                other => panic!("{name} {split}: emotion labels {:?}", other.0.is_some()),
            }
            assert_eq!(
                s.sentiment_positive().iter().filter(|&&p| p).count(),
                s.regression.iter().filter(|&&y| y >= 0.0).count()
            );
        }
        assert!(inf > 0);
        assert_eq!(d.replaced_inf, inf, "{name}: every -inf counted");
    }
}

#[test]
fn malformed_files_give_errors_naming_file_split_and_key() {
    let cases: [(&str, &[&str]); 6] = [
        ("truncated.pkl", &["truncated.pkl", "truncated"]),
        ("object.pkl", &["object.pkl", "Blob", "refusing"]),
        ("evil.pkl", &["evil.pkl", "system", "refusing"]),
        ("dims_mismatch.pkl", &["dims_mismatch.pkl", "'valid'", "'vision'", "width 6", "train's 5"]),
        ("missing_split.pkl", &["missing_split.pkl", "'valid' is missing"]),
        ("n_mismatch.pkl", &["n_mismatch.pkl", "'train'", "'audio'", "3 utterances", "has 4"]),
    ];
    for (file, needles) in cases {
        let err = MmsaData::read(&common::fixture(&format!("mmsa/{file}"))).unwrap_err().to_string();
        for n in needles {
            assert!(err.contains(n), "{file}: {err:?} lacks {n:?}");
        }
    }
    let err = MmsaData::read(&common::fixture("mmsa/bert_only.pkl")).unwrap_err().to_string();
    assert!(err.contains("text_bert") && err.contains("'text'") && err.contains("bert_only.pkl"), "{err}");
    // The older protocol-2/4/5 fixtures have no `vision_lengths` but are otherwise valid MOSEI files.
    let d = MmsaData::read(&common::fixture("mmsa/mosei_p2.pkl")).unwrap();
    assert!(d.has_emotion() && d.train.vision.lengths.is_none() && d.train.audio.lengths.is_some());
}

#[test]
fn batches_are_seeded_shuffles_covering_every_utterance() {
    let a = batches(10, 4, 1, 0, true);
    assert_eq!(a.iter().map(|b| b.len()).collect::<Vec<_>>(), vec![4, 4, 2]);
    let mut all: Vec<usize> = a.concat();
    assert_ne!(all, (0..10).collect::<Vec<_>>(), "shuffled");
    all.sort();
    assert_eq!(all, (0..10).collect::<Vec<_>>());
    assert_eq!(a, batches(10, 4, 1, 0, true), "same seed and epoch, same order");
    assert_ne!(a, batches(10, 4, 1, 1, true), "a new order each epoch");
    assert_eq!(batches(5, 2, 9, 3, false), vec![vec![0, 1], vec![2, 3], vec![4]]);
}

#[test]
fn synthetic_data_and_gather() {
    let spec = SyntheticSpec { sizes: [6, 2, 3], len: 4, dims: [5, 3, 2], emotion: true, noise: 0.1, seed: 3 };
    let d = MmsaData::synthetic(&spec).unwrap();
    assert_eq!(d, MmsaData::synthetic(&spec).unwrap(), "deterministic");
    assert_eq!((d.train.len(), d.valid.len(), d.test.len(), d.dims()), (6, 2, 3, [5, 3, 2]));
    let t = d.train.vision.gather(&[4, 1], &Device::Cpu).unwrap();
    assert_eq!(t.dims(), &[2, 4, 3]);
    let rows = t.to_vec3::<f32>().unwrap();
    assert_eq!(rows[0][2], d.train.vision.data[4 * 12 + 6..4 * 12 + 9].to_vec());
    assert!(MmsaData::synthetic(&SyntheticSpec { len: 0, ..spec }).is_err());
}

fn bert_text<'a>(
    model: &'a emoclip::text_emotion::BertModel,
    cache: Option<&std::path::Path>,
) -> emoclip::mer::bert_text::BertText<'a> {
    emoclip::mer::bert_text::BertText {
        model,
        batch_size: 16,
        cache_dir: cache.map(|p| p.to_path_buf()),
        device: Device::Cpu,
    }
}

#[test]
fn bert_text_features_match_transformers_and_are_cached() {
    let model =
        emoclip::text_emotion::BertModel::load(&common::fixture("bert_tiny").display().to_string(), &Device::Cpu)
            .unwrap();
    let path = common::fixture("mmsa/mosi_bert_tiny.pkl");
    let exp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::fixture("mmsa/mosi_bert_expected.json")).unwrap())
            .unwrap();
    let mut calls = 0;
    let d = MmsaData::read_bert(&path, &bert_text(&model, None), |_, _, _| calls += 1).unwrap();
    assert_eq!(d.dims(), [32, 5, 4], "text width = BERT hidden size");
    assert!(calls > 3, "encoded in batches ({calls} progress calls)");
    for split in ["train", "valid", "test"] {
        let s = d.split(split).unwrap();
        let want: Vec<usize> = serde_json::from_value(exp[split]["lengths"].clone()).unwrap();
        assert_eq!(s.text.lengths.as_ref(), Some(&want), "{split}: text_len = mask sums");
        assert!(want.iter().any(|&l| l < s.text.len), "{split} has padding");
        assert!(s.text_bert.is_some());
    }
    // The first two test utterances against transformers' last_hidden_state; padded positions are 0.
    let t = &d.test.text;
    let want: Vec<Vec<Vec<f32>>> = serde_json::from_value(exp["test"]["first_two"].clone()).unwrap();
    let lens = t.lengths.clone().unwrap();
    let mut worst = 0f32;
    for (i, rows) in want.iter().enumerate() {
        for (j, row) in rows.iter().enumerate() {
            let got = &t.data[(i * t.len + j) * 32..(i * t.len + j + 1) * 32];
            if j < lens[i] {
                worst = row.iter().zip(got).fold(worst, |w, (a, b)| w.max((a - b).abs()));
            } else {
                assert!(got.iter().all(|&x| x == 0.0), "padded position {j} of utterance {i} is zero");
            }
        }
    }
    eprintln!("BERT features vs transformers: max |difference| = {worst:e}");
    assert!(worst < 1e-5, "{worst}");
    // Disk cache: a second read takes every split from it (one progress call per split), identical values.
    let cache = tempfile::tempdir().unwrap();
    let a = MmsaData::read_bert(&path, &bert_text(&model, Some(cache.path())), |_, _, _| {}).unwrap();
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 3, "one file per split");
    let mut calls = 0;
    let b = MmsaData::read_bert(&path, &bert_text(&model, Some(cache.path())), |_, done, total| {
        calls += 1;
        assert_eq!(done, total);
    })
    .unwrap();
    assert_eq!(calls, 3);
    assert_eq!(a, b);
    assert_eq!(a.train.text, d.train.text);
}

#[test]
fn bert_text_errors_name_the_file_and_the_fix() {
    let model =
        emoclip::text_emotion::BertModel::load(&common::fixture("bert_tiny").display().to_string(), &Device::Cpu)
            .unwrap();
    // mosi_tiny.pkl's ids (1000-2000, bert-base-uncased-like) do not fit the 120-id tiny vocabulary.
    let err = MmsaData::read_bert(&common::fixture("mmsa/mosi_tiny.pkl"), &bert_text(&model, None), |_, _, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("mosi_tiny.pkl")
            && err.contains("'text_bert'")
            && err.contains("vocabulary")
            && err.contains("--bert"),
        "{err}"
    );
    // A file without text_bert.
    let err = MmsaData::read_bert(&common::fixture("mmsa/mosei_p2.pkl"), &bert_text(&model, None), |_, _, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("mosei_p2.pkl") && err.contains("text_bert") && err.contains("missing"), "{err}");
    // A BERT-only file read as GloVe says how to encode it.
    let err = MmsaData::read(&common::fixture("mmsa/bert_only.pkl")).unwrap_err().to_string();
    assert!(err.contains("--text bert") && err.contains("bert_only.pkl"), "{err}");
    // ...and reads with BERT text once the ids fit (bert_only has mosi_tiny's ids: same vocabulary error).
    let err = MmsaData::read_bert(&common::fixture("mmsa/bert_only.pkl"), &bert_text(&model, None), |_, _, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("token id") && err.contains("120"), "{err}");
}

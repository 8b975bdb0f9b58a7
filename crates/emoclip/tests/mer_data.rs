//! The MMSA feature-file reader (`mer::data`) on the tiny MOSI / MOSEI pickles and malformed variants written
//! by `scripts/fixtures/gen_mmsa.py`, the synthetic generator and the seeded batching.
mod common;
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
            for (key, ours) in [("text_sum", sum(&s.text.data)), ("vision_sum", sum(&s.vision.data)), ("audio_finite_sum", sum(&s.audio.data))] {
                let want = e[key].as_f64().unwrap();
                assert!((ours - want).abs() < 1e-3, "{name} {split} {key}: {ours} vs {want}");
            }
            assert!(s.audio.data.iter().all(|x| x.is_finite()));
            let reg: Vec<f32> = e["regression"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
            assert_eq!(s.regression, reg);
            assert!(s.regression.contains(&0.0), "fixture has zero labels");
            let lens: Vec<usize> = e["vision_lengths"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
            assert_eq!(s.vision.lengths.as_ref(), Some(&lens));
            assert_eq!(s.ids[0], e["first_id"].as_str().unwrap());
            match (s.emotion_targets(), e["emotion"].as_array()) {
                (Some(t), Some(w)) => {
                    for (row, wrow) in t.iter().zip(w) {
                        let want: Vec<bool> = wrow.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() > 0.0).collect();
                        assert_eq!(row, &want);
                    }
                }
                (None, None) => {}
                other => panic!("{name} {split}: emotion labels {:?}", other.0.is_some()),
            }
            assert_eq!(s.sentiment_positive().iter().filter(|&&p| p).count(), s.regression.iter().filter(|&&y| y >= 0.0).count());
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

//! The safe pickle reader on MMSA-layout feature files written by Python (protocols 2, 4, 5), a malicious
//! pickle and a truncated one (`scripts/fixtures/gen_mmsa.py`).
mod common;
use emoclip::mer::pickle::{read, parse, Value};

fn expected() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture("mmsa/expected.json")).unwrap()).unwrap()
}

fn flat(v: &serde_json::Value, out: &mut Vec<f64>) {
    match v {
        serde_json::Value::Array(a) => a.iter().for_each(|x| flat(x, out)),
        serde_json::Value::Number(n) => out.push(n.as_f64().unwrap()),
        _ => {}
    }
}

#[test]
fn numpy_arrays_and_object_arrays_are_read_in_every_protocol() {
    let exp = expected();
    for proto in [2, 4, 5] {
        let v = read(&common::fixture(&format!("mmsa/mosei_p{proto}.pkl"))).unwrap();
        assert_eq!(v.keys(), vec!["train", "valid", "test"]);
        for split in ["train", "valid", "test"] {
            let s = v.get(split).unwrap();
            for key in ["text", "vision", "audio", "regression_labels", "emotion_labels"] {
                let Value::Array(a) = s.get(key).unwrap() else { panic!("{split}.{key} is not an array") };
                let mut want = Vec::new();
                flat(&exp[split][key], &mut want);
                assert_eq!(a.len(), want.len(), "p{proto} {split}.{key}");
                for (x, y) in a.to_f64_vec().iter().zip(&want) {
                    assert!((x - y).abs() <= 1e-6 * y.abs().max(1.0), "p{proto} {split}.{key}: {x} vs {y}");
                }
            }
            let Value::Array(t) = s.get("text").unwrap() else { unreachable!() };
            assert_eq!((t.shape.as_slice(), t.dtype.as_str()), (&[if split == "train" { 6 } else { 3 }, 5, 8][..], "<f4"));
        }
        // Object arrays (ids, raw text) come back as lists of strings; the Fortran-ordered audio is C order.
        let Value::List(ids) = v.get("test").unwrap().get("id").unwrap() else { panic!("ids") };
        let want: Vec<String> = serde_json::from_value(exp["ids"].clone()).unwrap();
        assert_eq!(ids.iter().map(|x| if let Value::Str(s) = x { s.clone() } else { String::new() }).collect::<Vec<_>>(), want);
    }
}

#[test]
fn a_pickle_that_would_run_code_is_refused_without_running_it() {
    let path = common::fixture("mmsa/evil.pkl");
    let err = read(&path).unwrap_err().to_string();
    assert!(err.contains("evil.pkl") && err.contains("system") && err.contains("refusing"), "{err}");
}

#[test]
fn truncated_and_garbage_input_give_clear_errors() {
    let bytes = std::fs::read(common::fixture("mmsa/mosei_p4.pkl")).unwrap();
    let p = std::path::Path::new("cut.pkl");
    let err = parse(&bytes[..bytes.len() / 2], p).unwrap_err().to_string();
    assert!(err.contains("cut.pkl") && (err.contains("truncated") || err.contains("malformed")), "{err}");
    let err = parse(b"hello world", p).unwrap_err().to_string();
    assert!(err.contains("cut.pkl"), "{err}");
}

//! Parity of `emoclip::tokenizer` with open_clip `tokenizer.py` (fixtures from `scripts/fixtures/gen_tokenizer.py`).
use std::path::PathBuf;

use emoclip::tokenizer::{clean_text, ClipTokenizer, Truncation, CONTEXT_LENGTH, EOT, SOT};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tokenizer").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().expect("id array").iter().map(|x| x.as_u64().expect("id") as u32).collect()
}

#[test]
fn corpus_is_token_exact() {
    let doc = fixture("corpus.json");
    let n = doc["cases"].as_array().expect("cases").len();
    assert!(n >= 250, "corpus has only {n} strings");
    check_corpus(&doc);
}

/// A corpus elsewhere, e.g. random strings from `gen_tokenizer.py --random N --out PATH`:
/// `EMOCLIP_TOKENIZER_CORPUS=PATH cargo test -p emoclip --test tokenizer -- --ignored external_corpus`.
#[test]
#[ignore]
fn external_corpus() {
    let path = std::env::var("EMOCLIP_TOKENIZER_CORPUS").expect("set EMOCLIP_TOKENIZER_CORPUS");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    check_corpus(&serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}")));
}

fn check_corpus(doc: &Value) {
    assert_eq!(doc["context_length"].as_u64(), Some(CONTEXT_LENGTH as u64));
    assert_eq!(doc["sot"].as_u64(), Some(SOT as u64));
    assert_eq!(doc["eot"].as_u64(), Some(EOT as u64));
    let tok = ClipTokenizer::new().expect("tokenizer");
    assert_eq!(doc["vocab_size"].as_u64(), Some(tok.vocab_size() as u64));

    let cases = doc["cases"].as_array().expect("cases");
    let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().expect("text")).collect();

    // Whole batch at once (also exercises the parallel path) ...
    let force = tok.tokenize(&texts, CONTEXT_LENGTH, Truncation::ForceEot).expect("tokenize");
    let plain = tok.tokenize(&texts, CONTEXT_LENGTH, Truncation::Plain).expect("tokenize");
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let text = texts[i];
        let mut fail = |what: &str, got: String, want: String| {
            failures.push(format!("#{i} [{}] {text:?}: {what}\n   got:  {got}\n   want: {want}", case["note"]));
        };
        let want_clean = case["cleaned"].as_str().expect("cleaned");
        let got_clean = clean_text(text);
        if got_clean != want_clean {
            fail("cleaned", format!("{got_clean:?}"), format!("{want_clean:?}"));
        }
        let want_enc = ids(&case["encode"]);
        let got_enc = tok.encode(text).expect("encode");
        if got_enc != want_enc {
            fail("encode", format!("{got_enc:?}"), format!("{want_enc:?}"));
        }
        let want_dec = case["decode"].as_str().expect("decode");
        let got_dec = tok.decode(&want_enc);
        if got_dec != want_dec {
            fail("decode", format!("{got_dec:?}"), format!("{want_dec:?}"));
        }
        for (what, got, want) in [("force_eot", &force[i], &case["force_eot"]), ("plain", &plain[i], &case["plain"])] {
            let want = ids(want);
            assert_eq!(want.len(), CONTEXT_LENGTH);
            if *got != want {
                fail(what, format!("{got:?}"), format!("{want:?}"));
            }
        }
    }
    // ... and one text at a time (sequential path, cache already warm).
    for (i, text) in texts.iter().enumerate().step_by(7) {
        let row = tok.tokenize(&[text], CONTEXT_LENGTH, Truncation::ForceEot).expect("tokenize");
        if row[0] != force[i] {
            failures.push(format!("#{i} {text:?}: single-text tokenize differs from the batch"));
        }
    }
    assert!(failures.is_empty(), "{} mismatch(es):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn corpus_covers_the_truncation_boundary() {
    let doc = fixture("corpus.json");
    let lens: Vec<usize> =
        doc["cases"].as_array().unwrap().iter().map(|c| c["encode"].as_array().unwrap().len()).collect();
    for n in [75, 76, 77] {
        assert!(lens.contains(&n), "no corpus text with exactly {n} BPE tokens");
    }
    assert!(lens.iter().any(|&n| n > 200), "no very long text");
}

#[test]
fn tensor_shape_and_values() {
    let tok = ClipTokenizer::new().expect("tokenizer");
    let texts = ["a photo of a dog", "", "joy joy joy"];
    let t =
        tok.tokenize_tensor(&texts, CONTEXT_LENGTH, Truncation::ForceEot, &candle_core::Device::Cpu).expect("tensor");
    assert_eq!(t.dims(), &[3, CONTEXT_LENGTH]);
    assert_eq!(t.dtype(), candle_core::DType::U32);
    let rows: Vec<Vec<u32>> = t.to_vec2().expect("to_vec2");
    assert_eq!(rows, tok.tokenize(&texts, CONTEXT_LENGTH, Truncation::ForceEot).unwrap());
    assert_eq!(&rows[1][..3], &[SOT, EOT, 0]);
}

#[test]
fn decode_inverts_encode_on_lowercase_ascii() {
    let tok = ClipTokenizer::new().expect("tokenizer");
    for text in ["a photo of a happy person", "hello world", "the quick brown fox jumps over the lazy dog", "x"] {
        let ids = tok.encode(text).expect("encode");
        assert_eq!(tok.decode(&ids), format!("{text} "), "{text:?}");
    }
}

#[test]
fn from_vocab_file_equals_embedded_and_reports_errors() {
    let asset = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/bpe_simple_vocab_16e6.txt.gz");
    let a = ClipTokenizer::from_vocab_file(&asset).expect("vocab file");
    let b = ClipTokenizer::new().expect("embedded");
    let text = "She looks absolutely devastated after hearing the news.";
    assert_eq!(a.encode(text).unwrap(), b.encode(text).unwrap());
    assert_eq!(a.vocab_size(), 49408);

    // A plain-text merges file works too.
    let dir = tempfile::tempdir().unwrap();
    let txt = dir.path().join("merges.txt");
    std::fs::write(&txt, "#version: 0.2\nh e\nl l\nhe ll\n").unwrap();
    let small = ClipTokenizer::from_vocab_file(&txt).expect("plain merges");
    assert_eq!(small.vocab_size(), 512 + 3 + 2);
    assert_eq!(small.decode(&small.encode("hello").unwrap()), "hello ");

    let missing = dir.path().join("missing.txt.gz");
    assert!(matches!(ClipTokenizer::from_vocab_file(&missing), Err(emoclip::Error::Io { .. })));
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "#version: 0.2\nonly_one_symbol\n").unwrap();
    assert!(matches!(ClipTokenizer::from_vocab_file(&bad), Err(emoclip::Error::Tokenizer(_))));
}

/// Every code point: the pre-tokenisation regex puts it in the same class as Python's `regex` module
/// (letter run, single number, other-symbol run, whitespace); `str::to_lowercase` and NFC agree with
/// Python on every code point assigned in the Python build's Unicode version.
#[test]
fn unicode_tables_match_python() {
    use unicode_normalization::UnicodeNormalization;
    let u = fixture("unicode.json");
    let tok = ClipTokenizer::new().expect("tokenizer");

    let assigned_runs = u["assigned_runs"].as_array().unwrap();
    let mut assigned = vec![false; 0x110000];
    for (i, run) in assigned_runs.iter().enumerate() {
        let start = run[0].as_u64().unwrap() as usize;
        let end = assigned_runs.get(i + 1).map_or(0x110000, |r| r[0].as_u64().unwrap() as usize);
        assigned[start..end].fill(run[1].as_bool().unwrap());
    }

    let runs = u["class_runs"].as_array().unwrap();
    let mut mismatches = Vec::new();
    let mut checked = 0usize;
    for (i, run) in runs.iter().enumerate() {
        let start = run[0].as_u64().unwrap() as u32;
        let end = runs.get(i + 1).map_or(0x110000, |r| r[0].as_u64().unwrap() as u32);
        let want = run[1].as_str().unwrap();
        if want == "-" {
            continue;
        }
        for cp in start..end {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            // Python's `regex` module carries newer Unicode tables than Rust's `regex` crate; compare the
            // code points assigned in the Python build's Unicode version (unicodedata), which both know.
            if !assigned[cp as usize] {
                continue;
            }
            checked += 1;
            let s1 = format!("a{c}");
            let s2 = format!("{c}{c}");
            let got = if tok.pre_tokenize(&s1) == [s1.as_str()] {
                "L"
            } else {
                match tok.pre_tokenize(&s2).as_slice() {
                    [] => "S",
                    [x] if *x == s2 => "O",
                    [x, y] if x.len() == c.len_utf8() && y.len() == c.len_utf8() => "N",
                    _ => "?",
                }
            };
            if got != want {
                mismatches.push(format!("U+{cp:04X} {c:?}: {got} vs python {want}"));
            }
        }
    }
    assert!(checked > 280_000, "only {checked} code points checked");
    for (key, f) in [
        ("lower", &(|s: &str| s.to_lowercase()) as &dyn Fn(&str) -> String),
        ("nfc", &|s: &str| s.nfc().collect::<String>()),
    ] {
        let want: std::collections::HashMap<u32, String> = u[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_u64().unwrap() as u32, p[1].as_str().unwrap().to_string()))
            .collect();
        for cp in 0..0x110000u32 {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            if !assigned[cp as usize] {
                continue;
            }
            let s = c.to_string();
            let expect = want.get(&cp).cloned().unwrap_or_else(|| s.clone());
            let got = f(&s);
            if got != expect {
                mismatches.push(format!("{key} U+{cp:04X}: {got:?} vs python {expect:?}"));
            }
        }
    }
    assert!(mismatches.is_empty(), "{} mismatch(es):\n{}", mismatches.len(), mismatches.join("\n"));
}

/// Timing report, not a check: `cargo test -p emoclip --test tokenizer -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    let t0 = std::time::Instant::now();
    let tok = ClipTokenizer::new().expect("tokenizer");
    let load = t0.elapsed();
    let doc = fixture("corpus.json");
    let texts: Vec<&str> = doc["cases"].as_array().unwrap().iter().map(|c| c["text"].as_str().unwrap()).collect();
    let t1 = std::time::Instant::now();
    tok.tokenize(&texts, CONTEXT_LENGTH, Truncation::ForceEot).unwrap();
    let cold = t1.elapsed();
    let t2 = std::time::Instant::now();
    for _ in 0..10 {
        tok.tokenize(&texts, CONTEXT_LENGTH, Truncation::ForceEot).unwrap();
    }
    let warm = t2.elapsed() / 10;
    println!("new(): {load:?}; {} texts: cold {cold:?}, warm {warm:?}", texts.len());
}

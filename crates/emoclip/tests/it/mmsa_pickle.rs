//! The safe pickle reader on MMSA-layout feature files written by Python (protocols 2, 4, 5), a malicious
//! pickle and a truncated one (`scripts/fixtures/gen_mmsa.py`); typed storage of every numpy dtype bit for bit;
//! and the memory bound of reading a feature file (one f32 copy of the arrays: byte strings stay in the pickle
//! buffer, the file is mapped; counted by a per-thread allocation counter), including a payload shared by two
//! arrays whose mapped pages were released in between.
use crate::common;
use emoclip::mer::data::MmsaData;
use emoclip::mer::pickle::{parse, read, ArrayData, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts the bytes allocated by the current thread while [`measure`] runs (other test threads are ignored).
struct Counting;
thread_local! {
    static TRACK: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}
fn note(delta: isize) {
    let _ = TRACK.try_with(|t| {
        if t.get() {
            let live = LIVE.with(|l| {
                l.set(l.get() + delta);
                l.get()
            });
            PEAK.with(|p| p.set(p.get().max(live)));
        }
    });
}
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            note(l.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(l);
        if !p.is_null() {
            note(l.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
        note(-(l.size() as isize));
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = System.realloc(p, l, new);
        if !q.is_null() {
            note(new as isize - l.size() as isize);
        }
        q
    }
}
#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f`, returning its result and the peak of bytes allocated (and not yet freed) on this thread meanwhile.
fn measure<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    TRACK.with(|t| t.set(true));
    let out = f();
    TRACK.with(|t| t.set(false));
    (out, PEAK.with(|p| p.get()).max(0) as usize)
}

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
            assert_eq!(
                (t.shape.as_slice(), t.dtype.as_str()),
                (&[if split == "train" { 6 } else { 3 }, 5, 8][..], "<f4")
            );
        }
        // Object arrays (ids, raw text) come back as lists of strings; the Fortran-ordered audio is C order.
        let Value::List(ids) = v.get("test").unwrap().get("id").unwrap() else { panic!("ids") };
        let want: Vec<String> = serde_json::from_value(exp["ids"].clone()).unwrap();
        assert_eq!(
            ids.iter().map(|x| if let Value::Str(s) = x { s.clone() } else { String::new() }).collect::<Vec<_>>(),
            want
        );
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

#[test]
fn every_dtype_is_stored_typed_and_bit_exact() {
    let exp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::fixture("mmsa/dtypes.json")).unwrap()).unwrap();
    let ints = |v: &serde_json::Value| -> Vec<i128> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().map(i128::from).or(x.as_u64().map(i128::from)).unwrap())
            .collect()
    };
    for proto in [2, 4, 5] {
        let v = read(&common::fixture(&format!("mmsa/dtypes_p{proto}.pkl"))).unwrap();
        let mut seen = 0;
        for (key, e) in exp.as_object().unwrap() {
            if key.starts_with("scalar") {
                assert_eq!(v.get(key), Some(&Value::Float(e.as_f64().unwrap())), "p{proto} {key}");
                continue;
            }
            let Some(Value::Array(a)) = v.get(key) else { panic!("p{proto} {key}: not an array") };
            let shape: Vec<usize> = serde_json::from_value(e["shape"].clone()).unwrap();
            assert_eq!(a.shape, shape, "p{proto} {key}");
            assert_eq!(a.dtype, e["dtype"].as_str().unwrap().replace('|', "<"), "p{proto} {key}");
            let ctx = format!("p{proto} {key} ({})", a.dtype);
            match &a.data {
                ArrayData::F32(x) => {
                    assert_eq!(x.iter().map(|f| f.to_bits() as i128).collect::<Vec<_>>(), ints(&e["f32_bits"]), "{ctx}")
                }
                ArrayData::F64(x) => {
                    assert_eq!(x.iter().map(|f| f.to_bits() as i128).collect::<Vec<_>>(), ints(&e["f64_bits"]), "{ctx}")
                }
                ArrayData::I64(x) => {
                    assert_eq!(x.iter().map(|&i| i as i128).collect::<Vec<_>>(), ints(&e["ints"]), "{ctx}")
                }
                ArrayData::U64(x) => {
                    assert_eq!(x.iter().map(|&i| i as i128).collect::<Vec<_>>(), ints(&e["ints"]), "{ctx}")
                }
                ArrayData::Bool(x) => assert_eq!(serde_json::json!(x), e["bools"], "{ctx}"),
            }
            // The storage is the narrowest lossless one: float32 (and float16) stay 4 bytes per element.
            let want = match &a.dtype[1..] {
                "f2" | "f4" => "F32",
                "f8" => "F64",
                "u8" => "U64",
                "b1" => "Bool",
                _ => "I64",
            };
            let got = match &a.data {
                ArrayData::F32(_) => "F32",
                ArrayData::F64(_) => "F64",
                ArrayData::I64(_) => "I64",
                ArrayData::U64(_) => "U64",
                ArrayData::Bool(_) => "Bool",
            };
            assert_eq!(got, want, "{ctx}");
            assert_eq!(a.to_f64_vec().len(), a.len());
            seen += 1;
        }
        assert_eq!(seen, 17, "p{proto}");
    }
    // Accessors: f32 moves out without a copy; f64 and ints round once (x as f64 as f32).
    let v = vec![1.5f32, -0.0, f32::INFINITY];
    let ptr = v.as_ptr();
    let moved = ArrayData::F32(v).into_f32_vec();
    assert_eq!(moved.as_ptr(), ptr);
    assert_eq!(ArrayData::F64(vec![0.1, 1e300]).to_f32_vec(), vec![0.1f32, f32::INFINITY]);
    assert_eq!(ArrayData::I64(vec![16_777_217, -3]).to_f32_vec(), vec![16_777_216f32, -3.0]);
    assert_eq!(ArrayData::Bool(vec![true, false]).to_f64_vec(), vec![1.0, 0.0]);
    assert_eq!(ArrayData::I64(vec![7]).as_i64(), Some(&[7i64][..]));
    assert_eq!(ArrayData::I64(vec![7]).as_f32(), None);
}

/// Numpy's `_reconstruct` array pickle (protocol 4 opcodes) with a float32 payload: `data` as a memoised
/// BINBYTES8, or (`None`) a BINGET of memo entry `memo` (the same bytes object used by two arrays).
fn array_with(o: &mut Vec<u8>, shape: &[usize], data: Option<&[f32]>, memo: u8) {
    fn s(o: &mut Vec<u8>, t: &str) {
        o.push(0x8c);
        o.push(t.len() as u8);
        o.extend_from_slice(t.as_bytes());
    }
    fn int(o: &mut Vec<u8>, v: usize) {
        if v < 256 {
            o.extend([b'K', v as u8]);
        } else {
            o.push(b'J');
            o.extend_from_slice(&(v as i32).to_le_bytes());
        }
    }
    fn global(o: &mut Vec<u8>, m: &str, n: &str) {
        s(o, m);
        s(o, n);
        o.push(0x93);
    }
    global(o, "numpy.core.multiarray", "_reconstruct");
    global(o, "numpy", "ndarray");
    int(o, 0);
    o.push(0x85);
    o.extend([b'C', 1, b'b', 0x87, b'R', b'(']);
    int(o, 1);
    shape.iter().for_each(|&d| int(o, d));
    o.push([0x85, 0x86, 0x87][shape.len() - 1]);
    global(o, "numpy", "dtype");
    s(o, "f4");
    o.extend([0x89, 0x88, 0x87, b'R', b'(']);
    int(o, 3);
    s(o, "<");
    o.extend([b'N', b'N', b'N', b'J', 255, 255, 255, 255, b'J', 255, 255, 255, 255]);
    int(o, 0);
    o.extend([b't', b'b', 0x89]);
    match data {
        Some(data) => {
            o.push(0x8e);
            o.extend_from_slice(&((data.len() * 4) as u64).to_le_bytes());
            data.iter().for_each(|x| o.extend_from_slice(&x.to_le_bytes()));
            o.push(0x94);
        }
        None => o.extend([b'h', memo]),
    }
    o.extend([b't', b'b']);
}

/// A protocol-4 pickle laid out as numpy writes one (`_reconstruct` + BUILD state with the float32 payload as
/// a memoised BINBYTES8), built here so that the test can make it megabytes large without a big fixture.
/// Checked once with Python: `pickle.loads` gives the same dict of arrays.
fn mmsa_pickle(sizes: [usize; 3], len: usize, dims: [usize; 3]) -> (Vec<u8>, usize) {
    fn s(o: &mut Vec<u8>, t: &str) {
        o.push(0x8c);
        o.push(t.len() as u8);
        o.extend_from_slice(t.as_bytes());
    }
    fn array(o: &mut Vec<u8>, shape: &[usize], data: &[f32]) {
        array_with(o, shape, Some(data), 0)
    }
    let mut o = vec![0x80, 4, b'}', b'('];
    let mut floats = 0;
    for (split, n) in ["train", "valid", "test"].into_iter().zip(sizes) {
        s(&mut o, split);
        o.extend([b'}', b'(']);
        for (key, dim) in ["text", "vision", "audio"].into_iter().zip(dims) {
            s(&mut o, key);
            let mut data: Vec<f32> = (0..n * len * dim).map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 5.0).collect();
            if key == "audio" {
                data[3] = f32::NEG_INFINITY;
            }
            array(&mut o, &[n, len, dim], &data);
            floats += data.len();
        }
        s(&mut o, "regression_labels");
        array(&mut o, &[n], &(0..n).map(|i| i as f32 / n as f32 * 6.0 - 3.0).collect::<Vec<_>>());
        floats += n;
        o.push(b'u');
    }
    o.extend([b'u', b'.']);
    (o, floats * 4)
}

#[test]
fn reading_a_feature_file_costs_one_f32_copy_of_its_arrays() {
    let (sizes, len, dims) = ([160, 24, 24], 50, [300, 35, 74]);
    let (bytes, array_bytes) = mmsa_pickle(sizes, len, dims);
    assert!(array_bytes > 16_000_000 && bytes.len() < array_bytes + 10_000, "{} {array_bytes}", bytes.len());
    // The VM: decoded arrays only (byte strings stay in the pickle buffer, float32 stays 4 bytes).
    let (v, peak) = measure(|| parse(&bytes, std::path::Path::new("big.pkl")).unwrap());
    eprintln!(
        "parse: peak {:.1} MB for {:.1} MB of arrays ({:.1} MB pickle)",
        peak as f64 / 1e6,
        array_bytes as f64 / 1e6,
        bytes.len() as f64 / 1e6
    );
    assert!(peak < array_bytes + (1 << 20), "parse peak {peak} B for {array_bytes} B of arrays");
    let Some(Value::Array(a)) = v.get("valid").and_then(|s| s.get("audio")) else { panic!("valid.audio") };
    assert_eq!((a.shape.as_slice(), a.data.as_f32().map_or(0, |x| x.len())), (&[24, 50, 74][..], 24 * 50 * 74));
    drop(v);
    // The whole reader from disk: the file bytes + the arrays, moved into the dataset without a copy.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aligned_50.pkl");
    std::fs::write(&path, &bytes).unwrap();
    let (d, peak) = measure(|| MmsaData::read(&path).unwrap());
    eprintln!("MmsaData::read: peak {:.1} MB", peak as f64 / 1e6);
    // The file is memory-mapped (not on the heap) and its pages are dropped as they are decoded.
    assert!(peak < array_bytes + (1 << 20), "read peak {peak} B for {array_bytes} B of arrays");
    assert_eq!(d.dims(), dims);
    assert_eq!((d.train.len(), d.valid.len(), d.test.len()), (160, 24, 24));
    assert_eq!(d.replaced_inf, 3);
    assert_eq!(d.valid.audio.data[3], 0.0);
    let i = 1234;
    assert_eq!(d.test.text.data[i], ((i * 7919) % 1000) as f32 / 100.0 - 5.0);
    assert_eq!(d.train.regression[80], 0.0);
}

#[test]
fn a_payload_shared_by_two_arrays_decodes_the_same_after_its_pages_are_released() {
    // Two arrays over one memoised 4 MB bytes object (BINGET): reading the file maps it and drops the payload's
    // pages after the first decode, so the second decode faults them back in from the file.
    let data: Vec<f32> = (0..1_000_000).map(|i| (i as f32).sqrt() - 300.0).collect();
    let mut o = vec![0x80, 4, b'}', b'(', 0x8c, 1, b'a'];
    array_with(&mut o, &[1000, 1000], Some(&data), 0);
    o.extend([0x8c, 1, b'b']);
    array_with(&mut o, &[1000, 1000], None, 0);
    o.extend([b'u', b'.']);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.pkl");
    std::fs::write(&path, &o).unwrap();
    for v in [read(&path).unwrap(), parse(&o, &path).unwrap()] {
        for key in ["a", "b"] {
            let Some(Value::Array(a)) = v.get(key) else { panic!("{key}") };
            assert_eq!(a.shape, [1000, 1000]);
            assert!(a.data.as_f32() == Some(&data[..]), "{key}");
        }
    }
    // An empty file is read without a map and reported as truncated.
    let empty = dir.path().join("empty.pkl");
    std::fs::write(&empty, b"").unwrap();
    let err = read(&empty).unwrap_err().to_string();
    assert!(err.contains("empty.pkl") && err.contains("truncated"), "{err}");
}

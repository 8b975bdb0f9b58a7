//! Shared helpers for the integration tests.
#![allow(dead_code)]
use candle_core::{Device, Tensor};
use emoclip::emotionclip::{EmotionClipConfig, SubjectMode};
use std::path::PathBuf;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("fixtures").join(rel)
}

/// A very small EmotionCLIP config for fast tests: the library's `EmotionClipConfig::tiny` (32×32 images,
/// 16-px patches, a 2×2 grid) with the given subject mode.
pub fn micro_config(subject: SubjectMode) -> EmotionClipConfig {
    EmotionClipConfig { subject, ..EmotionClipConfig::tiny() }
}

/// Max relative error `max|a-b| / max|b|`.
pub fn rel_err(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.to_dtype(candle_core::DType::F32).unwrap().flatten_all().unwrap();
    let b = b.to_dtype(candle_core::DType::F32).unwrap().flatten_all().unwrap();
    assert_eq!(a.dims(), b.dims(), "shape mismatch");
    let d = (&a - &b).unwrap().abs().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
    let m = b.abs().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
    d / m.max(1e-12)
}

pub fn device() -> Device {
    Device::Cpu
}

/// Whether the tests run in CI (`CI` set and not `false`/`0`): there, missing sample media or tools fail the
/// test instead of skipping it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// `media/NAME` (fetched by `bash scripts/fetch_media.sh`, which scripts/test.sh runs first). When it is missing
/// the test is skipped with a message, except in CI (`CI` set), where it fails.
pub fn sample_media(name: &str) -> Option<PathBuf> {
    let p = repo_root().join("media").join(name);
    if p.is_file() {
        return Some(p);
    }
    let msg = format!("sample media {} is missing: run `bash scripts/fetch_media.sh` first", p.display());
    assert!(!in_ci(), "{msg} (CI is set, so a missing sample fails instead of skipping)");
    eprintln!("skip: {msg}");
    None
}

/// Whether the ffmpeg command-line tool runs (scripts/install_deps.sh installs it). Missing: skip with a message,
/// or fail in CI.
pub fn have_ffmpeg_cli() -> bool {
    let ok = std::process::Command::new("ffmpeg")
        .arg("-version")
        .stdin(std::process::Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let msg = "the ffmpeg command-line tool is not installed (bash scripts/install_deps.sh installs it)";
        assert!(!in_ci(), "{msg} (CI is set, so this fails instead of skipping)");
        eprintln!("skip: {msg}");
    }
    ok
}

/// Elementwise tolerance of [`assert_close`]: element `i` passes when `|got_i - want_i| <= atol + rtol·|want_i|`.
#[derive(Clone, Copy, Debug)]
pub struct Tol {
    pub atol: f64,
    pub rtol: f64,
}

impl Tol {
    pub const EXACT: Tol = Tol { atol: 0.0, rtol: 0.0 };
    pub const fn abs(atol: f64) -> Tol {
        Tol { atol, rtol: 0.0 }
    }
    pub const fn new(atol: f64, rtol: f64) -> Tol {
        Tol { atol, rtol }
    }
}

/// [`assert_close_slice`] on two tensors of the same shape (any float dtype, compared in f64).
pub fn assert_close(name: &str, got: &Tensor, want: &Tensor, tol: Tol) {
    assert_eq!(got.dims(), want.dims(), "{name}: shape {:?} vs reference {:?}", got.dims(), want.dims());
    let flat = |t: &Tensor| -> Vec<f64> {
        t.to_dtype(candle_core::DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap()
    };
    assert_close_slice(name, &flat(got), &flat(want), want.dims(), tol);
}

/// Elementwise comparison with a reference. Prints (visible with `--nocapture`) one `parity:` line with the measured
/// errors: max |Δ|, max |Δ|/|ref| over the elements with |ref| >= 1e-3·max|ref| ("big"), max |Δ| over the others
/// ("small"), and the worst element's share of its bound. Fails naming the worst element (index, value, reference).
/// A tolerance of `atol = 3·small`, `rtol = 3·big-relative` therefore leaves every element a 3× margin.
pub fn assert_close_slice(name: &str, got: &[f64], want: &[f64], dims: &[usize], tol: Tol) {
    assert_eq!(got.len(), want.len(), "{name}: {} values vs {} in the reference", got.len(), want.len());
    let scale = want.iter().fold(0f64, |m, w| m.max(w.abs()));
    let (mut max_abs, mut rel_big, mut abs_small) = (0f64, 0f64, 0f64);
    let (mut worst, mut worst_i) = (0f64, None::<usize>);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let d = (g - w).abs();
        let d = if d.is_nan() { f64::INFINITY } else { d };
        max_abs = max_abs.max(d);
        if w.abs() >= 1e-3 * scale && w != 0.0 {
            rel_big = rel_big.max(d / w.abs());
        } else {
            abs_small = abs_small.max(d);
        }
        let bound = tol.atol + tol.rtol * w.abs();
        let share = if d == 0.0 {
            0.0
        } else if bound > 0.0 {
            d / bound
        } else {
            f64::INFINITY
        };
        if share > worst || worst_i.is_none() && share > 0.0 {
            worst = share;
            worst_i = Some(i);
        }
    }
    let at = |i: usize| {
        let mut idx = vec![0usize; dims.len()];
        let mut r = i;
        for (k, &n) in dims.iter().enumerate().rev() {
            if n > 0 {
                idx[k] = r % n;
                r /= n;
            }
        }
        format!("{idx:?} (flat {i}): {} vs reference {}", got[i], want[i])
    };
    eprintln!(
        "parity: {name}: n {} max|ref| {scale:.3e} | max|Δ| {max_abs:.3e} | max|Δ|/|ref| (big) {rel_big:.3e} | max|Δ| (small) {abs_small:.3e} | tol atol {:.1e} rtol {:.1e} | worst {worst:.3e} of bound{}",
        got.len(),
        tol.atol,
        tol.rtol,
        worst_i.map(|i| format!(" at {}", at(i))).unwrap_or_default()
    );
    if worst > 1.0 {
        let i = worst_i.unwrap();
        panic!(
            "{name}: element {} differs by {:.3e} > atol {:e} + rtol {:e}·|ref| ({:.2}× the bound)",
            at(i),
            (got[i] - want[i]).abs(),
            tol.atol,
            tol.rtol,
            worst
        );
    }
}

/// Standard-normal values from a seeded RNG (tests never draw from candle's unseeded CPU generator).
pub fn randn(seed: u64, shape: &[usize]) -> Tensor {
    use rand::SeedableRng;
    use rand_distr::Distribution;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rand_distr::StandardNormal.sample(&mut rng)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// A `VarBuilder` that creates every parameter with the model's own initialiser hint (candle's `Init`), drawn from
/// an RNG seeded by `(seed, name)`, and registers it in `varmap` as a trainable `Var` (like
/// `CheckedTensors::new(.., Missing::Init, Some(varmap))`, whose draws are not seeded).
pub fn seeded_var_builder(varmap: &candle_nn::VarMap, seed: u64) -> candle_nn::VarBuilder<'static> {
    candle_nn::VarBuilder::from_backend(
        Box::new(SeededInit { varmap: varmap.clone(), seed }),
        candle_core::DType::F32,
        Device::Cpu,
    )
}

struct SeededInit {
    varmap: candle_nn::VarMap,
    seed: u64,
}

impl candle_nn::var_builder::SimpleBackend for SeededInit {
    fn get(
        &self,
        s: candle_core::Shape,
        name: &str,
        h: candle_nn::Init,
        dtype: candle_core::DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        use candle_nn::init::{Init, NormalOrUniform};
        use rand::{Rng, SeedableRng};
        use rand_distr::Distribution;
        // FNV-1a of the name, mixed with the seed: independent of the order parameters are built in.
        let h64 = name.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3));
        let mut rng = rand::rngs::StdRng::seed_from_u64(h64 ^ self.seed.wrapping_mul(0x9E3779B97F4A7C15));
        let n = s.elem_count();
        let normal = |rng: &mut rand::rngs::StdRng, mean: f64, std: f64| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    let z: f64 = rand_distr::StandardNormal.sample(rng);
                    (mean + std * z) as f32
                })
                .collect()
        };
        let uniform = |rng: &mut rand::rngs::StdRng, lo: f64, up: f64| -> Vec<f32> {
            (0..n).map(|_| rng.random_range(lo..up) as f32).collect()
        };
        let v = match h {
            Init::Const(c) => vec![c as f32; n],
            Init::Randn { mean, stdev } => normal(&mut rng, mean, stdev),
            Init::Uniform { lo, up } => uniform(&mut rng, lo, up),
            Init::Kaiming { dist, fan, non_linearity } => {
                let std = non_linearity.gain() / (fan.for_shape(&s) as f64).sqrt();
                match dist {
                    NormalOrUniform::Uniform => uniform(&mut rng, -3f64.sqrt() * std, 3f64.sqrt() * std),
                    NormalOrUniform::Normal => normal(&mut rng, 0.0, std),
                }
            }
        };
        let t = Tensor::from_vec(v, s, &Device::Cpu)?.to_dtype(dtype)?.to_device(dev)?;
        let var = candle_core::Var::from_tensor(&t)?;
        let out = var.as_tensor().clone();
        self.varmap.data().lock().unwrap().insert(name.to_string(), var);
        Ok(out)
    }

    fn get_unchecked(&self, name: &str, _: candle_core::DType, _: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("seeded init: no shape for {name}")
    }

    fn contains_tensor(&self, _: &str) -> bool {
        false
    }
}

/// `libonnxruntime.so` for the ONNX tests. scripts/test.sh exports `ORT_DYLIB_PATH`, so the environment is only
/// read; for a plain `cargo test` it is set here once (a `Once`, before any ONNX Runtime use in this process).
pub fn ort_runtime() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        if std::env::var_os("ORT_DYLIB_PATH").is_some() {
            return;
        }
        let lib = repo_root().join("third_party/onnxruntime/libonnxruntime.so");
        assert!(lib.is_file(), "{} missing: run scripts/install_deps.sh (scripts/test.sh does)", lib.display());
        std::env::set_var("ORT_DYLIB_PATH", &lib);
    });
}

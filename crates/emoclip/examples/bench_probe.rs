//! Linear-probe benchmark mirroring EmotionCLIP `linear_eval.py` on BoLD: `OneVsRestClassifier(LogisticRegression(C=3.16))` on 10,000 × 512 L2-normalised features, 26 labels.
//!
//! `cargo run --release -p emoclip --example bench_probe [-- DATA_DIR [C]]` writes the data it fits to DATA_DIR
//! (default `target/bench_probe`: `x.f64` row-major little-endian, `y.u8`, `shape.txt`, and the fitted
//! train probabilities `p_rust.f64`) so that
//! `bench/sklearn_probe.py DATA_DIR` times scikit-learn on exactly the same problem.
use std::time::Instant;

use emoclip::probe::search::SplitMix64;
use emoclip::probe::{average_precision_macro, roc_auc_macro, LogisticRegression, Mat, OneVsRest};

fn main() -> emoclip::Result<()> {
    let (n, d, k) = (10_000usize, 512usize, 26usize);
    let dir = std::env::args().nth(1).unwrap_or_else(|| "target/bench_probe".into());
    // optional second argument: C (default 3.16, the BoLD setting), e.g. to time the ends of the C search range
    let c: f64 = match std::env::args().nth(2) {
        Some(s) => s.parse().map_err(|_| emoclip::Error::Msg(format!("C must be a number, got {s:?}")))?,
        None => 3.16,
    };
    let mut rng = SplitMix64::new(2023);
    let mut gauss = || {
        let (u, v) = (rng.next_f64().max(1e-300), rng.next_f64());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    };
    let mut x = Mat::zeros(n, d);
    for i in 0..n {
        let r = &mut x.data[i * d..(i + 1) * d];
        r.iter_mut().for_each(|v| *v = gauss());
        let norm = r.iter().map(|v| v * v).sum::<f64>().sqrt();
        r.iter_mut().for_each(|v| *v /= norm);
    }
    // labels: noisy linear teacher, imbalanced (BoLD-like positive rates from ~50% down to ~3%)
    let teacher: Vec<f64> = (0..d * k).map(|_| gauss()).collect();
    let mut y = Mat::zeros(n, k);
    for i in 0..n {
        for c in 0..k {
            let z: f64 = x.row(i).iter().zip(&teacher[c * d..(c + 1) * d]).map(|(a, b)| a * b).sum();
            let bias = -2.0 * c as f64 / k as f64;
            y.data[i * k + c] = f64::from(z + 0.5 * gauss() + bias > 0.0);
        }
    }
    std::fs::create_dir_all(&dir).map_err(|e| emoclip::Error::io(&dir, e))?;
    let xb: Vec<u8> = x.data.iter().flat_map(|v| v.to_le_bytes()).collect();
    let yb: Vec<u8> = y.data.iter().map(|v| *v as u8).collect();
    for (name, bytes) in [("x.f64", xb), ("y.u8", yb), ("shape.txt", format!("{n} {d} {k}\n").into_bytes())] {
        let p = format!("{dir}/{name}");
        std::fs::write(&p, bytes).map_err(|e| emoclip::Error::io(&p, e))?;
    }

    let threads = rayon::current_num_threads();
    let t = Instant::now();
    let model = OneVsRest::new(LogisticRegression::new(c)).fit(&x, &y)?;
    let secs = t.elapsed().as_secs_f64();
    let iters: Vec<usize> = model
        .estimators
        .iter()
        .filter_map(|e| match e {
            emoclip::probe::ovr::BinaryEstimator::Fitted(m) => Some(m.n_iter),
            _ => None,
        })
        .collect();
    let p = model.predict_proba(&x)?;
    let pb: Vec<u8> = p.data.iter().flat_map(|v| v.to_le_bytes()).collect();
    let pp = format!("{dir}/p_rust.f64");
    std::fs::write(&pp, pb).map_err(|e| emoclip::Error::io(&pp, e))?;
    println!(
        "rust OvR LogisticRegression(C={c}) {n}x{d}, {k} labels, {threads} threads: fit {secs:.2} s \
         (L-BFGS iterations min {} max {}); train mAP {:.4} AUC {:.4}; data in {dir}",
        iters.iter().min().unwrap_or(&0),
        iters.iter().max().unwrap_or(&0),
        average_precision_macro(&y, &p)?.sklearn * 100.0,
        roc_auc_macro(&y, &p)?.sklearn * 100.0,
    );
    Ok(())
}

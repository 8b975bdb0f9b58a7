//! Seeded randomness shared by the trainers and random weights: every random choice comes from a `StdRng`
//! seeded from a tuple of numbers ([`mix_seed`]), so a run is a pure function of its seed and position.
use crate::hash::fnv1a64;
use candle_core::Shape;
use candle_nn::Init;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// Mixes numbers into one 64-bit seed (splitmix64 steps).
pub fn mix_seed(parts: &[u64]) -> u64 {
    let mut h = 0x9E37_79B9_7F4A_7C15u64;
    for &p in parts {
        h ^= p.wrapping_add(0x9E37_79B9_7F4A_7C15).wrapping_add(h << 6).wrapping_add(h >> 2);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h = z ^ (z >> 31);
    }
    h
}

/// The RNG of the parameter `name` under `seed`: values that do not depend on build order or device.
pub fn named_rng(seed: u64, name: &str) -> StdRng {
    StdRng::seed_from_u64(mix_seed(&[seed, fnv1a64(name.as_bytes())]))
}

/// The sample order of an epoch (seeded shuffle of `0..n`).
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(mix_seed(&[seed, 0xE9, epoch as u64])));
    order
}

/// Draws the values of a parameter of shape `s` for candle-nn's `init` from `rng` (f32, host memory): the
/// same distributions as candle's initialisers, which cannot be seeded on CPU.
pub fn draw(rng: &mut StdRng, s: &Shape, init: Init) -> candle_core::Result<Vec<f32>> {
    let n = s.elem_count();
    let normal = |rng: &mut StdRng, mean: f64, std: f64| -> candle_core::Result<Vec<f32>> {
        let d = rand_distr::Normal::new(mean, std).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        Ok((0..n).map(|_| rng.sample(d) as f32).collect())
    };
    let uniform =
        |rng: &mut StdRng, lo: f64, up: f64| (0..n).map(|_| (lo + (up - lo) * rng.random::<f64>()) as f32).collect();
    Ok(match init {
        Init::Const(c) => vec![c as f32; n],
        Init::Randn { mean, stdev } => normal(rng, mean, stdev)?,
        Init::Uniform { lo, up } => uniform(rng, lo, up),
        Init::Kaiming { dist, fan, non_linearity } => {
            let std = non_linearity.gain() / (fan.for_shape(s) as f64).sqrt();
            match dist {
                candle_nn::init::NormalOrUniform::Normal => normal(rng, 0.0, std)?,
                candle_nn::init::NormalOrUniform::Uniform => {
                    let b = 3f64.sqrt() * std;
                    uniform(rng, -b, b)
                }
            }
        }
    })
}

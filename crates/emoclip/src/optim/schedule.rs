//! Learning-rate schedules: the paper's per-step linear warm-up + cosine (appendix B.2) and the official code's
//! `LRWarmupScheduler(mode='auto')` around a per-epoch `CosineAnnealingLR(T_max=epochs, eta_min=1e-10)`.
//!
//! Both are closed forms of the learning rate used for optimiser step `n` (0-based: `lr(0)` is used by the first
//! step), as a multiple of each group's base learning rate, so one schedule drives every parameter group.
use crate::{Error, Result};
use std::f64::consts::PI;

/// Paper appendix B.2: "linearly warmed up for 2500 steps".
pub const PAPER_WARMUP_STEPS: usize = 2500;
/// Paper appendix B.2 and official `lr_min`: "decayed to 1e-10".
pub const ETA_MIN: f64 = 1e-10;
/// Official `warmup_t` (iterations).
pub const OFFICIAL_WARMUP_ITERS: usize = 10_000;
/// Official `warmup_init_factor`: warm-up starts at `base·1e-5`.
pub const OFFICIAL_WARMUP_INIT_FACTOR: f64 = 1e-5;
/// Official `max_epochs` (= `T_max` of the cosine); paper: "trained for 25 epochs".
pub const EPOCHS: usize = 25;

/// A learning-rate schedule; see [`LrSchedule::lr`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LrSchedule {
    /// Per-step schedule (paper): `lr(n) = base·(f + (1 − f)·n/W)` for `n < W`, then
    /// `η + (base − η)·(1 + cos(π·(n − W)/(T − W)))/2` up to `n = T` and `η` after. Equal to PyTorch
    /// `SequentialLR([LinearLR(start_factor=f, total_iters=W), CosineAnnealingLR(T_max=T−W, eta_min=η)], [W])`.
    /// The paper does not give the warm-up start; [`LrSchedule::paper`] uses the official factor 1e-5.
    StepCosine { warmup_steps: usize, warmup_init_factor: f64, total_steps: usize, eta_min: f64 },
    /// Official code: cosine per epoch `c(e) = η + (base − η)·(1 + cos(π·e/E))/2` (`CosineAnnealingLR(T_max=E)`
    /// stepped at the end of each epoch), with an iteration warm-up in `'auto'` mode: for `0 ≤ n < W`,
    /// `lr(n) = base·f·(1 − n/W) + c(W / L)·n/W` (the warm-up aims at the cosine value of the epoch in which it
    /// ends, `L` = steps per epoch); for `n ≥ W`, `lr(n) = c(n / L)`.
    EpochCosine { warmup_steps: usize, warmup_init_factor: f64, steps_per_epoch: usize, epochs: usize, eta_min: f64 },
}

impl LrSchedule {
    /// The paper's shape: linear warm-up from `base·1e-5` over `warmup_steps` (the paper: [`PAPER_WARMUP_STEPS`]),
    /// then a per-step cosine to 1e-10 at `total_steps`.
    pub fn paper(warmup_steps: usize, total_steps: usize) -> Self {
        LrSchedule::StepCosine {
            warmup_steps,
            warmup_init_factor: OFFICIAL_WARMUP_INIT_FACTOR,
            total_steps,
            eta_min: ETA_MIN,
        }
    }

    /// The official code's shape: `warmup_steps` warm-up iterations from `base·1e-5` (official:
    /// [`OFFICIAL_WARMUP_ITERS`]), a per-epoch cosine over `epochs` (official: [`EPOCHS`]) to 1e-10.
    pub fn official(warmup_steps: usize, steps_per_epoch: usize, epochs: usize) -> Self {
        LrSchedule::EpochCosine {
            warmup_steps,
            warmup_init_factor: OFFICIAL_WARMUP_INIT_FACTOR,
            steps_per_epoch,
            epochs,
            eta_min: ETA_MIN,
        }
    }

    /// Checks the parameters (positive lengths, warm-up shorter than training, finite factors).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Msg(format!("learning-rate schedule: {m}")));
        match *self {
            LrSchedule::StepCosine { warmup_steps, warmup_init_factor, total_steps, eta_min } => {
                if total_steps <= warmup_steps {
                    return bad(format!("total_steps {total_steps} must exceed warmup_steps {warmup_steps}"));
                }
                if !(warmup_init_factor > 0.0 && warmup_init_factor <= 1.0 && eta_min >= 0.0 && eta_min.is_finite()) {
                    return bad(format!(
                        "need 0 < warmup_init_factor <= 1 and eta_min >= 0 (got {warmup_init_factor}, {eta_min})"
                    ));
                }
            }
            LrSchedule::EpochCosine { warmup_init_factor, steps_per_epoch, epochs, eta_min, .. } => {
                if steps_per_epoch == 0 || epochs == 0 {
                    return bad("steps_per_epoch and epochs must be positive".into());
                }
                if !(warmup_init_factor.is_finite()
                    && warmup_init_factor >= 0.0
                    && eta_min >= 0.0
                    && eta_min.is_finite())
                {
                    return bad(format!(
                        "need warmup_init_factor >= 0 and eta_min >= 0 (got {warmup_init_factor}, {eta_min})"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Learning rate for optimiser step `step` (0-based) of a group whose base learning rate is `base`.
    pub fn lr(&self, base: f64, step: usize) -> f64 {
        let n = step as f64;
        match *self {
            LrSchedule::StepCosine { warmup_steps, warmup_init_factor: f, total_steps, eta_min } => {
                if step < warmup_steps {
                    base * (f + (1.0 - f) * n / warmup_steps as f64)
                } else if step >= total_steps {
                    eta_min
                } else {
                    let x = (step - warmup_steps) as f64 / (total_steps - warmup_steps) as f64;
                    eta_min + (base - eta_min) * (1.0 + (PI * x).cos()) / 2.0
                }
            }
            LrSchedule::EpochCosine { warmup_steps, warmup_init_factor: f, steps_per_epoch, epochs, eta_min } => {
                let cos = |e: usize| {
                    let e = e.min(epochs) as f64;
                    eta_min + (base - eta_min) * (1.0 + (PI * e / epochs as f64).cos()) / 2.0
                };
                if step < warmup_steps {
                    let a = n / warmup_steps as f64;
                    base * f * (1.0 - a) + cos(warmup_steps / steps_per_epoch) * a
                } else {
                    cos(step / steps_per_epoch)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_cosine_shape() {
        let s = LrSchedule::StepCosine { warmup_steps: 10, warmup_init_factor: 1e-5, total_steps: 110, eta_min: 1e-10 };
        s.validate().unwrap();
        assert!((s.lr(1.0, 0) - 1e-5).abs() < 1e-15);
        assert_eq!(s.lr(1.0, 10), 1.0);
        assert!((s.lr(1.0, 60) - (0.5 + 0.5e-10)).abs() < 1e-12);
        assert_eq!(s.lr(1.0, 110), 1e-10);
        assert_eq!(s.lr(1.0, 500), 1e-10);
    }

    #[test]
    fn presets_validate() {
        LrSchedule::paper(PAPER_WARMUP_STEPS, 100_000).validate().unwrap();
        LrSchedule::official(OFFICIAL_WARMUP_ITERS, 3000, EPOCHS).validate().unwrap();
        assert!(LrSchedule::paper(PAPER_WARMUP_STEPS, 100).validate().is_err());
    }
}

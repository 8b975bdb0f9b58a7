//! The one `VarBuilder` backend for weights, for inference and training alike: it checks a checkpoint against
//! the model while the model is built (recording every missing and mis-shaped key instead of stopping at the
//! first, and afterwards listing the keys the model never asked for, so one error names everything that is
//! wrong), initialises what the checkpoint lacks as [`Missing`] says (unseeded, or seeded for exact
//! resume), and, given a `VarMap`, registers every tensor as a trainable `Var`.
use crate::rng::{draw, named_rng};
use candle_core::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// What to do with keys the checkpoint lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// Report them (loading fails).
    Error,
    /// Initialise them as the model's own initialiser does (e.g. a fresh temporal head on an open_clip
    /// backbone), and report them as initialised.
    Init,
    /// As `Init`, with the values drawn from one RNG seeded by this number, in the order the model asks for
    /// them ([`crate::rng::draw`]): the same model and seed give the same weights.
    Seeded(u64),
    /// As `Init`, with each parameter's values drawn from an RNG seeded by `(this number, its name)`
    /// ([`crate::rng::named_rng`]): the values do not depend on build order or on which other keys exist.
    SeededByName(u64),
}

#[derive(Default)]
struct Log {
    requested: BTreeSet<String>,
    missing: Vec<String>,
    initialised: Vec<String>,
    misshaped: Vec<String>,
}

struct Inner {
    tensors: HashMap<String, Tensor>,
    missing: Missing,
    /// The RNG of [`Missing::Seeded`].
    rng: Mutex<StdRng>,
    /// When set, every tensor handed out becomes a trainable `Var` registered here.
    varmap: Option<VarMap>,
    log: Mutex<Log>,
}

/// Cheap to clone; the clone handed to the `VarBuilder` shares the log.
#[derive(Clone)]
pub struct CheckedTensors(Arc<Inner>);

/// Everything that did not fit, after building a model.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    pub missing: Vec<String>,
    pub misshaped: Vec<String>,
    pub unexpected: Vec<String>,
    pub initialised: Vec<String>,
}

impl LoadReport {
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.misshaped.is_empty() && self.unexpected.is_empty()
    }

    /// A multi-line description of the problems, sorted, with counts.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for (title, list) in
            [("missing", &self.missing), ("wrong shape", &self.misshaped), ("unexpected", &self.unexpected)]
        {
            if !list.is_empty() {
                let mut l = list.clone();
                l.sort();
                s.push_str(&format!("\n  {} {title} key(s):", l.len()));
                for k in l {
                    s.push_str(&format!("\n    {k}"));
                }
            }
        }
        s
    }
}

impl CheckedTensors {
    pub fn new(tensors: HashMap<String, Tensor>, missing: Missing, varmap: Option<VarMap>) -> Self {
        let seed = match missing {
            Missing::Seeded(s) => s,
            _ => 0,
        };
        let rng = Mutex::new(StdRng::seed_from_u64(seed));
        Self(Arc::new(Inner { tensors, missing, rng, varmap, log: Mutex::new(Log::default()) }))
    }

    pub fn var_builder(&self, dtype: DType, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(self.clone()), dtype, device.clone())
    }

    /// Call after the model is built. `ignore`: checkpoint keys that are known not to be parameters
    /// (buffers such as `visual_head.position_ids`, tied duplicates such as `backbone.logit_scale`).
    pub fn report(&self, ignore: &[&str]) -> LoadReport {
        let log = self.0.log.lock().unwrap_or_else(|e| e.into_inner());
        let unexpected = self
            .0
            .tensors
            .keys()
            .filter(|k| !log.requested.contains(*k) && !ignore.contains(&k.as_str()))
            .cloned()
            .collect();
        LoadReport {
            missing: log.missing.clone(),
            misshaped: log.misshaped.clone(),
            unexpected,
            initialised: log.initialised.clone(),
        }
    }

    pub fn tensor(&self, name: &str) -> Option<&Tensor> {
        self.0.tensors.get(name)
    }

    fn finish(&self, name: &str, t: Tensor, dtype: DType, dev: &Device) -> Result<Tensor> {
        let t = t.to_dtype(dtype)?.to_device(dev)?;
        match &self.0.varmap {
            None => Ok(t),
            Some(vm) => {
                let var = Var::from_tensor(&t)?;
                let out = var.as_tensor().clone();
                vm.data().lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), var);
                Ok(out)
            }
        }
    }
}

impl SimpleBackend for CheckedTensors {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let inner = &self.0;
        let mut log = inner.log.lock().unwrap_or_else(|e| e.into_inner());
        log.requested.insert(name.to_string());
        match inner.tensors.get(name) {
            Some(t) if t.shape() == &s => {
                drop(log);
                self.finish(name, t.clone(), dtype, dev)
            }
            Some(t) => {
                log.misshaped.push(format!("{name}: checkpoint {:?}, model expects {:?}", t.dims(), s.dims()));
                drop(log);
                // A placeholder of the right shape lets the build go on and collect every problem.
                Tensor::zeros(s, dtype, dev)
            }
            None => {
                let t = match inner.missing {
                    Missing::Error => {
                        log.missing.push(format!("{name} {:?}", s.dims()));
                        drop(log);
                        return Tensor::zeros(s, dtype, dev);
                    }
                    Missing::Init => {
                        log.initialised.push(name.to_string());
                        drop(log);
                        // Detached: a plain tensor, so inference takes the fused kernels; `finish` makes it a Var when training.
                        h.var(s, dtype, dev)?.as_detached_tensor()
                    }
                    Missing::Seeded(_) => {
                        log.initialised.push(name.to_string());
                        drop(log);
                        let v = draw(&mut inner.rng.lock().unwrap_or_else(|e| e.into_inner()), &s, h)?;
                        Tensor::from_vec(v, &s, &Device::Cpu)?
                    }
                    Missing::SeededByName(seed) => {
                        log.initialised.push(name.to_string());
                        drop(log);
                        Tensor::from_vec(draw(&mut named_rng(seed, name), &s, h)?, &s, &Device::Cpu)?
                    }
                };
                self.finish(name, t, dtype, dev)
            }
        }
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor> {
        let inner = &self.0;
        inner.log.lock().unwrap_or_else(|e| e.into_inner()).requested.insert(name.to_string());
        match inner.tensors.get(name) {
            Some(t) => self.finish(name, t.clone(), dtype, dev),
            None => candle_core::bail!("cannot find tensor {name}"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.0.tensors.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(missing: Missing, names: &[&str]) -> Vec<Vec<f32>> {
        let vb = CheckedTensors::new(HashMap::new(), missing, None).var_builder(DType::F32, &Device::Cpu);
        names
            .iter()
            .map(|n| vb.get_with_hints(3, n, candle_nn::init::DEFAULT_KAIMING_NORMAL).unwrap().to_vec1().unwrap())
            .collect()
    }

    #[test]
    fn seeded_initialisation_is_reproducible() {
        // Seeded: one stream in request order; the same seed and order give the same values.
        assert_eq!(values(Missing::Seeded(7), &["a", "b"]), values(Missing::Seeded(7), &["a", "b"]));
        assert_ne!(values(Missing::Seeded(7), &["a"]), values(Missing::Seeded(8), &["a"]));
        // SeededByName: a parameter's values depend on its name only, not on what was built before it.
        let ab = values(Missing::SeededByName(7), &["a", "b"]);
        let ba = values(Missing::SeededByName(7), &["b", "a"]);
        assert_eq!((&ab[0], &ab[1]), (&ba[1], &ba[0]));
        assert_ne!(ab[0], ab[1]);
    }
}

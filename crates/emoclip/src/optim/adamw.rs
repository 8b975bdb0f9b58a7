//! Fused AdamW with parameter groups, mirroring PyTorch `torch.optim.AdamW` (single-tensor path, Loshchilov & Hutter 2019).
//!
//! Per parameter, with `t` its own step count (incremented only when it has a gradient, as in PyTorch):
//!
//! ```text
//! p ← p · (1 − lr·wd)                       decoupled weight decay, before the Adam step
//! m ← m + (1 − β1)·(g − m)                   PyTorch `exp_avg.lerp_(g, 1 − β1)`
//! v ← v·β2 + (1 − β2)·g·g                    `exp_avg_sq.mul_(β2).addcmul_(g, g, 1 − β2)`
//! p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)   ε added after the square root of the bias-corrected v
//! ```
//!
//! **CPU f32 (fused).** The moments live in the optimiser as plain `Vec<f32>`; the parameter is updated truly
//! in place through candle's [`InplaceOp2`] (`Tensor::inplace_op2(param, grad)`), whose CPU kernel gets
//! `&mut` access to the parameter's storage and reads the gradient's. One pass per element reads p, g, m, v
//! and writes p, m, v (rayon over 32 Ki-element chunks). No tensor is allocated and the `Var` keeps its
//! storage, so tensors that alias it (the model's weights) see the update. `Var::set` would instead copy a
//! freshly computed tensor, and candle-nn's `AdamW` allocates ~10 temporaries per parameter per step.
//!
//! **Other devices / dtypes (generic).** The same formulas in composed tensor ops with `Var::set`; the
//! moments are then tensors on the parameter's device.
//!
//! State (`exp_avg`, `exp_avg_sq`, `step` per parameter) is exported and imported as named tensors
//! (`<param>.exp_avg`, `<param>.exp_avg_sq`, `<param>.step`) for checkpoints and exact resume.
use super::ParamGroup;
use crate::{Error, Result};
use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, Device, InplaceOp2, Layout, Tensor, Var};
use candle_nn::VarMap;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

enum Moments {
    /// CPU f32 fused path.
    Host { m: Vec<f32>, v: Vec<f32> },
    /// Generic path: tensors on the parameter's device and dtype.
    Device { m: Tensor, v: Tensor },
}

struct ParamState {
    name: String,
    var: Var,
    step: u64,
    moments: Moments,
}

struct Group {
    hp: ParamGroup,
    params: Vec<ParamState>,
}

/// AdamW over named `Var`s in parameter groups; see the module documentation.
pub struct AdamW {
    groups: Vec<Group>,
    fused: bool,
}

/// Scalars of one step of one parameter, in f32 as PyTorch's CPU kernels use them for f32 tensors.
#[derive(Clone, Copy)]
struct Coeffs {
    decay: f32,
    one_minus_b1: f32,
    b2: f32,
    one_minus_b2: f32,
    neg_step_size: f32,
    bc2_sqrt: f32,
    eps: f32,
}

impl Coeffs {
    fn new(hp: &ParamGroup, step: u64) -> Self {
        let (b1, b2) = hp.betas;
        let t = step as i32;
        let bc1 = 1.0 - b1.powi(t);
        let bc2 = 1.0 - b2.powi(t);
        Self {
            decay: (1.0 - hp.lr * hp.weight_decay) as f32,
            one_minus_b1: (1.0 - b1) as f32,
            b2: b2 as f32,
            one_minus_b2: (1.0 - b2) as f32,
            neg_step_size: (-(hp.lr / bc1)) as f32,
            bc2_sqrt: bc2.sqrt() as f32,
            eps: hp.eps as f32,
        }
    }
}

#[inline(always)]
fn adamw_chunk(c: Coeffs, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let pw = *p * c.decay;
        let mn = *m + c.one_minus_b1 * (g - *m);
        let vn = *v * c.b2 + c.one_minus_b2 * g * g;
        let denom = vn.sqrt() / c.bc2_sqrt + c.eps;
        *p = pw + c.neg_step_size * (mn / denom);
        *m = mn;
        *v = vn;
    }
}

const CHUNK: usize = 1 << 15;

/// The in-place kernel: `dst` is the parameter, `src` the gradient; the moments are borrowed from the optimiser.
struct FusedStep<'a> {
    c: Coeffs,
    mv: Mutex<(&'a mut [f32], &'a mut [f32])>,
}

impl InplaceOp2 for FusedStep<'_> {
    fn name(&self) -> &'static str {
        "fused-adamw"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<()> {
        let (p, g) = match (s1, s2) {
            (CpuStorage::F32(p), CpuStorage::F32(g)) => (p, g),
            _ => candle_core::bail!("fused-adamw: parameter and gradient must be f32"),
        };
        let (Some((p0, p1)), Some((g0, g1))) = (l1.contiguous_offsets(), l2.contiguous_offsets()) else {
            candle_core::bail!("fused-adamw: parameter and gradient must be contiguous");
        };
        let p = &mut p[p0..p1];
        let g = &g[g0..g1];
        let mut guard = self.mv.lock().map_err(|_| candle_core::Error::Msg("fused-adamw: poisoned lock".into()))?;
        let (m, v) = &mut *guard;
        if p.len() != g.len() || m.len() != p.len() || v.len() != p.len() {
            candle_core::bail!(
                "fused-adamw: length mismatch (param {}, grad {}, m {}, v {})",
                p.len(),
                g.len(),
                m.len(),
                v.len()
            );
        }
        let c = self.c;
        if p.len() <= CHUNK {
            adamw_chunk(c, p, g, m, v);
        } else {
            p.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .zip(m.par_chunks_mut(CHUNK))
                .zip(v.par_chunks_mut(CHUNK))
                .for_each(|(((p, g), m), v)| adamw_chunk(c, p, g, m, v));
        }
        Ok(())
    }
}

fn fusable(var: &Var) -> bool {
    matches!(var.device(), Device::Cpu) && var.dtype() == DType::F32 && var.as_tensor().is_contiguous()
}

impl AdamW {
    /// Builds the optimiser over the VarMap's variables named in `groups`. Variables in no group are not optimised.
    /// Errors on an unknown name or a name in two groups.
    pub fn new(varmap: &VarMap, groups: Vec<ParamGroup>) -> Result<Self> {
        let data = varmap.data().lock().map_err(|_| Error::Msg("VarMap lock poisoned".into()))?;
        let named: HashMap<String, Var> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        drop(data);
        Self::from_named_vars(&named, groups)
    }

    /// Same as [`AdamW::new`] from an explicit name → `Var` map.
    pub fn from_named_vars(vars: &HashMap<String, Var>, groups: Vec<ParamGroup>) -> Result<Self> {
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(groups.len());
        for hp in groups {
            for (what, x) in [("lr", hp.lr), ("eps", hp.eps), ("weight_decay", hp.weight_decay)] {
                if !x.is_finite() || x < 0.0 {
                    return Err(Error::Msg(format!(
                        "AdamW group {}: {what} must be finite and >= 0, got {x}",
                        hp.name
                    )));
                }
            }
            for (what, b) in [("beta1", hp.betas.0), ("beta2", hp.betas.1)] {
                if !(0.0..1.0).contains(&b) {
                    return Err(Error::Msg(format!("AdamW group {}: {what} must be in [0, 1), got {b}", hp.name)));
                }
            }
            let mut params = Vec::with_capacity(hp.params.len());
            for name in &hp.params {
                let var = vars
                    .get(name)
                    .ok_or_else(|| Error::Msg(format!("AdamW group {}: no parameter named {name}", hp.name)))?;
                if !seen.insert(name.clone()) {
                    return Err(Error::Msg(format!("AdamW: parameter {name} is in more than one group")));
                }
                if !var.dtype().is_float() {
                    return Err(Error::Msg(format!("AdamW: parameter {name} has non-float dtype {:?}", var.dtype())));
                }
                params.push(ParamState {
                    name: name.clone(),
                    var: var.clone(),
                    step: 0,
                    moments: Self::zero_moments(var, true)?,
                });
            }
            out.push(Group { hp, params });
        }
        Ok(Self { groups: out, fused: true })
    }

    fn zero_moments(var: &Var, fused: bool) -> Result<Moments> {
        if fused && fusable(var) {
            let n = var.elem_count();
            Ok(Moments::Host { m: vec![0.0; n], v: vec![0.0; n] })
        } else {
            Ok(Moments::Device { m: var.zeros_like()?, v: var.zeros_like()? })
        }
    }

    /// Enables (default) or disables the fused CPU kernel; disabled, every parameter takes the generic tensor path.
    pub fn set_fused(&mut self, fused: bool) -> Result<()> {
        self.fused = fused;
        for g in &mut self.groups {
            for p in &mut g.params {
                let want_host = fused && fusable(&p.var);
                p.moments = match (std::mem::replace(&mut p.moments, Moments::Host { m: vec![], v: vec![] }), want_host)
                {
                    (Moments::Host { m, v }, false) => {
                        let t = |x: Vec<f32>| -> Result<Tensor> {
                            Ok(Tensor::from_vec(x, p.var.shape(), p.var.device())?.to_dtype(p.var.dtype())?)
                        };
                        Moments::Device { m: t(m)?, v: t(v)? }
                    }
                    (Moments::Device { m, v }, true) => Moments::Host {
                        m: m.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
                        v: v.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
                    },
                    (other, _) => other,
                };
            }
        }
        Ok(())
    }

    /// The groups' hyper-parameters (index order = construction order).
    pub fn groups(&self) -> Vec<&ParamGroup> {
        self.groups.iter().map(|g| &g.hp).collect()
    }

    /// Sets the learning rate of group `idx` (for schedules).
    pub fn set_lr(&mut self, idx: usize, lr: f64) -> Result<()> {
        let n = self.groups.len();
        let g = self.groups.get_mut(idx).ok_or_else(|| Error::Msg(format!("AdamW: no group {idx} ({n} groups)")))?;
        if !lr.is_finite() || lr < 0.0 {
            return Err(Error::Msg(format!("AdamW: learning rate must be finite and >= 0, got {lr}")));
        }
        g.hp.lr = lr;
        Ok(())
    }

    /// One optimisation step; parameters without a gradient in `grads` are skipped (their step count does not advance).
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        for group in &mut self.groups {
            let hp = &group.hp;
            for ps in &mut group.params {
                let Some(g) = grads.get(ps.var.as_tensor()) else { continue };
                if g.dims() != ps.var.dims() {
                    return Err(Error::Shape(format!(
                        "gradient of {} is {:?}, parameter is {:?}",
                        ps.name,
                        g.dims(),
                        ps.var.dims()
                    )));
                }
                ps.step += 1;
                let c = Coeffs::new(hp, ps.step);
                match &mut ps.moments {
                    Moments::Host { m, v } => {
                        let g = g.detach().to_dtype(DType::F32)?.contiguous()?;
                        let op = FusedStep { c, mv: Mutex::new((m.as_mut_slice(), v.as_mut_slice())) };
                        ps.var.as_tensor().inplace_op2(&g, &op)?;
                    }
                    Moments::Device { m, v } => {
                        let (b1, b2) = hp.betas;
                        let t = ps.step as i32;
                        let g = g.detach();
                        let p = (ps.var.as_tensor().detach() * (1.0 - hp.lr * hp.weight_decay))?;
                        let mn = (&*m + ((&g - &*m)? * (1.0 - b1))?)?;
                        let vn = ((&*v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
                        let denom = ((vn.sqrt()? / (1.0 - b2.powi(t)).sqrt())? + hp.eps)?;
                        let pn = (p - ((&mn / denom)? * (hp.lr / (1.0 - b1.powi(t))))?)?;
                        ps.var.set(&pn)?;
                        *m = mn;
                        *v = vn;
                    }
                }
            }
        }
        Ok(())
    }

    /// Optimiser state as named tensors: `<param>.exp_avg`, `<param>.exp_avg_sq` (parameter shape, f32 on the
    /// host for fused parameters) and `<param>.step` (0-d i64).
    pub fn state_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for g in &self.groups {
            for p in &g.params {
                let (m, v) = match &p.moments {
                    Moments::Host { m, v } => (
                        Tensor::from_slice(m, p.var.shape(), &Device::Cpu)?,
                        Tensor::from_slice(v, p.var.shape(), &Device::Cpu)?,
                    ),
                    Moments::Device { m, v } => (m.clone(), v.clone()),
                };
                out.insert(format!("{}.exp_avg", p.name), m);
                out.insert(format!("{}.exp_avg_sq", p.name), v);
                out.insert(format!("{}.step", p.name), Tensor::new(p.step as i64, &Device::Cpu)?);
            }
        }
        Ok(out)
    }

    /// Restores the state written by [`AdamW::state_tensors`]; every optimised parameter must be present.
    pub fn load_state_tensors(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        for g in &mut self.groups {
            for p in &mut g.params {
                let get = |suffix: &str| {
                    state
                        .get(&format!("{}.{suffix}", p.name))
                        .ok_or_else(|| Error::Msg(format!("optimiser state: missing {}.{suffix}", p.name)))
                };
                let (m, v, step) = (get("exp_avg")?, get("exp_avg_sq")?, get("step")?);
                for (what, t) in [("exp_avg", m), ("exp_avg_sq", v)] {
                    if t.dims() != p.var.dims() {
                        return Err(Error::Shape(format!(
                            "optimiser state {}.{what} is {:?}, parameter is {:?}",
                            p.name,
                            t.dims(),
                            p.var.dims()
                        )));
                    }
                }
                let step = step.to_dtype(DType::F64)?.reshape(())?.to_scalar::<f64>()?;
                if !(step >= 0.0 && step.fract() == 0.0) {
                    return Err(Error::Msg(format!("optimiser state {}.step is not a count: {step}", p.name)));
                }
                p.step = step as u64;
                p.moments = match &p.moments {
                    Moments::Host { .. } => Moments::Host {
                        m: m.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
                        v: v.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
                    },
                    Moments::Device { .. } => Moments::Device {
                        m: m.to_device(p.var.device())?.to_dtype(p.var.dtype())?,
                        v: v.to_device(p.var.device())?.to_dtype(p.var.dtype())?,
                    },
                };
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (HashMap<String, Var>, Vec<ParamGroup>, GradStore) {
        let dev = Device::Cpu;
        let a = Var::from_tensor(&Tensor::arange(0f32, 12.0, &dev).unwrap().reshape((3, 4)).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::new(&[0.5f32, -1.0, 2.0], &dev).unwrap()).unwrap();
        let mut grads = GradStore::default();
        grads.insert(
            a.as_tensor(),
            ((Tensor::arange(0f32, 12.0, &dev).unwrap().reshape((3, 4)).unwrap() * 0.1).unwrap() - 0.3).unwrap(),
        );
        grads.insert(b.as_tensor(), Tensor::new(&[1f32, -2.0, 0.25], &dev).unwrap());
        let vars = HashMap::from([("a".to_string(), a), ("b".to_string(), b)]);
        let groups = vec![
            ParamGroup {
                name: "g0".into(),
                lr: 1e-2,
                betas: (0.98, 0.9),
                eps: 1e-6,
                weight_decay: 0.1,
                params: vec!["a".into()],
            },
            ParamGroup::new("g1", 5e-3, vec!["b".into()]),
        ];
        (vars, groups, grads)
    }

    #[test]
    fn fused_and_generic_agree_and_state_round_trips() {
        let (vars, groups, grads) = setup();
        let (vars2, _, _) = setup();
        let mut grads2 = GradStore::default();
        for k in ["a", "b"] {
            grads2.insert(vars2[k].as_tensor(), grads.get(vars[k].as_tensor()).unwrap().clone());
        }
        let mut fused = AdamW::from_named_vars(&vars, groups.clone()).unwrap();
        let mut generic = AdamW::from_named_vars(&vars2, groups).unwrap();
        generic.set_fused(false).unwrap();
        for _ in 0..3 {
            fused.step(&grads).unwrap();
            generic.step(&grads2).unwrap();
        }
        for k in ["a", "b"] {
            let x = vars[k].flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let y = vars2[k].flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (x, y) in x.iter().zip(&y) {
                assert!((x - y).abs() <= 1e-6 * y.abs().max(1.0), "{k}: {x} vs {y}");
            }
        }
        // Export from the fused optimiser, import into the generic one: both then step identically.
        let st = fused.state_tensors().unwrap();
        assert_eq!(st["a.step"].to_scalar::<i64>().unwrap(), 3);
        generic.load_state_tensors(&st).unwrap();
        let st2 = generic.state_tensors().unwrap();
        assert_eq!(st2["b.exp_avg_sq"].to_vec1::<f32>().unwrap(), st["b.exp_avg_sq"].to_vec1::<f32>().unwrap());
    }

    #[test]
    fn parallel_chunks_match_generic() {
        // > CHUNK elements: exercises the rayon path of the fused kernel.
        let dev = Device::Cpu;
        let n = 3 * CHUNK + 123;
        let init = Tensor::randn(0f32, 1.0, n, &dev).unwrap();
        let grad = Tensor::randn(0f32, 1.0, n, &dev).unwrap();
        let (a, b) = (Var::from_tensor(&init).unwrap(), Var::from_tensor(&init.copy().unwrap()).unwrap());
        let group = |name: &str| {
            vec![ParamGroup {
                name: "g".into(),
                lr: 1e-2,
                betas: (0.98, 0.9),
                eps: 1e-6,
                weight_decay: 0.1,
                params: vec![name.into()],
            }]
        };
        let mut fa = AdamW::from_named_vars(&HashMap::from([("a".to_string(), a.clone())]), group("a")).unwrap();
        let mut fb = AdamW::from_named_vars(&HashMap::from([("b".to_string(), b.clone())]), group("b")).unwrap();
        fb.set_fused(false).unwrap();
        let (mut ga, mut gb) = (GradStore::default(), GradStore::default());
        ga.insert(a.as_tensor(), grad.clone());
        gb.insert(b.as_tensor(), grad);
        for _ in 0..3 {
            fa.step(&ga).unwrap();
            fb.step(&gb).unwrap();
        }
        let (x, y) = (a.to_vec1::<f32>().unwrap(), b.to_vec1::<f32>().unwrap());
        let i0 = init.to_vec1::<f32>().unwrap();
        for i in 0..n {
            assert!((x[i] - y[i]).abs() <= 1e-6 * y[i].abs().max(1.0), "{i}: {} vs {}", x[i], y[i]);
            assert!(x[i] != i0[i], "{i}: not updated");
        }
    }

    #[test]
    fn rejects_bad_groups() {
        let (vars, mut groups, _) = setup();
        groups[1].params.push("a".into());
        assert!(AdamW::from_named_vars(&vars, groups.clone()).is_err());
        groups[1].params = vec!["nope".into()];
        assert!(AdamW::from_named_vars(&vars, groups).is_err());
    }
}

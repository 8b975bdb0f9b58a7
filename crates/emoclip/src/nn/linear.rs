//! Affine map `x Wᵀ + b` with PyTorch `nn.Linear` weight layout `[out, in]`; leading dims are flattened into
//! one GEMM (one large matrix product is much faster on CPU than a broadcast batch of small ones). In bf16
//! autocast on a CPU with AVX-512 BF16 the product runs on the bf16 kernel, with the weight packed once.
use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;

#[derive(Clone, Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    /// The weight packed for the bf16 kernel (inference), made on first use.
    pub bf16: super::matmul_bf16::WeightCache,
}

impl Linear {
    /// Loads `{prefix}.weight [out, in]` and, when `bias`, `{prefix}.bias [out]`.
    pub fn load(vb: VarBuilder, in_dim: usize, out_dim: usize, bias: bool) -> Result<Self> {
        let init = candle_nn::init::DEFAULT_KAIMING_NORMAL;
        let weight = vb.get_with_hints((out_dim, in_dim), "weight", init)?;
        let bias = if bias { Some(vb.get_with_hints(out_dim, "bias", candle_nn::Init::Const(0.0))?) } else { None };
        Ok(Self { weight, bias, bf16: Default::default() })
    }

    pub fn from_parts(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight, bias, bf16: Default::default() }
    }

    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.forward_act(xs, None)
    }

    /// For bf16 inference on the CPU only: packs the weight for the bf16 kernel now and drops the f32 weight
    /// (it is replaced by an empty tensor), halving the layer's memory. Afterwards the layer runs only under
    /// bf16 [`super::autocast`] on the CPU without autograd and fails clearly otherwise.
    pub fn keep_only_bf16(&mut self) -> Result<()> {
        if self.bf16.is_pack_only() {
            return Ok(());
        }
        self.bf16 = self.bf16.pack_only(&self.weight, self.bias.as_ref())?;
        self.weight = Tensor::zeros(0, self.weight.dtype(), self.weight.device())?;
        Ok(())
    }

    /// `residual + (x Wᵀ + b)` (a pre-norm block's skip connection). In bf16 inference on the CPU kernel the
    /// addition happens in the product's output pass (the same f32 additions, one pass over memory fewer).
    pub fn forward_residual(&self, xs: &Tensor, residual: &Tensor) -> Result<Tensor> {
        let x2 = rows(xs)?;
        if !(super::matmul_bf16::active_input(&x2, &[&self.weight, residual]) && self.inference(&[&x2, residual])) {
            return residual + self.forward(xs)?;
        }
        let r2 = residual.reshape((x2.dim(0)?, self.out_dim()?))?;
        let y = super::matmul_bf16::linear_residual(&x2, &self.weight, self.bias.as_ref(), &r2, &self.bf16)?;
        y.reshape(residual.shape())
    }

    /// Output width (`out` of the `[out, in]` weight).
    pub fn out_dim(&self) -> Result<usize> {
        match self.bf16.pack_only_dims() {
            Some((n, _)) => Ok(n),
            None => self.weight.dim(0),
        }
    }

    /// True when neither `xs`, the weight nor the bias take part in autograd.
    fn inference(&self, xs: &[&Tensor]) -> bool {
        !super::tracked(xs) && !self.weight.track_op() && !self.bias.as_ref().is_some_and(|b| b.track_op())
    }

    /// `act(x Wᵀ + b)`; in inference on CPU the bias and activation run as one fused parallel pass.
    pub fn forward_act(&self, xs: &Tensor, act: Option<super::Activation>) -> Result<Tensor> {
        let mut x2 = rows(xs)?;
        let mut out_dims = xs.dims()[..xs.rank() - 1].to_vec();
        out_dims.push(self.out_dim()?);
        let mut bf16 = super::matmul_bf16::active_input(&x2, &[&self.weight]);
        let inference = self.inference(&[&x2]);
        if x2.dtype() == DType::BF16 && self.weight.dtype() == DType::F32 && !(bf16 && inference) {
            // An f32 layer's input rounded for a bf16 product that does not run here (a model loaded in bf16 has
            // bf16 weights and keeps its bf16 input): widened exactly, then as an f32 input.
            x2 = x2.to_dtype(DType::F32)?;
            bf16 = super::matmul_bf16::active(&[&x2, &self.weight]);
        }
        if self.bf16.is_pack_only() && !(bf16 && inference) {
            return Err(super::matmul_bf16::dropped_f32_error());
        }
        if bf16 && inference {
            // Inference on the bf16 kernel: packed weight, bias and activation fused into the output pass.
            let y = super::matmul_bf16::linear(&x2, &self.weight, self.bias.as_ref(), act, &self.bf16)?;
            return y.reshape(out_dims);
        }
        let mut y = if bf16 {
            super::matmul_bf16::matmul(&x2, &self.weight.t()?)?
        } else {
            super::autocast::matmul(&x2, &self.weight.t()?)?
        };
        match &self.bias {
            Some(b) if super::cpu::bias_act::usable(&y, b) && super::cpu::bias_act::usable(&self.weight, b) => {
                y = super::cpu::bias_act::bias_act(&y, b, act)?;
            }
            // Training on CPU: the same fusion with its own backward (candle's GELU backward is ~15 passes).
            Some(b) if act == Some(super::Activation::Gelu) && super::cpu::bias_gelu::usable(&y, b) => {
                y = super::cpu::bias_gelu::bias_gelu(&y, b)?;
            }
            other => {
                if let Some(b) = other {
                    y = y.broadcast_add(b)?;
                }
                if let Some(a) = act {
                    y = a.forward(&y)?;
                }
            }
        }
        y.reshape(out_dims)
    }
}

/// `xs [.., K]` with its leading dimensions flattened into one: `[M, K]`.
fn rows(xs: &Tensor) -> Result<Tensor> {
    let dims = xs.dims();
    let Some(&in_dim) = dims.last() else {
        candle_core::bail!("linear layer applied to a scalar");
    };
    xs.reshape((dims[..dims.len() - 1].iter().product::<usize>(), in_dim))
}

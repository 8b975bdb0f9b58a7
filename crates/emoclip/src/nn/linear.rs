//! Affine map `x Wᵀ + b` with PyTorch `nn.Linear` weight layout `[out, in]`; leading dims are flattened into
//! one GEMM (one large matrix product is much faster on CPU than a broadcast batch of small ones).
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

#[derive(Clone, Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    /// Loads `{prefix}.weight [out, in]` and, when `bias`, `{prefix}.bias [out]`.
    pub fn load(vb: VarBuilder, in_dim: usize, out_dim: usize, bias: bool) -> Result<Self> {
        let init = candle_nn::init::DEFAULT_KAIMING_NORMAL;
        let weight = vb.get_with_hints((out_dim, in_dim), "weight", init)?;
        let bias = if bias { Some(vb.get_with_hints(out_dim, "bias", candle_nn::Init::Const(0.0))?) } else { None };
        Ok(Self { weight, bias })
    }

    pub fn from_parts(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight, bias }
    }

    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.forward_act(xs, None)
    }

    /// `act(x Wᵀ + b)`; in inference on CPU the bias and activation run as one fused parallel pass.
    pub fn forward_act(&self, xs: &Tensor, act: Option<super::Activation>) -> Result<Tensor> {
        let dims = xs.dims();
        let Some(&in_dim) = dims.last() else {
            candle_core::bail!("linear layer applied to a scalar");
        };
        let rows: usize = dims[..dims.len() - 1].iter().product();
        let x2 = xs.reshape((rows, in_dim))?;
        let mut y = super::autocast::matmul(&x2, &self.weight.t()?)?;
        match &self.bias {
            Some(b) if super::fused::usable(&y, b) && super::fused::usable(&self.weight, b) => {
                y = super::fused::bias_act(&y, b, act)?;
            }
            // Training on CPU: the same fusion with its own backward (candle's GELU backward is ~15 passes).
            Some(b) if act == Some(super::Activation::Gelu) && super::fused_grad::usable(&y, b) => {
                y = super::fused_grad::bias_gelu(&y, b)?;
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
        let mut out_dims = dims[..dims.len() - 1].to_vec();
        out_dims.push(self.weight.dim(0)?);
        y.reshape(out_dims)
    }
}

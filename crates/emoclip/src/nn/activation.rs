//! Activation functions of CLIP MLPs: erf GELU (`nn.GELU`) or QuickGELU (`x·σ(1.702x)`, OpenAI CLIP).
use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// Exact (erf) GELU, PyTorch `nn.GELU()` and `activation='gelu'`.
    #[default]
    Gelu,
    /// `x * sigmoid(1.702 x)`, open_clip `QuickGELU`, HF `quick_gelu`.
    QuickGelu,
}

impl Activation {
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Gelu => xs.gelu_erf(),
            Activation::QuickGelu => {
                // σ(1.702x) composed from differentiable primitives.
                let s = ((xs * -1.702)?.exp()? + 1.0)?.recip()?;
                xs * s
            }
        }
    }
}

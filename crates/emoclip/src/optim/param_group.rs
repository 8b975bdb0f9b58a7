//! One AdamW parameter group (PyTorch `optimizer.param_groups` entry) and the gain/bias rule that decides
//! which parameters get weight decay (official EmotionCLIP `main.py`).
/// Hyper-parameters of one parameter group (PyTorch `param_groups` entry).
#[derive(Debug, Clone, PartialEq)]
pub struct ParamGroup {
    /// Label for logs (e.g. `frame_gain_bias`).
    pub name: String,
    pub lr: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    pub weight_decay: f64,
    /// VarMap names of the parameters in this group.
    pub params: Vec<String>,
}

impl ParamGroup {
    /// A group with PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, weight decay 1e-2.
    pub fn new(name: impl Into<String>, lr: f64, params: Vec<String>) -> Self {
        Self { name: name.into(), lr, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 1e-2, params }
    }
}

/// Official gain/bias rule (EmotionCLIP `main.py`, as open_clip's `exclude`): `ndim < 2` or the name contains
/// `bn`, `ln`, `bias` or `logit_scale`. Gains and biases get no weight decay.
pub fn is_gain_or_bias(name: &str, ndim: usize) -> bool {
    ndim < 2 || ["bn", "ln", "bias", "logit_scale"].iter().any(|s| name.contains(s))
}

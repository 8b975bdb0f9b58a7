//! Hand-written CPU kernels, one per file, named by what they compute; each per-row kernel runs on the shared
//! row-parallel loop `rows::map_rows`.
//! - [`bias_act`]: `act(x + b)` for inference (bias and GELU / QuickGELU after a linear layer);
//! - [`bias_gelu`]: `gelu(x + b)` with its backward, for training;
//! - [`layer_norm`]: LayerNorm with its backward, for training;
//! - [`layer_norm_bf16`]: LayerNorm written as bf16 for the next product, for bf16 inference;
//! - [`softmax`]: softmax over the last dimension with its backward;
//! - [`gemm_bf16`]: the matrix products of the bf16 mode.
pub mod bias_act;
pub mod bias_gelu;
pub mod gemm_bf16;
pub mod layer_norm;
pub mod layer_norm_bf16;
pub mod rows;
pub mod softmax;

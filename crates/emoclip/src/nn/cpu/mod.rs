//! Hand-written CPU kernels for the matrix products of the bf16 mode (see [`gemm_bf16`]).
pub mod gemm_bf16;

//! Checkpoint reading (safetensors, PyTorch zip pickles read as data), key maps, strict loading.
pub mod hf_config;
pub mod hub;
pub mod infer;
pub mod keymap;
pub mod load;
pub mod reader;
pub mod strict;

pub use keymap::Layout;
pub use load::{Checkpoint, LoadOptions};
pub use strict::{CheckedTensors, LoadReport, Missing};

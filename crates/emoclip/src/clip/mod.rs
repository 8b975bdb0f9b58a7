//! CLIP towers (open_clip `model.py` / `transformer.py` layout): ViT image tower and causal text tower.
pub mod config;
pub mod model;
pub mod text;
pub mod transformer;
pub mod vision;

pub use config::{OpenClipConfig, TextConfig, VisionConfig};
pub use model::Clip;
pub use text::TextTransformer;
pub use transformer::{ResidualAttentionBlock, Transformer};
pub use vision::VisionTransformer;

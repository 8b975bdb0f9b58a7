//! `emoclip train`: EmotionCLIP pre-training (in progress).
use anyhow::{bail, Result};
use clap::Args;

#[derive(Args)]
pub struct TrainArgs {
    /// Training config (TOML).
    #[arg(long)]
    pub config: std::path::PathBuf,
}

pub fn run(_a: TrainArgs) -> Result<i32> {
    bail!("emoclip train is not implemented yet")
}

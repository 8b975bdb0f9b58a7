//! `emoclip probe`: linear-probe evaluation (in progress).
use anyhow::{bail, Result};
use clap::Args;

#[derive(Args)]
pub struct ProbeArgs {
    /// Dataset manifest (CSV or JSONL).
    pub manifest: std::path::PathBuf,
}

pub fn run(_a: ProbeArgs) -> Result<i32> {
    bail!("emoclip probe is not implemented yet")
}

//! The crate's integration tests, one binary (a 2-core CI links one test executable per crate, not one per file).
mod cli;
mod mer_cli;
mod probe_cli;
mod run_dir;
mod train_distributed;

//! The crate's integration tests, one binary (a 2-core CI links one test executable per crate, not one per file).
mod analyze_cli;
mod cli;
mod e2e_official;
mod mer_cli;
mod prepare_numbers;
mod probe_cli;
mod probe_official;
mod run_dir;
mod train_distributed;

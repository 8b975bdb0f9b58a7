//! Run directories shared by the trainers (official `src/engine/trainer.py` `save_checkpoint` / `resume`):
//! `ckpt-<step>/` written through a temporary directory, `LATEST`, `best/`, pruning old checkpoints, the
//! resume state, `metrics.jsonl` (cut back to the checkpoint on resume), refusing to start a second run in
//! a directory that holds one, and safetensors files with ordinary permissions.
pub mod checkpoint;
pub mod dir;
pub mod metrics;
pub mod safetensors;

pub use checkpoint::{load_state, save_checkpoint, write_model, CheckpointFiles, TrainState};
pub use dir::{clear_run, ensure_no_run, latest, overwrite, prune_checkpoints, run_entries, write_dir, Start, LATEST};
pub use metrics::{truncate_metrics, MetricsLog};
pub use safetensors::{save_safetensors, save_varmap};

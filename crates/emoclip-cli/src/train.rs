//! `emoclip train`: EmotionCLIP pre-training (official `src/engine/trainer.py`, paper §3.4 / appendix B.2) with checkpoints and exact `--resume`.
use anyhow::{Context, Result};
use clap::Args;
use emoclip::run::{self, Start};
use emoclip::train::distributed::{self, DistEnv};
use emoclip::train::{TrainConfig, Trainer};

use crate::progress::Progress;

#[derive(Args)]
pub struct TrainArgs {
    /// Training config (TOML), e.g. configs/train_tiny.toml.
    #[arg(long)]
    pub config: std::path::PathBuf,
    /// Continue from the newest checkpoint in the output directory (`LATEST` / `ckpt-<step>/`).
    #[arg(long)]
    pub resume: bool,
    /// Start a new run in an output directory that holds one, deleting that run's checkpoints, LATEST,
    /// metrics.jsonl and loss.svg first (other files stay). Without it (or --resume) such a directory is refused.
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Output directory (checkpoints, metrics.jsonl); overrides `out_dir` of the config.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// cpu, cuda or cuda:N. Launched data-parallel (torchrun-style RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
    /// MASTER_PORT in the environment), `cuda` means `cuda:$LOCAL_RANK` and the ranks talk over NCCL; on CPU over TCP.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn run(a: TrainArgs) -> Result<i32> {
    let mut cfg = TrainConfig::from_file(&a.config)?;
    if let Some(out) = a.out {
        cfg.out_dir = out;
    }
    emoclip::output::check_output_dir(&cfg.out_dir, "--out (or out_dir in the config)")?;
    let env = DistEnv::from_env()?;
    let start = Start::from_flags(a.resume, a.overwrite);
    // Before joining the group or any work: only rank 0 writes to the output directory.
    if start == Start::Fresh && env.as_ref().is_none_or(|e| e.rank == 0) {
        run::ensure_no_run(&cfg.out_dir, emoclip::train::trainer::RUN_FILES)?;
    }
    let device = match &env {
        // One process per GPU: plain `cuda` picks this process's GPU.
        Some(e) if e.world_size > 1 && a.device == "cuda" => {
            crate::commands::parse_device(&format!("cuda:{}", e.device_ordinal()?))?
        }
        _ => crate::commands::parse_device(&a.device)?,
    };
    let out_dir = cfg.out_dir.clone();
    let dist = distributed::from_env(&device).context("joining the data-parallel group")?;
    let (rank, world) = (dist.rank(), dist.world_size());
    if world > 1 {
        eprintln!(
            "rank {rank} of {world} ({} back-end), device {device:?}, {} clips per rank per step",
            dist.backend(),
            cfg.batch_size * cfg.grad_accum
        );
    }
    let mut trainer = Trainer::new_distributed(cfg, device, start, dist)
        .with_context(|| format!("setting up training from {} (rank {rank})", a.config.display()))?;
    if a.resume && rank == 0 {
        match trainer.last_checkpoint() {
            Some(p) => eprintln!("resuming from {} (step {})", p.display(), trainer.step()),
            None => eprintln!("--resume: no checkpoint in {}, starting from scratch", out_dir.display()),
        }
    }
    let total = trainer.total_steps();
    // Only rank 0 shows progress (and writes files).
    let pb = if rank == 0 { Progress::new(total as u64, "training steps") } else { Progress::hidden() };
    pb.set_position(trainer.step() as u64);
    let res = trainer.run(None, |m| {
        pb.set_position(m.step as u64);
        pb.set_message(format!(
            "epoch {} loss {:.4} lr {:.2e} scale {:.3} {:.1} clips/s",
            m.epoch, m.loss, m.lr, m.logit_scale, m.clips_per_s
        ));
    });
    pb.finish();
    res.with_context(|| format!("training (rank {rank} of {world})"))?;
    if rank != 0 {
        return Ok(0);
    }
    eprintln!(
        "trained {} steps; checkpoint {}; metrics {}",
        trainer.step(),
        trainer.last_checkpoint().map(|p| p.display().to_string()).unwrap_or_default(),
        out_dir.join("metrics.jsonl").display()
    );
    Ok(0)
}

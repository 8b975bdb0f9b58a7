//! `emoclip train`: EmotionCLIP pre-training (official `src/engine/trainer.py`, paper §3.4 / appendix B.2) with checkpoints and exact `--resume`.
use anyhow::{Context, Result};
use clap::Args;
use emoclip::train::{TrainConfig, Trainer};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args)]
pub struct TrainArgs {
    /// Training config (TOML), e.g. configs/train_tiny.toml.
    #[arg(long)]
    pub config: std::path::PathBuf,
    /// Continue from the newest checkpoint in the output directory (`LATEST` / `ckpt-<step>/`).
    #[arg(long)]
    pub resume: bool,
    /// Output directory (checkpoints, metrics.jsonl); overrides `out_dir` of the config.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn run(a: TrainArgs) -> Result<i32> {
    let mut cfg = TrainConfig::from_file(&a.config)?;
    if let Some(out) = a.out {
        cfg.out_dir = out;
    }
    let device = crate::commands::parse_device(&a.device)?;
    let out_dir = cfg.out_dir.clone();
    let mut trainer = Trainer::new(cfg, device, a.resume).with_context(|| format!("setting up training from {}", a.config.display()))?;
    if a.resume {
        match trainer.last_checkpoint() {
            Some(p) => eprintln!("resuming from {} (step {})", p.display(), trainer.step()),
            None => eprintln!("--resume: no checkpoint in {}, starting from scratch", out_dir.display()),
        }
    }
    let total = trainer.total_steps();
    let pb = ProgressBar::new(total as u64);
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_position(trainer.step() as u64);
    let res = trainer.run(None, |m| {
        pb.set_position(m.step as u64);
        pb.set_message(format!("epoch {} loss {:.4} lr {:.2e} scale {:.3} {:.1} clips/s", m.epoch, m.loss, m.lr, m.logit_scale, m.clips_per_s));
    });
    pb.finish_and_clear();
    res?;
    eprintln!(
        "trained {} steps; checkpoint {}; metrics {}",
        trainer.step(),
        trainer.last_checkpoint().map(|p| p.display().to_string()).unwrap_or_default(),
        out_dir.join("metrics.jsonl").display()
    );
    Ok(0)
}

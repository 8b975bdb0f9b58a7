//! `emoclip`: the command-line front end. Thin: parsing, progress and reporting; the library does the work.
mod analyze;
mod bench;

// mimalloc reuses large buffers instead of returning them to the kernel after every tensor op (purging is
// turned off in `main`: re-faulting freed activations took as long as the maths of a CPU training step).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
mod commands;
mod errors;
mod mer;
mod prepare;
mod probe;
mod progress;
mod train;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "emoclip",
    version,
    about = "EmotionCLIP in Rust: embed videos, images and text into an emotion space"
)]
struct Cli {
    /// Worker threads for CPU compute (default: all cores). Decoding of the next items (embed, similarity,
    /// probe) runs beside the model on as many threads of its own.
    #[arg(long, global = true, value_parser = parse_threads)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Embed videos and images (files or directories) into L2-normalised vectors.
    Embed(commands::EmbedArgs),
    /// Embed texts with the CLIP text encoder.
    EmbedText(commands::EmbedTextArgs),
    /// Zero-shot: score media against text prompts (a table of scaled cosine similarities).
    Similarity(commands::SimilarityArgs),
    /// Convert a checkpoint (EmotionCLIP .pt, open_clip, Hugging Face) to model.safetensors + config.json.
    Convert(commands::ConvertArgs),
    /// Benchmark full-size EmotionCLIP inference on this machine, optionally beside PyTorch.
    Bench(bench::BenchArgs),
    /// Turn videos + closed captions into filtered, emotion-scored WebDataset shards.
    Prepare(prepare::PrepareArgs),
    /// Exploration report of prepared data: plots (SVG) and a Markdown page.
    Report(prepare::ReportArgs),
    /// Pre-train EmotionCLIP on prepared shards (or synthetic data).
    Train(train::TrainArgs),
    /// Linear-probe evaluation of embeddings on a labelled dataset.
    Probe(probe::ProbeArgs),
    /// Combine dataset probe results of several models into the paper's Table 4 / Table 5 (Markdown + JSON).
    ProbeReport(probe::ProbeReportArgs),
    /// What each person in a video feels, and when: windows, person tracks, zero-shot and head scores, report.
    Analyze(analyze::AnalyzeArgs),
    /// MER-CLIP multimodal emotion recognition on CMU-MOSI / CMU-MOSEI features (train, eval, ablation, bench).
    Mer(mer::MerArgs),
}

/// `--threads N`, N >= 1.
fn parse_threads(s: &str) -> std::result::Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("0 threads cannot run anything; use 1 or more, or leave --threads out to use every core".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{e}; give a whole number of threads (1 or more)")),
    }
}

/// Colour in log lines only on a terminal, and never with `NO_COLOR` set to a non-empty value (no-color.org).
fn colour_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Exit status: 0 success, 1 some batch items skipped (listed), 2 error.
fn main() -> ExitCode {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // `mi_option_purge_delay` (index 15 in the v2 and v3 headers; libmimalloc-sys does not name it): -1 = never.
        // SAFETY: sets a plain integer option before any other thread exists.
        unsafe { libmimalloc_sys::mi_option_set(15, -1) };
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help and --version print to stdout and succeed; usage errors exit 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(colour_stderr())
        .with_target(false)
        .init();
    if let Some(n) = cli.threads {
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        let _ = rayon::ThreadPoolBuilder::new().num_threads(n).build_global();
    }
    let result: Result<i32> = match cli.command {
        Command::Embed(a) => commands::embed(a),
        Command::EmbedText(a) => commands::embed_text(a),
        Command::Similarity(a) => commands::similarity(a),
        Command::Convert(a) => commands::convert(a),
        Command::Bench(a) => bench::run(a, cli.threads),
        Command::Prepare(a) => prepare::run(a),
        Command::Report(a) => prepare::report(a),
        Command::Train(a) => train::run(a),
        Command::Probe(a) => probe::run(a),
        Command::ProbeReport(a) => probe::report(a),
        Command::Mer(a) => mer::run(a, cli.threads),
        Command::Analyze(a) => analyze::run(a),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(2)),
        Err(e) => {
            eprintln!("error: {}", errors::describe(&e));
            ExitCode::from(2)
        }
    }
}

//! `emoclip train` launched torchrun-style (official `main.py` under DDP): two real processes on the tiny config over TCP, and launch errors.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn tiny_config(dir: &Path) -> PathBuf {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/train_tiny.toml");
    let toml = std::fs::read_to_string(src).unwrap();
    let toml = toml
        .replace("batch_size = 16", "batch_size = 4")
        .replace("max_steps = 150", "max_steps = 4")
        .replace("checkpoint_every = 50", "checkpoint_every = 2")
        .replace("n = 64", "n = 16");
    assert!(
        toml.contains("max_steps = 4") && toml.contains("n = 16"),
        "configs/train_tiny.toml changed; update this test"
    );
    let p = dir.join("train.toml");
    std::fs::write(&p, toml).unwrap();
    p
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn rank(cfg: &Path, out: &Path, r: usize, world: usize, port: u16, timeout_s: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_emoclip"))
        .args(["--threads", "1", "train", "--config"])
        .arg(cfg)
        .arg("--out")
        .arg(out)
        .env("RUST_LOG", "warn")
        .env("RANK", r.to_string())
        .env("LOCAL_RANK", r.to_string())
        .env("WORLD_SIZE", world.to_string())
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .env("EMOCLIP_DIST_TIMEOUT", timeout_s)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run emoclip")
}

/// Waits for the process with a deadline (kills it and fails instead of hanging the test suite).
fn finish(mut c: Child, limit: Duration) -> (i32, String) {
    let t0 = Instant::now();
    loop {
        if let Some(st) = c.try_wait().unwrap() {
            let out = c.wait_with_output().unwrap();
            return (st.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned());
        }
        if t0.elapsed() > limit {
            let _ = c.kill();
            panic!("emoclip train did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_processes_train_and_only_rank0_writes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path());
    let port = free_port();
    let out = dir.path().join("run");
    let kids: Vec<Child> = (0..2).map(|r| rank(&cfg, &out, r, 2, port, "60")).collect();
    let res: Vec<(i32, String)> = kids.into_iter().map(|c| finish(c, Duration::from_secs(240))).collect();
    for (r, (code, err)) in res.iter().enumerate() {
        assert_eq!(*code, 0, "rank {r} failed:\n{err}");
        assert!(err.contains(&format!("rank {r} of 2 (tcp back-end)")), "rank {r}:\n{err}");
    }
    assert!(res[0].1.contains("trained 4 steps") && !res[1].1.contains("trained 4 steps"), "only rank 0 reports");
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 4, "one metrics line per step from rank 0 only:\n{metrics}");
    // 16 clips, 2 ranks × 4 per step: 2 steps per epoch, so step 4 ends epoch 1.
    assert!(metrics.lines().last().unwrap().contains("\"epoch\":1"), "{metrics}");
    assert!(out.join("ckpt-2/model.safetensors").is_file() && out.join("ckpt-4/model.safetensors").is_file());
    assert!(out.join("loss.svg").is_file());
}

#[test]
fn launch_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path());
    // Rank 1 never starts: rank 0 gives up after EMOCLIP_DIST_TIMEOUT with a message naming it.
    let t0 = Instant::now();
    let (code, err) = finish(rank(&cfg, &dir.path().join("a"), 0, 2, free_port(), "1"), Duration::from_secs(60));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("timed out") && err.contains("rank(s) 1"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(30));
    // RANK outside the world.
    let (code, err) = finish(rank(&cfg, &dir.path().join("b"), 2, 2, free_port(), "1"), Duration::from_secs(60));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("RANK=2 is not below WORLD_SIZE=2"), "{err}");
    assert!(!dir.path().join("a").join("metrics.jsonl").exists());
}

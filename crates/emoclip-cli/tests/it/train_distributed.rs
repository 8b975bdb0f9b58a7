//! `emoclip train` launched torchrun-style (official `main.py` under DDP): two real processes on the tiny config over TCP, and launch errors.
use std::io::{BufRead, BufReader};
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

/// A running `emoclip train` rank whose stdout and stderr are drained by threads as they are written (a child
/// blocked on a full pipe would never exit). Rank 0 started with `MASTER_PORT=0` logs the port the system gave it.
struct Rank {
    child: Child,
    stderr: std::thread::JoinHandle<String>,
    stdout: std::thread::JoinHandle<()>,
    port: std::sync::mpsc::Receiver<u16>,
}

fn rank(cfg: &Path, out: &Path, r: usize, world: usize, port: u16, timeout_s: &str) -> Rank {
    let mut child = Command::new(env!("CARGO_BIN_EXE_emoclip"))
        .args(["--threads", "1", "train", "--config"])
        .arg(cfg)
        .arg("--out")
        .arg(out)
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .env("RANK", r.to_string())
        .env("LOCAL_RANK", r.to_string())
        .env("WORLD_SIZE", world.to_string())
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .env("EMOCLIP_DIST_TIMEOUT", timeout_s)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run emoclip");
    let mut out = child.stdout.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let _ = std::io::copy(&mut out, &mut std::io::sink());
    });
    let err = child.stderr.take().unwrap();
    let (tx, port) = std::sync::mpsc::channel();
    let stderr = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let logged = line
                .split("MASTER_PORT=")
                .nth(2)
                .map(|t| t.chars().take_while(char::is_ascii_digit).collect::<String>());
            if let Some(p) = logged.and_then(|t| t.parse::<u16>().ok()) {
                let _ = tx.send(p);
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    Rank { child, stderr, stdout, port }
}

/// Waits for the process (a generous limit guards against a hang: kills it and fails instead).
fn finish(r: Rank, limit: Duration) -> (i32, String) {
    let Rank { mut child, stderr, stdout, .. } = r;
    let t0 = Instant::now();
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code().unwrap_or(-1);
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("emoclip train did not finish within {limit:?}:\n{}", stderr.join().unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    stdout.join().unwrap();
    (code, stderr.join().unwrap())
}

#[test]
fn two_processes_train_and_only_rank0_writes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path());
    let out = dir.path().join("run");
    // Rank 0 binds port 0 and logs the port it got; rank 1 is started with it (no free-port guess to race on).
    let r0 = rank(&cfg, &out, 0, 2, 0, "120");
    let port = r0.port.recv_timeout(Duration::from_secs(300)).expect("rank 0 did not log its port");
    let r1 = rank(&cfg, &out, 1, 2, port, "120");
    let res: Vec<(i32, String)> = [r0, r1].into_iter().map(|c| finish(c, Duration::from_secs(600))).collect();
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
    // Rank 1 never starts: rank 0 (on a port the system picks) gives up after EMOCLIP_DIST_TIMEOUT with a message
    // naming it. The message says it timed out; how long that took is not asserted.
    let (code, err) = finish(rank(&cfg, &dir.path().join("a"), 0, 2, 0, "1"), Duration::from_secs(600));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("timed out") && err.contains("rank(s) 1"), "{err}");
    // RANK outside the world.
    let (code, err) = finish(rank(&cfg, &dir.path().join("b"), 2, 2, 29500, "1"), Duration::from_secs(600));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("RANK=2 is not below WORLD_SIZE=2"), "{err}");
    assert!(!dir.path().join("a").join("metrics.jsonl").exists());
}

//! Run directories of `emoclip train` / `mer train` (issue 11 §2.3, §2.7, §2.12): an existing run is refused
//! before any work (naming --resume, a fresh --out and --overwrite), `--overwrite` replaces exactly that run,
//! every output has ordinary permissions, and configs that cannot train are refused or warned about up front.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn emoclip(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_emoclip")).args(args).env("RUST_LOG", "warn").output().expect("run emoclip")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// configs/train_tiny.toml on 16 synthetic clips, batch 4, with `max_steps` steps and the given replacements.
fn tiny_config(dir: &Path, name: &str, max_steps: usize, edits: &[(&str, &str)]) -> String {
    let mut toml = std::fs::read_to_string(repo().join("configs/train_tiny.toml")).unwrap();
    let steps = format!("max_steps = {max_steps}");
    for (a, b) in [("batch_size = 16", "batch_size = 4"), ("n = 64", "n = 16"), ("max_steps = 150", steps.as_str())]
        .iter()
        .chain(edits)
    {
        assert!(toml.contains(a), "configs/train_tiny.toml has no {a:?}; update this test");
        toml = toml.replace(a, b);
    }
    let p = dir.join(name);
    std::fs::write(&p, toml).unwrap();
    p.display().to_string()
}

fn train(cfg: &str, out: &Path, extra: &[&str]) -> Output {
    let out = out.display().to_string();
    let mut a = vec!["--threads", "1", "train", "--config", cfg, "--out", &out];
    a.extend_from_slice(extra);
    emoclip(&a)
}

fn latest(out: &Path) -> String {
    std::fs::read_to_string(out.join("LATEST")).unwrap().trim().to_string()
}

fn metric_lines(out: &Path) -> usize {
    std::fs::read_to_string(out.join("metrics.jsonl")).unwrap().lines().count()
}

#[test]
fn train_refuses_an_existing_run_and_overwrite_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let long = tiny_config(dir.path(), "long.toml", 4, &[("checkpoint_every = 50", "checkpoint_every = 2")]);
    let short = tiny_config(dir.path(), "short.toml", 1, &[]);
    let out = dir.path().join("run");
    std::fs::create_dir(&out).unwrap();
    // An existing empty directory is fine.
    let o = train(&long, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!((latest(&out), metric_lines(&out)), ("ckpt-4".to_string(), 4));
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    // A second run into it is refused before any work, and the old run is untouched.
    let o = train(&short, &out, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("already holds a training run")
            && err.contains("--resume")
            && err.contains("--out")
            && err.contains("--overwrite"),
        "{err}"
    );
    assert_eq!((latest(&out), metric_lines(&out)), ("ckpt-4".to_string(), 4));
    assert!(!out.join("ckpt-1").exists());
    // --overwrite and --resume contradict each other.
    assert_eq!(train(&short, &out, &["--overwrite", "--resume"]).status.code(), Some(2));
    // --overwrite: the new run alone, other files kept.
    let o = train(&short, &out, &["--overwrite"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!((latest(&out), metric_lines(&out)), ("ckpt-1".to_string(), 1));
    assert!(!out.join("ckpt-2").exists() && !out.join("ckpt-4").exists());
    assert_eq!(std::fs::read_to_string(out.join("notes.txt")).unwrap(), "mine");
    // --resume still continues (here: nothing left to do).
    let o = train(&short, &out, &["--resume"]);
    assert!(o.status.success() && stderr(&o).contains("resuming from"), "{}", stderr(&o));
    assert_eq!(metric_lines(&out), 1);
}

fn mer_train(out: &Path, data: &str, batch: &str, extra: &[&str]) -> Output {
    let out = out.display().to_string();
    let mut a = vec![
        "mer",
        "train",
        "--task",
        "sentiment",
        "--dataset",
        "mosi",
        "--data",
        data,
        "--tiny",
        "--epochs",
        "1",
        "--batch-size",
        batch,
        "--out",
        &out,
    ];
    a.extend_from_slice(extra);
    emoclip(&a)
}

#[test]
fn mer_train_refuses_an_existing_run_before_reading_data_and_overwrite_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let mosi = repo().join("fixtures/mmsa/mosi_tiny.pkl").display().to_string();
    let out = dir.path().join("run");
    let o = mer_train(&out, &mosi, "8", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(latest(&out), "ckpt-3");
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    // Refused before the data is read: a missing data file is not what is reported.
    let missing = dir.path().join("missing.pkl").display().to_string();
    let o = mer_train(&out, &missing, "8", &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("already holds a training run") && err.contains("--resume") && err.contains("--overwrite"),
        "{err}"
    );
    assert!(!err.contains("missing.pkl"), "{err}");
    let o = mer_train(&out, &mosi, "12", &["--overwrite"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // 24 training utterances in batches of 12: the new run ends at step 2; the old ckpt-3 is gone.
    assert_eq!(latest(&out), "ckpt-2");
    assert!(!out.join("ckpt-3").exists() && out.join("best/model.safetensors").is_file());
    assert_eq!(std::fs::read_to_string(out.join("notes.txt")).unwrap(), "mine");
}

/// Every regular file under `dir` (recursively).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// `train`, `mer train` and `convert` outputs get the mode a new file gets (0666 less the umask; 0644 under
/// the usual 022), not tempfile's 0600.
#[cfg(unix)]
#[test]
fn outputs_have_ordinary_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("probe");
    std::fs::File::create(&probe).unwrap();
    let want = std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777;
    let cfg = tiny_config(dir.path(), "t.toml", 1, &[]);
    let o = train(&cfg, &dir.path().join("train"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mosi = repo().join("fixtures/mmsa/mosi_tiny.pkl").display().to_string();
    let o = mer_train(&dir.path().join("mer"), &mosi, "8", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let conv = dir.path().join("conv").display().to_string();
    let o = emoclip(&["convert", &dir.path().join("train/ckpt-1").display().to_string(), "--out", &conv]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut seen = Vec::new();
    for sub in ["train", "mer", "conv"] {
        for f in files_under(&dir.path().join(sub)) {
            let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, want, "{}: mode {mode:o}, a new file here gets {want:o}", f.display());
            seen.push(f.strip_prefix(dir.path()).unwrap().display().to_string());
        }
    }
    for f in [
        "train/ckpt-1/model.safetensors",
        "train/ckpt-1/optimizer.safetensors",
        "mer/best/model.safetensors",
        "mer/ckpt-3/optimizer.safetensors",
        "conv/model.safetensors",
    ] {
        assert!(seen.iter().any(|s| s == f), "{f} not written: {seen:?}");
    }
}

#[test]
fn configs_that_train_nothing_are_refused_and_a_too_long_warmup_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    for (edit, what) in [
        (("max_steps = 1", "max_steps = 0"), "max_steps = 0"),
        (("freeze = []", r#"freeze = ["text", "visual", "temporal", "logit_scale"]"#), "nothing would be trained"),
    ] {
        let cfg = tiny_config(dir.path(), "bad.toml", 1, &[edit]);
        let o = train(&cfg, &out, &[]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("bad.toml") && err.contains(what), "{err}");
        assert!(!out.exists(), "refused before writing anything");
    }
    // warmup_steps 10 (train_tiny's) over a 2-step run: trains, with a warning naming the file and the fix.
    let cfg = tiny_config(dir.path(), "short.toml", 2, &[]);
    let o = train(&cfg, &out, &[]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("short.toml") && err.contains("warmup_steps = 10") && err.contains("2 steps"), "{err}");
}

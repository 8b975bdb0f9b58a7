//! Per-video claims of `prepare` runs sharing one output directory (job-array tasks, or a run started twice):
//! `<out>/claims/<id>.claim` holds the claimant's pid and host and is locked (`flock`) while the video is
//! processed. The kernel drops the lock when the process dies, so the claim of a killed run is taken over
//! by the next one; a live claim makes other runs skip the video instead of redoing it. `<out>/.prepare.lock`
//! is held shared by every running `prepare`; only a run that can take it exclusively (no other run is
//! active) removes temporary files that no claim accounts for. (Not in the official scripts.)
use crate::{Error, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A claimed video; the claim is released (file removed, lock dropped) when this is dropped.
#[derive(Debug)]
pub struct Claim {
    path: PathBuf,
    file: File,
}

/// Result of trying to claim a video.
#[derive(Debug)]
pub enum ClaimOutcome {
    Claimed(Claim),
    /// Another live process holds it; what its claim file says (`pid … on host …`).
    HeldBy(String),
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown host".into())
}

/// True when `path` still names the open file (no other run removed and recreated it meanwhile).
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

/// Claims video `id` in `out`. A claim left by a process that died (lock released) is taken over.
pub fn claim(out: &Path, id: &str) -> Result<ClaimOutcome> {
    let dir = out.join("claims");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let path = dir.join(format!("{id}.claim"));
    loop {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                return Ok(ClaimOutcome::HeldBy(if holder.is_empty() { "another run".into() } else { holder.into() }));
            }
            Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        if !same_file(&file, &path) {
            continue; // the previous holder removed it between our open and lock: retry on the new file
        }
        file.set_len(0).map_err(|e| Error::io(&path, e))?;
        writeln!(file, "pid {} on {}", std::process::id(), host()).map_err(|e| Error::io(&path, e))?;
        return Ok(ClaimOutcome::Claimed(Claim { path, file }));
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        // Remove while still locked, so no run can lock this file after we are done with it.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// The shared lock every running `prepare` holds on `<out>/.prepare.lock`.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    /// True when no other run was active at start (the caller may remove unclaimed temporary files).
    pub alone: bool,
    path: PathBuf,
}

/// Takes the run lock: exclusive if possible (`alone`), then downgraded to shared for the run.
pub fn run_lock(out: &Path) -> Result<RunLock> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let path = out.join(".prepare.lock");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    let alone = match file.try_lock() {
        Ok(()) => true,
        Err(TryLockError::WouldBlock) => {
            // Other runs are active (or one is cleaning up: wait for it to finish).
            file.lock_shared().map_err(|e| Error::io(&path, e))?;
            false
        }
        Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
    };
    Ok(RunLock { file, alone, path })
}

impl RunLock {
    /// Downgrades the exclusive lock of a run that was `alone` to shared, after its cleanup, so other runs
    /// may start; a no-op for the others.
    pub fn share(&mut self) -> Result<()> {
        if !self.alone {
            return Ok(());
        }
        self.file.unlock().map_err(|e| Error::io(&self.path, e))?;
        self.file.lock_shared().map_err(|e| Error::io(&self.path, e))?;
        self.alone = false;
        Ok(())
    }
}

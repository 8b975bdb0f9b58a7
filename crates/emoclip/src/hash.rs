//! Stable hashes for cache keys and seeds: 64-bit FNV-1a (the same value on every platform and release,
//! unlike `std`'s `DefaultHasher`) and a file fingerprint (path, size, modification time).
use std::path::{Path, PathBuf};

/// 64-bit FNV-1a state (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a64(u64);

impl Default for Fnv1a64 {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a64 {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes, one at a time (FNV-1a proper).
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            self.word(u64::from(b));
        }
        self
    }

    /// Feeds a whole 64-bit word in one step (xor, multiply): faster than its 8 bytes, a different value.
    pub fn word(&mut self, w: u64) -> &mut Self {
        self.0 = (self.0 ^ w).wrapping_mul(0x0100_0000_01b3);
        self
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// 64-bit FNV-1a of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    Fnv1a64::new().bytes(bytes).finish()
}

/// `path|size|mtime_ns` of a file; for a directory, the same over its files (sorted, not recursive);
/// `path|absent` when it does not exist.
pub fn file_fingerprint(path: &Path) -> String {
    let one = |p: &Path| -> String {
        let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        match std::fs::metadata(p) {
            Ok(m) => {
                let mtime = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                format!("{}|{}|{}", abs.display(), m.len(), mtime)
            }
            Err(_) => format!("{}|absent", abs.display()),
        }
    };
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect())
            .unwrap_or_default();
        files.sort();
        let parts: Vec<String> = files.iter().map(|f| one(f)).collect();
        format!("dir:{}[{}]", path.display(), parts.join(";"))
    } else {
        one(path)
    }
}

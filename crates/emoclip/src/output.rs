//! Writing embedding matrices: `.npy` (with a `.files.txt` list of row names), `.safetensors` (names in
//! the metadata) or JSONL (`{"file", "embedding"}` per line). Always written to a temporary file in the
//! target directory, then renamed, so a crash never leaves a half-written output.
use crate::{Error, Result};
use std::io::Write;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Npy,
    Safetensors,
    Jsonl,
}

impl Format {
    pub fn from_path(p: &Path) -> Result<Self> {
        match p.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref() {
            Some("npy") => Ok(Format::Npy),
            Some("safetensors") => Ok(Format::Safetensors),
            Some("jsonl") | Some("json") => Ok(Format::Jsonl),
            _ => Err(Error::Msg(format!(
                "{}: unknown output format; use a .npy, .safetensors or .jsonl file name",
                p.display()
            ))),
        }
    }
}

/// Writes `bytes` atomically to `path`.
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut b = tempfile::Builder::new();
    b.prefix(".emoclip-tmp-");
    // tempfile creates 0600 files; outputs are ordinary files: 0666 less the umask, as `File::create` gives.
    #[cfg(unix)]
    b.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = b.tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
    write(tmp.as_file_mut()).map_err(|e| Error::io(path, e))?;
    tmp.as_file_mut().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// NPY v1.0 header + little-endian f32 data. Written by hand: the format is a 10-line spec and no
/// dependency is worth it for one dtype.
pub fn npy_bytes(rows: &[Vec<f32>], dim: usize) -> Vec<u8> {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", rows.len(), dim);
    // Pad so that magic(6) + version(2) + len(2) + header is a multiple of 64, ending in '\n'.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + rows.len() * dim * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for r in rows {
        for v in r {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// Writes the matrix (one row per name) in the format implied by the file name.
pub fn write_embeddings(path: &Path, names: &[String], rows: &[Vec<f32>]) -> Result<()> {
    let dim = rows.first().map_or(0, |r| r.len());
    if rows.iter().any(|r| r.len() != dim) || names.len() != rows.len() {
        return Err(Error::Shape("embedding rows of different lengths".into()));
    }
    match Format::from_path(path)? {
        Format::Npy => {
            let bytes = npy_bytes(rows, dim);
            write_atomic(path, |f| f.write_all(&bytes))?;
            let list = path.with_extension("files.txt");
            let text: String = names.iter().map(|n| format!("{n}\n")).collect();
            write_atomic(&list, |f| f.write_all(text.as_bytes()))
        }
        Format::Safetensors => {
            let data: Vec<u8> = rows.iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![rows.len(), dim], &data)
                .map_err(|e| Error::Msg(format!("{}: {e}", path.display())))?;
            let meta = std::collections::HashMap::from([(
                "files".to_string(),
                serde_json::to_string(names).unwrap_or_default(),
            )]);
            let bytes = safetensors::serialize([("embeddings", view)], Some(meta))
                .map_err(|e| Error::Msg(format!("{}: {e}", path.display())))?;
            write_atomic(path, |f| f.write_all(&bytes))
        }
        Format::Jsonl => {
            let mut text = String::new();
            for (n, r) in names.iter().zip(rows) {
                text.push_str(&serde_json::json!({ "file": n, "embedding": r }).to_string());
                text.push('\n');
            }
            write_atomic(path, |f| f.write_all(text.as_bytes()))
        }
    }
}

//! Writing embedding matrices: `.npy` (with a `.files.txt` list of row names), `.safetensors` (names in
//! the metadata) or JSONL (`{"file", "embedding"}` per line), and checking output paths before any work.
//! Always written to a temporary file in the target directory, then renamed, so a crash never leaves a
//! half-written output.
//!
//! Row names (file paths or texts) are stored as JSON strings in every format: one per line in `.files.txt`,
//! a JSON list in the safetensors metadata `files`, the `file` field in JSONL; so a newline in a name never
//! shifts rows. A file name that is not valid UTF-8 keeps its bytes: each byte that is not part of valid UTF-8
//! is written as the escape `\udcXX` (XX = the byte, 80–ff), Python's `surrogateescape` convention (PEP 383):
//! `os.fsencode(json.loads(line))` gives the original bytes back, and [`decode_name`] does in Rust.
use crate::{Error, Result};
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};

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

/// The JSON string literal (with quotes) of a row name; bytes that are not valid UTF-8 become `\udcXX` escapes
/// (see the module documentation). Hand-written around serde_json's escaping because JSON strings cannot
/// carry raw bytes and no crate writes PEP 383 escapes.
pub fn encode_name(name: &OsStr) -> String {
    let mut out = String::from("\"");
    for chunk in name.as_encoded_bytes().utf8_chunks() {
        let quoted = serde_json::Value::String(chunk.valid().to_string()).to_string();
        out.push_str(&quoted[1..quoted.len() - 1]);
        for b in chunk.invalid() {
            // Invalid UTF-8 bytes are always >= 0x80: U+DC80..U+DCFF.
            out.push_str(&format!("\\u{:04x}", 0xDC00 + u32::from(*b)));
        }
    }
    out.push('"');
    out
}

/// A JSON string read as bytes: serde_json keeps lone surrogates there (as WTF-8), where a `String` refuses them.
struct RawName(Vec<u8>);

impl<'de> serde::Deserialize<'de> for RawName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Bytes;
        impl serde::de::Visitor<'_> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> std::result::Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Vec<u8>, E> {
                Ok(v.as_bytes().to_vec())
            }
        }
        d.deserialize_bytes(Bytes).map(RawName)
    }
}

impl RawName {
    /// WTF-8 with U+DC80..U+DCFF (ED B2 80 ..= ED B3 BF) → those bytes; any other surrogate is an error.
    fn into_os_string(self) -> std::result::Result<OsString, String> {
        let wtf8 = self.0;
        let mut bytes = Vec::with_capacity(wtf8.len());
        let mut i = 0;
        while i < wtf8.len() {
            if wtf8[i] == 0xED && i + 2 < wtf8.len() && (0xA0..=0xBF).contains(&wtf8[i + 1]) {
                let cp = 0xD000 | (u32::from(wtf8[i + 1] & 0x3F) << 6) | u32::from(wtf8[i + 2] & 0x3F);
                if !(0xDC80..=0xDCFF).contains(&cp) {
                    return Err(format!("lone surrogate U+{cp:04X} is not a byte escape (\\udc80..\\udcff)"));
                }
                bytes.push((cp - 0xDC00) as u8);
                i += 3;
            } else {
                bytes.push(wtf8[i]);
                i += 1;
            }
        }
        #[cfg(unix)]
        {
            Ok(<OsString as std::os::unix::ffi::OsStringExt>::from_vec(bytes))
        }
        #[cfg(not(unix))]
        {
            String::from_utf8(bytes).map(OsString::from).map_err(|_| "not valid UTF-8 on this platform".into())
        }
    }
}

/// The row name written by [`encode_name`] (a JSON string literal): `\udcXX` escapes become the raw bytes.
pub fn decode_name(json: &str) -> Result<OsString> {
    let bad = |why: String| Error::Msg(format!("row name {json}: {why}; expected a JSON string written by emoclip"));
    serde_json::from_str::<RawName>(json).map_err(|e| bad(e.to_string()))?.into_os_string().map_err(bad)
}

/// The row names of a JSON list of [`encode_name`] strings (the safetensors metadata `files`).
pub fn decode_name_list(json: &str) -> Result<Vec<OsString>> {
    let bad = |why: String| Error::Msg(format!("row names {json}: {why}; expected a JSON list written by emoclip"));
    let raw: Vec<RawName> = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    raw.into_iter().map(|r| r.into_os_string().map_err(bad)).collect()
}

/// The row names of a `.files.txt` list (one JSON string a line, see the module documentation).
pub fn read_names(list: &Path) -> Result<Vec<OsString>> {
    let text = std::fs::read_to_string(list).map_err(|e| Error::io(list, e))?;
    text.lines()
        .enumerate()
        .map(|(i, l)| decode_name(l).map_err(|e| Error::Msg(format!("{} line {}: {e}", list.display(), i + 1))))
        .collect()
}

/// The `.files.txt` list written beside a `.npy` matrix.
pub fn names_list_path(npy: &Path) -> PathBuf {
    npy.with_extension("files.txt")
}

/// Writes the matrix (one row per name) in the format implied by the file name. Names are paths or texts,
/// stored round-trippably (module documentation).
pub fn write_embeddings<N: AsRef<OsStr>>(path: &Path, names: &[N], rows: &[Vec<f32>]) -> Result<()> {
    let dim = rows.first().map_or(0, |r| r.len());
    if rows.iter().any(|r| r.len() != dim) || names.len() != rows.len() {
        return Err(Error::Shape("embedding rows of different lengths".into()));
    }
    let encoded: Vec<String> = names.iter().map(|n| encode_name(n.as_ref())).collect();
    match Format::from_path(path)? {
        Format::Npy => {
            let bytes = npy_bytes(rows, dim);
            write_atomic(path, |f| f.write_all(&bytes))?;
            let text: String = encoded.iter().map(|n| format!("{n}\n")).collect();
            write_atomic(&names_list_path(path), |f| f.write_all(text.as_bytes()))
        }
        Format::Safetensors => {
            let data: Vec<u8> = rows.iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![rows.len(), dim], &data)
                .map_err(|e| Error::Msg(format!("{}: {e}", path.display())))?;
            let meta = std::collections::HashMap::from([("files".to_string(), format!("[{}]", encoded.join(",")))]);
            let bytes = safetensors::serialize([("embeddings", view)], Some(meta))
                .map_err(|e| Error::Msg(format!("{}: {e}", path.display())))?;
            write_atomic(path, |f| f.write_all(&bytes))
        }
        Format::Jsonl => {
            let mut text = String::new();
            for (n, r) in encoded.iter().zip(rows) {
                let r = serde_json::Value::from(r.iter().map(|&v| serde_json::Value::from(v)).collect::<Vec<_>>());
                text.push_str(&format!("{{\"file\":{n},\"embedding\":{r}}}\n"));
            }
            write_atomic(path, |f| f.write_all(text.as_bytes()))
        }
    }
}

/// Checks an output FILE before any work: the extension is one of `extensions` (lower case, without the dot;
/// empty: any), the path is not a directory or other non-regular file (an existing regular file is replaced,
/// atomically, when the command ends), and the directory it goes in exists or can be created and is writable
/// (tested by creating and removing a temporary file there). `option` (e.g. `--out`) names it in errors.
pub fn check_output_file(path: &Path, extensions: &[&str], option: &str) -> Result<()> {
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            return Err(Error::Msg(format!(
                "{option} {shown}: is a directory; give a file name inside it, e.g. {}",
                path.join(format!("out.{}", extensions.first().copied().unwrap_or("out"))).display()
            )))
        }
        Ok(m) if !m.is_file() => {
            return Err(Error::Msg(format!(
                "{option} {shown}: exists and is not a regular file (a FIFO, socket or device); choose another name"
            )))
        }
        _ => {}
    }
    if !extensions.is_empty() {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if !ext.as_deref().is_some_and(|e| extensions.contains(&e)) {
            let list: Vec<String> = extensions.iter().map(|e| format!(".{e}")).collect();
            return Err(Error::Msg(format!(
                "{option} {shown}: unsupported output type {}; use a file name ending in {}",
                ext.map_or("(no extension)".to_string(), |e| format!("`.{e}`")),
                list.join(", ")
            )));
        }
    }
    let parent = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    check_writable_dir(parent, option, path)
}

/// Checks an output DIRECTORY before any work: it is a directory, or does not exist yet and can be created
/// (its nearest existing ancestor is a writable directory); an existing one must be writable. Tested by
/// creating and removing a temporary file. Whether an existing directory's contents may be reused is the
/// command's own policy.
pub fn check_output_dir(dir: &Path, option: &str) -> Result<()> {
    check_writable_dir(dir, option, dir)
}

/// `dir` (or, when it does not exist, its nearest existing ancestor) is a directory where a file can be created.
fn check_writable_dir(dir: &Path, option: &str, output: &Path) -> Result<()> {
    let shown = output.display();
    let mut existing = dir;
    loop {
        match std::fs::metadata(existing) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                return Err(Error::Msg(format!(
                    "{option} {shown}: {} is a file, not a directory, so {shown} cannot be created there; choose another path",
                    existing.display()
                )))
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
                match existing.parent() {
                Some(p) if !p.as_os_str().is_empty() => existing = p,
                _ => {
                    existing = Path::new(".");
                    if std::fs::metadata(existing).is_ok_and(|m| m.is_dir()) {
                        break;
                    }
                    return Err(Error::Msg(format!("{option} {shown}: no existing directory to create it in")));
                }
                }
            }
            Err(e) => {
                return Err(Error::Msg(format!(
                    "{option} {shown}: cannot inspect {} ({}); choose a path you can access",
                    existing.display(),
                    io_reason(&e)
                )))
            }
        }
    }
    tempfile::Builder::new().prefix(".emoclip-write-test-").tempfile_in(existing).map(drop).map_err(|e| {
        Error::Msg(format!(
            "{option} {shown}: cannot write in {} ({}); choose a writable directory or fix its permissions",
            existing.display(),
            io_reason(&e)
        ))
    })
}

/// An I/O error's reason without the path that tempfile may have appended.
fn io_reason(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code).to_string(),
        None => e.kind().to_string(),
    }
}

/// Checks an embeddings output (`.npy` + `.files.txt`, `.safetensors`, `.jsonl`/`.json`) before any work.
pub fn check_embeddings_output(path: &Path, option: &str) -> Result<()> {
    check_output_file(path, &["npy", "safetensors", "jsonl", "json"], option)?;
    if Format::from_path(path)? == Format::Npy {
        check_output_file(&names_list_path(path), &[], option)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_json_strings() {
        #[cfg(unix)]
        let raw = <OsString as std::os::unix::ffi::OsStringExt>::from_vec(b"a\nb\"c\\\xff\xe9z\x80".to_vec());
        #[cfg(not(unix))]
        let raw = OsString::from("a\nb\"c\\");
        let enc = encode_name(&raw);
        assert!(!enc.contains('\n'), "{enc}");
        #[cfg(unix)]
        assert_eq!(enc, r#""a\nb\"c\\\udcff\udce9z\udc80""#);
        assert_eq!(decode_name(&enc).unwrap(), raw);
        let list = format!("[{},{}]", enc, encode_name(OsStr::new("ü.mp4")));
        assert_eq!(decode_name_list(&list).unwrap(), vec![raw, OsString::from("ü.mp4")]);
        // Valid UTF-8 (also astral characters, written as themselves) is plain JSON.
        assert_eq!(encode_name(OsStr::new("😀 x")), "\"😀 x\"");
        assert_eq!(decode_name(r#""\ud83d\ude00""#).unwrap(), OsString::from("😀"));
        assert!(decode_name(r#""\udc20""#).unwrap_err().to_string().contains("not a byte escape"));
        assert!(decode_name("plain").is_err());
    }

    #[test]
    fn output_checks_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(check_output_file(&d.join("new/deeper/x.npy"), &["npy"], "--out").is_ok());
        assert!(!d.join("new").exists(), "the check creates nothing");
        std::fs::write(d.join("x.npy"), "old").unwrap();
        assert!(check_output_file(&d.join("x.npy"), &["npy"], "--out").is_ok(), "an existing file is replaced");
        let e = check_output_file(&d.join("x.csv"), &["npy", "jsonl"], "--out").unwrap_err().to_string();
        assert!(e.contains("`.csv`") && e.contains(".npy, .jsonl") && e.contains("--out"), "{e}");
        let e = check_output_file(d, &["npy"], "--out").unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
        let e = check_output_dir(&d.join("x.npy/sub"), "--out").unwrap_err().to_string();
        assert!(e.contains("is a file, not a directory"), "{e}");
        assert!(check_output_dir(&d.join("fresh"), "--out").is_ok());
        assert!(check_output_dir(Path::new("relative-not-there/x"), "--out").is_ok());
        let leftovers: Vec<_> = std::fs::read_dir(d).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
        assert_eq!(leftovers, vec![OsString::from("x.npy")], "write tests leave no file behind");
    }
}

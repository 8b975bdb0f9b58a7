//! Caption files → timed chunks: the `[{text, start, duration}]` transcripts of the official `preprocessing/regroup_transcripts.py`, generalised to SRT and WebVTT.
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One word with its time span in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedWord {
    pub text: String,
    pub start: f64,
    pub end: f64,
}

/// One caption cue / transcript chunk. `words` is `Some` only when the file carries
/// inline word timings (YouTube auto-captions); otherwise word times are spread evenly later.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptionChunk {
    pub text: String,
    pub start: f64,
    pub end: f64,
    pub words: Option<Vec<TimedWord>>,
}

/// What the parser skipped or found suspicious. Line numbers are 1-based
/// (for YouTube JSON: the 1-based index of the transcript item).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParseReport {
    /// Cues that were dropped: broken/negative timestamps, end before start, no text, ...
    pub skipped: Vec<(usize, String)>,
    /// Cues that start before the previous cue ends (kept as they are).
    pub overlaps: Vec<(usize, String)>,
    /// Malformed but recovered: cues not separated by a blank line, caption lines that look like
    /// timestamps (dropped, never caption text).
    pub warnings: Vec<(usize, String)>,
}

/// The three caption formats that are understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptionFormat {
    Srt,
    Vtt,
    YoutubeJson,
}

/// A parsed caption file.
#[derive(Debug, Clone)]
pub struct Captions {
    pub path: PathBuf,
    pub format: CaptionFormat,
    pub chunks: Vec<CaptionChunk>,
    pub report: ParseReport,
}

fn cap_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::Captions { path: path.to_path_buf(), msg: msg.into() }
}

/// Reads, decodes, detects the format of and parses one caption file.
/// Fails (naming the file) on unreadable files, bad encodings, unknown formats and files without a usable cue.
pub fn read_captions(path: impl AsRef<Path>) -> Result<Captions> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = decode_caption_bytes(&bytes, path)?;
    let format = detect_format(path, &text)?;
    let (chunks, report) = parse_captions(&text, format, path)?;
    Ok(Captions { path: path.to_path_buf(), format, chunks, report })
}

/// Parses already decoded text in the given format; errors name `path`.
pub fn parse_captions(text: &str, format: CaptionFormat, path: &Path) -> Result<(Vec<CaptionChunk>, ParseReport)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(cap_err(path, "empty caption file: nothing to parse"));
    }
    let (chunks, report) = match format {
        CaptionFormat::Srt => super::srt::parse_srt(text),
        CaptionFormat::Vtt => super::vtt::parse_vtt(text),
        CaptionFormat::YoutubeJson => super::youtube_json::parse_youtube_json(text)
            .map_err(|m| cap_err(path, format!("invalid YouTube transcript JSON: {m}")))?,
    };
    if chunks.is_empty() {
        let why = match report.skipped.first() {
            Some((line, reason)) => {
                format!("no usable cue ({} skipped; first at line {line}: {reason})", report.skipped.len())
            }
            None => "no usable cue (no timed text found)".to_string(),
        };
        return Err(cap_err(path, why));
    }
    Ok((chunks, report))
}

/// Decodes caption bytes: UTF-8 with or without BOM, UTF-16 LE/BE with BOM.
/// Anything else is a "bad encoding" error naming the file.
pub fn decode_caption_bytes(bytes: &[u8], path: &Path) -> Result<String> {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return std::str::from_utf8(rest).map(str::to_owned).map_err(|e| {
            cap_err(path, format!("bad encoding: UTF-8 BOM but invalid UTF-8 at byte {}", e.valid_up_to() + 3))
        });
    }
    let utf16 = |rest: &[u8], le: bool| -> Result<String> {
        if !rest.len().is_multiple_of(2) {
            return Err(cap_err(path, "bad encoding: UTF-16 BOM but an odd number of bytes"));
        }
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| if le { u16::from_le_bytes([c[0], c[1]]) } else { u16::from_be_bytes([c[0], c[1]]) })
            .collect();
        String::from_utf16(&units)
            .map_err(|_| cap_err(path, "bad encoding: UTF-16 BOM but invalid UTF-16 (unpaired surrogate)"))
    };
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, true);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, false);
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => {
            let nuls = bytes.iter().filter(|&&b| b == 0).count();
            if nuls > 0 && nuls * 4 >= bytes.len() {
                return Err(cap_err(
                    path,
                    "bad encoding: NUL bytes everywhere, looks like UTF-16 without a byte-order mark; re-save as UTF-8",
                ));
            }
            Ok(s.to_owned())
        }
        Err(e) => Err(cap_err(
            path,
            format!(
                "bad encoding: invalid UTF-8 at byte {} and no UTF-16 byte-order mark; re-save the file as UTF-8",
                e.valid_up_to()
            ),
        )),
    }
}

/// Format from the extension (.srt / .vtt / .json), else from the content.
pub fn detect_format(path: &Path, text: &str) -> Result<CaptionFormat> {
    let ext = path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("srt") => return Ok(CaptionFormat::Srt),
        Some("vtt") | Some("webvtt") => return Ok(CaptionFormat::Vtt),
        Some("json") => return Ok(CaptionFormat::YoutubeJson),
        _ => {}
    }
    sniff_format(text)
        .ok_or_else(|| cap_err(path, "unknown caption format: expected .srt, .vtt or YouTube transcript .json content"))
}

/// Guesses the format from the content alone.
pub fn sniff_format(text: &str) -> Option<CaptionFormat> {
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with("WEBVTT") {
        Some(CaptionFormat::Vtt)
    } else if t.starts_with('[') || t.starts_with('{') {
        Some(CaptionFormat::YoutubeJson)
    } else if t.lines().any(|l| l.contains("-->")) {
        // SRT uses a comma before the milliseconds, WebVTT a dot.
        let arrow = t.lines().find(|l| l.contains("-->")).unwrap_or("");
        if arrow.split("-->").next().is_some_and(|s| s.contains(',')) {
            Some(CaptionFormat::Srt)
        } else {
            Some(CaptionFormat::Vtt)
        }
    } else {
        None
    }
}

/// Parses `HH:MM:SS,mmm`, `HH:MM:SS.mmm` or `MM:SS.mmm` into seconds.
pub fn parse_timestamp(s: &str) -> std::result::Result<f64, String> {
    let s = s.trim();
    if s.starts_with('-') {
        return Err(format!("negative timestamp '{s}'"));
    }
    let parts: Vec<&str> = s.split(':').collect();
    let bad = || format!("unparsable timestamp '{s}'");
    let (h, m, sec) = match parts.as_slice() {
        [h, m, sec] => (*h, *m, *sec),
        [m, sec] => ("0", *m, *sec),
        _ => return Err(bad()),
    };
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || !digits(m) {
        return Err(bad());
    }
    let sec = sec.replace(',', ".");
    let (whole, frac) = sec.split_once('.').unwrap_or((sec.as_str(), ""));
    if !digits(whole) || !(frac.is_empty() || digits(frac)) {
        return Err(bad());
    }
    let h: f64 = h.parse().map_err(|_| bad())?;
    let m: f64 = m.parse().map_err(|_| bad())?;
    let whole: f64 = whole.parse().map_err(|_| bad())?;
    if m >= 60.0 || whole >= 60.0 {
        return Err(format!("minutes/seconds out of range in '{s}'"));
    }
    let frac: f64 = if frac.is_empty() { 0.0 } else { format!("0.{frac}").parse().map_err(|_| bad())? };
    Ok(h * 3600.0 + m * 60.0 + whole + frac)
}

/// Parses a `start --> end [settings]` line; checks end ≥ start.
pub fn parse_timing_line(line: &str) -> std::result::Result<(f64, f64), String> {
    let (a, b) = line.split_once("-->").ok_or_else(|| format!("no '-->' in timing line '{line}'"))?;
    let b = b.split_whitespace().next().unwrap_or("");
    let start = parse_timestamp(a)?;
    let end = parse_timestamp(b)?;
    if end < start {
        return Err(format!("end {end:.3}s before start {start:.3}s"));
    }
    Ok((start, end))
}

/// True for a line that starts a cue: it holds the `-->` of a timing line. Such a line always starts a new
/// cue, blank line before it or not, so it can never become caption text.
pub fn is_timing_line(line: &str) -> bool {
    line.contains("-->")
}

/// True when cleaned caption text holds a timestamp (`00:00:05,000`, `01:02.500`): a timing line that lost
/// its arrow or a cue number glued to text. Such lines are dropped with a warning, never used as text.
pub fn looks_like_timestamp(text: &str) -> bool {
    static TS: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = TS.get_or_init(|| regex::Regex::new(r"\b\d{1,2}:\d{2}(?::\d{2})?[,.]\d{3}\b").expect("static regex"));
    re.is_match(text)
}

/// Removes HTML-ish tags (`<i>`, `<font ...>`, `<c.color>`, `<v Name>`) and ASS overrides (`{\an8}`),
/// decodes the common entities and collapses whitespace.
pub fn clean_text(s: &str) -> String {
    static TAGS: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = TAGS.get_or_init(|| regex::Regex::new(r"<[^<>\n]*>|\{\\[^{}\n]*\}").expect("static regex"));
    let out = decode_entities(&re.replace_all(s, ""));
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The handful of HTML entities captions use.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    s.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&lrm;", "")
        .replace("&rlm;", "")
        .replace("&amp;", "&")
}

/// Records cues that start before the previous one ends (1 ms tolerance). `lines[i]` is the line of `chunks[i]`.
pub(crate) fn report_overlaps(chunks: &[CaptionChunk], lines: &[usize], report: &mut ParseReport) {
    for i in 1..chunks.len() {
        let (prev, cur) = (&chunks[i - 1], &chunks[i]);
        if cur.start + 1e-3 < prev.end {
            report.overlaps.push((
                lines[i],
                format!("cue starts at {:.3}s before the previous cue ends at {:.3}s", cur.start, prev.end),
            ));
        }
    }
}

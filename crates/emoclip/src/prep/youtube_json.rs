//! YouTube transcript JSON (`[{text, start, duration}]`, as youtube-transcript-api saved it for the official scripts); chunk ends as in the official `regroup_transcripts.py`.
use serde_json::Value;

use super::captions::{clean_text, report_overlaps, CaptionChunk, ParseReport};

fn num(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Parses a transcript list. A chunk ends at `min(start + duration, next chunk's start)`, the last at
/// `start + duration`, exactly as the official regrouping does. Report line numbers are 1-based item
/// indices. `Err` only for invalid JSON or a top level that is not a list.
pub fn parse_youtube_json(text: &str) -> Result<(Vec<CaptionChunk>, ParseReport), String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let items = match &v {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("transcript") {
            Some(Value::Array(a)) => a,
            _ => return Err("expected a list of {text, start, duration} objects".into()),
        },
        _ => return Err("expected a list of {text, start, duration} objects".into()),
    };
    let mut report = ParseReport::default();
    // (item number, text, start, start + duration)
    let mut valid: Vec<(usize, String, f64, f64)> = Vec::new();
    for (k, it) in items.iter().enumerate() {
        let n = k + 1;
        let Some(obj) = it.as_object() else {
            report.skipped.push((n, "item is not an object".into()));
            continue;
        };
        let Some(raw_text) = obj.get("text").and_then(Value::as_str) else {
            report.skipped.push((n, "missing 'text'".into()));
            continue;
        };
        let (Some(start), Some(dur)) = (num(obj.get("start")), num(obj.get("duration"))) else {
            report.skipped.push((n, "missing or non-numeric 'start'/'duration'".into()));
            continue;
        };
        if !start.is_finite() || !dur.is_finite() || start < 0.0 || dur < 0.0 {
            report.skipped.push((n, format!("negative or non-finite time (start {start}, duration {dur})")));
            continue;
        }
        valid.push((n, clean_text(raw_text), start, start + dur));
    }
    let mut chunks = Vec::new();
    let mut lines = Vec::new();
    for (k, (n, text, start, stop)) in valid.iter().enumerate() {
        let end = match valid.get(k + 1) {
            Some(next) => stop.min(next.2).max(*start),
            None => *stop,
        };
        if text.is_empty() {
            report.skipped.push((*n, "empty text".into()));
            continue;
        }
        chunks.push(CaptionChunk { text: text.clone(), start: *start, end, words: None });
        lines.push(*n);
    }
    report_overlaps(&chunks, &lines, &mut report);
    Ok((chunks, report))
}

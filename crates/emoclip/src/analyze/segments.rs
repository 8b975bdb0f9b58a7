//! The `--segments FILE` format: explicit analysis windows as `start,end[,label]` rows (CSV) or objects (JSON / JSONL), validated with errors naming the file and line (issue 13 §1).
//!
//! # Format
//!
//! Times are seconds of media time (`12.5`) or clock times `[HH:]MM:SS[.fff]` (`01:02:03.5`).
//!
//! CSV (`.csv`, or any name whose content does not start with `[` / `{`): one segment per line,
//! `start,end` or `start,end,label`; an optional header line `start,end[,label]`; `#` starts a comment line;
//! blank lines are ignored. Labels containing commas are quoted (`"a, b"`).
//!
//! ```text
//! start,end,label
//! 0,4.5,greeting
//! 00:01:10.0,00:01:14.2,"argument, part 1"
//! ```
//!
//! JSON (`.json`): a list of `{"start": s, "end": e, "label": "…"}` objects or `[s, e, "label"?]` arrays,
//! or `{"segments": [...]}` holding such a list. JSONL (`.jsonl`): one such object or array per line.
//!
//! Every segment needs `0 ≤ start < end`, both finite. Unknown object keys are rejected, to catch typos.
use std::path::Path;

use serde_json::Value;

use super::window::Span;
use crate::{Error, Result};

/// Reads and validates a segments file (format in the module documentation).
pub fn load_segments(path: &Path) -> Result<Vec<Span>> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::Data { path: path.to_path_buf(), msg: "segments file not found; check the --segments path".into() }
        }
        _ => Error::io(path, e),
    })?;
    let text = String::from_utf8(bytes).map_err(|_| Error::Data {
        path: path.to_path_buf(),
        msg: "segments file is not UTF-8 text; save it as UTF-8".into(),
    })?;
    parse_segments(&text, path)
}

/// Parses segments from `text`; `path` names the file in errors and chooses the format by extension
/// (`.json`, `.jsonl`, else CSV unless the text starts with `[` or `{`).
pub fn parse_segments(text: &str, path: &Path) -> Result<Vec<Span>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let spans = match ext.as_deref() {
        Some("jsonl") | Some("ndjson") => parse_jsonl(text, path)?,
        Some("json") => parse_json(text, path)?,
        Some("csv") => parse_csv(text, path)?,
        _ if matches!(text.trim_start().chars().next(), Some('[') | Some('{')) => parse_json(text, path)?,
        _ => parse_csv(text, path)?,
    };
    if spans.is_empty() {
        return Err(err(path, None, "no segments found; add lines `start,end[,label]` (seconds)"));
    }
    Ok(spans)
}

fn err(path: &Path, line: Option<&str>, msg: &str) -> Error {
    let at = line.map_or(String::new(), |l| format!("{l}: "));
    Error::Data { path: path.to_path_buf(), msg: format!("{at}{msg}") }
}

/// Seconds from `12.5` or `[HH:]MM:SS[.fff]`.
pub fn parse_time(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if !s.contains(':') {
        return s.parse::<f64>().ok().filter(|v| v.is_finite());
    }
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() > 3 {
        return None;
    }
    let (last, rest) = parts.split_last()?;
    let secs: f64 = last.parse().ok().filter(|v: &f64| v.is_finite() && *v >= 0.0 && *v < 60.0)?;
    let mut total = 0.0;
    for (i, p) in rest.iter().enumerate() {
        let v: u64 = p.parse().ok()?;
        // minutes (when hours precede them) must be < 60
        if i + 1 == rest.len() && rest.len() == 2 && v >= 60 {
            return None;
        }
        total = total * 60.0 + v as f64;
    }
    Some(total * 60.0 + secs)
}

fn check(start: f64, end: f64, path: &Path, at: &str) -> Result<()> {
    if start < 0.0 {
        return Err(err(
            path,
            Some(at),
            &format!("start {start} is negative; times are seconds from the video's start"),
        ));
    }
    if end <= start {
        return Err(err(
            path,
            Some(at),
            &format!("end ({end}) must be after start ({start}); is the column order start,end?"),
        ));
    }
    Ok(())
}

fn parse_csv(text: &str, path: &Path) -> Result<Vec<Span>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(String::from("?"), |p| p.line().to_string());
            err(path, Some(&format!("line {line}")), &format!("not valid CSV ({e})"))
        })?;
        let line = rec.position().map_or(i as u64 + 1, |p| p.line());
        let at = format!("line {line}");
        if rec.iter().all(|f| f.is_empty()) {
            continue;
        }
        if out.is_empty()
            && i == 0
            && rec.get(0).is_some_and(|f| f.eq_ignore_ascii_case("start"))
            && rec.get(1).is_some_and(|f| f.eq_ignore_ascii_case("end"))
        {
            continue; // header
        }
        if rec.len() < 2 || rec.len() > 3 {
            return Err(err(
                path,
                Some(&at),
                &format!(
                    "expected `start,end` or `start,end,label`, got {} field(s); quote labels containing commas",
                    rec.len()
                ),
            ));
        }
        let time = |j: usize, name: &str| {
            parse_time(&rec[j]).ok_or_else(|| {
                err(
                    path,
                    Some(&at),
                    &format!("{name} `{}` is not a time (seconds like 12.5, or HH:MM:SS.fff)", &rec[j]),
                )
            })
        };
        let (start, end) = (time(0, "start")?, time(1, "end")?);
        check(start, end, path, &at)?;
        let label = rec.get(2).filter(|l| !l.is_empty()).map(str::to_string);
        out.push(Span::new(start, end, label));
    }
    Ok(out)
}

fn parse_json(text: &str, path: &Path) -> Result<Vec<Span>> {
    let root: Value = serde_json::from_str(text)
        .map_err(|e| err(path, Some(&format!("line {}", e.line())), &format!("not valid JSON ({e})")))?;
    let list = match &root {
        Value::Array(a) => a,
        Value::Object(o) => match (o.get("segments"), o.len()) {
            (Some(Value::Array(a)), 1) => a,
            _ => {
                return Err(err(path, None, "expected a list of segments or {\"segments\": [...]} (and no other keys)"))
            }
        },
        _ => return Err(err(path, None, "expected a list of segments or {\"segments\": [...]}")),
    };
    list.iter().enumerate().map(|(i, v)| segment_value(v, path, &format!("segment {i} (0-based)"))).collect()
}

fn parse_jsonl(text: &str, path: &Path) -> Result<Vec<Span>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = format!("line {}", i + 1);
        if line.trim().is_empty() {
            continue;
        }
        let v: Value =
            serde_json::from_str(line).map_err(|e| err(path, Some(&at), &format!("not valid JSON ({e})")))?;
        out.push(segment_value(&v, path, &at)?);
    }
    Ok(out)
}

fn segment_value(v: &Value, path: &Path, at: &str) -> Result<Span> {
    let time = |x: Option<&Value>, name: &str| -> Result<f64> {
        let t = match x {
            Some(Value::Number(n)) => n.as_f64().filter(|v| v.is_finite()),
            Some(Value::String(s)) => parse_time(s),
            _ => None,
        };
        t.ok_or_else(|| {
            err(path, Some(at), &format!("`{name}` is missing or not a time (seconds or \"HH:MM:SS.fff\")"))
        })
    };
    let label_of = |x: Option<&Value>| -> Result<Option<String>> {
        match x {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone()).filter(|s| !s.is_empty())),
            Some(other) => Err(err(path, Some(at), &format!("`label` must be a string, got {other}"))),
        }
    };
    let (start, end, label) = match v {
        Value::Object(o) => {
            if let Some(k) = o.keys().find(|k| !matches!(k.as_str(), "start" | "end" | "label")) {
                return Err(err(path, Some(at), &format!("unknown key `{k}` (allowed: start, end, label)")));
            }
            (time(o.get("start"), "start")?, time(o.get("end"), "end")?, label_of(o.get("label"))?)
        }
        Value::Array(a) if a.len() == 2 || a.len() == 3 => {
            (time(a.first(), "start")?, time(a.get(1), "end")?, label_of(a.get(2))?)
        }
        other => {
            return Err(err(
                path,
                Some(at),
                &format!(
                    "expected {{\"start\": s, \"end\": e, \"label\"?: \"…\"}} or [start, end, label?], got {other}"
                ),
            ))
        }
    };
    check(start, end, path, at)?;
    Ok(Span::new(start, end, label))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> Result<Vec<Span>> {
        parse_segments(text, Path::new("segs.csv"))
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("12.5"), Some(12.5));
        assert_eq!(parse_time("01:02:03.5"), Some(3723.5));
        assert_eq!(parse_time("2:03"), Some(123.0));
        assert_eq!(parse_time("1:75:00"), None);
        assert_eq!(parse_time("00:61"), None);
        assert_eq!(parse_time("abc"), None);
        assert_eq!(parse_time("inf"), None);
    }

    #[test]
    fn csv_with_header_comments_quotes() {
        let s =
            csv("start,end,label\n# a comment\n0,4.5,greeting\n\n00:01:10.0, 00:01:14.2 ,\"argument, part 1\"\n3,4\n")
                .unwrap();
        assert_eq!(
            s,
            vec![
                Span::new(0.0, 4.5, Some("greeting".into())),
                Span::new(70.0, 74.2, Some("argument, part 1".into())),
                Span::new(3.0, 4.0, None),
            ]
        );
    }

    #[test]
    fn csv_errors_name_file_and_line() {
        for (text, needle) in [
            ("0,4\n5,3\n", "line 2: end (3) must be after start (5)"),
            ("0,4\nx,5\n", "line 2: start `x` is not a time"),
            ("0,4,a,b\n", "line 1: expected `start,end`"),
            ("-1,4\n", "line 1: start -1 is negative"),
            ("# only a comment\n", "no segments found"),
        ] {
            let e = csv(text).unwrap_err().to_string();
            assert!(e.contains("segs.csv") && e.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn json_and_jsonl() {
        let j = r#"{"segments": [{"start": 1, "end": "00:00:02.5", "label": "x"}, [3, 4], [5, 6, "y"]]}"#;
        let s = parse_segments(j, Path::new("s.json")).unwrap();
        assert_eq!(
            s,
            vec![
                Span::new(1.0, 2.5, Some("x".into())),
                Span::new(3.0, 4.0, None),
                Span::new(5.0, 6.0, Some("y".into()))
            ]
        );
        // sniffed as JSON without extension
        assert_eq!(parse_segments("[[0, 1]]", Path::new("segs")).unwrap(), vec![Span::new(0.0, 1.0, None)]);
        let l = "{\"start\": 0, \"end\": 1}\n\n{\"start\": 2, \"end\": 1}\n";
        let e = parse_segments(l, Path::new("s.jsonl")).unwrap_err().to_string();
        assert!(e.contains("s.jsonl") && e.contains("line 3") && e.contains("must be after start"), "{e}");
        let e = parse_segments(r#"[{"start": 0, "stop": 1}]"#, Path::new("s.json")).unwrap_err().to_string();
        assert!(e.contains("segment 0") && e.contains("unknown key `stop`"), "{e}");
        let e = parse_segments("[{\"start\": 0,\n \"end\": }]", Path::new("s.json")).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("not valid JSON"), "{e}");
    }
}

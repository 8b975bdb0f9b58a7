//! WebVTT (.vtt) parser after the W3C WebVTT spec (header, NOTE/STYLE/REGION blocks, cue identifiers and settings), plus YouTube auto-captions: inline `<00:00:01.000><c> word</c>` timings and rolling two-line cues.
//!
//! Hand-written: of the WebVTT crates checked, aspasia 0.2.1, webvtt-parser 1.4.1 and subtp 0.2.0 take
//! `2` and `00:00:05.000 --> …` as cue text when cues are not separated by blank lines (subtp also rejects
//! YouTube's whitespace-only payload lines); fasrt 0.5.0 starts a new cue at the timing line, as the spec
//! does, but keeps the number line before it as text of the previous cue. None undoes YouTube's rolling
//! captions, which stays ours in any case.
use std::sync::OnceLock;

use regex::Regex;

use super::captions::{
    clean_text, is_timing_line, looks_like_timestamp, parse_timestamp, parse_timing_line, report_overlaps,
    CaptionChunk, ParseReport, TimedWord,
};

/// Cues at most this long whose text only repeats the previous cue are YouTube "transition" cues (10 ms).
pub const TRANSITION_CUE_MAX_S: f64 = 0.05;

struct RawCue<'a> {
    line_no: usize,
    start: f64,
    end: f64,
    /// (1-based line number, line)
    payload: Vec<(usize, &'a str)>,
}

/// One non-empty payload line: cleaned text and, with inline timestamps, its word times.
#[derive(Debug, Clone)]
struct Line {
    text: String,
    words: Option<Vec<TimedWord>>,
}

fn inline_ts_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"<((?:\d+:)?\d{2}:\d{2}\.\d{3})>").expect("static regex"))
}

/// Parses WebVTT text. Every spoken word of a YouTube rolling auto-caption appears once:
/// 10 ms transition cues are ignored and the lines a cue repeats from the previous cue are dropped.
/// A line holding `-->` always starts a new cue; when cues are not separated by a blank line, a number
/// alone just before a timing line is that cue's identifier, not text of the previous cue (reported as a
/// warning either way). Payload lines that look like timestamps are dropped with a warning.
pub fn parse_vtt(text: &str) -> (Vec<CaptionChunk>, ParseReport) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split('\n').map(|l| l.trim_end_matches('\r')).collect();
    let mut report = ParseReport::default();
    let mut raw: Vec<RawCue> = Vec::new();

    // Blocks are separated by empty lines; a whitespace-only line (YouTube's " ") is payload.
    let mut i = 0;
    let mut first_block = true;
    while i < lines.len() {
        if lines[i].is_empty() {
            i += 1;
            continue;
        }
        let block_start = i;
        while i < lines.len() && !lines[i].is_empty() {
            i += 1;
        }
        let block = &lines[block_start..i];
        let head = block[0].trim_start();
        let is_first = std::mem::replace(&mut first_block, false);
        if is_first && head.starts_with("WEBVTT") {
            continue; // header and its metadata lines (Kind:, Language:)
        }
        let has_timing = block.iter().any(|l| is_timing_line(l));
        if !has_timing {
            let kw = head.split_whitespace().next().unwrap_or("");
            if !matches!(kw, "NOTE" | "STYLE" | "REGION") && !block.iter().all(|l| l.trim().is_empty()) {
                report.skipped.push((block_start + 1, "block without a timing line".into()));
            }
            continue;
        }
        // Each timing line starts a cue; lines before the first one are its identifier.
        let mut cur: Option<RawCue> = None;
        let mut in_cue = false; // a timing line (parsed or not) came before in this block
        for (k, l) in block.iter().enumerate() {
            if is_timing_line(l) {
                let line_no = block_start + k + 1;
                if in_cue {
                    report.warnings.push((line_no, "cue not separated from the previous cue by a blank line".into()));
                }
                in_cue = true;
                if let Some(mut c) = cur.take() {
                    // A number alone right before this timing line is its identifier.
                    let id_line = block_start + k; // 1-based number of the line before
                    if c.payload.last().is_some_and(|&(n, p)| {
                        n == id_line && !p.trim().is_empty() && p.trim().bytes().all(|b| b.is_ascii_digit())
                    }) {
                        c.payload.pop();
                    }
                    raw.push(c);
                }
                match parse_timing_line(l) {
                    Ok((start, end)) => {
                        cur = Some(RawCue { line_no, start, end, payload: Vec::new() });
                    }
                    Err(reason) => {
                        report.skipped.push((line_no, reason));
                    }
                }
            } else if let Some(c) = cur.as_mut() {
                c.payload.push((block_start + k + 1, l));
            }
            // else: the identifier of the next cue, or the payload of a skipped cue
        }
        if let Some(c) = cur.take() {
            raw.push(c);
        }
    }

    for c in raw.iter_mut() {
        c.payload.retain(|&(n, p)| {
            let junk = looks_like_timestamp(&clean_text(p));
            if junk {
                report.warnings.push((n, format!("timestamp-like caption line dropped: {:?}", p.trim())));
            }
            !junk
        });
    }
    let cues: Vec<(usize, f64, f64, Vec<Line>)> = raw
        .iter()
        .map(|c| {
            let ls = c.payload.iter().filter_map(|(_, p)| parse_line(p, c.start, c.end)).collect();
            (c.line_no, c.start, c.end, ls)
        })
        .collect();
    for (line_no, _, _, ls) in &cues {
        if ls.is_empty() {
            report.skipped.push((*line_no, "cue without text".into()));
        }
    }

    let rolling = is_rolling(&raw, &cues);
    let mut chunks = Vec::new();
    let mut chunk_lines = Vec::new();
    let mut prev: Vec<String> = Vec::new();
    for (line_no, start, end, ls) in cues {
        if ls.is_empty() {
            continue;
        }
        let texts: Vec<String> = ls.iter().map(|l| l.text.clone()).collect();
        let repeats_prev = texts.iter().all(|t| prev.contains(t));
        if end - start <= TRANSITION_CUE_MAX_S && repeats_prev {
            continue; // YouTube transition cue
        }
        let keep_from = if rolling { repeated_prefix(&prev, &texts) } else { 0 };
        prev = texts;
        let new_lines = &ls[keep_from..];
        if new_lines.is_empty() {
            continue;
        }
        let text = new_lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>().join(" ");
        let words = if new_lines.iter().any(|l| l.words.is_some()) {
            let mut w: Vec<TimedWord> = Vec::new();
            for l in new_lines {
                match &l.words {
                    Some(lw) => w.extend(lw.iter().cloned()),
                    None => w.extend(super::sentences::split_words_evenly(&l.text, start, end)),
                }
            }
            w.sort_by(|a, b| a.start.total_cmp(&b.start));
            Some(w)
        } else {
            None
        };
        chunks.push(CaptionChunk { text, start, end, words });
        chunk_lines.push(line_no);
    }
    report_overlaps(&chunks, &chunk_lines, &mut report);
    (chunks, report)
}

/// Length of the longest prefix of `cur` equal to a suffix of `prev`.
fn repeated_prefix(prev: &[String], cur: &[String]) -> usize {
    let max = prev.len().min(cur.len());
    (1..=max).rev().find(|&k| prev[prev.len() - k..] == cur[..k]).unwrap_or(0)
}

/// Rolling captions: inline word timings (YouTube auto-captions), or most multi-line cues
/// start with the previous cue's last line.
fn is_rolling(raw: &[RawCue], cues: &[(usize, f64, f64, Vec<Line>)]) -> bool {
    if raw.iter().any(|c| c.payload.iter().any(|(_, p)| inline_ts_re().is_match(p))) {
        return true;
    }
    let (mut multi, mut rolled) = (0usize, 0usize);
    for w in cues.windows(2) {
        let (prev, cur) = (&w[0].3, &w[1].3);
        if cur.len() >= 2 {
            multi += 1;
            if prev.last().map(|l| &l.text) == Some(&cur[0].text) {
                rolled += 1;
            }
        }
    }
    multi > 0 && rolled * 2 >= multi
}

/// Cleans one payload line; with inline timestamps, times its words: the text before the first
/// timestamp starts at the cue start, each later piece at its timestamp, and a piece ends where the
/// next begins (the last at the cue end); several words in one piece share it equally.
fn parse_line(raw: &str, cue_start: f64, cue_end: f64) -> Option<Line> {
    let text = clean_text(raw);
    if text.is_empty() {
        return None;
    }
    let re = inline_ts_re();
    if !re.is_match(raw) {
        return Some(Line { text, words: None });
    }
    let mut pieces: Vec<(f64, String)> = Vec::new();
    let mut last = 0;
    let mut t = cue_start;
    for cap in re.captures_iter(raw) {
        let m = cap.get(0).expect("group 0");
        pieces.push((t, raw[last..m.start()].to_string()));
        let ts = cap.get(1).map_or("", |g| g.as_str());
        t = parse_timestamp(ts).unwrap_or(t).clamp(t, cue_end.max(t));
        last = m.end();
    }
    pieces.push((t, raw[last..].to_string()));
    let mut words = Vec::new();
    for (k, (s, p)) in pieces.iter().enumerate() {
        let e = pieces.get(k + 1).map_or(cue_end, |n| n.0).max(*s);
        words.extend(super::sentences::split_words_evenly(&clean_text(p), *s, e));
    }
    Some(Line { text, words: Some(words) })
}

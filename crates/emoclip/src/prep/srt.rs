//! SubRip (.srt) parser: index line, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, text lines, blank line (the de-facto SubRip format).
//!
//! Hand-written: the SubRip crates checked (aspasia 0.2.1, srtlib 0.2.0, srtparse 0.3.0, subparse 0.7.0,
//! subtp 0.2.0, fasrt 0.5.0) all take `2` and `00:00:05,000 --> …` as caption text when cues are not
//! separated by blank lines, and most fail the whole file on one broken timestamp; here a timing line
//! always starts a new cue and a broken cue is skipped and reported.
use super::captions::{
    clean_text, is_timing_line, looks_like_timestamp, parse_timing_line, report_overlaps, CaptionChunk, ParseReport,
};

/// Parses SRT text (BOM and CRLF tolerated). Every line holding `-->` starts a cue, and the number line
/// just before it is that cue's index, blank line or not (a missing blank line is reported as a warning).
/// A cue's text is every other non-blank line up to the next timing line; lines that look like timestamps
/// are dropped with a warning. Broken cues (with their text) are skipped and reported; overlapping cues are
/// kept and reported.
pub fn parse_srt(text: &str) -> (Vec<CaptionChunk>, ParseReport) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split('\n').map(|l| l.trim_end_matches('\r')).collect();
    let blank = |i: usize| lines[i].trim().is_empty();
    let digits = |i: usize| {
        let t = lines[i].trim();
        !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
    };
    let timing: Vec<usize> = (0..lines.len()).filter(|&i| is_timing_line(lines[i])).collect();
    // The index line of a cue: digits alone directly before its timing line.
    let is_index = |i: usize| digits(i) && i + 1 < lines.len() && is_timing_line(lines[i + 1]);
    // A number alone between blank lines with no timing line after it: an index whose cue is missing.
    let orphan_index = |i: usize| digits(i) && (i == 0 || blank(i - 1)) && (i + 1 == lines.len() || blank(i + 1));
    let mut chunks: Vec<CaptionChunk> = Vec::new();
    let mut chunk_lines: Vec<usize> = Vec::new();
    let mut report = ParseReport::default();
    let first = timing.first().copied().unwrap_or(lines.len());
    if let Some(i) = (0..first).find(|&i| !blank(i) && !is_index(i)) {
        report.skipped.push((i + 1, "text without a timing line".into()));
    }
    for (k, &t) in timing.iter().enumerate() {
        let next = timing.get(k + 1).copied().unwrap_or(lines.len());
        let line_no = t + 1;
        // The line before this cue's index (or timing) line must be blank unless this is the first cue.
        let head = if t > 0 && is_index(t - 1) { t - 1 } else { t };
        if k > 0 && head > 0 && !blank(head - 1) {
            report.warnings.push((line_no, "cue not separated from the previous cue by a blank line".into()));
        }
        let mut parts: Vec<String> = Vec::new();
        for (i, line) in lines.iter().enumerate().take(next).skip(t + 1) {
            if blank(i) || is_index(i) {
                continue;
            }
            if orphan_index(i) {
                report.skipped.push((i + 1, "cue number without a timing line".into()));
                continue;
            }
            let c = clean_text(line);
            if looks_like_timestamp(&c) {
                report.warnings.push((i + 1, format!("timestamp-like caption line dropped: {:?}", line.trim())));
                continue;
            }
            if !c.is_empty() {
                parts.push(c);
            }
        }
        match parse_timing_line(lines[t]) {
            Err(reason) => report.skipped.push((line_no, reason)),
            Ok((start, end)) => {
                let text = parts.join(" ");
                if text.is_empty() {
                    report.skipped.push((line_no, "cue without text".into()));
                } else {
                    chunks.push(CaptionChunk { text, start, end, words: None });
                    chunk_lines.push(line_no);
                }
            }
        }
    }
    report_overlaps(&chunks, &chunk_lines, &mut report);
    (chunks, report)
}

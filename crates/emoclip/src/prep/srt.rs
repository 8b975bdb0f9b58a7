//! SubRip (.srt) parser: index line, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, text lines, blank line (the de-facto SubRip format).
use super::captions::{clean_text, parse_timing_line, report_overlaps, CaptionChunk, ParseReport};

/// Parses SRT text (BOM and CRLF tolerated). Broken cues are skipped and reported;
/// overlapping cues are kept and reported.
pub fn parse_srt(text: &str) -> (Vec<CaptionChunk>, ParseReport) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split('\n').map(|l| l.trim_end_matches('\r')).collect();
    let mut chunks: Vec<CaptionChunk> = Vec::new();
    let mut chunk_lines: Vec<usize> = Vec::new();
    let mut report = ParseReport::default();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim().is_empty() {
            i += 1;
            continue;
        }
        let block_start = i;
        while i < lines.len() && !lines[i].trim().is_empty() {
            i += 1;
        }
        let block = &lines[block_start..i];
        let Some(t) = block.iter().position(|l| l.contains("-->")) else {
            // Text after a blank line inside a cue: glue it to the previous cue.
            let is_index = block.len() == 1 && block[0].trim().bytes().all(|b| b.is_ascii_digit());
            match chunks.last_mut() {
                Some(prev) if !is_index => {
                    let extra = clean_text(&block.join(" "));
                    if !extra.is_empty() {
                        prev.text = format!("{} {}", prev.text, extra).trim().to_string();
                    }
                }
                _ => report.skipped.push((block_start + 1, "text block without a timing line".into())),
            }
            continue;
        };
        let line_no = block_start + t + 1;
        match parse_timing_line(block[t]) {
            Err(reason) => report.skipped.push((line_no, reason)),
            Ok((start, end)) => {
                let text = clean_text(&block[t + 1..].join(" "));
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

//! Word timing and sentence regrouping after the official `preprocessing/regroup_transcripts.py` (`get_word_time_range`, `regroup_by_punc(split_punc='.', exclude_on='.*\[')`).
//!
//! Three boundary sources, in this order:
//! - a punctuation model ([`PunctuationModel`]), as the official pipeline always runs one. Its marks are
//!   regrouped by [`Regroup::Official`] (default: the official `regroup_by_punc`) or [`Regroup::AllMarks`]
//!   (emoclip's earlier rule, kept as a named option);
//! - the captions' own terminal punctuation, when they carry enough of it;
//! - else pauses and lengths ([`BoundarySource::Rules`]): a gap of at least `max_pause` ends a span, and
//!   a span lasting `max_seconds` or more is cut between two words (at its largest pause, preferring cuts
//!   that leave both parts longer than `min_seconds`) until every part is shorter. `prepare` sets both
//!   from its duration filter, so unpunctuated auto-captions (the paper's source) yield spans the filter
//!   keeps instead of one long span it drops.
use serde::{Deserialize, Serialize};

use super::captions::{CaptionChunk, TimedWord};

/// Hook for the punctuation-restoration model of the official pipeline
/// (deepmultilingualpunctuation); the ONNX implementation is [`super::punctuation::OnnxPunctuation`].
/// `predict` returns, for every word, the punctuation mark that follows it (`None` for none).
pub trait PunctuationModel {
    fn predict(&self, words: &[&str]) -> Vec<Option<char>>;
}

/// One output sentence: text, first word start, last word end, number of words.
#[derive(Debug, Clone, PartialEq)]
pub struct Sentence {
    pub text: String,
    pub start: f64,
    pub end: f64,
    pub n_words: usize,
}

/// How the marks of a punctuation model become sentences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Regroup {
    /// The official `regroup_by_punc(split_punc='.', exclude_on='.*\[')`: the words are the official
    /// `preprocess` output (`.,;:!?` removed except next to digits; sound tags kept), a sentence ends
    /// only where the model predicts `.`, the words before the first and after the last `.` are dropped,
    /// a sentence is its words joined by spaces without the predicted marks, and sentences containing
    /// `[` are dropped.
    #[default]
    Official,
    /// emoclip's earlier rule: sound tags removed first, a sentence also ends at a predicted `?` (and
    /// `!`, `…`), the head before the first and the tail after the last mark are kept, the predicted
    /// marks stay in the text.
    AllMarks,
}

/// How sentence boundaries are found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentenceConfig {
    /// Unpunctuated captions without a model: a gap of at least this many seconds between words ends a sentence.
    pub max_pause: f64,
    /// Unpunctuated captions without a model: a span lasting this long or longer is cut between words
    /// until every part is shorter (`None`: no cap). `prepare` uses its `--max-duration`.
    pub max_seconds: Option<f64>,
    /// Unpunctuated captions without a model: cuts that leave both parts longer than this are preferred
    /// (`prepare` uses its `--min-duration`).
    pub min_seconds: f64,
    /// A sentence is cut after this many words (safety cap; not in [`Regroup::Official`], which has none).
    pub max_words: usize,
    /// Sentences with fewer words are dropped.
    pub min_words: usize,
    /// Drop sound tags: `[Music]`, `(laughs)`, `♪ ... ♪`, speaker markers `>>` and dialogue dashes
    /// (not in [`Regroup::Official`], which keeps the words and drops sentences containing `[`).
    pub drop_sound_tags: bool,
    /// The official filter: drop sentences whose text contains '[' (`re.match('.*\[', text)`).
    pub drop_bracket_sentences: bool,
    /// How a punctuation model's marks become sentences.
    pub regroup: Regroup,
}

impl Default for SentenceConfig {
    fn default() -> Self {
        let f = super::filters::FilterConfig::default();
        Self {
            max_pause: 1.5,
            max_seconds: Some(f.max_duration),
            min_seconds: f.min_duration,
            max_words: 40,
            min_words: 1,
            drop_sound_tags: true,
            drop_bracket_sentences: true,
            regroup: Regroup::Official,
        }
    }
}

/// Which boundary source was used (a, b or c of the data-preparation issue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundarySource {
    /// The captions' own terminal punctuation.
    Captions,
    /// Pauses and maximum length (no punctuation, no model).
    Rules,
    /// A [`PunctuationModel`].
    Model,
}

/// Spreads `[start, end]` equally over the whitespace-separated words of `text` (official `word_sec`).
pub fn split_words_evenly(text: &str, start: f64, end: f64) -> Vec<TimedWord> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return Vec::new();
    }
    let end = end.max(start);
    let step = (end - start) / words.len() as f64;
    words
        .iter()
        .enumerate()
        .map(|(i, w)| TimedWord {
            text: (*w).to_string(),
            start: start + i as f64 * step,
            end: if i + 1 == words.len() { end } else { start + (i + 1) as f64 * step },
        })
        .collect()
}

/// All words of all chunks with times: inline times where the captions have them, else an equal split.
pub fn timed_words(chunks: &[CaptionChunk]) -> Vec<TimedWord> {
    chunks
        .iter()
        .flat_map(|c| match &c.words {
            Some(w) => w.clone(),
            None => split_words_evenly(&c.text, c.start, c.end),
        })
        .collect()
}

/// Marks sound-tag words within one chunk: `[...]`, `(...)`, `♪ ... ♪`, `>>`, lone dashes.
/// Open brackets are closed at the end of the chunk so a stray '[' cannot swallow the file.
fn sound_tag_mask(words: &[TimedWord]) -> Vec<bool> {
    let mut mask = vec![false; words.len()];
    let mut closer: Option<char> = None;
    for (i, w) in words.iter().enumerate() {
        let t = w.text.as_str();
        if let Some(c) = closer {
            mask[i] = true;
            let done = if c == '♪' {
                t.contains('♪')
            } else {
                t.ends_with(c) || t.trim_end_matches(|x: char| ".,!?;:".contains(x)).ends_with(c)
            };
            if done {
                closer = None;
            }
            continue;
        }
        if t == ">>" || t == ">" || t.chars().all(|c| c == '-' || c == '–' || c == '—') {
            mask[i] = true;
            continue;
        }
        let open = if t.starts_with('[') {
            Some(']')
        } else if t.starts_with('(') {
            Some(')')
        } else if t.starts_with('♪') || t.ends_with('♪') {
            Some('♪')
        } else {
            None
        };
        if let Some(c) = open {
            mask[i] = true;
            let closed = if c == '♪' {
                // "♪" alone or "♪la" opens; "la♪" or "♪la♪" closes at once.
                t.chars().filter(|&x| x == '♪').count() >= 2 || (t.ends_with('♪') && !t.starts_with('♪'))
            } else {
                t[1..].contains(c) // '[' and '(' are one byte
            };
            if !closed {
                closer = Some(c);
            }
        }
    }
    mask
}

/// True when `word` ends a sentence: `.`, `!`, `?`, `…` possibly followed by closing quotes/brackets,
/// except common abbreviations ("Mr.", "Dr.", "e.g.").
pub fn ends_sentence(word: &str) -> bool {
    let core = word.trim_end_matches(|c: char| "\"'”’»)]".contains(c));
    let Some(last) = core.chars().last() else { return false };
    if !matches!(last, '.' | '!' | '?' | '…') {
        return false;
    }
    if last == '.' && !core.ends_with("..") {
        let stem = core.trim_end_matches('.').trim_start_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
        const ABBR: &[&str] = &["mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "prof", "mt", "e.g", "i.e", "approx"];
        if ABBR.contains(&stem.as_str()) {
            return false;
        }
    }
    true
}

/// Chunks → sentences without a punctuation model (boundary sources a and b).
pub fn sentences(chunks: &[CaptionChunk], cfg: &SentenceConfig) -> Vec<Sentence> {
    sentences_with_model(chunks, cfg, None).0
}

/// Chunks → sentences. Boundaries: `model` when given (its marks replace the captions' own, as in the
/// official pipeline; regrouped by `cfg.regroup`); else the captions' own terminal punctuation when they are
/// punctuated (on average at least one terminal mark per `max_words` words); else pauses ≥ `max_pause`, then
/// the `max_seconds` cap (see the module doc). `max_words` caps every sentence except in
/// [`Regroup::Official`]. A sentence spans its first word's start to its last word's end (official
/// min/max). Sound tags are removed before grouping (except in [`Regroup::Official`]); sentences
/// containing '[' are then dropped (official `.*\[`).
pub fn sentences_with_model(
    chunks: &[CaptionChunk],
    cfg: &SentenceConfig,
    model: Option<&dyn PunctuationModel>,
) -> (Vec<Sentence>, BoundarySource) {
    if let (Some(m), Regroup::Official) = (model, cfg.regroup) {
        return (official_regroup(chunks, cfg, m), BoundarySource::Model);
    }
    let mut words: Vec<TimedWord> = Vec::new();
    for c in chunks {
        let w = match &c.words {
            Some(w) => w.clone(),
            None => split_words_evenly(&c.text, c.start, c.end),
        };
        if cfg.drop_sound_tags {
            let mask = sound_tag_mask(&w);
            words.extend(w.into_iter().zip(mask).filter(|(_, m)| !m).map(|(w, _)| w));
        } else {
            words.extend(w);
        }
    }
    let n_term = words.iter().filter(|w| ends_sentence(&w.text)).count();
    let punctuated = n_term > 0 && n_term * cfg.max_words.max(1) >= words.len();
    let max_words = cfg.max_words.max(1);

    let (source, mut ends): (BoundarySource, Vec<bool>) = if let Some(m) = model {
        // The official pipeline always runs the model, on text with its punctuation removed
        // (deepmultilingualpunctuation strips `.,;:!?` not between digits), then cuts at its marks.
        for w in words.iter_mut() {
            while w.text.len() > 1 && w.text.ends_with(['.', ',', ';', ':', '!', '?']) {
                w.text.pop();
            }
        }
        let refs: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
        let pred = m.predict(&refs);
        for (w, p) in words.iter_mut().zip(pred.iter()) {
            if let Some(c) = p {
                if !w.text.ends_with(*c) {
                    w.text.push(*c);
                }
            }
        }
        (BoundarySource::Model, words.iter().map(|w| ends_sentence(&w.text)).collect())
    } else if punctuated {
        (BoundarySource::Captions, words.iter().map(|w| ends_sentence(&w.text)).collect())
    } else {
        let mut e: Vec<bool> = words.iter().map(|w| ends_sentence(&w.text)).collect();
        for i in 0..words.len().saturating_sub(1) {
            if words[i + 1].start - words[i].end >= cfg.max_pause {
                e[i] = true;
            }
        }
        (BoundarySource::Rules, e)
    };
    if let Some(last) = ends.last_mut() {
        *last = true; // keep the unterminated tail (the official script drops it)
    }

    let mut out = Vec::new();
    let mut cur: Vec<&TimedWord> = Vec::new();
    for (w, &end_here) in words.iter().zip(ends.iter()) {
        cur.push(w);
        if end_here || cur.len() >= max_words {
            if source == BoundarySource::Rules {
                for part in cut_to_length(&cur, cfg.max_seconds, cfg.min_seconds) {
                    push_sentence(&mut out, part, cfg);
                }
            } else {
                push_sentence(&mut out, &cur, cfg);
            }
            cur.clear();
        }
    }
    (out, source)
}

/// The official `preprocess` of deepmultilingualpunctuation, which `get_word_time_range` applies to every
/// transcript chunk: `re.sub(r"(?<!\d)[.,;:!?](?!\d)", "", text).split()`. Written out because the
/// `regex` crate has no look-around; neighbours are those of the original text, as in `re.sub`.
pub fn official_preprocess(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let kept: String = chars
        .iter()
        .enumerate()
        .filter(|&(i, c)| {
            let mark = matches!(c, '.' | ',' | ';' | ':' | '!' | '?');
            let digit_before = i > 0 && chars[i - 1].is_ascii_digit();
            let digit_after = chars.get(i + 1).is_some_and(|d| d.is_ascii_digit());
            !mark || digit_before || digit_after
        })
        .map(|(_, c)| *c)
        .collect();
    kept.split_whitespace().map(str::to_owned).collect()
}

/// [`Regroup::Official`]: official `get_word_time_range` + `regroup_by_punc(split_punc='.',
/// exclude_on='.*\[')`. Chunks with inline word times keep them (the official transcripts have none):
/// each word is preprocessed alone and dropped when nothing is left.
fn official_regroup(chunks: &[CaptionChunk], cfg: &SentenceConfig, model: &dyn PunctuationModel) -> Vec<Sentence> {
    let mut words: Vec<TimedWord> = Vec::new();
    for c in chunks {
        match &c.words {
            Some(ws) => {
                for w in ws {
                    for t in official_preprocess(&w.text) {
                        words.push(TimedWord { text: t, start: w.start, end: w.end });
                    }
                }
            }
            None => {
                // Official: step = (end - start) / len(preprocessed words).
                let texts = official_preprocess(&c.text);
                words.extend(split_words_evenly(&texts.join(" "), c.start, c.end));
            }
        }
    }
    let refs: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
    let marks = model.predict(&refs);
    let splits: Vec<usize> = (0..words.len()).filter(|&i| marks.get(i).copied().flatten() == Some('.')).collect();
    let mut out = Vec::new();
    for pair in splits.windows(2) {
        let group: Vec<&TimedWord> = words[pair[0] + 1..=pair[1]].iter().collect();
        let text = group.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ");
        if text.contains('[') || group.len() < cfg.min_words {
            continue; // official `re.match('.*\[', text)`
        }
        let start = group.iter().map(|w| w.start).fold(f64::INFINITY, f64::min);
        let end = group.iter().map(|w| w.end).fold(f64::NEG_INFINITY, f64::max);
        out.push(Sentence { text, start, end, n_words: group.len() });
    }
    out
}

fn span_of(ws: &[&TimedWord]) -> f64 {
    match (ws.first(), ws.last()) {
        (Some(a), Some(b)) => b.end - a.start,
        _ => 0.0,
    }
}

/// Cuts a span of words lasting `max_seconds` or more between two words, recursively, until every part is
/// shorter (a single word is never cut). Each cut goes to the largest pause among the cuts that leave both
/// parts longer than `min_seconds`; ties (within 1 ms) and spans with no such cut go to the most balanced cut.
fn cut_to_length<'a, 'w>(
    ws: &'a [&'w TimedWord],
    max_seconds: Option<f64>,
    min_seconds: f64,
) -> Vec<&'a [&'w TimedWord]> {
    let Some(max) = max_seconds else { return vec![ws] };
    if ws.len() < 2 || span_of(ws) < max {
        return vec![ws];
    }
    let mut best: Option<(bool, f64, f64, usize)> = None; // (both parts long enough, pause, -imbalance, cut)
    for k in 1..ws.len() {
        let (a, b) = (span_of(&ws[..k]), span_of(&ws[k..]));
        let ok = a > min_seconds && b > min_seconds;
        let pause = ((ws[k].start - ws[k - 1].end).max(0.0) * 1000.0).round() / 1000.0;
        let cand = (ok, if ok { pause } else { 0.0 }, -a.max(b), k);
        let better = match best {
            None => true,
            Some(b) => (cand.0, cand.1, cand.2) > (b.0, b.1, b.2),
        };
        if better {
            best = Some(cand);
        }
    }
    let k = best.map_or(ws.len() / 2, |b| b.3);
    let mut out = cut_to_length(&ws[..k], max_seconds, min_seconds);
    out.extend(cut_to_length(&ws[k..], max_seconds, min_seconds));
    out
}

fn push_sentence(out: &mut Vec<Sentence>, ws: &[&TimedWord], cfg: &SentenceConfig) {
    if ws.is_empty() || ws.len() < cfg.min_words {
        return;
    }
    let text = ws.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ");
    if cfg.drop_bracket_sentences && text.contains('[') {
        return;
    }
    if !text.chars().any(char::is_alphanumeric) {
        return;
    }
    let start = ws.iter().map(|w| w.start).fold(f64::INFINITY, f64::min);
    let end = ws.iter().map(|w| w.end).fold(f64::NEG_INFINITY, f64::max);
    out.push(Sentence { text, start, end, n_words: ws.len() });
}

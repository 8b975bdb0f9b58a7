//! Word timing and sentence regrouping after the official `preprocessing/regroup_transcripts.py` (`get_word_time_range`, `regroup_by_punc` with `exclude_on='.*\['`).
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

/// How sentence boundaries are found when the captions carry no punctuation of their own.
#[derive(Debug, Clone)]
pub struct SentenceConfig {
    /// Unpunctuated captions without a model: a gap of at least this many seconds between words ends a sentence.
    pub max_pause: f64,
    /// A sentence is cut after this many words in every mode (safety cap).
    pub max_words: usize,
    /// Sentences with fewer words are dropped.
    pub min_words: usize,
    /// Drop sound tags: `[Music]`, `(laughs)`, `♪ ... ♪`, speaker markers `>>` and dialogue dashes.
    pub drop_sound_tags: bool,
    /// The official filter: drop sentences whose text contains '[' (`re.match('.*\[', text)`).
    pub drop_bracket_sentences: bool,
}

impl Default for SentenceConfig {
    fn default() -> Self {
        Self { max_pause: 1.5, max_words: 40, min_words: 1, drop_sound_tags: true, drop_bracket_sentences: true }
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
/// official pipeline); else the captions' own terminal punctuation when they are punctuated (on average at
/// least one terminal mark per `max_words` words); else pauses ≥ `max_pause`. `max_words` caps every sentence. A sentence spans its first word's start
/// to its last word's end (official min/max). Sound tags are removed before grouping; sentences
/// containing '[' are then dropped (official `.*\[`).
pub fn sentences_with_model(
    chunks: &[CaptionChunk],
    cfg: &SentenceConfig,
    model: Option<&dyn PunctuationModel>,
) -> (Vec<Sentence>, BoundarySource) {
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
            push_sentence(&mut out, &cur, cfg);
            cur.clear();
        }
    }
    (out, source)
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

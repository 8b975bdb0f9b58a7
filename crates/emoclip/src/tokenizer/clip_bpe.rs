//! open_clip `tokenizer.py` SimpleTokenizer core: merges file, byte-to-unicode map, regex
//! pre-tokenisation and byte-pair encoding with the `</w>` end-of-word suffix.
//!
//! The merge step is the `tokenizers` crate's BPE model (`end_of_word_suffix = "</w>"`), which applies
//! merges in the same order as CLIP's `bpe()` (lowest rank first, left to right). Everything around it
//! is done here by hand because `tokenizers` cannot reproduce open_clip exactly:
//! - its `Split` pre-tokenizer runs on Oniguruma, whose case-insensitive `\p{L}`/`\p{N}` classes and
//!   Unicode tables differ from Python's `regex` module; Rust's `regex` crate matches it on every code
//!   point assigned in Unicode 14 (checked by `tests/tokenizer.rs` against a per-code-point fixture);
//! - open_clip's specials (`<start_of_text>`, `<end_of_text>`) are matched by the same regex, inside
//!   the cleaned text, and bypass BPE; `tokenizers`' added tokens are matched before normalisation;
//! - ftfy/HTML cleaning has no `tokenizers` normalizer (see `clean.rs`).
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::sync::RwLock;

use regex::Regex;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::Model;

use crate::{Error, Result};

/// Number of merges open_clip reads from the merges file: `merges[1:49152-256-2+1]`.
pub(crate) const NUM_MERGES: usize = 49152 - 256 - 2;
pub(crate) const SOT_TEXT: &str = "<start_of_text>";
pub(crate) const EOT_TEXT: &str = "<end_of_text>";
/// Stop adding words to the cache beyond this many entries (memory bound for huge corpora).
const CACHE_MAX: usize = 1 << 18;

/// GPT-2/CLIP `bytes_to_unicode`: printable Latin-1 bytes map to themselves, the other 68 bytes to
/// U+0100.. in byte order.
pub(crate) fn bytes_to_unicode() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        table[b as usize] = if printable {
            char::from(b)
        } else {
            n += 1;
            char::from_u32(255 + n).unwrap_or('\u{fffd}') // 256..=323, always valid
        };
    }
    table
}

/// Vocabulary order of the 256 byte characters: open_clip lists the printable ranges first, then the
/// remapped bytes.
fn byte_vocab_order(table: &[char; 256]) -> Vec<char> {
    let mut printable: Vec<char> = Vec::with_capacity(256);
    let mut rest: Vec<char> = Vec::new();
    for b in 0..=255u8 {
        if matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF) {
            printable.push(table[b as usize]);
        } else {
            rest.push(table[b as usize]);
        }
    }
    printable.extend(rest);
    printable
}

/// Reads the merges (skipping the header line, at most [`NUM_MERGES`]) from a plain or gzip stream.
pub(crate) fn read_merges(bytes: impl Read, what: &std::path::Path) -> Result<Vec<(String, String)>> {
    let mut buf = BufReader::new(bytes);
    let is_gz = buf.fill_buf().map_err(|e| Error::io(what, e))?.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn BufRead> =
        if is_gz { Box::new(BufReader::new(flate2::read::GzDecoder::new(buf))) } else { Box::new(buf) };
    let mut merges = Vec::with_capacity(NUM_MERGES);
    for (i, line) in reader.lines().enumerate() {
        if merges.len() == NUM_MERGES {
            break;
        }
        let line = line.map_err(|e| Error::io(what, e))?;
        if i == 0 {
            continue; // "#version: 0.2" header
        }
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), None) => merges.push((a.to_string(), b.to_string())),
            _ => {
                return Err(Error::Tokenizer(format!(
                    "{}: line {}: expected two space-separated symbols, got {line:?}",
                    what.display(),
                    i + 1
                )))
            }
        }
    }
    if merges.is_empty() {
        return Err(Error::Tokenizer(format!("{}: no BPE merges found", what.display())));
    }
    Ok(merges)
}

/// open_clip's pre-tokenisation regex, compiled with `re.IGNORECASE` there; the specials come first.
///
/// Case-insensitivity only matters for the literal alternatives (`'s` also matches `'ſ`): applied to
/// the classes, Rust's `regex` would add U+0345 COMBINING GREEK YPOGEGRAMMENI to `\p{L}` (it folds to
/// `ι`), whereas Python's `regex` matches it with no alternative at all, so open_clip drops it. Hence
/// `(?i)` on the literals only and U+0345 excluded from the symbol class; the per-code-point fixture
/// test confirms that every other code point is classified as in Python.
pub(crate) fn pattern() -> Result<Regex> {
    Regex::new(r"(?i:<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d)|\p{L}+|\p{N}|[^\s\p{L}\p{N}\x{345}]+")
        .map_err(|e| Error::Tokenizer(format!("pre-tokenisation regex: {e}")))
}

pub(crate) struct ClipBpe {
    model: BPE,
    /// id → vocabulary string (byte-level characters, `</w>`, specials).
    id_to_token: Vec<String>,
    byte_encoder: [char; 256],
    byte_decoder: HashMap<char, u8>,
    pat: Regex,
    pub(crate) sot: u32,
    pub(crate) eot: u32,
    /// pre-token (cleaned text) → BPE ids.
    cache: RwLock<HashMap<String, Vec<u32>>>,
}

impl ClipBpe {
    pub(crate) fn new(merges: Vec<(String, String)>) -> Result<Self> {
        let byte_encoder = bytes_to_unicode();
        let order = byte_vocab_order(&byte_encoder);
        let mut id_to_token: Vec<String> = Vec::with_capacity(512 + merges.len() + 2);
        id_to_token.extend(order.iter().map(|c| c.to_string()));
        id_to_token.extend(order.iter().map(|c| format!("{c}</w>")));
        id_to_token.extend(merges.iter().map(|(a, b)| format!("{a}{b}")));
        id_to_token.push(SOT_TEXT.to_string());
        id_to_token.push(EOT_TEXT.to_string());
        let n = u32::try_from(id_to_token.len()).map_err(|_| Error::Tokenizer("vocabulary too large".to_string()))?;
        // Python's dict(zip(vocab, range)) keeps the last id of a duplicated string; so does this.
        let vocab: Vocab = id_to_token.iter().cloned().zip(0..n).collect();
        let model = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .end_of_word_suffix("</w>".to_string())
            .cache_capacity(0) // cached per word below, shared across threads
            .build()
            .map_err(|e| Error::Tokenizer(format!("building the BPE model: {e}")))?;
        let byte_decoder = byte_encoder.iter().enumerate().map(|(b, &c)| (c, b as u8)).collect();
        Ok(Self {
            model,
            id_to_token,
            byte_encoder,
            byte_decoder,
            pat: pattern()?,
            sot: n - 2,
            eot: n - 1,
            cache: RwLock::new(HashMap::new()),
        })
    }

    pub(crate) fn vocab_size(&self) -> usize {
        self.id_to_token.len()
    }

    pub(crate) fn pre_tokenize<'a>(&self, cleaned: &'a str) -> Vec<&'a str> {
        self.pat.find_iter(cleaned).map(|m| m.as_str()).collect()
    }

    /// BPE ids of already-cleaned text.
    pub(crate) fn encode_cleaned(&self, cleaned: &str, ids: &mut Vec<u32>) -> Result<()> {
        for m in self.pat.find_iter(cleaned) {
            let piece = m.as_str();
            if piece == SOT_TEXT {
                ids.push(self.sot);
                continue;
            }
            if piece == EOT_TEXT {
                ids.push(self.eot);
                continue;
            }
            {
                let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
                if let Some(hit) = cache.get(piece) {
                    ids.extend_from_slice(hit);
                    continue;
                }
            }
            let word: String = piece.bytes().map(|b| self.byte_encoder[b as usize]).collect();
            let tokens = self.model.tokenize(&word).map_err(|e| Error::Tokenizer(format!("BPE of {piece:?}: {e}")))?;
            let start = ids.len();
            ids.extend(tokens.iter().map(|t| t.id));
            let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
            if cache.len() < CACHE_MAX {
                cache.insert(piece.to_string(), ids[start..].to_vec());
            }
        }
        Ok(())
    }

    /// open_clip's `decode`: vocabulary strings → bytes → UTF-8 (invalid sequences become U+FFFD),
    /// then every `</w>` becomes a space. Unknown ids decode to U+FFFD.
    pub(crate) fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            match self.id_to_token.get(id as usize) {
                Some(tok) => {
                    for c in tok.chars() {
                        match self.byte_decoder.get(&c) {
                            Some(&b) => bytes.push(b),
                            None => bytes.extend_from_slice("\u{fffd}".as_bytes()),
                        }
                    }
                }
                None => bytes.extend_from_slice("\u{fffd}".as_bytes()),
            }
        }
        String::from_utf8_lossy(&bytes).replace("</w>", " ")
    }
}

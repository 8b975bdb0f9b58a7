//! open_clip `tokenizer.py` text cleaning (`basic_clean`, `whitespace_clean`, lower-case), including a
//! Rust re-implementation of the parts of ftfy 6.3 `fix_text` (default config) that matter for CLIP.
//!
//! What [`fix_text`] covers, in ftfy's order and with ftfy's fixed-point loop over each line:
//! - `unescape_html` ("auto": off from the first line that contains a literal `<`), with ftfy's rules:
//!   only `&name;` / `&#num;` forms, plus its all-caps entities (`&EACUTE;` → `É`);
//! - `fix_c1_controls` (U+0080..U+009F read as Windows-1252, as browsers do);
//! - `fix_latin_ligatures` (ﬁ → fi, Ĳ → IJ, ǅ → Dž, ...);
//! - `fix_character_width` (fullwidth ASCII, halfwidth kana/hangul, U+3000 → space);
//! - `uncurl_quotes` (U+2018..U+201B and U+02BC → `'`, U+201C..U+201F → `"`);
//! - `fix_line_breaks` (CRLF, CR, U+2028, U+2029, U+0085 → `\n`);
//! - `remove_terminal_escapes` (ANSI `ESC [ ... letter` sequences);
//! - `remove_control_chars` (C0 controls except `\t \n \x0c \r`, DEL, U+206A..U+206F, BOM, U+FFF9..U+FFFC);
//! - NFC normalisation.
//!
//! NOT covered: ftfy's `fix_encoding` (mojibake detection and repair, e.g. `sÃ³` → `só`, together with
//! `restore_byte_a0`, `replace_lossy_sequences`, `decode_inconsistent_utf8`), `fix_surrogates` (Rust
//! strings cannot hold lone surrogates), and the 1,000,000-character segment limit inside one line.
//! Text that ftfy would treat as mojibake is therefore tokenised as written. Character properties come
//! from Rust's Unicode tables, which may be newer than the Python build's (differences only concern code
//! points assigned after Unicode 14).
use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;
use unicode_normalization::UnicodeNormalization;

use super::html_entities::{FTFY_UPPER, HTML5, INVALID_CHARREFS, INVALID_CODEPOINTS};

/// open_clip's default `clean='lower'`: `whitespace_clean(basic_clean(text)).lower()`, that is
/// ftfy, `html.unescape` twice, strip, collapse whitespace to single spaces, lower-case.
pub fn clean_text(text: &str) -> String {
    let fixed = fix_text(text);
    let unescaped = html_unescape(&html_unescape(&fixed));
    let mut out = String::with_capacity(unescaped.len());
    for word in unescaped.split(is_py_space).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    // `str::to_lowercase` uses the full Unicode mapping with the Final_Sigma rule, like Python's lower().
    out.to_lowercase()
}

/// Python's `str.isspace()` (what `str.split()` / `str.strip()` split on).
pub(crate) fn is_py_space(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\u{1c}'..='\u{20}'
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

// ------------------------------------------------------------------------------------------------
// ftfy fix_text subset
// ------------------------------------------------------------------------------------------------

/// The subset of ftfy's `fix_text` described in the module documentation.
pub fn fix_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // ftfy: unescape_html="auto" is switched off for this line and every later one once a line has '<'.
    let mut unescape = true;
    for segment in text.split_inclusive('\n') {
        if unescape && segment.contains('<') {
            unescape = false;
        }
        out.push_str(&fix_segment(segment, unescape));
    }
    out
}

/// Whether ftfy leaves `s` unchanged for certain: printable ASCII (plus tab, newline, form feed)
/// without `&`.
fn trivially_clean(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'&' || matches!(b, b'\t' | b'\n' | 0x0c))
}

fn fix_segment(segment: &str, unescape: bool) -> String {
    if trivially_clean(segment) {
        return segment.to_string();
    }
    let mut text = segment.to_string();
    // ftfy repeats its steps until the text stops changing; the cap only guards against a cycle.
    for _ in 0..64 {
        let mut t = if unescape { ftfy_unescape_html(&text) } else { text.clone() };
        // fix_encoding (mojibake) is not implemented; see the module documentation.
        t = translate_chars(&t);
        t = fix_line_breaks(&t);
        t = remove_terminal_escapes(&t);
        t.retain(|c| !is_removed_control(c));
        let t: String = t.nfc().collect();
        if t == text {
            break;
        }
        text = t;
    }
    text
}

/// fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes: per-character maps applied
/// one after the other, as ftfy does.
fn translate_chars(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = c1_to_cp1252(c);
        match latin_ligature(c) {
            Some(s) => {
                for c in s.chars() {
                    push_width_uncurled(&mut out, c);
                }
            }
            None => push_width_uncurled(&mut out, c),
        }
    }
    out
}

fn push_width_uncurled(out: &mut String, c: char) {
    match width_map().get(&c) {
        Some(s) => {
            for c in s.chars() {
                out.push(uncurl(c));
            }
        }
        None => out.push(uncurl(c)),
    }
}

fn c1_to_cp1252(c: char) -> char {
    if ('\u{80}'..='\u{9f}').contains(&c) {
        // Python's html._invalid_charrefs is exactly "sloppy" Windows-1252 for 0x80..0x9F.
        if let Some((_, r)) = INVALID_CHARREFS.iter().find(|(k, _)| *k == c as u32) {
            return *r;
        }
    }
    c
}

fn latin_ligature(c: char) -> Option<&'static str> {
    Some(match c {
        'Ĳ' => "IJ",
        'ĳ' => "ij",
        'ŉ' => "\u{2bc}n",
        'Ǳ' => "DZ",
        'ǲ' => "Dz",
        'ǳ' => "dz",
        'Ǆ' => "D\u{17d}",
        'ǅ' => "D\u{17e}",
        'ǆ' => "d\u{17e}",
        'Ǉ' => "LJ",
        'ǈ' => "Lj",
        'ǉ' => "lj",
        'Ǌ' => "NJ",
        'ǋ' => "Nj",
        'ǌ' => "nj",
        'ﬀ' => "ff",
        'ﬁ' => "fi",
        'ﬂ' => "fl",
        'ﬃ' => "ffi",
        'ﬄ' => "ffl",
        'ﬅ' => "\u{17f}t",
        'ﬆ' => "st",
        _ => return None,
    })
}

/// ftfy's WIDTH_MAP: U+3000 → space, and every U+FF01..U+FFEF whose NFKC form differs → that form.
fn width_map() -> &'static HashMap<char, String> {
    static MAP: OnceLock<HashMap<char, String>> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut m = HashMap::new();
        m.insert('\u{3000}', " ".to_string());
        for cp in 0xFF01u32..0xFFF0 {
            if let Some(c) = char::from_u32(cp) {
                let alt: String = std::iter::once(c).nfkc().collect();
                if alt.chars().ne(std::iter::once(c)) {
                    m.insert(c, alt);
                }
            }
        }
        m
    })
}

fn uncurl(c: char) -> char {
    match c {
        '\u{2bc}' | '\u{2018}'..='\u{201b}' => '\'',
        '\u{201c}'..='\u{201f}' => '"',
        c => c,
    }
}

fn fix_line_breaks(text: &str) -> String {
    if !text.contains(['\r', '\u{2028}', '\u{2029}', '\u{85}']) {
        return text.to_string();
    }
    text.replace("\r\n", "\n").replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n")
}

fn remove_terminal_escapes(text: &str) -> String {
    if !text.contains('\u{1b}') {
        return text.to_string();
    }
    static ANSI: OnceLock<Option<Regex>> = OnceLock::new();
    // `\d` is Unicode-aware in both Python's `re` and Rust's `regex`.
    match ANSI.get_or_init(|| Regex::new(r"\x1b\[(?:\d|;)*[a-zA-Z]").ok()) {
        Some(re) => re.replace_all(text, "").into_owned(),
        None => text.to_string(),
    }
}

fn is_removed_control(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{8}'
            | '\u{b}'
            | '\u{e}'..='\u{1f}'
            | '\u{7f}'
            | '\u{206a}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffc}'
    )
}

// ------------------------------------------------------------------------------------------------
// HTML entities
// ------------------------------------------------------------------------------------------------

fn html5() -> &'static HashMap<&'static str, &'static str> {
    static MAP: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    MAP.get_or_init(|| HTML5.iter().copied().collect())
}

fn ftfy_upper() -> &'static HashMap<&'static str, &'static str> {
    static MAP: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    MAP.get_or_init(|| FTFY_UPPER.iter().copied().collect())
}

/// ftfy's `unescape_html`: each `&#?[0-9A-Za-z]{1,24};` becomes its character when it is a known
/// entity (HTML5 names ending in ';', or ftfy's all-caps ones), or a numeric reference that Python's
/// `html.unescape` decodes entirely; anything else is left alone.
fn ftfy_unescape_html(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let b = after.as_bytes();
        let start = usize::from(b.first() == Some(&b'#'));
        let n = b[start..].iter().take(24).take_while(|c| c.is_ascii_alphanumeric()).count();
        if n >= 1 && b.get(start + n) == Some(&b';') {
            let len = start + n + 1;
            let name = &after[..len]; // ASCII, ends with ';'
            let whole = &rest[pos..pos + 1 + len];
            if let Some(v) = html5().get(name).or_else(|| ftfy_upper().get(name)) {
                out.push_str(v);
            } else if start == 1 {
                let u = html_unescape(whole);
                out.push_str(if u.contains(';') { whole } else { &u });
            } else {
                out.push_str(whole);
            }
            rest = &after[len..];
        } else {
            out.push('&');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Python's `html.unescape` (HTML5 rules: numeric references with or without ';', named references
/// with the longest-prefix rule for the legacy names that may omit ';').
pub fn html_unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        match charref(after, &mut out) {
            Some(consumed) => rest = &after[consumed..],
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Matches `#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?` at the start of `s` (the text after
/// '&'); on a match, appends the replacement to `out` and returns the number of bytes consumed.
fn charref(s: &str, out: &mut String) -> Option<usize> {
    let b = s.as_bytes();
    if b.first() == Some(&b'#') {
        let dec = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        let (digits_start, n, radix) = if dec > 0 {
            (1, dec, 10)
        } else if matches!(b.get(1), Some(b'x' | b'X')) {
            (2, b[2..].iter().take_while(|c| c.is_ascii_hexdigit()).count(), 16)
        } else {
            return None;
        };
        if n == 0 {
            return None;
        }
        let digits = &s[digits_start..digits_start + n];
        let mut consumed = digits_start + n;
        if b.get(consumed) == Some(&b';') {
            consumed += 1;
        }
        // Saturate: any overflow is > 0x10FFFF, which Python maps to U+FFFD as well.
        let num = digits.chars().try_fold(0u64, |acc, d| {
            acc.checked_mul(radix).and_then(|a| a.checked_add(u64::from(d.to_digit(radix as u32)?)))
        });
        let num = num.unwrap_or(u64::MAX);
        if let Some((_, c)) = INVALID_CHARREFS.iter().find(|(k, _)| u64::from(*k) == num) {
            out.push(*c);
        } else if (0xD800..=0xDFFF).contains(&num) || num > 0x10FFFF {
            out.push('\u{fffd}');
        } else if INVALID_CODEPOINTS.iter().any(|&k| u64::from(k) == num) {
            // decodes to nothing
        } else if let Some(c) = u32::try_from(num).ok().and_then(char::from_u32) {
            out.push(c);
        }
        return Some(consumed);
    }
    // Named reference: up to 32 characters outside "\t\n\x0c <&#;", then an optional ';'.
    let mut end = 0;
    for (count, (i, c)) in s.char_indices().enumerate() {
        if count == 32 || matches!(c, '\t' | '\n' | '\u{c}' | ' ' | '<' | '&' | '#' | ';') {
            break;
        }
        end = i + c.len_utf8();
    }
    if end == 0 {
        return None;
    }
    if b.get(end) == Some(&b';') {
        end += 1;
    }
    let name = &s[..end];
    let table = html5();
    if let Some(v) = table.get(name) {
        out.push_str(v);
        return Some(end);
    }
    // Longest prefix of at least two characters, shorter than the whole name.
    let bounds: Vec<usize> = name.char_indices().map(|(i, _)| i).skip(2).collect();
    for &cut in bounds.iter().rev() {
        if let Some(v) = table.get(&name[..cut]) {
            out.push_str(v);
            out.push_str(&name[cut..]);
            return Some(end);
        }
    }
    out.push('&');
    out.push_str(name);
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_unescape_matches_python_examples() {
        assert_eq!(html_unescape("&amp;amp;"), "&amp;");
        assert_eq!(html_unescape("&notit;"), "\u{ac}it;");
        assert_eq!(html_unescape("&copy 2023"), "\u{a9} 2023");
        assert_eq!(html_unescape("&#128;&#x41;&#0;"), "\u{20ac}A\u{fffd}");
        assert_eq!(html_unescape("&#;&;& x"), "&#;&;& x");
    }

    #[test]
    fn ftfy_examples() {
        assert_eq!(
            fix_text("Broken text&hellip; it&#x2019;s \u{fb02}ubberi\u{fb01}c!"),
            "Broken text\u{2026} it's flubberific!"
        );
        assert_eq!(
            fix_text("\u{ff2c}\u{ff2f}\u{ff35}\u{ff24}\u{3000}\u{ff2e}\u{ff2f}\u{ff29}\u{ff33}\u{ff25}\u{ff33}"),
            "LOUD NOISES"
        );
        assert_eq!(fix_text("P&EACUTE;REZ"), "P\u{c9}REZ");
        assert_eq!(fix_text("<b>&amp;</b>"), "<b>&amp;</b>");
        assert_eq!(fix_text("\u{1b}[36;44mblue\u{1b}[0m"), "blue");
    }

    #[test]
    fn clean_collapses_and_lowercases() {
        assert_eq!(clean_text("  Hello\t\tWORLD \n"), "hello world");
        assert_eq!(clean_text("\u{3a3}\u{39f}\u{3a3}"), "\u{3c3}\u{3bf}\u{3c2}");
    }
}

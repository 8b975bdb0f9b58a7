//! Prompt sets for zero-shot scoring: built-in `basic` (the 7 classes of the caption emotion model the paper's SNCE loss uses), `emotic` (the 26 Emotic / BoLD categories), `sentiment`, or a prompts file; each class written into several templates (official zero-shot: src/engine/evaluation.py `ZeroShotClassifier`).
//!
//! # Prompts file
//!
//! UTF-8 text, one class per line; `#` starts a comment line; `template: TEXT` lines (TEXT containing `{}`
//! exactly once) replace the default templates; `LABEL = PHRASE` uses PHRASE in the templates and LABEL in
//! the outputs (e.g. `doubt = doubt or confusion`).
//!
//! ```text
//! # my labels
//! template: {}
//! template: a video of a person feeling {}.
//! calm
//! tense = tension
//! ```
//!
//! Duplicate labels (ignoring case) and templates without `{}` are errors naming the file and both lines;
//! blank lines are skipped with a warning naming them; fewer than 2 classes is an error (softmax over one
//! class is always 1).
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The 7 classes of `j-hartmann/emotion-english-distilroberta-base` (the caption emotion model of the SNCE
/// loss), in its label order.
pub const BASIC: [&str; 7] = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"];

/// The 26 Emotic categories (Kosti et al.; BoLD uses the same set), in the Emotic annotation order.
pub const EMOTIC: [&str; 26] = crate::labels::EMOTIC_CATEGORIES;

/// Sentiment polarity.
pub const SENTIMENT: [&str; 3] = ["positive", "neutral", "negative"];

/// Templates for noun classes (`basic`, `emotic`, files). The first is the official default (the bare
/// class name: `ZeroShotClassifier(templates=lambda x: x)`); the others describe a person, as the
/// subject-aware embeddings do.
pub const NOUN_TEMPLATES: [&str; 4] =
    ["{}", "a person feeling {}.", "a video of a person showing {}.", "someone who is full of {}."];

/// Templates for adjective classes (`sentiment`).
pub const ADJECTIVE_TEMPLATES: [&str; 4] = ["{}", "a {} person.", "a video of someone feeling {}.", "a {} moment."];

/// Which prompts to score against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptSet {
    Basic,
    Emotic,
    Sentiment,
    File(PathBuf),
}

impl PromptSet {
    /// `basic`, `emotic`, `sentiment`, or a path to a prompts file.
    pub fn parse(s: &str) -> Self {
        match s {
            "basic" => PromptSet::Basic,
            "emotic" => PromptSet::Emotic,
            "sentiment" => PromptSet::Sentiment,
            other => PromptSet::File(PathBuf::from(other)),
        }
    }

    /// The classes and templates.
    pub fn load(&self) -> Result<Prompts> {
        let builtin = |name: &str, labels: &[&str], templates: &[&str]| Prompts {
            name: name.to_string(),
            labels: labels.iter().map(|s| s.to_string()).collect(),
            phrases: labels.iter().map(|s| phrase_of(s)).collect(),
            templates: templates.iter().map(|s| s.to_string()).collect(),
            warnings: vec![],
        };
        match self {
            PromptSet::Basic => Ok(builtin("basic", &BASIC, &NOUN_TEMPLATES)),
            PromptSet::Emotic => Ok(builtin("emotic", &EMOTIC, &NOUN_TEMPLATES)),
            PromptSet::Sentiment => Ok(builtin("sentiment", &SENTIMENT, &ADJECTIVE_TEMPLATES)),
            PromptSet::File(p) => load_prompts(p),
        }
    }
}

/// A class name as text for a template: lower case, `/` read as "or" (`Doubt/Confusion` → `doubt or confusion`).
fn phrase_of(label: &str) -> String {
    label.to_lowercase().split('/').map(str::trim).collect::<Vec<_>>().join(" or ")
}

/// Classes with their template texts.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompts {
    /// `basic`, `emotic`, `sentiment` or the file stem: prefixes the score columns.
    pub name: String,
    /// Output labels, one per class.
    pub labels: Vec<String>,
    /// The text each class puts into the templates.
    pub phrases: Vec<String>,
    /// Each contains `{}` once.
    pub templates: Vec<String>,
    /// Non-fatal remarks on a prompts file (blank lines), naming the file and lines.
    pub warnings: Vec<String>,
}

impl Prompts {
    /// `texts()[c][t]`: class `c` written into template `t`.
    pub fn texts(&self) -> Vec<Vec<String>> {
        self.phrases.iter().map(|p| self.templates.iter().map(|t| t.replacen("{}", p, 1)).collect()).collect()
    }
}

/// Reads a prompts file (format in the module documentation).
pub fn load_prompts(path: &Path) -> Result<Prompts> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Data {
            path: path.to_path_buf(),
            msg: "prompts file not found; give basic, emotic, sentiment or the path of a prompts file".into(),
        },
        std::io::ErrorKind::InvalidData => {
            Error::Data { path: path.to_path_buf(), msg: "prompts file is not UTF-8 text; save it as UTF-8".into() }
        }
        _ => Error::io(path, e),
    })?;
    parse_prompts(&text, path)
}

/// Parses prompts-file text; `path` names the file in messages and its stem names the set.
pub fn parse_prompts(text: &str, path: &Path) -> Result<Prompts> {
    let bad = |line: usize, msg: String| Error::Data { path: path.to_path_buf(), msg: format!("line {line}: {msg}") };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut labels: Vec<(String, String, usize)> = vec![];
    let mut templates: Vec<(String, usize)> = vec![];
    let mut blank = vec![];
    let lines: Vec<&str> = text.lines().collect();
    // trailing blank lines are not worth a warning
    let last_content = lines.iter().rposition(|l| !l.trim().is_empty()).map_or(0, |i| i + 1);
    for (i, raw) in lines.iter().enumerate().take(last_content) {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() {
            blank.push(n);
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if let Some(t) = line.strip_prefix("template:") {
            let t = t.trim();
            if t.matches("{}").count() != 1 {
                return Err(bad(n, format!("template `{t}` must contain `{{}}` exactly once (where the class goes)")));
            }
            if let Some((_, first)) = templates.iter().find(|(x, _)| x == t) {
                return Err(bad(n, format!("template `{t}` repeats line {first}; remove one")));
            }
            templates.push((t.to_string(), n));
            continue;
        }
        let (label, phrase) = match line.split_once('=') {
            Some((l, p)) => (l.trim(), p.trim()),
            None => (line, line),
        };
        if label.is_empty() || phrase.is_empty() {
            return Err(bad(n, format!("`{line}`: write `label` or `label = phrase`")));
        }
        if let Some((_, _, first)) = labels.iter().find(|(l, _, _)| l.eq_ignore_ascii_case(label)) {
            return Err(bad(n, format!("label `{label}` duplicates line {first}; every class must appear once")));
        }
        let phrase = if phrase == label { phrase_of(label) } else { phrase.to_string() };
        labels.push((label.to_string(), phrase, n));
    }
    if labels.len() < 2 {
        return Err(Error::Data {
            path: path.to_path_buf(),
            msg: format!("{} class(es) found; a prompts file needs at least 2 (one label per line)", labels.len()),
        });
    }
    let warnings = if blank.is_empty() {
        vec![]
    } else {
        let list: Vec<String> = blank.iter().map(|n| n.to_string()).collect();
        vec![format!("{}: blank line(s) {} skipped", path.display(), list.join(", "))]
    };
    Ok(Prompts {
        name: path.file_stem().map_or("prompts".into(), |s| s.to_string_lossy().into_owned()),
        labels: labels.iter().map(|(l, _, _)| l.clone()).collect(),
        phrases: labels.into_iter().map(|(_, p, _)| p).collect(),
        templates: if templates.is_empty() {
            NOUN_TEMPLATES.iter().map(|s| s.to_string()).collect()
        } else {
            templates.into_iter().map(|(t, _)| t).collect()
        },
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Prompts> {
        parse_prompts(text, Path::new("my_prompts.txt"))
    }

    #[test]
    fn builtins() {
        let b = PromptSet::parse("basic").load().unwrap();
        assert_eq!(b.labels, BASIC);
        assert_eq!(b.texts()[3][1], "a person feeling joy.");
        let e = PromptSet::parse("emotic").load().unwrap();
        assert_eq!(e.labels.len(), 26);
        assert_eq!(e.phrases[9], "doubt or confusion");
        let s = PromptSet::parse("sentiment").load().unwrap();
        assert_eq!(s.texts()[0][1], "a positive person.");
        assert_eq!(PromptSet::parse("x.txt"), PromptSet::File("x.txt".into()));
    }

    #[test]
    fn file_with_templates_phrases_and_blank_lines() {
        let p = parse("# c\ntemplate: {}\ntemplate: a video of a person feeling {}.\ncalm\n\ntense = tension\n\n\n")
            .unwrap();
        assert_eq!(p.name, "my_prompts");
        assert_eq!(p.labels, vec!["calm", "tense"]);
        assert_eq!(
            p.texts(),
            vec![
                vec!["calm".to_string(), "a video of a person feeling calm.".into()],
                vec!["tension".to_string(), "a video of a person feeling tension.".into()],
            ]
        );
        assert_eq!(p.warnings, vec!["my_prompts.txt: blank line(s) 5 skipped".to_string()]);
        // default templates without template lines
        assert_eq!(parse("a\nb\n").unwrap().templates.len(), NOUN_TEMPLATES.len());
    }

    #[test]
    fn file_errors_name_file_and_lines() {
        for (text, needle) in [
            ("joy\nanger\nJoy\n", "line 3: label `Joy` duplicates line 1"),
            ("template: a person\njoy\nanger\n", "line 1: template `a person` must contain `{}`"),
            ("template: {} {}\n", "exactly once"),
            ("template: {}\ntemplate: {}\n", "line 2: template `{}` repeats line 1"),
            ("joy\n", "1 class(es) found"),
            ("joy\n = x\n", "line 2"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains("my_prompts.txt") && e.contains(needle), "{text:?}: {e}");
        }
        let e = load_prompts(Path::new("/nonexistent/p.txt")).unwrap_err().to_string();
        assert!(e.contains("p.txt") && e.contains("not found"), "{e}");
    }
}

//! `emoclip report`: exploration of a prepared dataset, after the paper's appendix A — neutral-score
//! histogram (Fig. 1), samples kept vs neutral threshold (Fig. 2), per-emotion probabilities before and
//! after filtering (Fig. 3), most frequent words after filtering (Fig. 5), example texts with their
//! neutral scores (Table 2). SVG plots (text as SVG text, no font files) and a Markdown page.
use super::filters::FilterConfig;
use super::pipeline::Candidate;
use super::settings::PrepareSettings;
use crate::plot::{bar_chart, line_chart, Series, PALETTE};
use crate::text_emotion::classifier::softmax;
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Ids of the videos with an index file under a `prepare` output (sorted; a video whose captions gave no
/// span has an empty one).
pub fn index_video_ids(out: &Path) -> Result<Vec<String>> {
    let dir = out.join("index");
    let mut ids: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().to_string()))
        .filter(|s| !s.starts_with('.'))
        .collect();
    ids.sort();
    Ok(ids)
}

/// Reads every `index/*.jsonl` under a `prepare` output directory.
pub fn load_index(out: &Path) -> Result<Vec<Candidate>> {
    let dir = out.join("index");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    let mut all = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| Error::io(&f, e))?;
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            all.push(serde_json::from_str(line).map_err(|e| Error::Msg(format!("{}:{}: {e}", f.display(), i + 1)))?);
        }
    }
    if all.is_empty() {
        return Err(Error::Msg(format!("{}: no candidates; run `emoclip prepare` first", dir.display())));
    }
    Ok(all)
}

const STOPWORDS: &[&str] = &[
    "the", "a", "an", "and", "or", "but", "to", "of", "in", "on", "at", "for", "with", "is", "are", "was", "were",
    "be", "been", "it", "its", "this", "that", "i", "you", "he", "she", "we", "they", "me", "him", "her", "us", "them",
    "my", "your", "our", "their", "so", "do", "did", "does", "not", "no", "yes", "what", "as", "if", "just", "all",
    "have", "has", "had", "from", "by", "up", "out", "about", "there", "then", "than", "too", "can", "will", "would",
    "s", "t", "m", "re", "ll", "ve", "d", "don", "oh", "um", "uh",
];

/// What a report is made of.
pub struct ReportInput<'a> {
    pub candidates: &'a [Candidate],
    /// Names of the emotion logits.
    pub labels: &'a [String],
    /// Every video with an index file (see [`index_video_ids`]).
    pub videos: &'a [String],
    /// The filters `prepare` used, read back from `prepare.json` (`None`: an output that did not record them).
    pub filters: Option<&'a FilterConfig>,
    /// The neutral threshold to mark on the kept-vs-threshold plot (default: the recorded one).
    pub mark: Option<f32>,
}

/// Loads a `prepare` output (index, labels, recorded settings) and writes its report into `dest`.
pub fn report_from_dir(prepared: &Path, dest: &Path, mark: Option<f32>) -> Result<PathBuf> {
    let cands = load_index(prepared)?;
    let videos = index_video_ids(prepared)?;
    let lp = prepared.join("labels.json");
    let labels: Vec<String> = match std::fs::read_to_string(&lp) {
        Ok(s) => serde_json::from_str(&s)
            .map_err(|e| Error::Data { path: lp.clone(), msg: format!("not a JSON list of labels: {e}") })?,
        Err(_) => (0..cands.first().map_or(0, |c| c.emotion_logits.len())).map(|i| format!("LABEL_{i}")).collect(),
    };
    let settings = PrepareSettings::read(prepared)?;
    let input = ReportInput {
        candidates: &cands,
        labels: &labels,
        videos: &videos,
        filters: settings.as_ref().map(|s| &s.filters),
        mark,
    };
    write_report(&input, dest)
}

/// Writes `report.md` and SVG figures into `dest`.
pub fn write_report(input: &ReportInput, dest: &Path) -> Result<PathBuf> {
    let (cands, labels) = (input.candidates, input.labels);
    let mark = input.mark.or(input.filters.map(|f| f.neutral_max));
    std::fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    let kept: Vec<&Candidate> = cands.iter().filter(|c| c.kept).collect();
    // Fig. 1: neutral-score histogram (20 bins).
    let bins = 20usize;
    let mut hist = vec![0f64; bins];
    for c in cands {
        hist[((c.neutral.clamp(0.0, 1.0) * bins as f32) as usize).min(bins - 1)] += 1.0;
    }
    let bin_labels: Vec<String> =
        (0..bins).map(|i| if i % 2 == 0 { format!("{:.2}", i as f64 / bins as f64) } else { String::new() }).collect();
    let one =
        |name: &str, v: Vec<f64>, color| Series { name: name.into(), values: v.into_iter().map(Some).collect(), color };
    bar_chart(
        &dest.join("neutral_histogram.svg"),
        "Neutral score of all caption spans",
        &bin_labels,
        &[one("spans", hist, PALETTE[0])],
        "spans",
    )?;
    // Fig. 2: samples kept vs neutral threshold (other filters as configured).
    let others: Vec<f32> =
        cands.iter().filter(|c| c.filters.duration && c.filters.text && c.filters.frames).map(|c| c.neutral).collect();
    let xs: Vec<f64> = (0..=100).map(|i| i as f64 / 100.0).collect();
    let ys: Vec<f64> = xs.iter().map(|&t| others.iter().filter(|&&n| n as f64 <= t).count() as f64).collect();
    line_chart(
        &dest.join("kept_vs_threshold.svg"),
        "Samples kept vs neutral threshold",
        &xs,
        &ys,
        "neutral threshold",
        "samples kept",
        mark.map(f64::from),
    )?;
    // Fig. 3: mean emotion probability before / after filtering.
    let mean_probs = |set: &[&Candidate]| -> Vec<f64> {
        let mut m = vec![0f64; labels.len()];
        for c in set {
            for (i, p) in softmax(&c.emotion_logits).iter().enumerate().take(labels.len()) {
                m[i] += *p as f64 / set.len().max(1) as f64;
            }
        }
        m
    };
    let all: Vec<&Candidate> = cands.iter().collect();
    bar_chart(
        &dest.join("emotion_distribution.svg"),
        "Mean emotion probability before and after filtering",
        labels,
        &[one("all spans", mean_probs(&all), PALETTE[0]), one("kept", mean_probs(&kept), PALETTE[1])],
        "mean probability",
    )?;
    // Fig. 5: most frequent words after filtering.
    let mut counts: HashMap<String, usize> = HashMap::new();
    for c in &kept {
        for w in c
            .text
            .to_lowercase()
            .split(|ch: char| !ch.is_alphanumeric())
            .filter(|w| w.len() > 1 && !STOPWORDS.contains(w))
        {
            *counts.entry(w.to_string()).or_default() += 1;
        }
    }
    let mut top: Vec<(String, usize)> = counts.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top.truncate(20);
    let (wl, wc): (Vec<String>, Vec<f64>) = top.iter().map(|(w, c)| (w.clone(), *c as f64)).unzip();
    bar_chart(
        &dest.join("top_words.svg"),
        "Most frequent words after filtering",
        &wl,
        &[one("count", wc, PALETTE[3])],
        "count",
    )?;
    // Table 2 + summary: the 8 lowest and 4 highest neutral scores, each span once.
    let mut order: Vec<usize> = (0..cands.len()).collect();
    order.sort_by(|&a, &b| cands[a].neutral.total_cmp(&cands[b].neutral).then(a.cmp(&b)));
    let mut pick: Vec<usize> = order.iter().take(8).copied().collect();
    let high: Vec<usize> = order.iter().rev().take(4).filter(|i| !pick.contains(i)).copied().collect();
    pick.extend(high.into_iter().rev());
    let videos: std::collections::BTreeSet<&str> =
        cands.iter().map(|c| c.video_id.as_str()).chain(input.videos.iter().map(String::as_str)).collect();
    let fails = |f: fn(&Candidate) -> bool| cands.iter().filter(|c| !f(c)).count();
    let (neutral, duration, text, frames) = match input.filters {
        Some(f) => (
            format!("neutral > {}", f.neutral_max),
            format!("duration outside {} s < d < {} s", f.min_duration, f.max_duration),
            format!("text < {} characters", f.min_chars),
            format!("< {} frames", f.min_frames),
        ),
        None => (
            "neutral (threshold not recorded: this output has no prepare.json)".to_string(),
            "duration".to_string(),
            "text length".to_string(),
            "frames".to_string(),
        ),
    };
    let mut md = String::new();
    md.push_str("# Pre-training data report\n\n");
    md.push_str(&format!(
        "{} videos, {} caption spans, **{} kept** ({:.1}%).\n\nFailed filters (a span may fail several): {neutral}: {}, {duration}: {}, {text}: {}, {frames}: {}.\n\n",
        videos.len(),
        cands.len(),
        kept.len(),
        100.0 * kept.len() as f64 / cands.len().max(1) as f64,
        fails(|c| c.filters.neutral),
        fails(|c| c.filters.duration),
        fails(|c| c.filters.text),
        fails(|c| c.filters.frames),
    ));
    if let (Some(m), Some(f)) = (input.mark, input.filters) {
        if m != f.neutral_max {
            md.push_str(&format!(
                "The plot marks neutral ≤ {m} (asked for); the counts use the {} that `prepare` used.\n\n",
                f.neutral_max
            ));
        }
    }
    let silent: Vec<&str> = videos
        .iter()
        .copied()
        .filter(|v| !cands.iter().any(|c| c.video_id == *v && c.filters.duration && c.filters.text))
        .collect();
    if !silent.is_empty() {
        md.push_str(&format!(
            "**{} video(s) whose captions produced no span inside the duration and text filters** (nothing of \
             them can be kept, whatever the emotion scores): {}.\n\n",
            silent.len(),
            silent.join(", ")
        ));
    }
    for (f, t) in [
        ("neutral_histogram.svg", "Neutral score histogram (appendix Fig. 1)"),
        ("kept_vs_threshold.svg", "Samples kept vs threshold (Fig. 2; red: the threshold used)"),
        ("emotion_distribution.svg", "Emotion probabilities before/after filtering (Fig. 3)"),
        ("top_words.svg", "Most frequent words after filtering (Fig. 5)"),
    ] {
        md.push_str(&format!("## {t}\n\n![{t}]({f})\n\n"));
    }
    md.push_str("## Example texts (Table 2)\n\n| text | neutral | kept |\n|---|---|---|\n");
    for c in pick.into_iter().map(|i| &cands[i]) {
        md.push_str(&format!(
            "| {} | {:.3} | {} |\n",
            c.text.replace('|', "\\|"),
            c.neutral,
            if c.kept { "yes" } else { "no" }
        ));
    }
    let page = dest.join("report.md");
    crate::output::write_atomic(&page, |f| std::io::Write::write_all(f, md.as_bytes()))?;
    Ok(page)
}

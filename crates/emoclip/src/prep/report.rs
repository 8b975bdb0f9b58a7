//! `emoclip report`: exploration of a prepared dataset, after the paper's appendix A — neutral-score
//! histogram (Fig. 1), samples kept vs neutral threshold (Fig. 2), per-emotion probabilities before and
//! after filtering (Fig. 3), most frequent words after filtering (Fig. 5), example texts with their
//! neutral scores (Table 2). SVG plots (text as SVG text, no font files) and a Markdown page.
use super::pipeline::Candidate;
use crate::text_emotion::classifier::softmax;
use crate::{Error, Result};
use plotters::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

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
    "be", "been", "it", "its", "this", "that", "i", "you", "he", "she", "we", "they", "me", "him", "her", "us",
    "them", "my", "your", "our", "their", "so", "do", "did", "does", "not", "no", "yes", "what", "as", "if",
    "just", "all", "have", "has", "had", "from", "by", "up", "out", "about", "there", "then", "than", "too",
    "can", "will", "would", "s", "t", "m", "re", "ll", "ve", "d", "don", "oh", "um", "uh",
];

fn err(e: impl std::fmt::Display) -> Error {
    Error::Msg(format!("plotting: {e}"))
}

fn bar_chart(path: &Path, title: &str, labels: &[String], series: &[(&str, Vec<f64>, RGBColor)], y_label: &str) -> Result<()> {
    let root = SVGBackend::new(path, (900, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let n = labels.len().max(1);
    let ymax = series.iter().flat_map(|s| s.1.iter().cloned()).fold(0.0f64, f64::max).max(1e-9) * 1.1;
    // Bar i is centred on x = i, so integer ticks carry the category names.
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(90)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0f64..ymax)
        .map_err(err)?;
    let labels_c = labels.to_vec();
    let style = ("sans-serif", if n > 8 { 11 } else { 13 }).into_font();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_style(style)
        .x_label_formatter(&move |x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                let l = labels_c.get(i as usize).cloned().unwrap_or_default();
                if n > 8 && l.chars().count() > 8 {
                    l.chars().take(7).chain(['…']).collect()
                } else {
                    l
                }
            } else {
                String::new()
            }
        })
        .y_desc(y_label)
        .draw()
        .map_err(err)?;
    let k = series.len().max(1) as f64;
    for (si, (name, values, color)) in series.iter().enumerate() {
        let w = 0.8 / k;
        let color = *color;
        chart
            .draw_series(values.iter().enumerate().map(|(i, &v)| {
                let x0 = i as f64 - 0.4 + si as f64 * w;
                Rectangle::new([(x0, 0.0), (x0 + w * 0.95, v)], color.filled())
            }))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    if series.len() > 1 {
        chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw().map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

fn line_chart(path: &Path, title: &str, xs: &[f64], ys: &[f64], x_label: &str, y_label: &str, mark: Option<f64>) -> Result<()> {
    let root = SVGBackend::new(path, (900, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let ymax = ys.iter().cloned().fold(0.0f64, f64::max).max(1.0) * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..1f64, 0f64..ymax)
        .map_err(err)?;
    chart.configure_mesh().x_desc(x_label).y_desc(y_label).draw().map_err(err)?;
    chart.draw_series(LineSeries::new(xs.iter().cloned().zip(ys.iter().cloned()), BLUE.stroke_width(2))).map_err(err)?;
    if let Some(m) = mark {
        chart.draw_series(LineSeries::new([(m, 0.0), (m, ymax)], RED.stroke_width(1))).map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Writes `report.md` and SVG figures into `dest`; `labels` names the emotion logits.
pub fn write_report(cands: &[Candidate], labels: &[String], neutral_max: f32, dest: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    let kept: Vec<&Candidate> = cands.iter().filter(|c| c.kept).collect();
    // Fig. 1: neutral-score histogram (20 bins).
    let bins = 20usize;
    let mut hist = vec![0f64; bins];
    for c in cands {
        hist[((c.neutral.clamp(0.0, 1.0) * bins as f32) as usize).min(bins - 1)] += 1.0;
    }
    let bin_labels: Vec<String> = (0..bins).map(|i| if i % 2 == 0 { format!("{:.2}", i as f64 / bins as f64) } else { String::new() }).collect();
    bar_chart(&dest.join("neutral_histogram.svg"), "Neutral score of all caption spans", &bin_labels, &[("spans", hist, BLUE)], "spans")?;
    // Fig. 2: samples kept vs neutral threshold (other filters as configured).
    let others: Vec<f32> = cands.iter().filter(|c| c.filters.duration && c.filters.text && c.filters.frames).map(|c| c.neutral).collect();
    let xs: Vec<f64> = (0..=100).map(|i| i as f64 / 100.0).collect();
    let ys: Vec<f64> = xs.iter().map(|&t| others.iter().filter(|&&n| n as f64 <= t).count() as f64).collect();
    line_chart(&dest.join("kept_vs_threshold.svg"), "Samples kept vs neutral threshold", &xs, &ys, "neutral threshold", "samples kept", Some(neutral_max as f64))?;
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
        &[("all spans", mean_probs(&all), BLUE), ("kept", mean_probs(&kept), RED)],
        "mean probability",
    )?;
    // Fig. 5: most frequent words after filtering.
    let mut counts: HashMap<String, usize> = HashMap::new();
    for c in &kept {
        for w in c.text.to_lowercase().split(|ch: char| !ch.is_alphanumeric()).filter(|w| w.len() > 1 && !STOPWORDS.contains(w)) {
            *counts.entry(w.to_string()).or_default() += 1;
        }
    }
    let mut top: Vec<(String, usize)> = counts.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top.truncate(20);
    let (wl, wc): (Vec<String>, Vec<f64>) = top.iter().map(|(w, c)| (w.clone(), *c as f64)).unzip();
    bar_chart(&dest.join("top_words.svg"), "Most frequent words after filtering", &wl, &[("count", wc, GREEN)], "count")?;
    // Table 2 + summary.
    let mut sorted: Vec<&Candidate> = cands.iter().collect();
    sorted.sort_by(|a, b| a.neutral.total_cmp(&b.neutral));
    let pick: Vec<&Candidate> = sorted.iter().take(8).chain(sorted.iter().rev().take(4)).cloned().collect();
    let videos: std::collections::BTreeSet<&str> = cands.iter().map(|c| c.video_id.as_str()).collect();
    let fails = |f: fn(&Candidate) -> bool| cands.iter().filter(|c| !f(c)).count();
    let mut md = String::new();
    md.push_str("# Pre-training data report\n\n");
    md.push_str(&format!(
        "{} videos, {} caption spans, **{} kept** ({:.1}%).\n\nFailed filters (a span may fail several): neutral > {neutral_max}: {}, duration: {}, text length: {}, frames: {}.\n\n",
        videos.len(),
        cands.len(),
        kept.len(),
        100.0 * kept.len() as f64 / cands.len().max(1) as f64,
        fails(|c| c.filters.neutral),
        fails(|c| c.filters.duration),
        fails(|c| c.filters.text),
        fails(|c| c.filters.frames),
    ));
    for (f, t) in [
        ("neutral_histogram.svg", "Neutral score histogram (appendix Fig. 1)"),
        ("kept_vs_threshold.svg", "Samples kept vs threshold (Fig. 2; red: the threshold used)"),
        ("emotion_distribution.svg", "Emotion probabilities before/after filtering (Fig. 3)"),
        ("top_words.svg", "Most frequent words after filtering (Fig. 5)"),
    ] {
        md.push_str(&format!("## {t}\n\n![{t}]({f})\n\n"));
    }
    md.push_str("## Example texts (Table 2)\n\n| text | neutral | kept |\n|---|---|---|\n");
    for c in pick {
        md.push_str(&format!("| {} | {:.3} | {} |\n", c.text.replace('|', "\\|"), c.neutral, if c.kept { "yes" } else { "no" }));
    }
    let page = dest.join("report.md");
    crate::output::write_atomic(&page, |f| std::io::Write::write_all(f, md.as_bytes()))?;
    Ok(page)
}

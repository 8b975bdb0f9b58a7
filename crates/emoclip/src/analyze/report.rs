//! The self-contained `report.html` of one video: per-subject emotion timelines (inline SVG), a thumbnail strip with the tracked boxes and ids drawn, each subject's top emotions, and the run settings (issue 13 §5).
//!
//! No scripts, fonts or files outside the page: thumbnails are JPEG data URIs, charts inline SVG, so the
//! report can be mailed or archived as one file. Charts show the primary score source of the timeline
//! ([`Timeline::primary`]); a subject's line breaks where it is absent for a while.
use std::fmt::Write as _;

use base64::Engine;

use super::timeline::{ScoreKind, Subject, Timeline, TimelineRow};

/// A frame shown in the thumbnail strip.
#[derive(Debug, Clone, PartialEq)]
pub struct Thumbnail {
    /// Presentation time (s).
    pub time: f64,
    pub window: usize,
    /// A small JPEG of the frame.
    pub jpeg: Vec<u8>,
    /// Size of the ORIGINAL frame, the coordinate space of `boxes`.
    pub frame_width: u32,
    pub frame_height: u32,
    /// Person boxes `[x1, y1, x2, y2]` in original pixels, with the track id (`None`: untracked detection).
    pub boxes: Vec<(Option<u32>, [f32; 4])>,
}

/// Everything the report shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportInput<'a> {
    pub timeline: &'a Timeline,
    /// Video duration (s): the charts' time axis.
    pub duration: f64,
    /// Run settings as (name, value), shown in a table.
    pub settings: Vec<(String, String)>,
    /// Remarks (no person found, corrupt stretch skipped, …).
    pub notes: Vec<String>,
    pub thumbnails: Vec<Thumbnail>,
    /// Lines per chart: the subject's best labels by mean score (default 4).
    pub lines_per_chart: usize,
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `m:ss` (or `h:mm:ss`).
pub fn clock(t: f64) -> String {
    let s = t.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// Tableau 10: distinguishable and colour-blind tolerable.
const PALETTE: [&str; 10] =
    ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];

/// A label's colour: conventional colours for common emotion names, else the palette by position.
pub fn label_color(label: &str, position: usize) -> &'static str {
    match label.to_ascii_lowercase().as_str() {
        "anger" | "angry" | "annoyance" => "#d62728",
        "disgust" | "aversion" => "#2ca02c",
        "fear" | "disquietment" => "#9467bd",
        "joy" | "happiness" | "happy" | "positive" => "#f0a30a",
        "neutral" | "peace" => "#8c8c8c",
        "sadness" | "sad" | "negative" => "#1f77b4",
        "surprise" | "excitement" => "#e377c2",
        _ => PALETTE[position % PALETTE.len()],
    }
}

/// A person id's colour (boxes, headings).
pub fn person_color(subject: Subject) -> &'static str {
    match subject {
        Subject::Scene => "#444444",
        Subject::Person(id) => PALETTE[(id as usize + PALETTE.len() - 1) % PALETTE.len()],
    }
}

/// A subject's badge: a round tag with the person's id (emotions are square swatches, so the two never mix).
fn badge(s: Subject) -> String {
    match s {
        Subject::Scene => format!(r#"<span class="badge" style="background:{}">S</span>"#, person_color(s)),
        Subject::Person(id) => format!(r#"<span class="badge" style="background:{}">{id}</span>"#, person_color(s)),
    }
}

/// Mean score per label of the primary source over `rows`.
fn mean_scores(tl: &Timeline, rows: &[&TimelineRow], p: usize) -> Vec<f64> {
    let k = tl.sources[p].labels.len();
    let mut m = vec![0.0; k];
    for r in rows {
        for (a, b) in m.iter_mut().zip(&r.scores[p]) {
            *a += b;
        }
    }
    m.iter_mut().for_each(|v| *v /= rows.len().max(1) as f64);
    m
}

/// Label indices by decreasing value (ties: label order).
fn ranked(v: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]).then(a.cmp(&b)));
    idx
}

/// A tick step giving at most ~8 ticks over `span` seconds.
fn tick_step(span: f64) -> f64 {
    const STEPS: [f64; 14] =
        [1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0];
    STEPS.iter().copied().find(|s| span / s <= 8.0).unwrap_or(14400.0)
}

const CHART_W: f64 = 960.0;
const CHART_H: f64 = 230.0;
const M_LEFT: f64 = 46.0;
const M_RIGHT: f64 = 14.0;
const M_TOP: f64 = 12.0;
const M_BOTTOM: f64 = 30.0;

/// One subject's chart: `labels` (indices into the primary source) over time.
fn chart(tl: &Timeline, rows: &[&TimelineRow], p: usize, labels: &[usize], duration: f64, range: (f64, f64)) -> String {
    let (lo, hi) = range;
    let span = duration.max(1e-9);
    let x = |t: f64| M_LEFT + (t / span).clamp(0.0, 1.0) * (CHART_W - M_LEFT - M_RIGHT);
    let y = |v: f64| M_TOP + (1.0 - ((v - lo) / (hi - lo)).clamp(0.0, 1.0)) * (CHART_H - M_TOP - M_BOTTOM);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {CHART_W} {CHART_H}" role="img" preserveAspectRatio="xMidYMid meet">"#
    );
    // y grid
    for i in 0..=4 {
        let v = lo + (hi - lo) * i as f64 / 4.0;
        let yy = y(v);
        let _ = write!(
            s,
            r##"<line x1="{M_LEFT}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" class="grid"/><text x="{:.1}" y="{:.1}" class="tick" text-anchor="end">{}</text>"##,
            CHART_W - M_RIGHT,
            M_LEFT - 6.0,
            yy + 4.0,
            if hi - lo == 1.0 && lo == 0.0 { format!("{:.0}%", v * 100.0) } else { format!("{v:.2}") }
        );
    }
    // x ticks
    let step = tick_step(span);
    let mut t = 0.0;
    while t <= span + 1e-9 {
        let xx = x(t);
        let _ = write!(
            s,
            r#"<line x1="{xx:.1}" x2="{xx:.1}" y1="{M_TOP}" y2="{:.1}" class="grid v"/><text x="{xx:.1}" y="{:.1}" class="tick" text-anchor="middle">{}</text>"#,
            CHART_H - M_BOTTOM,
            CHART_H - M_BOTTOM + 18.0,
            clock(t)
        );
        t += step;
    }
    // lines: break where the subject is absent (next window starts after the previous ended)
    for (pos, &li) in labels.iter().enumerate() {
        let label = &tl.sources[p].labels[li];
        let color = label_color(label, li);
        let mut segments: Vec<Vec<(f64, f64, &TimelineRow)>> = vec![];
        let mut prev_end = f64::NEG_INFINITY;
        for r in rows {
            let c = (r.t_start + r.t_end) / 2.0;
            if segments.is_empty() || r.t_start > prev_end + 1e-6 {
                segments.push(vec![]);
            }
            if let Some(seg) = segments.last_mut() {
                seg.push((x(c), y(r.scores[p][li]), r));
            }
            prev_end = prev_end.max(r.t_end);
        }
        let width = if pos == 0 { 2.6 } else { 1.8 };
        for seg in &segments {
            if seg.len() > 1 {
                let pts: Vec<String> = seg.iter().map(|(a, b, _)| format!("{a:.1},{b:.1}")).collect();
                let _ = write!(
                    s,
                    r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="{width}" stroke-linejoin="round" stroke-linecap="round"/>"#,
                    pts.join(" ")
                );
            }
            for (a, b, r) in seg {
                let _ = write!(
                    s,
                    r#"<circle cx="{a:.1}" cy="{b:.1}" r="{}" fill="{color}"><title>{} · {}–{} · {:.3}</title></circle>"#,
                    if seg.len() > 1 { 2.2 } else { 3.5 },
                    escape(label),
                    clock(r.t_start),
                    clock(r.t_end),
                    r.scores[p][li]
                );
            }
        }
    }
    s.push_str("</svg>");
    s
}

fn thumbnail(th: &Thumbnail) -> String {
    let (w, h) = (th.frame_width.max(1) as f64, th.frame_height.max(1) as f64);
    let data = base64::engine::general_purpose::STANDARD.encode(&th.jpeg);
    let stroke = (h / 120.0).max(1.5);
    let font = (h / 14.0).max(10.0);
    let mut s = format!(
        r#"<figure class="thumb"><svg viewBox="0 0 {w} {h}" role="img"><image href="data:image/jpeg;base64,{data}" x="0" y="0" width="{w}" height="{h}" preserveAspectRatio="none"/>"#
    );
    for (id, b) in &th.boxes {
        let color = id.map_or("#ffffff", |i| person_color(Subject::Person(i)));
        let (x1, y1) = (b[0].max(0.0) as f64, b[1].max(0.0) as f64);
        let (bw, bh) = ((b[2] as f64).min(w) - x1, (b[3] as f64).min(h) - y1);
        if bw <= 0.0 || bh <= 0.0 {
            continue;
        }
        let _ = write!(
            s,
            r#"<rect x="{x1:.1}" y="{y1:.1}" width="{bw:.1}" height="{bh:.1}" fill="none" stroke="{color}" stroke-width="{stroke:.1}"/>"#
        );
        if let Some(i) = id {
            let tag = format!("{i}");
            let tw = font * (0.65 * tag.len() as f64 + 0.6);
            let ty = if y1 >= font * 1.1 { y1 - font * 1.1 } else { y1 };
            let _ = write!(
                s,
                r#"<rect x="{x1:.1}" y="{ty:.1}" width="{tw:.1}" height="{:.1}" fill="{color}"/><text x="{:.1}" y="{:.1}" font-size="{font:.1}" class="boxid">{tag}</text>"#,
                font * 1.1,
                x1 + font * 0.3,
                ty + font * 0.9
            );
        }
    }
    let _ = write!(s, "</svg><figcaption>{} · window {}</figcaption></figure>", clock(th.time), th.window);
    s
}

const CSS: &str = r#"
:root { --fg:#1d2330; --muted:#667085; --line:#e4e7ec; --card:#ffffff; --bg:#f5f6f8; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg); font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif; }
main { max-width:1080px; margin:0 auto; padding:28px 24px 48px; }
h1 { font-size:26px; margin:0 0 4px; letter-spacing:-.01em; }
h2 { font-size:17px; margin:28px 0 10px; text-transform:uppercase; letter-spacing:.06em; color:var(--muted); font-weight:600; }
h3 { font-size:17px; margin:0; display:flex; align-items:center; gap:8px; }
.sub { color:var(--muted); margin:0; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:16px 18px; margin:0 0 14px; box-shadow:0 1px 2px rgba(16,24,40,.04); }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; padding:7px 10px; border-bottom:1px solid var(--line); vertical-align:middle; }
th { font-size:12px; text-transform:uppercase; letter-spacing:.05em; color:var(--muted); font-weight:600; }
tr:last-child td { border-bottom:none; }
.dot { width:12px; height:12px; border-radius:3px; display:inline-block; flex:none; }
.chips { display:flex; flex-wrap:wrap; gap:6px 14px; }
.chip { display:inline-flex; align-items:center; gap:6px; white-space:nowrap; }
.track { display:inline-block; width:54px; height:6px; border-radius:3px; background:#eceef2; overflow:hidden; vertical-align:middle; }
.track .fill { display:block; height:100%; border-radius:3px; }
.badge { display:inline-flex; align-items:center; justify-content:center; min-width:22px; height:22px; padding:0 6px; border-radius:11px; color:#fff; font-size:12px; font-weight:700; flex:none; }
.num { font-variant-numeric:tabular-nums; color:var(--muted); }
.legend { display:flex; flex-wrap:wrap; gap:4px 16px; margin:8px 0 4px; font-size:14px; }
.head { display:flex; justify-content:space-between; align-items:baseline; gap:12px; flex-wrap:wrap; }
.meta { color:var(--muted); font-size:13px; }
svg.chart { width:100%; height:auto; display:block; }
svg.chart .grid { stroke:#eceef2; stroke-width:1; }
svg.chart .grid.v { stroke:#f3f4f6; }
svg.chart .tick { font-size:12px; fill:#8a93a3; }
.strip { display:flex; flex-wrap:wrap; gap:14px 12px; }
.thumb { margin:0; flex:none; width:calc((100% - 36px) / 4); min-width:180px; }
.thumb svg { width:100%; height:auto; display:block; border-radius:6px; background:#000; }
.thumb .boxid { fill:#fff; font-weight:700; font-family:system-ui,sans-serif; }
.thumb figcaption { font-size:12px; color:var(--muted); margin-top:4px; text-align:center; }
.notes li { margin:2px 0; }
.settings td:first-child { color:var(--muted); width:34%; }
.settings td { font-size:14px; word-break:break-all; }
"#;

/// Renders the report.
pub fn render(input: &ReportInput) -> String {
    let tl = input.timeline;
    let subjects = tl.subjects();
    let persons = subjects.iter().filter(|s| matches!(s, Subject::Person(_))).count();
    let windows = tl.rows.iter().map(|r| r.window).collect::<std::collections::BTreeSet<_>>().len();
    let primary = tl.primary();
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>emoclip analyze · {}</title><style>{CSS}</style></head><body><main>"#,
        escape(&tl.video)
    );
    let scores_desc = match primary {
        Some(p) => {
            let s = &tl.sources[p];
            let what = if s.kind == ScoreKind::MultiLabel { "independent probabilities" } else { "probabilities" };
            format!("charts: {} ({what})", escape(&s.name))
        }
        None => "no probabilistic scores".into(),
    };
    let _ = write!(
        h,
        r#"<h1>{}</h1><p class="sub">{} long · {} window{} · {} person{} tracked · {}</p>"#,
        escape(&tl.video),
        clock(input.duration),
        windows,
        if windows == 1 { "" } else { "s" },
        persons,
        if persons == 1 { "" } else { "s" },
        scores_desc
    );

    let rows_of = |s: Subject| -> Vec<&TimelineRow> {
        let mut v: Vec<&TimelineRow> = tl.rows.iter().filter(|r| r.subject == s).collect();
        v.sort_by(|a, b| a.t_start.total_cmp(&b.t_start).then(a.window.cmp(&b.window)));
        v
    };

    // Summary: top emotions per subject.
    if let Some(p) = primary {
        h.push_str(r#"<h2>Who feels what</h2><div class="card"><table><thead><tr><th>subject</th><th>seen</th><th>top emotions (mean over windows)</th></tr></thead><tbody>"#);
        for &s in &subjects {
            let rows = rows_of(s);
            let m = mean_scores(tl, &rows, p);
            let (first, last) = (rows.first().map_or(0.0, |r| r.t_start), rows.last().map_or(0.0, |r| r.t_end));
            let _ = write!(
                h,
                r#"<tr id="sum-{s}"><td><span class="chip">{}<b>{s}</b></span></td><td class="num">{} window{} · {}–{}</td><td><div class="chips">"#,
                badge(s),
                rows.len(),
                if rows.len() == 1 { "" } else { "s" },
                clock(first),
                clock(last)
            );
            for &li in ranked(&m).iter().take(3) {
                let label = &tl.sources[p].labels[li];
                let color = label_color(label, li);
                let _ = write!(
                    h,
                    r#"<span class="chip"><span class="dot" style="background:{color}"></span>{} <span class="track"><span class="fill" style="width:{:.0}%;background:{color}"></span></span><span class="num">{:.0}%</span></span>"#,
                    escape(label),
                    (m[li] * 100.0).clamp(0.0, 100.0),
                    m[li] * 100.0
                );
            }
            h.push_str("</div></td></tr>");
        }
        h.push_str("</tbody></table></div>");
    }

    // Thumbnail strip.
    if !input.thumbnails.is_empty() {
        h.push_str(r#"<h2>Frames</h2><div class="card"><div class="strip">"#);
        for th in &input.thumbnails {
            h.push_str(&thumbnail(th));
        }
        h.push_str("</div></div>");
    }

    // Per-subject timelines.
    h.push_str("<h2>Timelines</h2>");
    for &s in &subjects {
        let rows = rows_of(s);
        let _ = write!(
            h,
            r#"<section class="card subject" id="{s}"><div class="head"><h3>{}{s}</h3><span class="meta">{} window{}{}</span></div>"#,
            badge(s),
            rows.len(),
            if rows.len() == 1 { "" } else { "s" },
            if s == Subject::Scene { " · all persons together (the official subject mask)" } else { "" }
        );
        if let Some(p) = primary {
            let m = mean_scores(tl, &rows, p);
            let labels: Vec<usize> = ranked(&m).into_iter().take(input.lines_per_chart.max(1)).collect();
            h.push_str(r#"<div class="legend">"#);
            for &li in &labels {
                let label = &tl.sources[p].labels[li];
                let _ = write!(
                    h,
                    r#"<span class="chip"><span class="dot" style="background:{}"></span>{} <span class="num">{:.0}%</span></span>"#,
                    label_color(label, li),
                    escape(label),
                    m[li] * 100.0
                );
            }
            h.push_str("</div>");
            h.push_str(&chart(tl, &rows, p, &labels, input.duration, (0.0, 1.0)));
        }
        h.push_str("</section>");
    }

    if !input.notes.is_empty() {
        h.push_str(r#"<h2>Notes</h2><div class="card"><ul class="notes">"#);
        for n in &input.notes {
            let _ = write!(h, "<li>{}</li>", escape(n));
        }
        h.push_str("</ul></div>");
    }
    if !input.settings.is_empty() {
        h.push_str(r#"<h2>Run settings</h2><div class="card"><table class="settings"><tbody>"#);
        for (k, v) in &input.settings {
            let _ = write!(h, "<tr><td>{}</td><td>{}</td></tr>", escape(k), escape(v));
        }
        h.push_str("</tbody></table></div>");
    }
    h.push_str("</main></body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(clock(0.4), "0:00");
        assert_eq!(clock(75.0), "1:15");
        assert_eq!(clock(3725.0), "1:02:05");
        assert_eq!(tick_step(30.0), 5.0);
        assert_eq!(tick_step(7200.0), 900.0);
        assert_eq!(label_color("Joy", 0), "#f0a30a");
        assert_eq!(label_color("calm", 12), PALETTE[2]);
        assert_eq!(ranked(&[0.1, 0.5, 0.5, 0.2]), vec![1, 2, 3, 0]);
    }
}

//! MovieGraphs in the layout the official EmotionCLIP loader reads, for the linear probe; mirrors the official src/datasets/movie_graphs.py and `linear_eval.py --dataset mg`.
//!
//! # Layout read (under the dataset root)
//!
//! - `official/mg/split.json`: `{"train": [movie ids], "val": [...], "test": [...]}` (the MovieGraphs release).
//! - `official/mg/py3loader/emotion_labels.json`: `{movie_id: {clip_id: [emotion, ...]}}`, one entry per clip
//!   (scene) with its emotions. The MovieGraphs release stores the clip graphs as Python pickles
//!   (`all_clipgraphs.pkl`), which are never executed here; this JSON is their export, as the official loader
//!   expects it. Each emotion is either one of the 26 Emotic category names ([`CLASSES`]; the official
//!   spelling `Doubt/Conf` is accepted) or a free-text MovieGraphs emotion word, mapped to its category by
//!   the official keyword dictionary [`KEYWORDS`] (`EMOTION_LABELS` of movie_graphs.py, reproduced
//!   verbatim). Words the dictionary does not know are ignored and counted; a clip left without any category
//!   is reported as skipped.
//! - `official/mg_videoinfo/scene_boundaries/<movie>.scenes.gt`: whitespace-separated `start_shot end_shot
//!   is_useful` per clip; clip `c` is line `c` (0-based); shots are 1-based.
//! - `official/mg_videoinfo/video_boundaries/<movie>.videvents`: a header line, then `start_frame time CUT` per
//!   shot cut. Shot `s` (1-based) spans frames `[cut_{s-1}, cut_s - 1]` with `cut_0 = 0`; the last shot ends at
//!   the end of the movie, where the official code takes `start + 8·24` frames.
//! - Frames `frames/<movie>/frame_{i}.jpg` (`i` = frame number in the movie); person boxes (optional)
//!   `all_human_boxes.json`, `{movie: {"frame_{i}.jpg": [[x1, y1, x2, y2, conf], ...]}}` in YOLO 640-letterbox
//!   coordinates.
//!
//! # Items and protocol
//!
//! Each clip is encoded from the 8 frames `np.linspace(start_frame, end_frame, 8, dtype=int)` of its scene
//! (clips whose frames are missing are reported as skipped). The official patch for movie `tt0388795`, clip
//! 207 (the movie is shorter than its annotation: end frame set to 184272) is applied. train → val and test;
//! `OneVsRestClassifier(LogisticRegression(C=10))` ([`OFFICIAL_C`]); the metric is the "Affect2MM accuracy":
//! the top-scoring class counts as correct if it is among the clip's true categories.
use super::{read_json, AdapterOptions, DatasetTask};
use crate::media::{FrameDir, FrameSelection, MediaOptions};
use crate::probe::manifest::{BoxesSpec, Item, Label, Manifest, Skipped, Split, Task};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `linear_eval.py`: `OneVsRestClassifier(LogisticRegression(C=10, solver='sag', max_iter=2000))`.
pub const OFFICIAL_C: f64 = 10.0;

/// The 26 Emotic categories (paper Table 5 names), in the official index order.
pub const CLASSES: [&str; 26] = crate::labels::EMOTIC_CATEGORIES;

/// The official keyword dictionary (`EMOTION_LABELS` of src/datasets/movie_graphs.py): MovieGraphs emotion
/// words per category, in [`CLASSES`] order.
pub const KEYWORDS: [&[&str]; 26] = [
    &["loving", "friendly"],
    &["anger", "furious", "resentful", "outraged", "vengeful"],
    &["annoy", "frustrated", "irritated", "agitated", "bitter", "insensitive", "exasperated", "displeased"],
    &["optimistic", "hopeful", "imaginative", "eager"],
    &["disgusted", "horrified", "hateful"],
    &["confident", "proud", "stubborn", "defiant", "independent", "convincing"],
    &[
        "disapproving",
        "hostile",
        "unfriendly",
        "mean",
        "disrespectful",
        "mocking",
        "condescending",
        "cunning",
        "manipulative",
        "nasty",
        "deceitful",
        "conceited",
        "sleazy",
        "greedy",
        "rebellious",
        "petty",
    ],
    &[
        "indifferent",
        "bored",
        "distracted",
        "distant",
        "uninterested",
        "self-centered",
        "lonely",
        "cynical",
        "restrained",
        "unimpressed",
        "dismissive",
    ],
    &[
        "worried",
        "nervous",
        "tense",
        "anxious",
        "afraid",
        "alarmed",
        "suspicious",
        "uncomfortable",
        "hesitant",
        "reluctant",
        "insecure",
        "stressed",
        "unsatisfied",
        "solemn",
        "submissive",
    ],
    &["confused", "skeptical", "indecisive"],
    &["embarrassed", "ashamed", "humiliated"],
    &["curious", "serious", "intrigued", "persistent", "interested", "attentive", "fascinated"],
    &["respectful", "grateful"],
    &["excited", "enthusiastic", "energetic", "playful", "impatient", "panicky", "impulsive", "hasty"],
    &["tired", "sleepy", "drowsy"],
    &["scared", "fearful", "timid", "terrified"],
    &[
        "cheerful",
        "delighted",
        "happy",
        "amused",
        "laughing",
        "thrilled",
        "smiling",
        "pleased",
        "overwhelmed",
        "ecstatic",
        "exuberant",
    ],
    &["pain"],
    &["content", "relieved", "relaxed", "calm", "quiet", "satisfied", "reserved", "carefree"],
    &["funny", "attracted", "aroused", "hedonistic", "pleasant", "flattered", "entertaining", "mesmerized"],
    &[
        "sad",
        "melancholy",
        "upset",
        "disappointed",
        "discouraged",
        "grumpy",
        "crying",
        "regretful",
        "grief-stricken",
        "depressed",
        "heartbroken",
        "remorseful",
        "hopeless",
        "pensive",
        "miserable",
    ],
    &["apologetic", "nostalgic"],
    &["offended", "hurt", "insulted", "ignorant", "disturbed", "abusive", "offensive"],
    &[
        "surprise",
        "surprised",
        "shocked",
        "amazed",
        "startled",
        "astonished",
        "speechless",
        "disbelieving",
        "incredulous",
    ],
    &[
        "kind",
        "compassionate",
        "supportive",
        "sympathetic",
        "encouraging",
        "thoughtful",
        "understanding",
        "generous",
        "concerned",
        "dependable",
        "caring",
        "forgiving",
        "reassuring",
        "gentle",
    ],
    &["jealous", "determined", "aggressive", "desperate", "focused", "dedicated", "diligent"],
];

/// The category of an emotion: a category name (any case; `Doubt/Conf` too) or a dictionary keyword.
pub fn category_of(emotion: &str) -> Option<usize> {
    let e = emotion.trim();
    if let Some(i) = CLASSES.iter().position(|c| c.eq_ignore_ascii_case(e)) {
        return Some(i);
    }
    if e.eq_ignore_ascii_case("Doubt/Conf") {
        return Some(9);
    }
    let w = e.to_lowercase();
    KEYWORDS.iter().position(|ks| ks.contains(&w.as_str()))
}

/// `np.linspace(start, end, k, dtype=int)` for `start <= end` (truncation toward zero, as numpy's cast).
pub fn linspace_int(start: i64, end: i64, k: usize) -> Vec<i64> {
    if k == 1 {
        return vec![start];
    }
    let step = (end - start) as f64 / (k - 1) as f64;
    (0..k).map(|j| if j == k - 1 { end } else { (start as f64 + j as f64 * step) as i64 }).collect()
}

fn whitespace_rows(path: &Path, skip: usize) -> Result<Vec<Vec<String>>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(text
        .lines()
        .skip(skip)
        .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
        .filter(|r| !r.is_empty())
        .collect())
}

/// Per movie: clip (scene) → (start shot, end shot), 1-based shots.
fn scene_boundaries(path: &Path) -> Result<Vec<(usize, usize)>> {
    whitespace_rows(path, 0)?
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let p = |j: usize| r.get(j).and_then(|v| v.parse::<usize>().ok());
            match (p(0), p(1)) {
                (Some(a), Some(b)) if a >= 1 && b >= a => Ok((a, b)),
                _ => Err(Error::Msg(format!(
                    "{} line {}: expected `start_shot end_shot is_useful` (1-based shots)",
                    path.display(),
                    i + 1
                ))),
            }
        })
        .collect()
}

/// Per movie: shot (0-based) → (start frame, end frame or -1 for the last shot).
fn shot_frames(path: &Path) -> Result<Vec<(i64, i64)>> {
    let cuts: Vec<i64> = whitespace_rows(path, 1)?
        .iter()
        .enumerate()
        .map(|(i, r)| {
            r.first().and_then(|v| v.parse::<i64>().ok()).ok_or_else(|| {
                Error::Msg(format!("{} line {}: expected `start_frame time CUT`", path.display(), i + 2))
            })
        })
        .collect::<Result<_>>()?;
    let mut starts = vec![0i64];
    starts.extend(&cuts);
    let mut ends: Vec<i64> = cuts.iter().map(|c| c - 1).collect();
    ends.push(-1);
    Ok(starts.into_iter().zip(ends).collect())
}

/// Reads MovieGraphs under `root` (layout in the module documentation): one task, `moviegraphs/emotion`.
pub fn load(root: &Path, opts: &AdapterOptions) -> Result<Vec<DatasetTask>> {
    let off = root.join("official");
    let split_path = off.join("mg").join("split.json");
    let labels_path = off.join("mg").join("py3loader").join("emotion_labels.json");
    for p in [&split_path, &labels_path] {
        if !p.is_file() {
            return Err(Error::Msg(format!(
                "{}: not found; the MovieGraphs root must hold official/mg/split.json and official/mg/py3loader/emotion_labels.json",
                p.display()
            )));
        }
    }
    let split_of = read_splits(&split_path)?;
    let labels = read_json(&labels_path)?;
    let labels = labels.as_object().ok_or_else(|| {
        Error::Msg(format!("{}: expected {{movie_id: {{clip_id: [emotions]}}}}", labels_path.display()))
    })?;
    let boxes_path = root.join("all_human_boxes.json");
    let all_boxes = if boxes_path.is_file() { Some(read_json(&boxes_path)?) } else { None };
    let (mut items, mut skipped) = (Vec::new(), Vec::new());
    let mut unknown: BTreeMap<String, usize> = BTreeMap::new();
    let mut row = 0usize;
    for (movie, clips) in labels {
        let Some(&split) = split_of.get(movie) else { continue };
        let clips = clips.as_object().ok_or_else(|| {
            Error::Msg(format!("{}: {movie}: expected {{clip_id: [emotions]}}", labels_path.display()))
        })?;
        let m = Movie::open(root, movie, all_boxes.is_some())?;
        let boxes_of_movie = all_boxes.as_ref().and_then(|b| b.get(movie));
        for (clip_id, emotions) in clips {
            row += 1;
            let what = format!("{movie} clip {clip_id}");
            let clip: usize = clip_id.parse().map_err(|_| {
                Error::Msg(format!("{}: {movie}: clip id {clip_id:?} is not a number", labels_path.display()))
            })?;
            let words = emotions
                .as_array()
                .ok_or_else(|| Error::Msg(format!("{}: {what}: emotions must be a list", labels_path.display())))?;
            let cats = clip_categories(words, &mut unknown);
            if cats.is_empty() {
                let reason = format!("{what}: no emotion maps to an Emotic category");
                skipped.push(Skipped { row, path: labels_path.clone(), reason });
                continue;
            }
            let numbers = m.clip_frames(clip)?;
            let Some(fd) = &m.frames else {
                let reason = format!("{what}: frame directory not found");
                skipped.push(Skipped { row, path: m.frames_dir.clone(), reason });
                continue;
            };
            if let Some(n) = numbers.iter().find(|&&n| fd.position_of(n).is_none()) {
                let reason = format!("{what}: frame {n} not found");
                skipped.push(Skipped { row, path: m.frames_dir.join(format!("frame_{n}.jpg")), reason });
                continue;
            }
            let boxes = match (boxes_of_movie, m.size) {
                (Some(mb), Some(size)) => {
                    Some(clip_boxes(mb, &numbers, size, &format!("{} {movie}", boxes_path.display()))?)
                }
                _ => None,
            };
            items.push(Item {
                row,
                path: m.frames_dir.clone(),
                split,
                boxes,
                label: Label::Classes(cats),
                media: MediaOptions { frames: FrameSelection::Numbers(numbers), ..Default::default() },
            });
        }
    }
    warn_unknown_words(&labels_path, &unknown);
    let manifest = Manifest {
        source: labels_path,
        task: Task::Multi,
        classes: CLASSES.iter().map(|s| s.to_string()).collect(),
        targets: vec![],
        items,
        skipped,
    };
    manifest.check_splits()?;
    let mut options = opts.eval_with_c(OFFICIAL_C);
    options.top1_in_labels = true;
    Ok(vec![DatasetTask { name: "moviegraphs/emotion".into(), manifest, options }])
}

/// `split.json`: movie id → its split.
fn read_splits(split_path: &Path) -> Result<BTreeMap<String, Split>> {
    let split_json = read_json(split_path)?;
    let mut split_of: BTreeMap<String, Split> = BTreeMap::new();
    for (name, split) in [("train", Split::Train), ("val", Split::Val), ("test", Split::Test)] {
        let list = split_json
            .get(name)
            .and_then(|v| v.as_array())
            .ok_or_else(|| Error::Msg(format!("{}: no `{name}` list of movie ids", split_path.display())))?;
        for m in list {
            let m =
                m.as_str().ok_or_else(|| Error::Msg(format!("{}: movie ids must be strings", split_path.display())))?;
            split_of.insert(m.to_string(), split);
        }
    }
    Ok(split_of)
}

/// The sorted, distinct categories of a clip's emotion words; words the keyword dictionary does not know are
/// counted in `unknown` (lower-cased).
fn clip_categories(words: &[serde_json::Value], unknown: &mut BTreeMap<String, usize>) -> Vec<usize> {
    let mut cats: Vec<usize> = Vec::new();
    for w in words {
        let w = w.as_str().unwrap_or_default();
        match category_of(w) {
            Some(c) => cats.push(c),
            None => *unknown.entry(w.to_lowercase()).or_default() += 1,
        }
    }
    cats.sort_unstable();
    cats.dedup();
    cats
}

/// One movie's boundaries and frames.
struct Movie {
    name: String,
    /// Clip (scene) → (start shot, end shot), 1-based shots.
    scenes: Vec<(usize, usize)>,
    /// Shot (0-based) → (start frame, end frame or -1 for the last shot).
    shots: Vec<(i64, i64)>,
    frames_dir: PathBuf,
    /// `None` when the frame directory is missing (its clips are reported as skipped).
    frames: Option<FrameDir>,
    /// The frame size, read only when there are boxes to convert.
    size: Option<(u32, u32)>,
}

impl Movie {
    fn open(root: &Path, movie: &str, want_size: bool) -> Result<Self> {
        let info = root.join("official").join("mg_videoinfo");
        let scenes = scene_boundaries(&info.join("scene_boundaries").join(format!("{movie}.scenes.gt")))?;
        let shots = shot_frames(&info.join("video_boundaries").join(format!("{movie}.videvents")))?;
        let frames_dir = root.join("frames").join(movie);
        let frames = FrameDir::open(&frames_dir).ok();
        let size = if frames.is_some() && want_size { super::meld::media_size(&frames_dir).ok() } else { None };
        Ok(Self { name: movie.to_string(), scenes, shots, frames_dir, frames, size })
    }

    /// The 8 frame numbers of `clip`: `np.linspace(start_frame, end_frame, 8, dtype=int)` over its scene's
    /// shots, with the official patches (a last shot runs 8·24 frames; `tt0388795` clip 207 ends at 184272).
    fn clip_frames(&self, clip: usize) -> Result<Vec<u64>> {
        let movie = &self.name;
        let &(s0, s1) = self.scenes.get(clip).ok_or_else(|| {
            Error::Msg(format!("{movie}.scenes.gt has {} clip(s), the labels name clip {clip}", self.scenes.len()))
        })?;
        let (Some(&(start, _)), Some(&(_, mut end))) = (self.shots.get(s0 - 1), self.shots.get(s1 - 1)) else {
            return Err(Error::Msg(format!(
                "{movie}.videvents has {} shot(s), clip {clip} needs shot {s1}",
                self.shots.len()
            )));
        };
        if movie == "tt0388795" && clip == 207 {
            end = 184272; // official patch: the movie is shorter than its annotation
        }
        if end == -1 {
            end = start + 8 * 24; // official: the last shot runs to the end of the movie
        }
        Ok(linspace_int(start, end.max(start), 8).into_iter().map(|v| v as u64).collect())
    }
}

/// The boxes of the clip's frames (`{"frame_{i}.jpg": [...]}` of the movie) in frame pixels.
fn clip_boxes(movie_boxes: &serde_json::Value, numbers: &[u64], (w, h): (u32, u32), what: &str) -> Result<BoxesSpec> {
    let sel: serde_json::Map<String, serde_json::Value> = numbers
        .iter()
        .filter_map(|n| {
            let k = format!("frame_{n}.jpg");
            movie_boxes.get(&k).map(|v| (k, v.clone()))
        })
        .collect();
    Ok(BoxesSpec::Built(super::meld::frame_boxes(&serde_json::Value::Object(sel), w, h, what)?))
}

/// One warning with the ten most frequent emotion words the keyword dictionary does not know.
fn warn_unknown_words(labels_path: &Path, unknown: &BTreeMap<String, usize>) {
    if unknown.is_empty() {
        return;
    }
    let mut top: Vec<(&String, &usize)> = unknown.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1));
    let list: Vec<String> = top.iter().take(10).map(|(w, n)| format!("{w} ({n})")).collect();
    tracing::warn!(
        "{}: {} emotion word(s) not in the official keyword dictionary were ignored, e.g. {}",
        labels_path.display(),
        unknown.len(),
        list.join(", ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linspace_matches_numpy() {
        // np.linspace(10, 27, 8, dtype=int) == [10, 12, 14, 17, 19, 22, 24, 27]
        assert_eq!(linspace_int(10, 27, 8), vec![10, 12, 14, 17, 19, 22, 24, 27]);
        assert_eq!(linspace_int(5, 5, 8), vec![5; 8]);
    }

    #[test]
    fn keywords_map_to_categories() {
        assert_eq!(category_of("Happy"), Some(16));
        assert_eq!(category_of("doubt/conf"), Some(9));
        assert_eq!(category_of("Doubt/Confusion"), Some(9));
        assert_eq!(category_of("grief-stricken"), Some(20));
        assert_eq!(category_of("flabbergasted"), None);
        // every keyword appears once
        let mut all: Vec<&str> = KEYWORDS.iter().flat_map(|k| k.iter().copied()).collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
    }
}

//! Video analysis (`emoclip analyze`, issue 13): what each person in a video feels, and when — windows over the timeline, person tracks, EmotionCLIP embeddings of the scene and of each person per window, zero-shot and trained-head scores, timeline and report.
//!
//! A library module: the CLI only parses arguments and prints, so a Python binding or an HTTP service can
//! drive the same steps. It depends only on shared layers ([`crate::media`], [`crate::detect`], the models,
//! [`crate::tokenizer`], [`crate::output`]), never on another feature's internals (`prep`, `train`, `probe`,
//! `embed`): caption sentences come in as [`window::Span`]s, a trained head as the file format of [`crate::head`] (written by `probe --save-head`).
//!
//! # Pipeline (per video)
//!
//! ```text
//!  plan windows ─► frame plan ─► decode ═► detect ─► track ─► encode ─► score ─► write
//!  window.rs       frames.rs     (media)   (detect)  track.rs  subjects.rs zeroshot.rs timeline.rs
//!  segments.rs                   bounded             motion.rs (models)  (head)      outputs.rs
//!                                queue                                     prompts.rs  report.rs
//! ```
//!
//! 1. **Plan windows** ([`window::plan`]): `--window W --stride S` ([`window::fixed_windows`], defaults
//!    4 s / 2 s), one window per caption sentence (prep's parsed sentences as [`window::Span`]s) or per row
//!    of `--segments FILE` ([`segments::load_segments`]). Needs the duration (container metadata; a
//!    demux-only packet scan when it is missing). A video shorter than one window gets one flagged window.
//! 2. **Frame plan** ([`frames`]): each window's `k = 8` target times (centres of 8 equal slices), each
//!    mapped to the frame *presented* at that time, so variable frame rates and streams that do not start at
//!    0 are handled. While decoding, [`frames::StreamSelector`] decides from each frame's presentation time
//!    whether the previous frame is used, so only used frames are converted to RGB and resized; neighbouring
//!    windows share frames (4 of 8 with the defaults), which are converted, detected and tracked once.
//! 3. **Decode** (the media layer, one streaming pass or keyframe seeks across long gaps) runs ahead of the
//!    model in a bounded channel: decode ∥ detect ∥ encode, memory independent of the video's length. A
//!    window's clip is complete when its last frame is decoded; frames no longer needed by any open window
//!    are dropped.
//! 4. **Detect** persons on each used frame (the YOLO detector of [`crate::detect`], or `--boxes`/
//!    `--boxes-dir`, or the cached `boxes.json` of an earlier run) and **track** them in time order
//!    ([`track::Tracker`], one per video): one id per person across frames and windows.
//! 5. **Encode** each window with EmotionCLIP ([`subjects::window_subjects`] gives the boxes): the *scene*
//!    (mask = union of all persons' boxes per frame, the official behaviour; empty mask when there is nobody,
//!    flagged) and *each tracked person* present in the window (mask = that person's box alone per frame; the
//!    predicted box where the person was missed), one L2-normalised embedding each, batched across windows and
//!    persons (`--batch`). Frames shared by neighbouring windows could also share their per-frame encoder
//!    outputs for the same mask (the temporal head runs per window).
//! 6. **Score** every embedding: zero-shot against a prompt set ([`prompts`], text embeddings computed once per
//!    run and ensembled over templates in [`zeroshot`]) and/or trained linear heads ([`crate::head`], refused when
//!    fitted on another encoder).
//! 7. **Write** under `OUT/<video-id>/` ([`outputs`]): `timeline.jsonl` / `timeline.csv`
//!    ([`timeline`]), `embeddings.npy` + `embeddings.jsonl`, `boxes.json` (the documented box format, reusable
//!    with `--boxes`) + `tracks.json`, `report.html` ([`report`]), each written under a temporary name and
//!    renamed, then the `.done` marker, so a finished video is skipped on a rerun and nothing is half-written.
pub mod frames;
pub mod motion;
pub mod outputs;
pub mod prompts;
pub mod report;
pub mod run;
pub mod segments;
pub mod settings;
pub mod subjects;
pub mod timeline;
pub mod track;
pub mod window;
pub mod write;
pub mod zeroshot;

pub use frames::{plan_frames, FramePlan, FrameTiming, StreamSelector};
pub use prompts::{PromptSet, Prompts};
pub use run::{AnalyzeEvent, AnalyzeStats, Analyzer, CachedBoxes, VideoAnalysis, VideoInput};
pub use segments::load_segments;
pub use settings::{AnalyzeSettings, PeopleSource};
pub use subjects::{window_subjects, SubjectOptions, WindowSubject};
pub use timeline::{Subject, Timeline, TimelineRow};
pub use track::{TrackLog, TrackedBox, Tracker, TrackerConfig};
pub use window::{plan, Span, Window, WindowPlan, WindowSource};
pub use write::{analyze_to_dir, write_video, Outcome};
pub use zeroshot::ZeroShot;

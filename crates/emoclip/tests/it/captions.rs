//! Captions → timed sentences (prep stage 1), checked against hand-computed numbers and the official `regroup_transcripts.py` rules.
use std::io::Write;
use std::path::{Path, PathBuf};

use emoclip::prep::srt::parse_srt;
use emoclip::prep::vtt::parse_vtt;
use emoclip::prep::youtube_json::parse_youtube_json;
use emoclip::prep::{
    parse_captions, read_captions, sentences, sentences_with_model, split_words_evenly, timed_words, BoundarySource,
    CaptionChunk, CaptionFormat, PunctuationModel, Regroup, SentenceConfig,
};
use emoclip::Error;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/captions")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn write_tmp(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    let mut f = std::fs::File::create(&p).expect("create");
    f.write_all(bytes).expect("write");
    p
}

/// A YouTube auto-caption snippet in the real layout: a " " first line, inline word times,
/// 10 ms transition cues, each cue repeating the previous cue's new line, a [Music] cue.
const YT_AUTO: &str = "WEBVTT
Kind: captions
Language: en

00:00:00.160 --> 00:00:02.230 align:start position:0%
 
hey<00:00:00.480><c> guys</c><00:00:00.800><c> welcome</c><00:00:01.280><c> back</c>

00:00:02.230 --> 00:00:02.240 align:start position:0%
hey guys welcome back
 

00:00:02.240 --> 00:00:04.710 align:start position:0%
hey guys welcome back
to<00:00:02.560><c> my</c><00:00:02.720><c> kitchen</c><00:00:03.360><c> today</c><00:00:03.840><c> we're</c>

00:00:04.710 --> 00:00:04.720 align:start position:0%
to my kitchen today we're
 

00:00:04.720 --> 00:00:06.950 align:start position:0%
to my kitchen today we're
making<00:00:05.040><c> bread</c>

00:00:06.950 --> 00:00:06.960 align:start position:0%
making bread
 

00:00:06.960 --> 00:00:09.500 align:start position:0%
making bread
[Music]

00:00:09.500 --> 00:00:09.510 align:start position:0%
[Music]
 

00:00:09.510 --> 00:00:11.000 align:start position:0%
[Music]
so<00:00:09.900><c> first</c><00:00:10.200><c> the</c><00:00:10.500><c> flour</c>
";

#[test]
fn vtt_rolling_lines_are_deduplicated() {
    let (chunks, report) = parse_vtt(YT_AUTO);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert!(report.overlaps.is_empty(), "{:?}", report.overlaps);
    let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        texts,
        ["hey guys welcome back", "to my kitchen today we're", "making bread", "[Music]", "so first the flour"]
    );
    let words: Vec<String> = timed_words(&chunks).into_iter().map(|w| w.text).collect();
    assert_eq!(
        words.join(" "),
        "hey guys welcome back to my kitchen today we're making bread [Music] so first the flour"
    );
    // No 10 ms transition cue survives.
    assert!(chunks.iter().all(|c| c.end - c.start > 0.05));
}

#[test]
fn vtt_inline_word_times_are_exact() {
    let (chunks, _) = parse_vtt(YT_AUTO);
    let w = chunks[0].words.as_ref().expect("inline times");
    let got: Vec<(&str, f64, f64)> = w.iter().map(|w| (w.text.as_str(), w.start, w.end)).collect();
    let want = [("hey", 0.16, 0.48), ("guys", 0.48, 0.80), ("welcome", 0.80, 1.28), ("back", 1.28, 2.23)];
    assert_eq!(got.len(), want.len());
    for (g, e) in got.iter().zip(want.iter()) {
        assert_eq!(g.0, e.0);
        assert!(close(g.1, e.1) && close(g.2, e.2), "{g:?} vs {e:?}");
    }
    // Second chunk: "to" starts at the cue start, "we're" ends at the cue end.
    let w2 = chunks[1].words.as_ref().expect("inline times");
    assert!(close(w2[0].start, 2.24) && close(w2[0].end, 2.56));
    assert!(close(w2[4].start, 3.84) && close(w2[4].end, 4.71));
    // The [Music] cue has no inline times: it is spread over its cue like any untimed chunk.
    assert!(chunks[3].words.is_none());
}

#[test]
fn vtt_headers_notes_identifiers_settings_and_short_timestamps() {
    let text = "WEBVTT - a title\n\nSTYLE\n::cue { color: yellow }\n\nNOTE this is\na comment\n\nintro-1\n00:01.000 --> 00:03.500 line:0 position:20%\n<v Roger>Hello &amp; <b>welcome</b>.\n\n2\n00:00:04.000 --> 00:00:06.000\nSecond line\nwrapped here!\n";
    let (chunks, report) = parse_vtt(text);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[0].text, "Hello & welcome.");
    assert!(close(chunks[0].start, 1.0) && close(chunks[0].end, 3.5));
    assert_eq!(chunks[1].text, "Second line wrapped here!");
    assert!(chunks.iter().all(|c| c.words.is_none()));
}

#[test]
fn equal_split_word_timing_matches_hand_computation() {
    // 4 words over [1.0, 3.0]: 0.5 s each (official step_size = (end - start) / len(words)).
    let w = split_words_evenly("one two three four", 1.0, 3.0);
    let want = [(1.0, 1.5), (1.5, 2.0), (2.0, 2.5), (2.5, 3.0)];
    for (w, (s, e)) in w.iter().zip(want) {
        assert!(close(w.start, s) && close(w.end, e), "{w:?}");
    }
    // 3 words over [0.0, 1.0]: thirds.
    let w = split_words_evenly("a b c", 0.0, 1.0);
    assert!(close(w[1].start, 1.0 / 3.0) && close(w[1].end, 2.0 / 3.0));
    assert!(split_words_evenly("   ", 0.0, 1.0).is_empty());
}

#[test]
fn youtube_json_chunk_ends_follow_the_official_rule() {
    // end = min(start + duration, next start); the last ends at start + duration.
    let json = r#"[
        {"text": "hello there", "start": 0.0, "duration": 3.0},
        {"text": "general &#39;kenobi&#39;", "start": 2.0, "duration": 1.0},
        {"text": "you are\nbold", "start": 5.0, "duration": 2.5}
    ]"#;
    let (chunks, report) = parse_youtube_json(json).expect("valid json");
    assert!(report.skipped.is_empty());
    let ends: Vec<(f64, f64)> = chunks.iter().map(|c| (c.start, c.end)).collect();
    assert_eq!(ends, [(0.0, 2.0), (2.0, 3.0), (5.0, 7.5)]);
    assert_eq!(chunks[1].text, "general 'kenobi'");
    assert_eq!(chunks[2].text, "you are bold");
    // Equal split of the first chunk over [0, 2]: "hello" [0,1], "there" [1,2].
    let w = timed_words(&chunks);
    assert!(close(w[1].start, 1.0) && close(w[1].end, 2.0));
    // The last chunk: 3 words over [5, 7.5]; "bold" (word 6) is the third.
    assert_eq!(w[6].text, "bold");
    assert!(close(w[6].start, 5.0 + 2.0 * 2.5 / 3.0) && close(w[6].end, 7.5));
}

#[test]
fn youtube_json_broken_items_are_reported() {
    let json = r#"[{"text": "ok", "start": 1, "duration": 1},
                   {"text": "neg", "start": -1, "duration": 1},
                   {"start": 3, "duration": 1},
                   {"text": "x", "start": "abc", "duration": 1}]"#;
    let (chunks, report) = parse_youtube_json(json).expect("valid json");
    assert_eq!(chunks.len(), 1);
    let lines: Vec<usize> = report.skipped.iter().map(|s| s.0).collect();
    assert_eq!(lines, [2, 3, 4]);
    assert!(parse_youtube_json("{\"a\": 1}").is_err());
    assert!(parse_youtube_json("[{").is_err());
}

#[test]
fn srt_with_bom_crlf_and_tags() {
    let dir = tempfile::tempdir().expect("tmp");
    let body = "\u{feff}1\r\n00:00:01,000 --> 00:00:02,500\r\n<i>Hello</i> <font color=\"#fff\">there,</font>\r\n{\\an8}my friend.\r\n\r\n2\r\n00:00:03,000 --> 00:00:04,000\r\n- Who?\r\n- Me!\r\n";
    let p = write_tmp(&dir, "a.srt", body.as_bytes());
    let caps = read_captions(&p).expect("parses");
    assert_eq!(caps.format, CaptionFormat::Srt);
    assert_eq!(caps.chunks.len(), 2);
    assert_eq!(caps.chunks[0].text, "Hello there, my friend.");
    assert!(close(caps.chunks[0].start, 1.0) && close(caps.chunks[0].end, 2.5));
    assert_eq!(caps.chunks[1].text, "- Who? - Me!");
    // Dialogue dashes are not words of the sentences.
    let s = sentences(&caps.chunks, &SentenceConfig::default());
    let t: Vec<&str> = s.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(t, ["Hello there, my friend.", "Who?", "Me!"]);

    // The same file in UTF-16 LE with a BOM decodes identically.
    let mut u16b = vec![0xFF, 0xFE];
    for u in body.trim_start_matches('\u{feff}').encode_utf16() {
        u16b.extend_from_slice(&u.to_le_bytes());
    }
    let p16 = write_tmp(&dir, "b.srt", &u16b);
    assert_eq!(read_captions(&p16).expect("utf-16").chunks, caps.chunks);
}

#[test]
fn sentences_split_at_punctuation_and_drop_sound_tags() {
    let srt = "1\n00:00:00,000 --> 00:00:04,000\n[Music] Mr. Smith is here. Are you \"ready?\"\n\n2\n00:00:04,000 --> 00:00:08,000\n(laughs) Yes! I think so…\n\n3\n00:00:08,000 --> 00:00:10,000\n♪ la la la ♪\n\n4\n00:00:10,000 --> 00:00:12,000\n[inaudible words and then the end.\n";
    let (chunks, _) = parse_srt(srt);
    let (s, src) = sentences_with_model(&chunks, &SentenceConfig::default(), None);
    assert_eq!(src, BoundarySource::Captions);
    let t: Vec<&str> = s.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(t, ["Mr. Smith is here.", "Are you \"ready?\"", "Yes!", "I think so…"]);
    // Chunk 1: 8 words over [0, 4] → 0.5 s each; "[Music]" is word 0, "Mr." word 1, "here." word 4.
    let step = 0.5;
    assert!(close(s[0].start, step) && close(s[0].end, 5.0 * step), "{:?}", s[0]);
    assert_eq!(s[0].n_words, 4);
    // "Are you "ready?"" ends at the chunk end; "Yes!" is word 1 of chunk 2 (5 words over [4, 8]).
    assert!(close(s[1].end, 4.0));
    assert!(close(s[2].start, 4.8) && close(s[2].end, 5.6));
    // Chunk 4 opens a bracket that never closes: its words are sound tags; with tags kept, the
    // official `.*\[` rule drops the sentence instead.
    let keep = SentenceConfig { drop_sound_tags: false, ..SentenceConfig::default() };
    let s2 = sentences(&chunks, &keep);
    assert!(s2.iter().all(|s| !s.text.contains('[')));
    assert!(s2.iter().any(|s| s.text.contains("(laughs)")));
}

#[test]
fn unpunctuated_captions_split_on_pauses_and_length() {
    let chunks = vec![
        CaptionChunk { text: "so we went down to the river".into(), start: 0.0, end: 3.0, words: None },
        CaptionChunk { text: "and it was cold".into(), start: 3.2, end: 4.0, words: None },
        CaptionChunk { text: "the next day we left".into(), start: 6.0, end: 8.0, words: None },
    ];
    let (s, src) = sentences_with_model(&chunks, &SentenceConfig::default(), None);
    assert_eq!(src, BoundarySource::Rules);
    let t: Vec<&str> = s.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(t, ["so we went down to the river and it was cold", "the next day we left"]);
    assert!(close(s[0].start, 0.0) && close(s[0].end, 4.0) && close(s[1].start, 6.0));
    let cfg = SentenceConfig { max_words: 4, ..SentenceConfig::default() };
    let s = sentences(&chunks, &cfg);
    assert_eq!(s.iter().map(|s| s.n_words).collect::<Vec<_>>(), [4, 4, 3, 4, 1]);
}

#[test]
fn music_notes_and_multi_word_tags_are_removed() {
    let chunks = vec![
        CaptionChunk {
            text: "♪la la♪ Okay. [door slams] Who's there? ♪♪".into(), start: 0.0, end: 8.0, words: None
        },
        CaptionChunk {
            text: "la♪ ♪ singing along ♪ >> Nobody. (sighs heavily)".into(),
            start: 8.0,
            end: 16.0,
            words: None,
        },
    ];
    let s = sentences(&chunks, &SentenceConfig::default());
    let t: Vec<&str> = s.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(t, ["Okay.", "Who's there?", "Nobody."]);
    // 8 words over [0, 8]: "Okay." is word 2, "Who's there?" words 5-6.
    assert!(close(s[0].start, 2.0) && close(s[0].end, 3.0));
    assert!(close(s[1].start, 5.0) && close(s[1].end, 7.0));
}

struct EveryThird;
impl PunctuationModel for EveryThird {
    fn predict(&self, words: &[&str]) -> Vec<Option<char>> {
        (0..words.len()).map(|i| if i % 3 == 2 { Some('.') } else { None }).collect()
    }
}

#[test]
fn punctuation_model_hook_sets_boundaries() {
    let chunks = vec![CaptionChunk { text: "a b c d e f g".into(), start: 0.0, end: 7.0, words: None }];
    // The official rule (default): only whole sentences between two periods, without the marks.
    let (s, src) = sentences_with_model(&chunks, &SentenceConfig::default(), Some(&EveryThird));
    assert_eq!(src, BoundarySource::Model);
    let t: Vec<&str> = s.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(t, ["d e f"]);
    assert!(close(s[0].start, 3.0) && close(s[0].end, 6.0));
    // The earlier emoclip rule, by name: head and tail kept, marks in the text.
    let all = SentenceConfig { regroup: Regroup::AllMarks, ..SentenceConfig::default() };
    let (s, _) = sentences_with_model(&chunks, &all, Some(&EveryThird));
    let t: Vec<&str> = s.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(t, ["a b c.", "d e f.", "g"]);
    assert!(close(s[1].start, 3.0) && close(s[1].end, 6.0));
}

/// Issue 11.2.5: cues without blank lines between them. Every timing line starts a cue; the number before
/// it is its index; neither ever becomes caption text.
#[test]
fn srt_without_blank_lines_never_puts_timings_into_text() {
    let srt = "1\n00:00:01,000 --> 00:00:04,000\nHello there.\n2\n00:00:05,000 --> 00:00:09,000\nGeneral Kenobi!\n00:00:10,000 --> 00:00:12,500\nYou are a bold one.\n00:00:12,500\n\n4\n00:00:13,000 --> 00:00:14,000\nKill him.\n";
    let (chunks, report) = parse_srt(srt);
    let got: Vec<(&str, f64, f64)> = chunks.iter().map(|c| (c.text.as_str(), c.start, c.end)).collect();
    assert_eq!(
        got,
        [
            ("Hello there.", 1.0, 4.0),
            ("General Kenobi!", 5.0, 9.0),
            ("You are a bold one.", 10.0, 12.5),
            ("Kill him.", 13.0, 14.0)
        ]
    );
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    // Two missing blank lines and one stray timestamp line, each reported with its line number.
    let lines: Vec<usize> = report.warnings.iter().map(|w| w.0).collect();
    assert_eq!(lines, [5, 7, 9], "{:?}", report.warnings);
    assert!(report.warnings[2].1.contains("timestamp"), "{:?}", report.warnings);
    // A broken timing line drops its own cue only, text included.
    let srt = "1\n00:00:01,000 --> 00:00:02,000\nfine\n2\n00:00:0x,000 --> 00:00:03,000\nbroken text\n3\n00:00:04,000 --> 00:00:05,000\nalso fine\n";
    let (chunks, report) = parse_srt(srt);
    assert_eq!(chunks.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(), ["fine", "also fine"]);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].0, 5);
}

#[test]
fn vtt_without_blank_lines_never_puts_timings_into_text() {
    let vtt = "WEBVTT\n\n1\n00:00:01.000 --> 00:00:04.000\nHello there.\n2\n00:00:05.000 --> 00:00:09.000\nGeneral Kenobi!\n00:00:10.000 --> 00:00:12.000\nYou are a bold one.\n00:11.000\n";
    let (chunks, report) = parse_vtt(vtt);
    let got: Vec<(&str, f64, f64)> = chunks.iter().map(|c| (c.text.as_str(), c.start, c.end)).collect();
    assert_eq!(got, [("Hello there.", 1.0, 4.0), ("General Kenobi!", 5.0, 9.0), ("You are a bold one.", 10.0, 12.0)]);
    let lines: Vec<usize> = report.warnings.iter().map(|w| w.0).collect();
    assert_eq!(lines, [7, 9, 11], "{:?}", report.warnings);
}

/// Issue 11.2.13: an unpunctuated auto-caption track (inline word times, 10.7 s of speech with one 0.1 s
/// pause) and no punctuation model. The fallback used to leave one 10.7 s span, which the 2-10 s
/// duration filter drops: nothing kept. Now it is cut at the pause into two spans inside the filter.
#[test]
fn unpunctuated_auto_captions_are_cut_inside_the_duration_filter() {
    let caps = read_captions(fixtures().join("Megamind_auto.vtt")).expect("vtt");
    assert!(caps.report.skipped.is_empty() && caps.report.warnings.is_empty(), "{:?}", caps.report);
    let words = timed_words(&caps.chunks);
    assert!(close(words[0].start, 0.4) && close(words.last().unwrap().end, 11.1));
    let (s, src) = sentences_with_model(&caps.chunks, &SentenceConfig::default(), None);
    assert_eq!(src, BoundarySource::Rules);
    let got: Vec<(&str, f64, f64)> = s.iter().map(|s| (s.text.as_str(), s.start, s.end)).collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, "so you came back for more i always come back that's what heroes do");
    assert_eq!(got[1].0, "then this time i'm ready for you so let's finish this once and for all");
    assert!(close(got[0].1, 0.4) && close(got[0].2, 5.58) && close(got[1].1, 5.68) && close(got[1].2, 11.1), "{got:?}");
    let f = emoclip::prep::filters::FilterConfig::default();
    for x in &s {
        assert!(f.check(&x.text, x.start, x.end, 0.0, 80).duration, "{x:?} outside the duration filter");
    }
    // Without a pause the cap still holds: cuts go between words (never inside one), every part < max.
    let long: Vec<CaptionChunk> = (0..5)
        .map(|i| CaptionChunk {
            text: "one two three four five six seven".into(),
            start: i as f64 * 3.5,
            end: i as f64 * 3.5 + 3.5,
            words: None,
        })
        .collect();
    let cfg = SentenceConfig { max_seconds: Some(6.0), min_seconds: 1.0, ..SentenceConfig::default() };
    let s = sentences(&long, &cfg);
    let n: usize = s.iter().map(|x| x.n_words).sum();
    assert_eq!(n, 35, "no word lost");
    for x in &s {
        assert!(x.end - x.start < 6.0 && x.end - x.start > 1.0, "{x:?}");
    }
    for w in s.windows(2) {
        assert!(w[0].end <= w[1].start + 1e-9);
    }
}

#[test]
fn broken_timestamps_are_skipped_and_overlaps_reported() {
    let srt = "1\n00:00:01,000 --> 00:00:02,000\nfine\n\n2\n00:00:0x,000 --> 00:00:03,000\nunparsable\n\n3\n00:00:05,000 --> 00:00:04,000\nbackwards\n\n4\n-00:00:01,000 --> 00:00:03,000\nnegative\n\n5\n00:00:01,500 --> 00:00:03,000\noverlapping\n";
    let (chunks, report) = parse_srt(srt);
    assert_eq!(chunks.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(), ["fine", "overlapping"]);
    let lines: Vec<usize> = report.skipped.iter().map(|s| s.0).collect();
    assert_eq!(lines, [6, 10, 14]);
    assert!(report.skipped[0].1.contains("unparsable"));
    assert!(report.skipped[1].1.contains("before start"));
    assert!(report.skipped[2].1.contains("negative"));
    assert_eq!(report.overlaps.len(), 1);
    assert_eq!(report.overlaps[0].0, 18);

    let vtt = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nok\n\n00:61.000 --> 00:62.000\nbad minutes\n";
    let (chunks, report) = parse_vtt(vtt);
    assert_eq!(chunks.len(), 1);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].0, 6);
}

#[test]
fn bad_encoding_and_empty_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let check = |p: &Path, needle: &str| match read_captions(p) {
        Err(e @ Error::Captions { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&*p.display().to_string()), "{msg}");
            assert!(msg.contains(needle), "{msg}");
        }
        other => panic!("{}: expected a captions error, got {other:?}", p.display()),
    };
    // Latin-1 "café" is not UTF-8.
    let p = write_tmp(&dir, "latin1.srt", b"1\n00:00:01,000 --> 00:00:02,000\ncaf\xe9\n");
    check(&p, "bad encoding");
    // UTF-16 without a BOM.
    let mut u16b = Vec::new();
    for u in "1\n00:00:01,000 --> 00:00:02,000\nhi\n".encode_utf16() {
        u16b.extend_from_slice(&u.to_le_bytes());
    }
    let p = write_tmp(&dir, "nobom.srt", &u16b);
    check(&p, "bad encoding");
    let p = write_tmp(&dir, "empty.vtt", b"");
    check(&p, "empty");
    let p = write_tmp(&dir, "header_only.vtt", b"WEBVTT\n\n");
    check(&p, "no usable cue");
    let p = write_tmp(&dir, "broken.srt", b"1\n00:00:05,000 --> 00:00:01,000\nx\n");
    check(&p, "no usable cue");
    let p = write_tmp(&dir, "notes.txt", b"just some text\n");
    check(&p, "unknown caption format");
}

#[test]
fn format_is_sniffed_without_extension() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = write_tmp(&dir, "a", b"WEBVTT\n\n00:01.000 --> 00:02.000\nhi\n");
    assert_eq!(read_captions(&p).expect("vtt").format, CaptionFormat::Vtt);
    let p = write_tmp(&dir, "b.txt", b"1\n00:00:01,000 --> 00:00:02,000\nhi\n");
    assert_eq!(read_captions(&p).expect("srt").format, CaptionFormat::Srt);
    let p = write_tmp(&dir, "c", br#"[{"text": "hi", "start": 0, "duration": 1}]"#);
    assert_eq!(read_captions(&p).expect("json").format, CaptionFormat::YoutubeJson);
    // parse_captions with an explicit format names the given path in errors.
    let err = parse_captions("[1", CaptionFormat::YoutubeJson, Path::new("x/y.json")).unwrap_err();
    assert!(err.to_string().contains("x/y.json"));
}

fn norm_words(s: &str) -> Vec<String> {
    s.split_whitespace()
        .map(|w| w.chars().filter(|c| c.is_alphanumeric() || *c == '\'').collect::<String>().to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

#[test]
fn sample_video_fixtures_agree_across_formats() {
    for (name, duration) in [("Megamind", 11.27), ("vtest", 79.5), ("carphone_pristine", 4.01)] {
        let mut spoken: Vec<Vec<String>> = Vec::new();
        for ext in ["srt", "vtt", "json"] {
            let p = fixtures().join(format!("{name}.{ext}"));
            let caps = read_captions(&p).unwrap_or_else(|e| panic!("{e}"));
            assert!(caps.report.skipped.is_empty(), "{}: {:?}", p.display(), caps.report.skipped);
            assert!(caps.report.overlaps.is_empty(), "{}: {:?}", p.display(), caps.report.overlaps);
            let s = sentences(&caps.chunks, &SentenceConfig::default());
            assert!(!s.is_empty());
            for x in &s {
                assert!(x.start >= 0.0 && x.start <= x.end && x.end <= duration, "{}: {x:?}", p.display());
                assert!(!x.text.contains('[') && !x.text.contains('('), "{}: {x:?}", p.display());
            }
            for w in s.windows(2) {
                assert!(w[0].end <= w[1].start + 1e-9, "{}: sentences out of order", p.display());
            }
            spoken.push(s.iter().flat_map(|x| norm_words(&x.text)).collect());
        }
        assert_eq!(spoken[0], spoken[1], "{name}: srt vs vtt words");
        assert_eq!(spoken[0], spoken[2], "{name}: srt vs json words");
    }
    // The manual SRT is punctuated: one sentence per terminal mark.
    let caps = read_captions(fixtures().join("Megamind.srt")).expect("srt");
    let s = sentences(&caps.chunks, &SentenceConfig::default());
    let t: Vec<&str> = s.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(
        t,
        [
            "So, you came back for more?",
            "I always come back.",
            "That's what heroes do!",
            "Then this time, I'm ready for you."
        ]
    );
    // The auto-caption VTT is not: a 2.5 s pause (the music) separates two sentences.
    let caps = read_captions(fixtures().join("Megamind.vtt")).expect("vtt");
    let s = sentences(&caps.chunks, &SentenceConfig::default());
    assert_eq!(s.len(), 2, "{s:?}");
    assert!(close(s[0].start, 0.4) && close(s[1].end, 11.19), "{s:?}");
}

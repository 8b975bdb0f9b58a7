//! Streaming frames at a fixed rate (8 fps pre-training frames) from the committed 10 fps clip.
use crate::common;

#[test]
fn frames_at_8_fps_are_the_nearest_source_frames() {
    let path = common::fixture("media/clip_vtest40.mp4");
    let mut got = Vec::new();
    let (n, src_fps, decoded) = emoclip::media::stream_at_fps(&path, 8.0, &mut |k, t, img| {
        got.push((k, t, img));
        Ok(())
    })
    .unwrap();
    assert_eq!((src_fps, decoded), (10.0, 40));
    // 40 frames at 10 fps = 4 s → 32 frames at 8 fps (k / 8 s shows source frame round(k · 10 / 8)).
    assert_eq!(n, 32);
    assert_eq!(got.len(), 32);
    for (i, (k, t, _)) in got.iter().enumerate() {
        assert_eq!(*k, i);
        assert!((t - i as f64 / 8.0).abs() < 1e-12);
    }
    let want: Vec<usize> = [0usize, 5, 13, 31].iter().map(|&k| ((k as f64 / 8.0) * 10.0).round() as usize).collect();
    let clip = emoclip::media::decode_frames(&path, &want).unwrap();
    for (j, &k) in [0usize, 5, 13, 31].iter().enumerate() {
        assert!(got[k].2 == clip.frames[j], "frame {k} differs from source frame {}", want[j]);
    }
}

#[test]
fn a_sink_error_stops_the_stream() {
    let path = common::fixture("media/clip_vtest40.mp4");
    let err = emoclip::media::stream_at_fps(&path, 8.0, &mut |k, _, _| {
        if k == 3 {
            Err(emoclip::Error::Msg("disk full".into()))
        } else {
            Ok(())
        }
    })
    .unwrap_err();
    assert!(err.to_string().contains("disk full"));
}

//! WebDataset shard writer/reader: rollover, round trip, atomic completion.
use emoclip::shards::{read_shard, Sample, ShardWriter};

fn sample(i: usize) -> Sample {
    Sample {
        key: format!("vid{i:03}_000{i}"),
        files: vec![
            ("frame000.jpg".into(), vec![i as u8; 100 + i]),
            ("frame001.jpg".into(), vec![7; 10]),
            ("json".into(), format!("{{\"i\": {i}}}").into_bytes()),
        ],
    }
}

#[test]
fn samples_round_trip_across_rolled_over_shards() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = ShardWriter::new(dir.path(), "train", 2, u64::MAX).unwrap();
    for i in 0..5 {
        w.write(&sample(i)).unwrap();
    }
    let shards = w.finish().unwrap();
    assert_eq!(shards.len(), 3);
    let back: Vec<Sample> = shards.iter().flat_map(|p| read_shard(p).unwrap()).collect();
    assert_eq!(back, (0..5).map(sample).collect::<Vec<_>>());
    assert!(shards[0].ends_with("train-000000.tar"));
    // No temporary files remain.
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    assert!(names.iter().all(|n| n.ends_with(".tar") && !n.starts_with('.')), "{names:?}");
}

#[test]
fn an_unfinished_shard_is_never_left_under_its_final_name() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut w = ShardWriter::new(dir.path(), "train", 10, u64::MAX).unwrap();
        w.write(&sample(1)).unwrap();
        // dropped without finish(): an interrupted job
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let mut w = ShardWriter::new(dir.path(), "train", 10, u64::MAX).unwrap();
    assert!(w.write(&Sample { key: "a.b".into(), files: vec![] }).is_err(), "keys with dots must be refused");
}

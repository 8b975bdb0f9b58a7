//! Config inference from tensor shapes alone: a ViT-B/32-shaped EmotionCLIP checkpoint without any config resolves to
//! the official architecture. Keys, shapes and the expected heads / activations come from the official
//! `EmotionCLIP(ViT-B-32.json)` (fixtures/e2e/vit_b32_official.json, scripts/fixtures/gen_e2e.py); the checkpoint is
//! a sparse safetensors file of zeros built here at run time (nothing big is committed).
use crate::common;
use emoclip::weights::Checkpoint;
use std::io::Write;

fn official() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture("e2e/vit_b32_official.json")).unwrap()).unwrap()
}

/// Writes a float16 safetensors file with every key of `shapes` (zeros; `visual_head.position_ids` is the int64
/// `arange` the loader checks). The data region is a hole (`set_len`), so the 340 MB file costs no disk.
fn write_sparse_checkpoint(path: &std::path::Path, shapes: &serde_json::Map<String, serde_json::Value>) {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    let mut ids_at = None;
    let mut keys: Vec<&String> = shapes.keys().collect();
    keys.sort();
    for k in keys {
        let shape: Vec<usize> = shapes[k].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        let n: usize = shape.iter().product();
        let (dtype, size) = if k == "visual_head.position_ids" { ("I64", 8) } else { ("F16", 2) };
        if dtype == "I64" {
            ids_at = Some((offset, n));
        }
        header.insert(
            k.clone(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n * size]}),
        );
        offset += n * size;
    }
    let mut h = serde_json::to_vec(&header).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(&(h.len() as u64).to_le_bytes()).unwrap();
    f.write_all(&h).unwrap();
    f.set_len((8 + h.len() + offset) as u64).unwrap();
    let (at, n) = ids_at.expect("the official state dict has visual_head.position_ids");
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start((8 + h.len() + at) as u64)).unwrap();
    for i in 0..n as i64 {
        f.write_all(&i.to_le_bytes()).unwrap();
    }
}

#[test]
fn vit_b32_checkpoint_without_config_resolves_to_the_official_architecture() {
    let o = official();
    let want = &o["expected"];
    let shapes = o["shapes"].as_object().unwrap();
    assert!(shapes.len() > 300, "{} keys", shapes.len());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("emotionclip_vitb32.safetensors");
    write_sparse_checkpoint(&path, shapes);
    let ck = Checkpoint::open(&path).unwrap();
    assert!(ck.config.is_none(), "no config beside the file: the shapes must be all there is");
    let cfg = ck.resolve_config(None).unwrap();
    let (v, t, b) = (&cfg.backbone.vision_cfg, &cfg.backbone.text_cfg, &cfg.backbone);
    let n = |k: &str| want[k].as_u64().unwrap_or_else(|| panic!("{k}")) as usize;
    let got_want = [
        ("embed_dim", b.embed_dim, n("embed_dim")),
        ("image_size", v.image_size, n("image_size")),
        ("patch_size", v.patch_size, n("patch_size")),
        ("vision width", v.width, n("vision_width")),
        ("vision layers", v.layers, n("vision_layers")),
        ("vision heads", v.width / v.head_width, n("vision_heads")),
        ("vision mlp", (v.width as f64 * v.mlp_ratio) as usize, n("vision_mlp")),
        ("text width", t.width, n("text_width")),
        ("text layers", t.layers, n("text_layers")),
        ("text heads", t.heads, n("text_heads")),
        ("context_length", t.context_length, n("context_length")),
        ("vocab_size", t.vocab_size, n("vocab_size")),
        ("video_len", cfg.video_len, n("video_len")),
        ("temporal layers", cfg.temporal.layers, n("temporal_layers")),
        ("temporal heads", cfg.temporal.heads, n("temporal_heads")),
        ("temporal ff", cfg.temporal.ff, n("temporal_ff")),
    ];
    for (what, got, want) in got_want {
        eprintln!("{what}: inferred {got}, official {want}");
        assert_eq!(got, want, "{what}");
    }
    // Activations: the official towers use nn.GELU (erf), i.e. quick_gelu = false; the temporal head is
    // nn.TransformerEncoderLayer(activation='gelu', norm_first=False), which is the only head emoclip builds.
    assert_eq!((want["vision_activation"].as_str(), want["text_activation"].as_str()), (Some("GELU"), Some("GELU")));
    assert!(!b.quick_gelu, "inferred QuickGELU; the official model uses nn.GELU");
    assert_eq!(
        (want["temporal_activation"].as_str(), want["temporal_norm_first"].as_bool()),
        (Some("gelu"), Some(false))
    );
    assert_eq!(cfg.temporal.fusion, emoclip::emotionclip::TemporalFusion::Transformer);
    assert_eq!(cfg.subject, emoclip::emotionclip::SubjectMode::Sap);
    assert_eq!(b.layer_norm_eps, want["layer_norm_eps"].as_f64().unwrap());
}

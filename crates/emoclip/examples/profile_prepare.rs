//! Times decoding and preprocessing of videos on one thread (decode only, then decode + frames tensor).
//! `cargo run --release --example profile_prepare -- media/vtest.avi ...`
use std::time::Instant;

fn main() -> emoclip::Result<()> {
    let files: Vec<String> = std::env::args().skip(1).collect();
    let pre = emoclip::encoder::preprocessor_for(224, emoclip::media::IMAGENET);
    for f in &files {
        let p = std::path::Path::new(f);
        let mut d = vec![];
        let mut t = vec![];
        for _ in 0..5 {
            let s = Instant::now();
            let clip = emoclip::media::decode_uniform(p, 8)?;
            d.push(s.elapsed().as_secs_f64());
            let s = Instant::now();
            let _ = pre.frames_tensor(&clip.frames, &candle_core::Device::Cpu)?;
            t.push(s.elapsed().as_secs_f64());
        }
        d.sort_by(f64::total_cmp);
        t.sort_by(f64::total_cmp);
        println!("{f}: decode {:.3} s, frames_tensor {:.3} s", d[2], t[2]);
    }
    Ok(())
}

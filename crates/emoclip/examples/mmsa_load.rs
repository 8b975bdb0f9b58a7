//! Loads an MMSA feature pickle through `emoclip::mer::data::MmsaData::read` and prints the load time and
//! shapes: the memory measurement of the `mer/data.rs` module doc (run under `/usr/bin/time -v`).
//!
//! `.venv-fixtures/bin/python bench/mmsa_big.py /tmp/mosei.pkl` (any Python with numpy) then
//! `cargo build --release -p emoclip --example mmsa_load && /usr/bin/time -v target/release/examples/mmsa_load /tmp/mosei.pkl`
use std::time::Instant;

use emoclip::mer::data::MmsaData;

fn main() -> emoclip::Result<()> {
    let Some(path) = std::env::args().nth(1) else {
        return Err(emoclip::Error::Msg("usage: mmsa_load FILE.pkl".into()));
    };
    let t = Instant::now();
    let d = MmsaData::read(std::path::Path::new(&path))?;
    let secs = t.elapsed().as_secs_f64();
    let floats: usize = [&d.train, &d.valid, &d.test]
        .iter()
        .map(|s| s.text.data.len() + s.vision.data.len() + s.audio.data.len())
        .sum();
    println!(
        "{path}: loaded in {secs:.2} s; N = {} / {} / {}, dims {:?}, {:.2} GB of f32 features, {} inf replaced",
        d.train.len(),
        d.valid.len(),
        d.test.len(),
        d.dims(),
        floats as f64 * 4.0 / 1e9,
        d.replaced_inf
    );
    Ok(())
}

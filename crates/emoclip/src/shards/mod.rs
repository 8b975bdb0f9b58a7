//! WebDataset tar shards: each sample is a group of files sharing a key (`<key>.<ext>`), the layout
//! Python's `webdataset` reads unchanged.
pub mod reader;
pub mod writer;

pub use reader::read_shard;
pub use writer::{Sample, ShardWriter};

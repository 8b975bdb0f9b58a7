//! WebDataset tar shards, the contract between data preparation and training: `emoclip prepare` writes them
//! ([`writer`]), each sample a group of files sharing a key (`<key>.<ext>`: `frameNNN.jpg` and the `json`
//! metadata of [`meta::SampleMeta`]), the layout Python's `webdataset` reads unchanged; the trainer indexes
//! them ([`index`]) and streams them in a seeded shuffled order ([`stream`]).
pub mod index;
pub mod meta;
pub mod paths;
pub mod reader;
pub mod stream;
pub mod writer;

pub use index::{Members, ShardIndex};
pub use meta::SampleMeta;
pub use paths::shard_paths;
pub use reader::read_shard;
pub use stream::{ShardStream, StreamOptions, DEFAULT_SHUFFLE_BUFFER};
pub use writer::{Sample, ShardWriter};

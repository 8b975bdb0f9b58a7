//! MER-CLIP (Song & Cho, WACV 2025; seed 003): multimodal emotion recognition. So far: the safe pickle
//! reader for the MMSA feature files.
pub mod pickle;

//! Pre-training data preparation (appendix A): captions, sentences, filters, shards. (In progress.)

//! CLIP byte-pair-encoding tokenizer (open_clip `SimpleTokenizer` semantics). Owned by the tokenizer work.

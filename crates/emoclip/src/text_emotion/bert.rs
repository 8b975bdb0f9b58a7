//! The BERT-family encoder (HF `modeling_bert.py` `BertModel`, `modeling_roberta.py` `RobertaModel`):
//! word + position + token-type embeddings, LayerNorm, post-norm encoder layers (GELU); returns the last hidden
//! state. One encoder, two checkpoint families ([`Family`]): they differ only in position ids (BERT 0..L,
//! RoBERTa padding-aware from `padding_idx + 1`) and in token types (BERT uses segment ids). Inference only.
use super::config::{EncoderConfig, Family};
use crate::nn::{Activation, LayerNorm, Linear, MultiheadAttention};
use candle_core::{Device, Result, Tensor};
use candle_nn::VarBuilder;

struct Layer {
    attn: MultiheadAttention,
    attn_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    out_norm: LayerNorm,
}

impl Layer {
    /// Keys: `attention.self.{query,key,value}.*`, `attention.output.{dense,LayerNorm}.*`,
    /// `intermediate.dense.*`, `output.{dense,LayerNorm}.*`.
    fn load(vb: VarBuilder, c: &EncoderConfig) -> Result<Self> {
        let h = c.hidden_size;
        let sa = vb.pp("attention").pp("self");
        let (mut ws, mut bs) = (Vec::new(), Vec::new());
        for n in ["query", "key", "value"] {
            ws.push(sa.pp(n).get((h, h), "weight")?);
            bs.push(sa.pp(n).get(h, "bias")?);
        }
        // q/k/v fused into PyTorch's in_proj layout so the shared attention block serves.
        let in_proj = Linear::from_parts(Tensor::cat(&ws, 0)?, Some(Tensor::cat(&bs, 0)?));
        let out = vb.pp("attention").pp("output");
        let out_proj = Linear::load(out.pp("dense"), h, h, true)?;
        let attn = MultiheadAttention::from_parts(in_proj, out_proj, c.num_attention_heads, 0.0)?;
        Ok(Self {
            attn,
            attn_norm: LayerNorm::load(out.pp("LayerNorm"), h, c.layer_norm_eps)?,
            intermediate: Linear::load(vb.pp("intermediate").pp("dense"), h, c.intermediate_size, true)?,
            output: Linear::load(vb.pp("output").pp("dense"), c.intermediate_size, h, true)?,
            out_norm: LayerNorm::load(vb.pp("output").pp("LayerNorm"), h, c.layer_norm_eps)?,
        })
    }

    fn forward(&self, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let x = self.attn_norm.forward(&(self.attn.forward(x, x, Some(mask), false)? + x)?)?;
        let h = self.intermediate.forward_act(&x, Some(Activation::Gelu))?;
        self.out_norm.forward(&(self.output.forward(&h)? + &x)?)
    }
}

/// One right-padded batch: token ids, attention mask (1 = real token) and segment ids, each `[B][L]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EncoderInput {
    pub ids: Vec<Vec<u32>>,
    pub mask: Vec<Vec<u32>>,
    pub segments: Vec<Vec<u32>>,
}

pub struct BertEncoder {
    word_embeddings: Tensor,
    position_embeddings: Tensor,
    token_type_embeddings: Tensor,
    emb_norm: LayerNorm,
    layers: Vec<Layer>,
    family: Family,
    pad_token_id: u32,
    pub hidden_size: usize,
    pub vocab_size: usize,
}

impl BertEncoder {
    /// Keys under `vb`: `embeddings.{word,position,token_type}_embeddings.weight`, `embeddings.LayerNorm.*`,
    /// `encoder.layer.{i}.*` (pass `vb.pp("bert")` / `vb.pp("roberta")` for prefixed checkpoints).
    pub fn load(vb: VarBuilder, c: &EncoderConfig) -> Result<Self> {
        let h = c.hidden_size;
        let e = vb.pp("embeddings");
        let enc = vb.pp("encoder").pp("layer");
        let layers = (0..c.num_hidden_layers).map(|i| Layer::load(enc.pp(i), c)).collect::<Result<Vec<_>>>()?;
        Ok(Self {
            word_embeddings: e.get((c.vocab_size, h), "word_embeddings.weight")?,
            position_embeddings: e.get((c.max_position_embeddings, h), "position_embeddings.weight")?,
            token_type_embeddings: e.get((c.type_vocab_size, h), "token_type_embeddings.weight")?,
            emb_norm: LayerNorm::load(e.pp("LayerNorm"), h, c.layer_norm_eps)?,
            layers,
            family: c.family,
            pad_token_id: c.pad_token_id,
            hidden_size: h,
            vocab_size: c.vocab_size,
        })
    }

    /// RoBERTa inputs from right-padded ids alone (`pad_token_id` marks padding, token type 0).
    pub fn roberta_input(&self, ids: &[Vec<u32>]) -> EncoderInput {
        let l = ids.iter().map(Vec::len).max().unwrap_or(0);
        let pad = self.pad_token_id;
        let row = |r: &Vec<u32>| (0..l).map(|j| r.get(j).copied().unwrap_or(pad)).collect::<Vec<u32>>();
        let ids: Vec<Vec<u32>> = ids.iter().map(row).collect();
        let mask = ids.iter().map(|r| r.iter().map(|&t| u32::from(t != pad)).collect()).collect();
        EncoderInput { segments: vec![vec![0; l]; ids.len()], ids, mask }
    }

    /// Last hidden state `[B, L, hidden]`. Masked keys get `f32::MIN` added to their scores, as HF's
    /// `(1 - mask) * finfo.min`, so even an all-padding row stays finite.
    pub fn forward(&self, x: &EncoderInput, device: &Device) -> Result<Tensor> {
        let b = x.ids.len();
        let l = x.ids.first().map_or(0, Vec::len);
        if x.ids.iter().chain(&x.mask).chain(&x.segments).any(|r| r.len() != l)
            || x.mask.len() != b
            || x.segments.len() != b
        {
            candle_core::bail!("encoder input rows must all have the same length (ids, mask and segments)");
        }
        let max_pos = self.position_embeddings.dim(0)?;
        let types = self.token_type_embeddings.dim(0)?;
        let (mut flat, mut pos, mut seg, mut add) = (
            Vec::with_capacity(b * l),
            Vec::with_capacity(b * l),
            Vec::with_capacity(b * l),
            Vec::with_capacity(b * l),
        );
        for i in 0..b {
            let mut count = 0u32;
            for j in 0..l {
                let (t, real, s) = (x.ids[i][j], x.mask[i][j] != 0, x.segments[i][j]);
                if t as usize >= self.vocab_size {
                    candle_core::bail!(
                        "token id {t} (row {i}, position {j}) is outside the vocabulary of {} ids",
                        self.vocab_size
                    );
                }
                if s as usize >= types {
                    candle_core::bail!(
                        "segment id {s} (row {i}, position {j}) is outside the model's {types} token types"
                    );
                }
                let p = match self.family {
                    Family::Bert => j as u32,
                    // HF `create_position_ids_from_input_ids`: padding_idx + running count of non-pad tokens.
                    Family::Roberta => {
                        let is_tok = t != self.pad_token_id;
                        count += u32::from(is_tok);
                        if is_tok {
                            self.pad_token_id + count
                        } else {
                            self.pad_token_id
                        }
                    }
                };
                if p as usize >= max_pos {
                    candle_core::bail!("position {p} exceeds the model's {max_pos} positions; truncate the text");
                }
                flat.push(t);
                pos.push(p);
                seg.push(s);
                add.push(if real { 0f32 } else { f32::MIN });
            }
        }
        let flat = Tensor::from_vec(flat, b * l, device)?;
        let pos = Tensor::from_vec(pos, b * l, device)?;
        let seg = Tensor::from_vec(seg, b * l, device)?;
        let mask = Tensor::from_vec(add, (b, 1, 1, l), device)?.to_dtype(self.word_embeddings.dtype())?;
        let x = (self.word_embeddings.index_select(&flat, 0)? + self.position_embeddings.index_select(&pos, 0)?)?;
        let x = (x + self.token_type_embeddings.index_select(&seg, 0)?)?.reshape((b, l, ()))?;
        let mut x = self.emb_norm.forward(&x)?;
        for layer in &self.layers {
            x = layer.forward(&x, &mask)?;
        }
        Ok(x)
    }
}

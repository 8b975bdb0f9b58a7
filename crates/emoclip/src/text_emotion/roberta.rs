//! RoBERTa sequence classifier (HF `modeling_roberta.py`: embeddings with padding-aware positions,
//! post-norm encoder layers, `RobertaClassificationHead` dense → tanh → out_proj on the `<s>` token).
//! Inference only: the model is frozen in EmotionCLIP.
use super::config::RobertaConfig;
use crate::nn::{Activation, LayerNorm, Linear, MultiheadAttention};
use candle_core::{DType, Device, Result, Tensor};
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
    fn load(vb: VarBuilder, c: &RobertaConfig) -> Result<Self> {
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
        let attn = MultiheadAttention {
            in_proj,
            out_proj: Linear::load(out.pp("dense"), h, h, true)?,
            num_heads: c.num_attention_heads,
            dropout: 0.0,
        };
        Ok(Self {
            attn,
            attn_norm: LayerNorm::load(out.pp("LayerNorm"), h, c.layer_norm_eps)?,
            intermediate: Linear::load(vb.pp("intermediate").pp("dense"), h, c.intermediate_size, true)?,
            output: Linear::load(vb.pp("output").pp("dense"), c.intermediate_size, h, true)?,
            out_norm: LayerNorm::load(vb.pp("output").pp("LayerNorm"), h, c.layer_norm_eps)?,
        })
    }

    fn forward(&self, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let x = self.attn_norm.forward(&(self.attn.forward(x, Some(mask))? + x)?)?;
        let h = self.intermediate.forward_act(&x, Some(Activation::Gelu))?;
        self.out_norm.forward(&(self.output.forward(&h)? + &x)?)
    }
}

pub struct RobertaForSequenceClassification {
    word_embeddings: Tensor,
    position_embeddings: Tensor,
    token_type_embeddings: Tensor,
    emb_norm: LayerNorm,
    layers: Vec<Layer>,
    dense: Linear,
    out_proj: Linear,
    pad_token_id: u32,
    pub num_labels: usize,
}

impl RobertaForSequenceClassification {
    /// Keys: `roberta.embeddings.*`, `roberta.encoder.layer.{i}.*`, `classifier.{dense,out_proj}.*`.
    pub fn load(vb: VarBuilder, c: &RobertaConfig, num_labels: usize) -> Result<Self> {
        let h = c.hidden_size;
        let e = vb.pp("roberta").pp("embeddings");
        let enc = vb.pp("roberta").pp("encoder").pp("layer");
        let layers = (0..c.num_hidden_layers).map(|i| Layer::load(enc.pp(i), c)).collect::<Result<Vec<_>>>()?;
        let cls = vb.pp("classifier");
        Ok(Self {
            word_embeddings: e.get((c.vocab_size, h), "word_embeddings.weight")?,
            position_embeddings: e.get((c.max_position_embeddings, h), "position_embeddings.weight")?,
            token_type_embeddings: e.get((c.type_vocab_size, h), "token_type_embeddings.weight")?,
            emb_norm: LayerNorm::load(e.pp("LayerNorm"), h, c.layer_norm_eps)?,
            layers,
            dense: Linear::load(cls.pp("dense"), h, h, true)?,
            out_proj: Linear::load(cls.pp("out_proj"), h, num_labels, true)?,
            pad_token_id: c.pad_token_id,
            num_labels,
        })
    }

    /// Logits `[B, num_labels]` for right-padded ids (`pad_token_id` marks padding).
    pub fn forward(&self, ids: &[Vec<u32>], device: &Device) -> Result<Tensor> {
        let b = ids.len();
        let l = ids.iter().map(Vec::len).max().unwrap_or(0);
        let max_pos = self.position_embeddings.dim(0)?;
        let pad = self.pad_token_id;
        let (mut flat, mut pos, mut mask) = (Vec::with_capacity(b * l), Vec::with_capacity(b * l), Vec::with_capacity(b * l));
        for row in ids {
            // HF `create_position_ids_from_input_ids`: padding_idx + running count of non-pad tokens.
            let mut count = 0u32;
            for j in 0..l {
                let t = row.get(j).copied().unwrap_or(pad);
                let real = t != pad;
                count += u32::from(real);
                flat.push(t);
                pos.push(if real { pad + count } else { pad });
                mask.push(if real { 0f32 } else { f32::NEG_INFINITY });
            }
        }
        if let Some(p) = pos.iter().find(|&&p| p as usize >= max_pos) {
            candle_core::bail!("position {p} exceeds the model's {max_pos} positions; truncate the text");
        }
        let flat = Tensor::from_vec(flat, b * l, device)?;
        let pos = Tensor::from_vec(pos, b * l, device)?;
        let mask = Tensor::from_vec(mask, (b, 1, 1, l), device)?;
        let dt = self.word_embeddings.dtype();
        let x = (self.word_embeddings.index_select(&flat, 0)? + self.position_embeddings.index_select(&pos, 0)?)?
            .broadcast_add(&self.token_type_embeddings.get(0)?)?
            .reshape((b, l, ()))?;
        let mut x = self.emb_norm.forward(&x)?;
        let mask = mask.to_dtype(dt)?;
        for layer in &self.layers {
            x = layer.forward(&x, &mask)?;
        }
        let cls = x.narrow(1, 0, 1)?.squeeze(1)?;
        let h = self.dense.forward(&cls)?.tanh()?;
        self.out_proj.forward(&h)?.to_dtype(DType::F32)
    }
}

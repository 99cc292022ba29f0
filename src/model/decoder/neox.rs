//! GPT-NeoX / Pythia's checkpoint layout: `gpt_neox.*` names, one fused
//! `query_key_value` interleaved per head (q, k, v of head 0, then head 1, …),
//! LayerNorms with biases, and an untied head named `embed_out` on the Hub
//! (`lm_head` where transformers 5 renamed it).

use super::{Attention, Block, Decoder, Parts};
use crate::error::{Error, Result};
use crate::model::config::Config;
use crate::model::layers::{Embedding, Linear, Mlp, Norm};
use crate::model::weights::Weights;
use candle_core::Tensor;

/// Rows of part `j` (0 = q, 1 = k, 2 = v) of a per-head fused (heads·3·d, …) tensor.
fn part(t: &Tensor, heads: usize, d: usize, j: usize) -> Result<Tensor> {
    let rest: Vec<usize> = t.dims()[1..].to_vec();
    let mut shape = vec![heads, 3, d];
    shape.extend(&rest);
    let picked = t.reshape(shape)?.narrow(1, j, 1)?;
    let mut out = vec![heads * d];
    out.extend(&rest);
    Ok(picked.reshape(out)?.contiguous()?)
}

pub(super) fn load(cfg: Config, w: &Weights) -> Result<Decoder> {
    let (hid, h, d, inter) = (cfg.hidden_size, cfg.num_heads, cfg.head_dim, cfg.intermediate_size);
    let embed = Embedding::load(w, "gpt_neox.embed_in.weight", cfg.vocab_size, hid)?;
    let mut blocks = Vec::with_capacity(cfg.num_layers);
    for i in 0..cfg.num_layers {
        let p = format!("gpt_neox.layers.{i}");
        let a = format!("{p}.attention");
        let qkv_w = w.get(&format!("{a}.query_key_value.weight"), &[3 * hid, hid])?;
        let qkv_b = match cfg.qkv_bias {
            true => Some(w.get(&format!("{a}.query_key_value.bias"), &[3 * hid])?),
            false => None,
        };
        let qkv = |j| -> Result<Linear> {
            Linear::new(part(&qkv_w, h, d, j)?, qkv_b.as_ref().map(|b| part(b, h, d, j)).transpose()?)
        };
        let lin = |name: &str, out, inp, bias| Linear::load(w, name, out, inp, bias);
        blocks.push(Block {
            norm1: Norm::layer(w, &format!("{p}.input_layernorm"), hid, cfg.norm_eps)?,
            attn: Attention {
                q: qkv(0)?,
                k: qkv(1)?,
                v: qkv(2)?,
                o: lin(&format!("{a}.dense"), hid, hid, cfg.o_bias)?,
                q_norm: None,
                k_norm: None,
                heads: h,
                kv_heads: h,
                head_dim: d,
                scale: 1.0 / (d as f64).sqrt(),
                softcap: None,
                window: cfg.windows[i],
                local_rope: false,
            },
            norm2: Norm::layer(w, &format!("{p}.post_attention_layernorm"), hid, cfg.norm_eps)?,
            mlp: Mlp::Gelu {
                fc: lin(&format!("{p}.mlp.dense_h_to_4h"), inter, hid, true)?,
                proj: lin(&format!("{p}.mlp.dense_4h_to_h"), hid, inter, true)?,
                exact: cfg.hidden_act == "gelu",
            },
            parallel: cfg.features.parallel_residual,
            post_attn_norm: None,
            post_mlp_norm: None,
        });
    }
    let norm = Norm::layer(w, "gpt_neox.final_layer_norm", hid, cfg.norm_eps)?;
    let head = ["embed_out", "lm_head"].into_iter().find(|n| w.contains(&format!("{n}.weight")));
    let lm_head = match (head, cfg.tie_embeddings) {
        (_, true) => embed.as_linear()?,
        (Some(name), false) => Linear::load(w, name, cfg.vocab_size, hid, false)?,
        (None, false) => {
            return Err(Error::Weights(
                "tensor embed_out.weight (or lm_head.weight) is missing and tie_word_embeddings is false".into(),
            ))
        }
    };
    Decoder::assemble(cfg, Parts { embed, positions: None, blocks, norm, lm_head }, w)
}

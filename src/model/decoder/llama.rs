//! The Llama checkpoint layout (`model.layers.N.self_attn.q_proj`, …) shared by
//! Llama, Mistral, Qwen2, Qwen3, Phi-3 and Gemma 2 / 3. Phi-3 fuses q/k/v into
//! `qkv_proj` and gate/up into `gate_up_proj` (row blocks). Gemma adds norms after
//! attention and MLP (`pre_`/`post_feedforward_layernorm`), stores norm
//! weights around 0 (scale 1 + w), and a multimodal Gemma 3 checkpoint keeps
//! the text model under `model.language_model.` (or `language_model.model.`).

use super::{Attention, Block, Decoder, Parts};
use crate::error::{Error, Result};
use crate::model::config::{Arch, Config};
use crate::model::layers::{Embedding, Linear, Mlp, Norm};
use crate::model::weights::Weights;
use candle_core::Tensor;

/// Where the text model's tensors live.
fn prefix(w: &Weights) -> &'static str {
    ["model.", "model.language_model.", "language_model.model."]
        .into_iter()
        .find(|p| w.contains(&format!("{p}embed_tokens.weight")))
        .unwrap_or("model.")
}

/// Consecutive row blocks of a fused (Σ rows, in) matrix as bias-free linear maps.
fn split_rows<const N: usize>(fused: &Tensor, sizes: [usize; N]) -> Result<[Linear; N]> {
    let mut from = 0;
    let maps = sizes
        .iter()
        .map(|&n| {
            from += n;
            Linear::new(fused.narrow(0, from - n, n)?.contiguous()?, None)
        })
        .collect::<Result<Vec<_>>>()?;
    maps.try_into().map_err(|_| Error::Weights("fused projection split into the wrong number of parts".into()))
}

pub(super) fn load(cfg: Config, w: &Weights) -> Result<Decoder> {
    let (hid, h, kvh, d) = (cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim);
    let f = &cfg.features;
    let pre = prefix(w);
    let embed = Embedding::load(w, &format!("{pre}embed_tokens.weight"), cfg.vocab_size, hid)?;
    let norm = |name: &str, dim| Norm::rms_maybe_plus_one(w, name, dim, cfg.norm_eps, f.norm_plus_one);
    let scale = 1.0 / f.query_pre_attn_scalar.unwrap_or(d as f64).sqrt();
    let mut blocks = Vec::with_capacity(cfg.num_layers);
    for i in 0..cfg.num_layers {
        let p = format!("{pre}layers.{i}");
        let a = format!("{p}.self_attn");
        let m = format!("{p}.mlp");
        let lin = |name: &str, out, inp, bias| Linear::load(w, name, out, inp, bias);
        let qk_norm = |name: &str| f.qk_norm.then(|| norm(name, d)).transpose();
        let sandwich = |name: &str| f.sandwich_norms.then(|| norm(&format!("{p}.{name}"), hid)).transpose();
        // Gemma's post_attention_layernorm normalises the attention output; its MLP has its own pre-norm.
        let (norm2, post_attn) = match f.sandwich_norms {
            true => ("pre_feedforward_layernorm", sandwich("post_attention_layernorm")?),
            false => ("post_attention_layernorm", None),
        };
        let inter = cfg.intermediate_size;
        let (q, k, v, gate, up) = if cfg.arch == Arch::Phi3 {
            let qkv = w.get(&format!("{a}.qkv_proj.weight"), &[(h + 2 * kvh) * d, hid])?;
            let gate_up = w.get(&format!("{m}.gate_up_proj.weight"), &[2 * inter, hid])?;
            let [q, k, v] = split_rows(&qkv, [h * d, kvh * d, kvh * d])?;
            let [gate, up] = split_rows(&gate_up, [inter, inter])?;
            (q, k, v, gate, up)
        } else {
            (
                lin(&format!("{a}.q_proj"), h * d, hid, cfg.qkv_bias)?,
                lin(&format!("{a}.k_proj"), kvh * d, hid, cfg.qkv_bias)?,
                lin(&format!("{a}.v_proj"), kvh * d, hid, cfg.qkv_bias)?,
                lin(&format!("{m}.gate_proj"), inter, hid, cfg.mlp_bias)?,
                lin(&format!("{m}.up_proj"), inter, hid, cfg.mlp_bias)?,
            )
        };
        blocks.push(Block {
            norm1: norm(&format!("{p}.input_layernorm"), hid)?,
            attn: Attention {
                q,
                k,
                v,
                o: lin(&format!("{a}.o_proj"), hid, h * d, cfg.o_bias)?,
                q_norm: qk_norm(&format!("{a}.q_norm"))?,
                k_norm: qk_norm(&format!("{a}.k_norm"))?,
                heads: h,
                kv_heads: kvh,
                head_dim: d,
                scale,
                softcap: f.attn_softcap,
                window: cfg.windows[i],
                local_rope: f.local_rope_theta.is_some() && cfg.windows[i].is_some(),
            },
            norm2: norm(&format!("{p}.{norm2}"), hid)?,
            mlp: Mlp::Gated {
                gate,
                up,
                down: lin(&format!("{m}.down_proj"), hid, inter, cfg.mlp_bias)?,
                gelu: f.gelu_mlp,
            },
            parallel: false,
            post_attn_norm: post_attn,
            post_mlp_norm: sandwich("post_feedforward_layernorm")?,
        });
    }
    let lm_head = match (cfg.tie_embeddings, w.contains("lm_head.weight")) {
        (false, true) => Linear::load(w, "lm_head", cfg.vocab_size, hid, false)?,
        (false, false) => {
            return Err(Error::Weights("tensor lm_head.weight is missing and tie_word_embeddings is false".into()))
        }
        (true, _) => embed.as_linear()?,
    };
    let norm = norm(&format!("{pre}norm"), hid)?;
    Decoder::assemble(cfg, Parts { embed, positions: None, blocks, norm, lm_head }, w)
}

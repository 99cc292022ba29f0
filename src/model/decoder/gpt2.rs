//! GPT-2's checkpoint layout: `Conv1D` projections stored (in, out), a fused
//! q/k/v `c_attn`, learned positions, LayerNorm and a tied head.

use super::{Attention, Block, Decoder, Parts};
use crate::error::Result;
use crate::model::config::Config;
use crate::model::layers::{Embedding, Linear, Mlp, Norm};
use crate::model::weights::Weights;
use candle_core::Tensor;

/// GPT-2 stores its projections as `Conv1D`, weight (in, out); transpose to (out, in).
fn conv1d(w: &Weights, name: &str, inp: usize, out: usize) -> Result<(Tensor, Tensor)> {
    let weight = w.get(&format!("{name}.weight"), &[inp, out])?.t()?.contiguous()?;
    let bias = w.get(&format!("{name}.bias"), &[out])?;
    Ok((weight, bias))
}

pub(super) fn load(cfg: Config, w: &Weights) -> Result<Decoder> {
    let hid = cfg.hidden_size;
    // Checkpoints saved from GPT2LMHeadModel prefix names with "transformer.".
    let pre = if w.contains("transformer.wte.weight") { "transformer." } else { "" };
    let embed = Embedding::load(w, &format!("{pre}wte.weight"), cfg.vocab_size, hid)?;
    let positions = w.get(&format!("{pre}wpe.weight"), &[cfg.max_positions, hid])?;
    let mut blocks = Vec::with_capacity(cfg.num_layers);
    for i in 0..cfg.num_layers {
        let p = format!("{pre}h.{i}");
        let (qkv_w, qkv_b) = conv1d(w, &format!("{p}.attn.c_attn"), hid, 3 * hid)?;
        let part = |t: &Tensor, j: usize| t.narrow(0, j * hid, hid)?.contiguous();
        let qkv = |j| -> Result<Linear> { Linear::new(part(&qkv_w, j)?, Some(part(&qkv_b, j)?)) };
        let (o_w, o_b) = conv1d(w, &format!("{p}.attn.c_proj"), hid, hid)?;
        let (fc_w, fc_b) = conv1d(w, &format!("{p}.mlp.c_fc"), hid, cfg.intermediate_size)?;
        let (pr_w, pr_b) = conv1d(w, &format!("{p}.mlp.c_proj"), cfg.intermediate_size, hid)?;
        let d = cfg.head_dim;
        let layer_scale = if cfg.scale_by_layer { (i + 1) as f64 } else { 1.0 };
        blocks.push(Block {
            norm1: Norm::layer(w, &format!("{p}.ln_1"), hid, cfg.norm_eps)?,
            attn: Attention {
                q: qkv(0)?,
                k: qkv(1)?,
                v: qkv(2)?,
                o: Linear::new(o_w, Some(o_b))?,
                q_norm: None,
                k_norm: None,
                heads: cfg.num_heads,
                kv_heads: cfg.num_heads,
                head_dim: d,
                scale: 1.0 / ((d as f64).sqrt() * layer_scale),
                softcap: None,
                window: None,
                local_rope: false,
            },
            norm2: Norm::layer(w, &format!("{p}.ln_2"), hid, cfg.norm_eps)?,
            mlp: Mlp::Gelu {
                fc: Linear::new(fc_w, Some(fc_b))?,
                proj: Linear::new(pr_w, Some(pr_b))?,
                exact: cfg.hidden_act == "gelu",
            },
            parallel: false,
            post_attn_norm: None,
            post_mlp_norm: None,
        });
    }
    let norm = Norm::layer(w, &format!("{pre}ln_f"), hid, cfg.norm_eps)?;
    let lm_head = embed.as_linear()?;
    Decoder::assemble(cfg, Parts { embed, positions: Some(positions), blocks, norm, lm_head }, w)
}

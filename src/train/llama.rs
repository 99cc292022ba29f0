//! The transformer zoo members (llama-style: RMSNorm, RoPE, SwiGLU MLP,
//! MHA / GQA / MQA, optional sliding window as in Mistral) written with
//! differentiable candle ops for training. Weight names and maths follow
//! transformers' `modeling_llama.py` / `modeling_mistral.py`, so the saved
//! folder runs unchanged in the engine (`model::decoder`) and in transformers.

use super::params::Params;
use super::Shape;
use crate::error::Result;
use candle_core::{DType, Device, Tensor, D};

struct Block {
    ln1: Tensor,  // (d_model)
    q: Tensor,    // (heads·hd, d_model)
    k: Tensor,    // (kv_heads·hd, d_model)
    v: Tensor,    // (kv_heads·hd, d_model)
    o: Tensor,    // (d_model, heads·hd)
    ln2: Tensor,  // (d_model)
    gate: Tensor, // (ffn, d_model)
    up: Tensor,   // (ffn, d_model)
    down: Tensor, // (d_model, ffn)
}

pub struct Llama {
    embed: Tensor, // (vocab, d_model), tied with the output head
    blocks: Vec<Block>,
    norm: Tensor,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    window: Option<usize>,
}

pub const RMS_EPS: f64 = 1e-5;
pub const ROPE_THETA: f64 = 10_000.0;
const INIT_STD: f64 = 0.02;

impl Llama {
    pub fn init(p: &mut Params, s: &Shape) -> Result<Self> {
        let (d, hd, f) = (s.d_model, s.d_model / s.heads, s.intermediate);
        let embed = p.normal("model.embed_tokens.weight", &[s.vocab, d], INIT_STD)?;
        let mut blocks = Vec::with_capacity(s.layers);
        for l in 0..s.layers {
            let n = |part: &str| format!("model.layers.{l}.{part}.weight");
            blocks.push(Block {
                ln1: p.add(&n("input_layernorm"), &[d], vec![1.0; d])?,
                q: p.normal(&n("self_attn.q_proj"), &[s.heads * hd, d], INIT_STD)?,
                k: p.normal(&n("self_attn.k_proj"), &[s.kv_heads * hd, d], INIT_STD)?,
                v: p.normal(&n("self_attn.v_proj"), &[s.kv_heads * hd, d], INIT_STD)?,
                o: p.normal(&n("self_attn.o_proj"), &[d, s.heads * hd], INIT_STD)?,
                ln2: p.add(&n("post_attention_layernorm"), &[d], vec![1.0; d])?,
                gate: p.normal(&n("mlp.gate_proj"), &[f, d], INIT_STD)?,
                up: p.normal(&n("mlp.up_proj"), &[f, d], INIT_STD)?,
                down: p.normal(&n("mlp.down_proj"), &[d, f], INIT_STD)?,
            });
        }
        let norm = p.add("model.norm.weight", &[d], vec![1.0; d])?;
        Ok(Self { embed, blocks, norm, heads: s.heads, kv_heads: s.kv_heads, head_dim: hd, window: s.window })
    }

    /// ids (b, t) → logits (b, t, vocab).
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let dev = ids.device();
        let mut x = self.embed.index_select(&ids.flatten_all()?, 0)?.reshape((b, t, ()))?; // (b, t, d)
        let (cos, sin) = rope_tables(t, self.head_dim, dev)?;
        let mask = causal_mask(t, self.window, dev)?;
        for blk in &self.blocks {
            let h = rms_norm(&x, &blk.ln1)?;
            x = (x + self.attention(blk, &h, &cos, &sin, &mask)?)?;
            let h = rms_norm(&x, &blk.ln2)?;
            let mlp = (linear(&h, &blk.gate)?.silu()? * linear(&h, &blk.up)?)?;
            x = (x + linear(&mlp, &blk.down)?)?;
        }
        linear(&rms_norm(&x, &self.norm)?, &self.embed)
    }

    fn attention(&self, blk: &Block, h: &Tensor, cos: &Tensor, sin: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, t, _) = h.dims3()?;
        let hd = self.head_dim;
        let split = |w: &Tensor, n: usize| -> Result<Tensor> {
            Ok(linear(h, w)?.reshape((b, t, n, hd))?.transpose(1, 2)?.contiguous()?)
            // (b, n, t, hd)
        };
        let q = rope(&split(&blk.q, self.heads)?, cos, sin)?;
        let k = repeat_kv(&rope(&split(&blk.k, self.kv_heads)?, cos, sin)?, self.heads / self.kv_heads)?;
        let v = repeat_kv(&split(&blk.v, self.kv_heads)?, self.heads / self.kv_heads)?;
        let scores = (q.matmul(&k.t()?.contiguous()?)? / (hd as f64).sqrt())?.broadcast_add(mask)?; // (b, h, t, t)
        let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let y = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, t, self.heads * hd))?;
        linear(&y, &blk.o)
    }
}

/// x (…, in) · wᵀ with w (out, in).
pub fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    Ok(x.broadcast_matmul(&w.t()?)?)
}

/// x / sqrt(mean(x²) + eps) · w over the last dimension.
pub fn rms_norm(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let rms = (x.sqr()?.mean_keepdim(D::Minus1)? + RMS_EPS)?.sqrt()?;
    Ok(x.broadcast_div(&rms)?.broadcast_mul(w)?)
}

/// cos and sin (t, hd) for positions 0..t, halves repeated as transformers' `rotate_half` expects.
fn rope_tables(t: usize, hd: usize, dev: &Device) -> Result<(Tensor, Tensor)> {
    let inv: Vec<f32> = (0..hd / 2).map(|i| 1.0 / ROPE_THETA.powf(2.0 * i as f64 / hd as f64) as f32).collect();
    let inv = Tensor::from_vec(inv, (1, hd / 2), dev)?;
    let pos = Tensor::arange(0u32, t as u32, dev)?.to_dtype(DType::F32)?.reshape((t, 1))?;
    let freqs = pos.broadcast_mul(&inv)?;
    let emb = Tensor::cat(&[&freqs, &freqs], 1)?; // (t, hd)
    Ok((emb.cos()?, emb.sin()?))
}

/// x·cos + rotate_half(x)·sin, x (b, n, t, hd).
fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let half = x.dim(D::Minus1)? / 2;
    let (x1, x2) = (x.narrow(D::Minus1, 0, half)?, x.narrow(D::Minus1, half, half)?);
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    Ok((x.broadcast_mul(cos)? + rotated.broadcast_mul(sin)?)?)
}

/// (b, kv, t, hd) → (b, kv·rep, t, hd), each kv head serving `rep` query heads in turn.
fn repeat_kv(x: &Tensor, rep: usize) -> Result<Tensor> {
    if rep == 1 {
        return Ok(x.clone());
    }
    let (b, kv, t, hd) = x.dims4()?;
    Ok(x.unsqueeze(2)?.expand((b, kv, rep, t, hd))?.reshape((b, kv * rep, t, hd))?)
}

/// (t, t): 0 where query i may see key j (j ≤ i, and i − j < window), −∞ elsewhere.
fn causal_mask(t: usize, window: Option<usize>, dev: &Device) -> Result<Tensor> {
    let w = window.unwrap_or(usize::MAX);
    let m: Vec<f32> = (0..t * t)
        .map(|k| (k / t, k % t))
        .map(|(i, j)| if j <= i && i - j < w { 0.0 } else { f32::NEG_INFINITY })
        .collect();
    Ok(Tensor::from_vec(m, (t, t), dev)?)
}

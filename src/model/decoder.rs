//! One instrumented decoder-only transformer for every supported family:
//! Llama 2/3 (Touvron et al. 2023), Mistral (sliding window, Jiang et al. 2023),
//! Qwen2 (q/k/v biases) and GPT-2 (Radford et al. 2019). It follows
//! transformers' `modeling_llama.py` / `modeling_gpt2.py` eager path
//! operation for operation, so its numbers match; the capture point is
//! marked where post-RoPE queries and keys leave the forward pass.

use super::config::{Arch, Config};
use super::kv_cache::KvCache;
use super::layers::{Embedding, Linear, Mlp, Norm};
use super::rope::Rope;
use super::weights::Weights;
use crate::error::{Error, Result};
use candle_core::{DType, Device, Tensor};

/// What one forward pass leaves behind.
pub struct Forward {
    /// Logits of the last fed position, (vocab,).
    pub logits: Vec<f32>,
    /// Per layer, when capture is on.
    pub layers: Vec<LayerCapture>,
}

/// Post-RoPE queries and keys of the positions just fed: enough to
/// recompute every head's attention exactly, at O(N) memory.
#[derive(Debug, Clone)]
pub struct LayerCapture {
    /// (t, heads, head_dim), row-major.
    pub q: Vec<f32>,
    /// (t, kv_heads, head_dim), row-major.
    pub k: Vec<f32>,
}

struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    scale: f64,
    window: Option<usize>,
}

struct Block {
    norm1: Norm,
    attn: Attention,
    norm2: Norm,
    mlp: Mlp,
}

pub struct Decoder {
    cfg: Config,
    embed: Embedding,          // (vocab, hidden)
    positions: Option<Tensor>, // (max_positions, hidden), gpt2 only
    rope: Option<Rope>,
    blocks: Vec<Block>,
    norm: Norm,
    lm_head: Linear, // (vocab, hidden)
    caches: Vec<KvCache>,
    fed: usize,
    prefill_chunk: usize,
    device: Device,
    dtype: DType,
}

impl Decoder {
    pub fn load(cfg: Config, w: &Weights) -> Result<Self> {
        match cfg.arch {
            Arch::Gpt2 => load_gpt2(cfg, w),
            _ => load_llama(cfg, w),
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Positions fed so far; the next token goes at this position.
    pub fn position(&self) -> usize {
        self.fed
    }

    /// Positions each layer's KV cache holds for future queries.
    pub fn kv_lens(&self) -> Vec<usize> {
        self.caches.iter().map(KvCache::len).collect()
    }

    pub fn kv_bytes(&self) -> usize {
        self.caches.iter().map(KvCache::bytes).sum()
    }

    /// Prompt positions per prefill pass (at least 1).
    pub fn set_prefill_chunk(&mut self, n: usize) {
        self.prefill_chunk = n.max(1);
    }

    pub fn reset(&mut self) {
        self.caches.iter_mut().for_each(KvCache::reset);
        self.fed = 0;
    }

    /// Feed `ids` at the next positions; return the last position's logits.
    /// Long prompts go through in chunks: causal attention over the cache
    /// gives the same result, and memory stays O(chunk × positions).
    pub fn forward(&mut self, ids: &[u32], capture: bool) -> Result<Forward> {
        let t = ids.len();
        if t == 0 {
            return Err(Error::Prompt("nothing to feed".into()));
        }
        if self.fed + t > self.cfg.max_positions {
            return Err(Error::Prompt(format!(
                "{} positions exceed the model's context of {} (max_position_embeddings)",
                self.fed + t,
                self.cfg.max_positions
            )));
        }
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= self.cfg.vocab_size) {
            return Err(Error::Prompt(format!("token id {bad} is outside the vocabulary of {}", self.cfg.vocab_size)));
        }
        let mut layers: Vec<LayerCapture> = vec![];
        let mut last = None;
        for chunk in ids.chunks(self.prefill_chunk) {
            let (x, caps) = self.forward_chunk(chunk, capture)?;
            if layers.is_empty() {
                layers = caps;
            } else {
                for (all, c) in layers.iter_mut().zip(caps) {
                    all.q.extend_from_slice(&c.q);
                    all.k.extend_from_slice(&c.k);
                }
            }
            last = Some(x);
        }
        let Some(x) = last else { unreachable!("ids is not empty") };
        let last = self.norm.forward(&x.narrow(0, x.dim(0)? - 1, 1)?)?;
        let logits = self.lm_head.forward(&last)?.squeeze(0)?;
        let logits = logits.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
        Ok(Forward { logits, layers })
    }

    /// Run the blocks over one chunk; returns the final hidden states (t, hidden).
    fn forward_chunk(&mut self, ids: &[u32], capture: bool) -> Result<(Tensor, Vec<LayerCapture>)> {
        let t = ids.len();
        let mut x = self.embed.forward(ids, &self.device, self.dtype)?; // (t, hidden)
        if let Some(pos) = &self.positions {
            x = (x + pos.narrow(0, self.fed, t)?)?;
        }
        let mut layers = Vec::new();
        for (block, cache) in self.blocks.iter().zip(self.caches.iter_mut()) {
            let h = block.norm1.forward(&x)?;
            let (a, cap) = block.attn.forward(&h, self.fed, self.rope.as_ref(), cache, capture)?;
            x = (x + a)?;
            x = (&x + block.mlp.forward(&block.norm2.forward(&x)?)?)?;
            layers.extend(cap);
        }
        self.fed += t;
        Ok((x, layers))
    }
}

/// Prompt positions per prefill pass; bounds the (chunk × positions) score matrices.
const PREFILL_CHUNK: usize = 512;

impl Attention {
    /// x: (t, hidden) at absolute positions `pos..pos + t` → (t, hidden).
    fn forward(
        &self,
        x: &Tensor,
        pos: usize,
        rope: Option<&Rope>,
        cache: &mut KvCache,
        capture: bool,
    ) -> Result<(Tensor, Option<LayerCapture>)> {
        let t = x.dim(0)?;
        let (h, kvh, d) = (self.heads, self.kv_heads, self.head_dim);
        let split = |y: Tensor, n: usize| y.reshape((1, t, n, d))?.transpose(1, 2)?.contiguous();
        let mut q = split(self.q.forward(x)?, h)?; // (1, h, t, d)
        let mut k = split(self.k.forward(x)?, kvh)?; // (1, kvh, t, d)
        let v = split(self.v.forward(x)?, kvh)?;
        if let Some(rope) = rope {
            q = rope.apply(&q, pos)?;
            k = rope.apply(&k, pos)?;
        }
        // Capture point: post-RoPE queries and keys, position-major.
        let cap = if capture {
            let flat = |y: &Tensor| -> Result<Vec<f32>> {
                let y = y.squeeze(0)?.transpose(0, 1)?.to_dtype(candle_core::DType::F32)?;
                Ok(y.flatten_all()?.to_vec1::<f32>()?)
            };
            Some(LayerCapture { q: flat(&q)?, k: flat(&k)? })
        } else {
            None
        };
        let first_key = cache.start();
        let (keys, values) = cache.append(&k.squeeze(0)?, &v.squeeze(0)?)?; // (kvh, n, d)
        let n = keys.dim(1)?;
        // Group the query heads that share a KV head, so GQA needs no copies.
        let g = h / kvh;
        let q = q.reshape((kvh, g * t, d))?;
        let scores = (q.matmul(&keys.t()?)? * self.scale)?; // (kvh, g·t, n)
        let scores = match self.mask(t, pos, first_key, n, x.device())? {
            Some(mask) => scores.reshape((kvh, g, t, n))?.broadcast_add(&mask)?.reshape((kvh, g * t, n))?,
            None => scores,
        };
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = probs.matmul(&values)?; // (kvh, g·t, d)
        let out = out.reshape((h, t, d))?.transpose(0, 1)?.reshape((t, h * d))?;
        Ok((self.o.forward(&out)?, cap))
    }

    /// Additive mask (t, n): query r at `pos + r`, key c at `first_key + c`;
    /// visible iff key ≤ query and, with a window W, key > query − W.
    fn mask(&self, t: usize, pos: usize, first_key: usize, n: usize, dev: &Device) -> Result<Option<Tensor>> {
        let visible = |r: usize, c: usize| {
            let (qp, kp) = (pos + r, first_key + c);
            kp <= qp && self.window.is_none_or(|w| kp + w > qp)
        };
        let all = (0..t).all(|r| (0..n).all(|c| visible(r, c)));
        if all {
            return Ok(None);
        }
        let m: Vec<f32> = (0..t)
            .flat_map(|r| (0..n).map(move |c| (r, c)))
            .map(|(r, c)| if visible(r, c) { 0.0 } else { f32::NEG_INFINITY })
            .collect();
        Ok(Some(Tensor::from_vec(m, (t, n), dev)?))
    }
}

fn caches(cfg: &Config) -> Vec<KvCache> {
    cfg.windows.iter().map(|&w| KvCache::new(w)).collect()
}

fn load_llama(cfg: Config, w: &Weights) -> Result<Decoder> {
    let (hid, h, kvh, d) = (cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim);
    let embed = Embedding::load(w, "model.embed_tokens.weight", cfg.vocab_size, hid)?;
    let mut blocks = Vec::with_capacity(cfg.num_layers);
    for i in 0..cfg.num_layers {
        let p = format!("model.layers.{i}");
        let a = format!("{p}.self_attn");
        let m = format!("{p}.mlp");
        let lin = |name: &str, out, inp, bias| Linear::load(w, name, out, inp, bias);
        blocks.push(Block {
            norm1: Norm::rms(w, &format!("{p}.input_layernorm"), hid, cfg.norm_eps)?,
            attn: Attention {
                q: lin(&format!("{a}.q_proj"), h * d, hid, cfg.qkv_bias)?,
                k: lin(&format!("{a}.k_proj"), kvh * d, hid, cfg.qkv_bias)?,
                v: lin(&format!("{a}.v_proj"), kvh * d, hid, cfg.qkv_bias)?,
                o: lin(&format!("{a}.o_proj"), hid, h * d, cfg.o_bias)?,
                heads: h,
                kv_heads: kvh,
                head_dim: d,
                scale: 1.0 / (d as f64).sqrt(),
                window: cfg.windows[i],
            },
            norm2: Norm::rms(w, &format!("{p}.post_attention_layernorm"), hid, cfg.norm_eps)?,
            mlp: Mlp::Gated {
                gate: lin(&format!("{m}.gate_proj"), cfg.intermediate_size, hid, cfg.mlp_bias)?,
                up: lin(&format!("{m}.up_proj"), cfg.intermediate_size, hid, cfg.mlp_bias)?,
                down: lin(&format!("{m}.down_proj"), hid, cfg.intermediate_size, cfg.mlp_bias)?,
            },
        });
    }
    let lm_head = match (cfg.tie_embeddings, w.contains("lm_head.weight")) {
        (false, true) => Linear::load(w, "lm_head", cfg.vocab_size, hid, false)?,
        (false, false) => {
            return Err(Error::Weights("tensor lm_head.weight is missing and tie_word_embeddings is false".into()))
        }
        (true, _) => embed.as_linear()?,
    };
    let theta = cfg.rope_theta.unwrap_or(10_000.0);
    Ok(Decoder {
        rope: Some(Rope::new(&cfg, theta, w.device(), w.dtype())?),
        norm: Norm::rms(w, "model.norm", hid, cfg.norm_eps)?,
        caches: caches(&cfg),
        embed,
        positions: None,
        blocks,
        lm_head,
        fed: 0,
        prefill_chunk: PREFILL_CHUNK,
        device: w.device().clone(),
        dtype: w.dtype(),
        cfg,
    })
}

/// GPT-2 stores its projections as `Conv1D`, weight (in, out); transpose to (out, in).
fn conv1d(w: &Weights, name: &str, inp: usize, out: usize) -> Result<(Tensor, Tensor)> {
    let weight = w.get(&format!("{name}.weight"), &[inp, out])?.t()?.contiguous()?;
    let bias = w.get(&format!("{name}.bias"), &[out])?;
    Ok((weight, bias))
}

fn load_gpt2(cfg: Config, w: &Weights) -> Result<Decoder> {
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
                heads: cfg.num_heads,
                kv_heads: cfg.num_heads,
                head_dim: d,
                scale: 1.0 / ((d as f64).sqrt() * layer_scale),
                window: None,
            },
            norm2: Norm::layer(w, &format!("{p}.ln_2"), hid, cfg.norm_eps)?,
            mlp: Mlp::Gelu { fc: Linear::new(fc_w, Some(fc_b))?, proj: Linear::new(pr_w, Some(pr_b))? },
        });
    }
    Ok(Decoder {
        rope: None,
        norm: Norm::layer(w, &format!("{pre}ln_f"), hid, cfg.norm_eps)?,
        caches: caches(&cfg),
        lm_head: embed.as_linear()?,
        embed,
        positions: Some(positions),
        blocks,
        fed: 0,
        prefill_chunk: PREFILL_CHUNK,
        device: w.device().clone(),
        dtype: w.dtype(),
        cfg,
    })
}

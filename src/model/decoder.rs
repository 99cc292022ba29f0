//! One instrumented decoder-only transformer for every supported family:
//! Llama 2/3 (Touvron et al. 2023), Mistral (sliding window, Jiang et al. 2023),
//! Qwen2 (q/k/v biases), Qwen3 (q/k norms), GPT-2 (Radford et al. 2019) and
//! GPT-NeoX / Pythia (Black et al. 2022; partial rotary, parallel residual).
//! It follows transformers' eager path operation for operation, so its
//! numbers match; on the CPU attention itself is the tiled kernel of
//! `flash` (same result within float rounding, no N² scores); the capture point is marked where post-RoPE queries and
//! keys leave the forward pass. Family differences are config-driven pieces
//! (optional q/k norms, partial RoPE, parallel residual); the loaders of the
//! families with their own checkpoint layout are in `decoder/`.

use super::config::{Arch, Config};
use super::flash;
use super::kv_cache::KvCache;
use super::layers::{Embedding, Linear, Mlp, Norm};
use super::rope::Rope;
use super::weights::Weights;
use crate::error::{Error, Result};
use candle_core::{DType, Device, Tensor};

mod gpt2;
mod llama;
mod neox;

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
    /// Per-head RMSNorm of queries and keys before RoPE (Qwen3, Gemma 3).
    q_norm: Option<Norm>,
    k_norm: Option<Norm>,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    scale: f64,
    /// Scores become c·tanh(s/c) before the mask (Gemma 2).
    softcap: Option<f64>,
    window: Option<usize>,
    /// Rotate with the decoder's local RoPE (Gemma 3's sliding layers).
    local_rope: bool,
}

struct Block {
    norm1: Norm,
    attn: Attention,
    norm2: Norm,
    mlp: Mlp,
    /// x + attn(norm1(x)) + mlp(norm2(x)), GPT-NeoX's parallel residual.
    parallel: bool,
    /// Norms of the attention and MLP outputs before they join the residual (Gemma).
    post_attn_norm: Option<Norm>,
    post_mlp_norm: Option<Norm>,
}

impl Block {
    fn forward(
        &self,
        x: Tensor,
        pos: usize,
        rope: Option<&Rope>,
        cache: &mut KvCache,
        capture: bool,
    ) -> Result<(Tensor, Option<LayerCapture>)> {
        let (mut a, cap) = self.attn.forward(&self.norm1.forward(&x)?, pos, rope, cache, capture)?;
        if let Some(n) = &self.post_attn_norm {
            a = n.forward(&a)?;
        }
        let mlp = |h: &Tensor| -> Result<Tensor> {
            let m = self.mlp.forward(&self.norm2.forward(h)?)?;
            match &self.post_mlp_norm {
                Some(n) => n.forward(&m),
                None => Ok(m),
            }
        };
        let x = if self.parallel {
            ((mlp(&x)? + a)? + x)?
        } else {
            let x = (x + a)?;
            (&x + mlp(&x)?)?
        };
        Ok((x, cap))
    }
}

pub struct Decoder {
    cfg: Box<Config>,          // boxed: keeps `Model`'s variants of similar size
    embed: Embedding,          // (vocab, hidden)
    positions: Option<Tensor>, // (max_positions, hidden), gpt2 only
    rope: Option<Rope>,
    /// RoPE of the layers with `local_rope` (Gemma 3).
    rope_local: Option<Rope>,
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
            Arch::Gpt2 => gpt2::load(cfg, w),
            Arch::GptNeox => neox::load(cfg, w),
            _ => llama::load(cfg, w),
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
        if self.fed + t > self.cfg.max_positions {
            return Err(Error::Prompt(format!(
                "{} positions exceed the model's context of {} (max_position_embeddings)",
                self.fed + t,
                self.cfg.max_positions
            )));
        }
        super::check_ids(ids, self.cfg.vocab_size)?;
        let mut layers: Vec<LayerCapture> = vec![];
        let mut last = None;
        let end = self.fed + t;
        for chunk in ids.chunks(self.prefill_chunk) {
            let (x, caps) = self.forward_chunk(chunk, end, capture)?;
            if layers.is_empty() {
                // Room for the whole pass and for decode steps after it, so that a trace that takes
                // these buffers over appends a step's rows without copying all the prompt's (pages
                // never written are never resident).
                let rows = if t > 1 { t + (t / 2).max(1024) } else { t };
                let with_room = |x: Vec<f32>| {
                    let mut v = Vec::with_capacity(x.len() / chunk.len() * rows);
                    v.extend_from_slice(&x);
                    v
                };
                layers = caps.into_iter().map(|c| LayerCapture { q: with_room(c.q), k: with_room(c.k) }).collect();
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
        let mut logits = logits.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
        if let Some(c) = self.cfg.features.final_softcap {
            let c = c as f32;
            logits.iter_mut().for_each(|l| *l = (*l / c).tanh() * c);
        }
        Ok(Forward { logits, layers })
    }

    /// Run the blocks over one chunk of a pass that ends at position `end`;
    /// returns the final hidden states (t, hidden).
    fn forward_chunk(&mut self, ids: &[u32], end: usize, capture: bool) -> Result<(Tensor, Vec<LayerCapture>)> {
        let t = ids.len();
        let mut x = self.embed.forward(ids, &self.device, self.dtype)?; // (t, hidden)
        if let Some(pos) = &self.positions {
            x = (x + pos.narrow(0, self.fed, t)?)?;
        }
        if self.cfg.features.embed_scale {
            // transformers multiplies by √hidden held as an f32 tensor.
            x = (x * ((self.cfg.hidden_size as f64).sqrt() as f32) as f64)?;
        }
        let mut layers = Vec::new();
        for (block, cache) in self.blocks.iter().zip(self.caches.iter_mut()) {
            let rope = if block.attn.local_rope { self.rope_local.as_ref() } else { self.rope.as_ref() };
            let rope = rope.map(|r| r.for_pass_ending(end));
            let (y, cap) = block.forward(x, self.fed, rope, cache, capture)?;
            x = y;
            layers.extend(cap);
        }
        self.fed += t;
        Ok((x, layers))
    }
}

/// Prompt positions per prefill pass; bounds the activations, and off the CPU the (chunk × positions) scores.
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
        if let (Some(qn), Some(kn)) = (&self.q_norm, &self.k_norm) {
            q = qn.forward(&q)?;
            k = kn.forward(&k)?;
        }
        if let Some(rope) = rope {
            q = rope.apply(&q, pos)?;
            k = rope.apply(&k, pos)?;
        }
        // Capture point: post-RoPE queries and keys, position-major.
        let cap = if capture { Some(LayerCapture { q: position_major(&q)?, k: position_major(&k)? }) } else { None };
        let first_key = cache.start();
        let (keys, values) = cache.append(&k.squeeze(0)?, &v.squeeze(0)?)?; // (kvh, n, d)
        if x.device().is_cpu() && q.dtype() == DType::F32 {
            let out = self.attend_cpu(&q, t, pos, &keys, &values, first_key)?;
            return Ok((self.o.forward(&Tensor::from_vec(out, (t, h * d), x.device())?)?, cap));
        }
        let n = keys.dim(1)?;
        // Group the query heads that share a KV head, so GQA needs no copies.
        let g = h / kvh;
        let q = q.reshape((kvh, g * t, d))?;
        let mut scores = (q.matmul(&keys.t()?)? * self.scale)?; // (kvh, g·t, n)
        if let Some(c) = self.softcap {
            scores = ((scores / c)?.tanh()? * c)?;
        }
        let scores = match self.mask(t, pos, first_key, n, x.device())? {
            Some(mask) => scores.reshape((kvh, g, t, n))?.broadcast_add(&mask)?.reshape((kvh, g * t, n))?,
            None => scores,
        };
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = probs.matmul(&values)?; // (kvh, g·t, d)
        let out = out.reshape((h, t, d))?.transpose(0, 1)?.reshape((t, h * d))?;
        Ok((self.o.forward(&out)?, cap))
    }

    /// The tiled kernel (`flash`) reading queries, keys and values where they lie.
    fn attend_cpu(&self, q: &Tensor, t: usize, pos: usize, k: &Tensor, v: &Tensor, first: usize) -> Result<Vec<f32>> {
        let g = flash::Geometry {
            heads: self.heads,
            kv_heads: self.kv_heads,
            head_dim: self.head_dim,
            scale: self.scale as f32,
            softcap: self.softcap.map(|c| c as f32),
            window: self.window,
        };
        let q = q.squeeze(0)?.contiguous()?;
        let n = k.dim(1)?;
        let (k, v) = (strided(k)?, strided(v)?);
        let (qs, ql) = q.storage_and_layout();
        let (ks, kl) = k.storage_and_layout();
        let (vs, vl) = v.storage_and_layout();
        let (q_data, k_data, v_data) = (cpu_f32(&qs)?, cpu_f32(&ks)?, cpu_f32(&vs)?);
        let view = |data, l: &candle_core::Layout| flash::View {
            data,
            off: l.start_offset(),
            head_stride: l.stride()[0],
            row_stride: l.stride()[1],
        };
        let keys = flash::Keys { k: view(k_data, kl), v: view(v_data, vl), n, first };
        Ok(flash::attend(&g, view(q_data, ql), t, pos, keys))
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

/// (1, heads, t, d) → (t, heads, d) as f32, position-major. On the CPU a
/// plain copy: a decode step captures 2 × layers tiny tensors, where
/// candle's per-op overhead would cost more than the copying.
fn position_major(y: &Tensor) -> Result<Vec<f32>> {
    let (_, h, t, d) = y.dims4()?;
    if y.device().is_cpu() && y.dtype() == DType::F32 {
        let (s, l) = y.storage_and_layout();
        let data = cpu_f32(&s)?;
        let st = l.stride();
        if st[3] == 1 {
            let mut out = Vec::with_capacity(t * h * d);
            for r in 0..t {
                for head in 0..h {
                    let o = l.start_offset() + head * st[1] + r * st[2];
                    out.extend_from_slice(&data[o..o + d]);
                }
            }
            return Ok(out);
        }
    }
    let y = y.squeeze(0)?.transpose(0, 1)?.to_dtype(DType::F32)?;
    Ok(y.flatten_all()?.to_vec1::<f32>()?)
}

/// `t` itself when its rows are contiguous (the cache's views are), else a contiguous copy.
fn strided(t: &Tensor) -> Result<Tensor> {
    Ok(if t.layout().stride().get(2) == Some(&1) { t.clone() } else { t.contiguous()? })
}

fn cpu_f32(s: &candle_core::Storage) -> Result<&[f32]> {
    match s {
        candle_core::Storage::Cpu(c) => Ok(c.as_slice::<f32>()?),
        _ => Err(Error::Weights("the CPU attention kernel was given a tensor off the CPU".into())),
    }
}

/// What a family's loader reads from its checkpoint; `assemble` adds the rest.
struct Parts {
    embed: Embedding,
    positions: Option<Tensor>,
    blocks: Vec<Block>,
    norm: Norm,
    lm_head: Linear,
}

impl Decoder {
    /// A fresh decoder (empty caches) from loaded parts; RoPE when the config has a base.
    fn assemble(cfg: Config, p: Parts, w: &Weights) -> Result<Self> {
        let (dev, dt) = (w.device(), w.dtype());
        let rope = cfg.rope_theta.map(|theta| Rope::new(&cfg, theta, true, dev, dt)).transpose()?;
        let rope_local =
            cfg.features.local_rope_theta.map(|theta| Rope::new(&cfg, theta, false, dev, dt)).transpose()?;
        Ok(Decoder {
            rope,
            rope_local,
            caches: cfg.windows.iter().map(|&w| KvCache::new(w)).collect(),
            embed: p.embed,
            positions: p.positions,
            blocks: p.blocks,
            norm: p.norm,
            lm_head: p.lm_head,
            fed: 0,
            prefill_chunk: PREFILL_CHUNK,
            device: w.device().clone(),
            dtype: w.dtype(),
            cfg: Box::new(cfg),
        })
    }
}

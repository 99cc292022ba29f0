//! GGUF files of llama.cpp's `phi3` architecture (`conversion/phi.py`
//! `Phi3MiniModel`: Phi-3, Phi-3.5, Phi-4-mini). The fused `qkv_proj` and
//! `gate_up_proj` are stored as they are (`attn_qkv`, `ffn_up`); LongRoPE's
//! factors are the tensors `rope_factors_short` / `rope_factors_long`, its
//! original context and attention factor metadata. The window is applied on
//! every layer as the file (and transformers) says; llama.cpp itself turns
//! Phi-3's window off, with a warning that results may suffer.

use super::Gguf;
use crate::error::{Error, Result};
use crate::model::config::{Arch, Config, Features, LongRope};
use candle_core::Device;
use std::fs::File;
use std::path::Path;

impl Gguf {
    pub(super) fn phi3_config(&self, file: &mut File, path: &Path) -> Result<Config> {
        let a = &self.arch;
        let hidden = self.count(path, "embedding_length")?;
        let heads = self.count(path, "attention.head_count")?;
        let layers = self.count(path, "block_count")?;
        if heads == 0 {
            return Err(Error::bad_file(path, format!("GGUF metadata {a}.attention.head_count must be positive")));
        }
        let head_dim = self.num(&format!("{a}.attention.key_length")).map_or(hidden / heads, |v| v as usize);
        let rotary_dim = self.num(&format!("{a}.rope.dimension_count")).map_or(head_dim, |v| v as usize);
        let max_positions = self.count(path, "context_length")?;
        let window = self.num(&format!("{a}.attention.sliding_window")).map(|v| v as usize).filter(|&w| w > 0);
        let id = |key: &str| self.num(key).map(|v| v as u32);
        let cfg = Config {
            arch: Arch::Phi3,
            vocab_size: self.dims(path, "token_embd.weight")?.first().copied().unwrap_or(0),
            hidden_size: hidden,
            intermediate_size: self.count(path, "feed_forward_length")?,
            num_layers: layers,
            num_heads: heads,
            num_kv_heads: self.num(&format!("{a}.attention.head_count_kv")).map_or(heads, |v| v as usize),
            head_dim,
            max_positions,
            norm_eps: self.num(&format!("{a}.attention.layer_norm_rms_epsilon")).unwrap_or(1e-5),
            rope_theta: Some(self.num(&format!("{a}.rope.freq_base")).unwrap_or(10_000.0) as f32),
            rope_llama3: None,
            rotary_dim,
            features: Features {
                longrope: self.longrope(file, path, rotary_dim, max_positions)?,
                ..Features::default()
            },
            windows: vec![window; layers],
            tie_embeddings: !self.content.tensor_infos.contains_key("output.weight"),
            qkv_bias: false,
            o_bias: false,
            mlp_bias: false,
            hidden_act: "silu".into(),
            scale_by_layer: false,
            bos_token_id: id("tokenizer.ggml.bos_token_id"),
            eos_token_ids: id("tokenizer.ggml.eos_token_id").into_iter().collect(),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// LongRoPE when the file has its factor tensors (Phi-3-mini-4k has none).
    fn longrope(&self, file: &mut File, path: &Path, rotary_dim: usize, n_ctx: usize) -> Result<Option<LongRope>> {
        let has = |name: &str| self.content.tensor_infos.contains_key(name);
        let (long, short) = ("rope_factors_long.weight", "rope_factors_short.weight");
        if !has(long) && !has(short) {
            return Ok(None);
        }
        let factors = |name: &str, file: &mut File| -> Result<Vec<f32>> {
            let bad = |msg: String| Error::bad_file(path, format!("tensor {name}: {msg}"));
            let q = self.content.tensor(file, name, &Device::Cpu).map_err(|e| bad(super::one_line(&e)))?;
            let v = q.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?;
            if v.len() != rotary_dim / 2 {
                return Err(bad(format!("{} factors for {rotary_dim} rotated dimensions (expected half)", v.len())));
            }
            Ok(v)
        };
        let (long_factor, short_factor) = (factors(long, file)?, factors(short, file)?);
        let key = format!("{}.rope.scaling.original_context_length", self.arch);
        let orig = self.num(&key).ok_or_else(|| Error::bad_file(path, format!("GGUF metadata has no {key}")))?;
        if orig < 2.0 {
            return Err(Error::bad_file(path, format!("{key} must be at least 2")));
        }
        // As transformers computes it when the config gives none.
        let scale = n_ctx as f64 / orig;
        let computed = if scale <= 1.0 { 1.0 } else { (1.0 + scale.ln() / orig.ln()).sqrt() };
        let attention = self.num(&format!("{}.rope.scaling.attn_factor", self.arch)).unwrap_or(computed);
        Ok(Some(LongRope {
            short_factor,
            long_factor,
            original_max: orig as usize,
            attention_factor: attention as f32,
        }))
    }
}

//! GGUF files of llama.cpp's `gemma2` and `gemma3` architectures
//! (`conversion/gemma.py` `Gemma2Model`, `Gemma3Model`). The converter adds 1
//! to every norm weight (so they scale by w, not 1 + w) and writes neither the
//! layer pattern nor `query_pre_attn_scalar`; llama.cpp then assumes what this
//! reader assumes: every 2nd (Gemma 2) or 6th (Gemma 3) layer global unless
//! `attention.sliding_window_pattern` says otherwise, the local RoPE base from
//! `rope.freq_base_swa` (Gemma 3: 10000 when absent; Gemma 2: the global one),
//! and scores scaled by 1/√head_dim (the 27B models, 46 and 62 layers:
//! 1/√(hidden/heads)). Gemma 2's soft-caps are metadata.

use super::Gguf;
use crate::error::{Error, Result};
use crate::model::config::{Arch, Config, Features};
use candle_core::quantized::gguf_file::Value;
use std::path::Path;

impl Gguf {
    pub(super) fn gemma_config(&self, path: &Path, arch: Arch) -> Result<Config> {
        let gemma2 = arch == Arch::Gemma2;
        let a = &self.arch;
        let hidden = self.count(path, "embedding_length")?;
        let heads = self.count(path, "attention.head_count")?;
        let layers = self.count(path, "block_count")?;
        if heads == 0 {
            return Err(Error::bad_file(path, format!("GGUF metadata {a}.attention.head_count must be positive")));
        }
        let head_dim = self.num(&format!("{a}.attention.key_length")).map_or(256, |v| v as usize);
        let vocab = match self.content.tensor_infos.get("token_embd.weight") {
            Some(info) => info.shape.dims()[0],
            None => return Err(Error::Weights(format!("tensor token_embd.weight is missing from {}", path.display()))),
        };
        // llama.cpp's Gemma 2 default window is 4096.
        let window = self.num(&format!("{a}.attention.sliding_window")).map(|v| v as usize).or(gemma2.then_some(4096));
        let window = window.filter(|&w| w > 0);
        let is_swa: Vec<bool> = match self.content.metadata.get(&format!("{a}.attention.sliding_window_pattern")) {
            Some(Value::Array(flags)) => flags.iter().map(|f| matches!(f, Value::Bool(true))).collect(),
            other => {
                let n = other.and_then(super::number).map_or(if gemma2 { 2 } else { 6 }, |v| v as usize).max(1);
                (0..layers).map(|i| (i + 1) % n != 0).collect()
            }
        };
        if is_swa.len() != layers {
            return Err(Error::bad_file(path, format!("{a}.attention.sliding_window_pattern has the wrong length")));
        }
        let linear = match self.content.metadata.get(&format!("{a}.rope.scaling.type")).and_then(|v| v.to_string().ok())
        {
            Some(t) if t == "linear" => self.num(&format!("{a}.rope.scaling.factor")).map(|f| f as f32),
            Some(t) if t != "none" => {
                return Err(Error::bad_file(path, format!("{a}.rope.scaling.type {t:?} is not supported (linear)")))
            }
            _ => None,
        };
        let layers_27b = if gemma2 { 46 } else { 62 };
        let scalar = if layers == layers_27b { hidden / heads } else { head_dim };
        let theta = self.num(&format!("{a}.rope.freq_base")).unwrap_or(if gemma2 { 10_000.0 } else { 1_000_000.0 });
        let local_theta = self.num(&format!("{a}.rope.freq_base_swa")).or((!gemma2).then_some(10_000.0));
        let cap = |key: &str| self.num(&format!("{a}.{key}")).filter(|&c| c > 0.0);
        let eos = self.num("tokenizer.ggml.eos_token_id").map(|v| v as u32);
        let cfg = Config {
            arch,
            vocab_size: vocab,
            hidden_size: hidden,
            intermediate_size: self.count(path, "feed_forward_length")?,
            num_layers: layers,
            num_heads: heads,
            num_kv_heads: self.num(&format!("{a}.attention.head_count_kv")).map_or(heads, |v| v as usize),
            head_dim,
            max_positions: self.count(path, "context_length")?,
            norm_eps: self.num(&format!("{a}.attention.layer_norm_rms_epsilon")).unwrap_or(1e-6),
            rope_theta: Some(theta as f32),
            rope_llama3: None,
            rotary_dim: head_dim,
            features: Features {
                qk_norm: !gemma2,
                norm_plus_one: false, // the converter stored 1 + w
                sandwich_norms: true,
                embed_scale: true,
                gelu_mlp: true,
                query_pre_attn_scalar: Some(scalar as f64),
                attn_softcap: cap("attn_logit_softcapping"),
                final_softcap: cap("final_logit_softcapping"),
                local_rope_theta: local_theta.map(|t| t as f32),
                rope_linear_factor: linear,
                ..Features::default()
            },
            windows: is_swa.iter().map(|&s| window.filter(|_| s)).collect(),
            tie_embeddings: !self.content.tensor_infos.contains_key("output.weight"),
            qkv_bias: false,
            o_bias: false,
            mlp_bias: false,
            hidden_act: "gelu_pytorch_tanh".into(),
            scale_by_layer: false,
            bos_token_id: self.num("tokenizer.ggml.bos_token_id").map(|v| v as u32),
            eos_token_ids: eos.into_iter().collect(),
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

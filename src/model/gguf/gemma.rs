//! GGUF files of llama.cpp's `gemma3` architecture (`conversion/gemma.py`
//! `Gemma3Model`). The converter adds 1 to every norm weight (so they scale
//! by w, not 1 + w) and writes neither the layer pattern, the local RoPE base
//! nor `query_pre_attn_scalar`; llama.cpp then assumes what this reader
//! assumes: every 6th layer global (unless `attention.sliding_window_pattern`
//! says otherwise), base 10000 on sliding layers (`rope.freq_base_swa`), and
//! scores scaled by 1/√head_dim (Gemma 3 27B, 62 layers: 1/√(hidden/heads)).

use super::Gguf;
use crate::error::{Error, Result};
use crate::model::config::{Arch, Config, Features};
use candle_core::quantized::gguf_file::Value;
use std::path::Path;

impl Gguf {
    pub(super) fn gemma3_config(&self, path: &Path) -> Result<Config> {
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
        let window = self.num(&format!("{a}.attention.sliding_window")).map(|v| v as usize).filter(|&w| w > 0);
        let is_swa: Vec<bool> = match self.content.metadata.get(&format!("{a}.attention.sliding_window_pattern")) {
            Some(Value::Array(flags)) => flags.iter().map(|f| matches!(f, Value::Bool(true))).collect(),
            other => {
                let n = other.and_then(super::number).map_or(6, |v| v as usize).max(1);
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
        let scalar = if layers == 62 { hidden / heads } else { head_dim };
        let eos = self.num("tokenizer.ggml.eos_token_id").map(|v| v as u32);
        let cfg = Config {
            arch: Arch::Gemma3,
            vocab_size: vocab,
            hidden_size: hidden,
            intermediate_size: self.count(path, "feed_forward_length")?,
            num_layers: layers,
            num_heads: heads,
            num_kv_heads: self.num(&format!("{a}.attention.head_count_kv")).map_or(heads, |v| v as usize),
            head_dim,
            max_positions: self.count(path, "context_length")?,
            norm_eps: self.num(&format!("{a}.attention.layer_norm_rms_epsilon")).unwrap_or(1e-6),
            rope_theta: Some(self.num(&format!("{a}.rope.freq_base")).unwrap_or(1_000_000.0) as f32),
            rope_llama3: None,
            rotary_dim: head_dim,
            features: Features {
                qk_norm: true,
                norm_plus_one: false, // the converter stored 1 + w
                sandwich_norms: true,
                embed_scale: true,
                gelu_mlp: true,
                query_pre_attn_scalar: Some(scalar as f64),
                final_softcap: self.num(&format!("{a}.final_logit_softcapping")).filter(|&c| c > 0.0),
                local_rope_theta: Some(self.num(&format!("{a}.rope.freq_base_swa")).unwrap_or(10_000.0) as f32),
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

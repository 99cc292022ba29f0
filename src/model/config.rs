//! A clean, typed model configuration, read from a Hugging Face `config.json`
//! (or built from GGUF metadata). Field names follow transformers; missing
//! optional fields take transformers' defaults for that architecture.
//! The GPT-NeoX, Gemma and Phi-3 readers are in `config/`.

mod gemma;
mod neox;
mod phi3;

pub use phi3::LongRope;

use super::json::{get_usize, opt_bool, opt_f64, opt_usize, read_json, token_ids};
use crate::error::{Error, Result};
use serde_json::Value;
use std::path::Path;

/// `model_type`s attnviz loads (the decoder's, and Mamba's and Mamba-2's).
pub const SUPPORTED: &[&str] = &[
    "llama",
    "mistral",
    "qwen2",
    "gpt2",
    "mamba",
    "qwen3",
    "gpt_neox",
    "gemma2",
    "gemma3_text",
    "gemma3",
    "phi3",
    "mamba2",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Mistral,
    Qwen2,
    Qwen3,
    Gpt2,
    GptNeox,
    Phi3,
    Gemma2,
    /// Gemma 3's text model, also the text part of a multimodal `gemma3` checkpoint.
    Gemma3,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Mistral => "mistral",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Gpt2 => "gpt2",
            Arch::GptNeox => "gpt_neox",
            Arch::Phi3 => "phi3",
            Arch::Gemma2 => "gemma2",
            Arch::Gemma3 => "gemma3_text",
        }
    }
}

/// Llama 3 frequency scaling (`rope_type: "llama3"`).
#[derive(Debug, Clone, PartialEq)]
pub struct Llama3Scaling {
    pub factor: f32,
    pub low_freq_factor: f32,
    pub high_freq_factor: f32,
    pub original_max_position_embeddings: usize,
}

/// Family pieces beyond the Llama / GPT-2 core; all off by default.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Features {
    /// Per-head RMSNorm of queries and keys before RoPE (Qwen3, Gemma 3).
    pub qk_norm: bool,
    /// x + attn(ln1(x)) + mlp(ln2(x)) instead of two residual steps (GPT-NeoX).
    pub parallel_residual: bool,
    /// RMSNorm scales by (1 + w) (Gemma).
    pub norm_plus_one: bool,
    /// Norms after attention and after the MLP as well as before (Gemma).
    pub sandwich_norms: bool,
    /// Embeddings multiplied by √hidden (Gemma).
    pub embed_scale: bool,
    /// The gated MLP uses tanh GELU instead of SiLU (Gemma's GeGLU).
    pub gelu_mlp: bool,
    /// Scores scaled by 1/√this instead of 1/√head_dim (Gemma).
    pub query_pre_attn_scalar: Option<f64>,
    /// Attention scores become c·tanh(s/c) before the mask (Gemma 2).
    pub attn_softcap: Option<f64>,
    /// Logits become c·tanh(l/c) (Gemma 2).
    pub final_softcap: Option<f64>,
    /// RoPE base of the sliding-window layers when it differs (Gemma 3).
    pub local_rope_theta: Option<f32>,
    /// Positions divided by this in the global layers' RoPE (`rope_type: "linear"`, Gemma 3).
    pub rope_linear_factor: Option<f32>,
    /// LongRoPE frequency factors (Phi-3).
    pub longrope: Option<LongRope>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub arch: Arch,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub max_positions: usize,
    pub norm_eps: f64,
    /// None for learned absolute positions (gpt2).
    pub rope_theta: Option<f32>,
    pub rope_llama3: Option<Llama3Scaling>,
    /// Leading dimensions of each head that RoPE rotates (head_dim unless partial).
    pub rotary_dim: usize,
    /// Pieces beyond the Llama / GPT-2 core, by family.
    pub features: Features,
    /// Per layer: Some(W) when key j is visible to query i iff i − W < j ≤ i.
    pub windows: Vec<Option<usize>>,
    pub tie_embeddings: bool,
    pub qkv_bias: bool,
    pub o_bias: bool,
    pub mlp_bias: bool,
    pub hidden_act: String,
    /// gpt2's `scale_attn_by_inverse_layer_idx`.
    pub scale_by_layer: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
}

impl Config {
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::from_json(&read_json(path)?)
    }

    pub fn from_json(j: &Value) -> Result<Self> {
        let model_type =
            j.get("model_type").and_then(Value::as_str).ok_or_else(|| Error::config("model_type", "missing"))?;
        match model_type {
            "llama" => from_llama_like(j, Arch::Llama),
            "mistral" => from_llama_like(j, Arch::Mistral),
            "qwen2" => from_llama_like(j, Arch::Qwen2),
            "qwen3" => from_llama_like(j, Arch::Qwen3),
            "gpt2" => from_gpt2(j),
            "gpt_neox" => neox::from_gpt_neox(j),
            "phi3" => phi3::from_phi3(j),
            "gemma2" => gemma::from_gemma(j, Arch::Gemma2),
            "gemma3_text" => gemma::from_gemma(j, Arch::Gemma3),
            "gemma3" => gemma::from_gemma3_multimodal(j),
            other => Err(Error::UnsupportedArch(other.to_string())),
        }
    }

    /// How many query heads share one KV head.
    pub fn group_size(&self) -> usize {
        self.num_heads / self.num_kv_heads
    }

    /// The KV head that query head `h` reads.
    pub fn kv_head_of(&self, h: usize) -> usize {
        h / self.group_size()
    }

    /// KV-cache bytes per cached position for one layer (keys + values, f32).
    pub fn kv_bytes_per_position(&self) -> usize {
        2 * self.num_kv_heads * self.head_dim * 4
    }

    /// Check the numbers agree with each other before any weight is read.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_layers),
            ("num_attention_heads", self.num_heads),
            ("num_key_value_heads", self.num_kv_heads),
            ("head_dim", self.head_dim),
            ("max_position_embeddings", self.max_positions),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(Error::config(name, "must be positive"));
            }
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return Err(Error::config(
                "num_key_value_heads",
                format!("{} does not divide num_attention_heads {}", self.num_kv_heads, self.num_heads),
            ));
        }
        if self.rope_theta.is_some() && (!self.rotary_dim.is_multiple_of(2) || self.rotary_dim == 0) {
            return Err(Error::config(
                "head_dim",
                format!("{} rotated dimensions: must be even and positive for RoPE", self.rotary_dim),
            ));
        }
        if self.rotary_dim > self.head_dim {
            return Err(Error::config(
                "partial_rotary_factor",
                format!("rotates {} of {} dimensions", self.rotary_dim, self.head_dim),
            ));
        }
        if self.windows.iter().flatten().any(|&w| w == 0) {
            return Err(Error::config("sliding_window", "must be positive"));
        }
        Ok(())
    }
}

/// RoPE settings: transformers 5 writes `rope_parameters`, older configs
/// `rope_theta` + `rope_scaling`. `theta` is the family's default base.
fn rope(j: &Value) -> Result<(f32, Option<Llama3Scaling>)> {
    rope_with_default(j, 10_000.0)
}

/// The fraction of each head RoPE rotates: `rope_parameters.partial_rotary_factor`
/// (transformers 5), or the top-level key older configs use.
fn partial_rotary_factor(j: &Value, old_key: &str, default: f64) -> Result<f64> {
    let params = j.get("rope_parameters").filter(|v| v.is_object());
    let (key, f) = match params.map(|p| opt_f64(p, "partial_rotary_factor")).transpose()?.flatten() {
        Some(f) => ("rope_parameters.partial_rotary_factor", f),
        None => (old_key, opt_f64(j, old_key)?.unwrap_or(default)),
    };
    if !(f > 0.0 && f <= 1.0) {
        return Err(Error::config(key, format!("{f} is not in (0, 1]")));
    }
    Ok(f)
}

fn rope_with_default(j: &Value, default_theta: f64) -> Result<(f32, Option<Llama3Scaling>)> {
    let params = j.get("rope_parameters").filter(|v| v.is_object());
    let scaling = j.get("rope_scaling").filter(|v| v.is_object());
    let theta = params
        .map(|p| opt_f64(p, "rope_theta"))
        .transpose()?
        .flatten()
        .or(opt_f64(j, "rope_theta")?)
        .unwrap_or(default_theta);
    let Some(s) = params.or(scaling) else {
        return Ok((theta as f32, None));
    };
    let kind = s.get("rope_type").or_else(|| s.get("type")).and_then(Value::as_str).unwrap_or("default");
    match kind {
        "default" => Ok((theta as f32, None)),
        "llama3" => {
            let f = |k: &str| -> Result<f32> {
                opt_f64(s, k)?.map(|v| v as f32).ok_or_else(|| Error::config(format!("rope_scaling.{k}"), "missing"))
            };
            let orig = match opt_usize(s, "original_max_position_embeddings")? {
                Some(v) => v,
                None => get_usize(j, "max_position_embeddings")?,
            };
            Ok((
                theta as f32,
                Some(Llama3Scaling {
                    factor: f("factor")?,
                    low_freq_factor: f("low_freq_factor")?,
                    high_freq_factor: f("high_freq_factor")?,
                    original_max_position_embeddings: orig,
                }),
            ))
        }
        other => Err(Error::config("rope_scaling.rope_type", format!("{other:?} is not supported (default, llama3)"))),
    }
}

/// Per-layer sliding windows, as transformers decides them for each architecture.
fn windows(j: &Value, arch: Arch, layers: usize) -> Result<Vec<Option<usize>>> {
    let window = match arch {
        Arch::Llama | Arch::Gpt2 | Arch::GptNeox => None,
        Arch::Phi3 => opt_usize(j, "sliding_window")?,
        Arch::Mistral => opt_usize(j, "sliding_window")?,
        Arch::Qwen2 | Arch::Qwen3 if opt_bool(j, "use_sliding_window", false)? => opt_usize(j, "sliding_window")?,
        Arch::Qwen2 | Arch::Qwen3 => None,
        Arch::Gemma2 | Arch::Gemma3 => Some(opt_usize(j, "sliding_window")?.unwrap_or(4096)),
    };
    if let Some(types) = j.get("layer_types").and_then(Value::as_array) {
        if types.len() != layers {
            return Err(Error::config("layer_types", format!("has {} entries for {layers} layers", types.len())));
        }
        return types
            .iter()
            .map(|t| match t.as_str() {
                Some("full_attention") => Ok(None),
                Some("sliding_attention") => window.map(Some).ok_or_else(|| {
                    Error::config("sliding_window", "layer_types asks for sliding attention but no window is set")
                }),
                _ => Err(Error::config("layer_types", format!("unknown layer type {t}"))),
            })
            .collect();
    }
    // Gemma without layer_types: every `pattern`-th layer is global (Gemma 2 alternates).
    let pattern = match arch {
        Arch::Gemma2 => 2,
        Arch::Gemma3 => opt_usize(j, "sliding_window_pattern")?.unwrap_or(6).max(1),
        _ => 0,
    };
    if pattern > 0 {
        return Ok((0..layers).map(|i| window.filter(|_| (i + 1) % pattern != 0)).collect());
    }
    let first_sliding = match arch {
        Arch::Qwen2 | Arch::Qwen3 => opt_usize(j, "max_window_layers")?.unwrap_or(28),
        _ => 0,
    };
    Ok((0..layers).map(|i| window.filter(|_| i >= first_sliding)).collect())
}

fn from_llama_like(j: &Value, arch: Arch) -> Result<Config> {
    let hidden_size = get_usize(j, "hidden_size")?;
    let num_heads = get_usize(j, "num_attention_heads")?;
    let num_layers = get_usize(j, "num_hidden_layers")?;
    if num_heads == 0 {
        return Err(Error::config("num_attention_heads", "must be positive"));
    }
    let (theta, llama3) = rope(j)?;
    if partial_rotary_factor(j, "partial_rotary_factor", 1.0)? != 1.0 {
        return Err(Error::config("partial_rotary_factor", format!("is not supported for {}", arch.name())));
    }
    let bias_default = arch == Arch::Qwen2;
    let attention_bias = opt_bool(j, "attention_bias", false)?;
    // Qwen3Config's head_dim defaults to 128, not hidden / heads.
    let default_head_dim = if arch == Arch::Qwen3 { 128 } else { hidden_size / num_heads };
    let head_dim = opt_usize(j, "head_dim")?.unwrap_or(default_head_dim);
    let cfg = Config {
        arch,
        vocab_size: get_usize(j, "vocab_size")?,
        hidden_size,
        intermediate_size: get_usize(j, "intermediate_size")?,
        num_layers,
        num_heads,
        num_kv_heads: opt_usize(j, "num_key_value_heads")?.unwrap_or(num_heads),
        head_dim,
        max_positions: opt_usize(j, "max_position_embeddings")?.unwrap_or(2048),
        norm_eps: opt_f64(j, "rms_norm_eps")?.unwrap_or(1e-6),
        rope_theta: Some(theta),
        rope_llama3: llama3,
        rotary_dim: head_dim,
        features: Features { qk_norm: arch == Arch::Qwen3, ..Features::default() },
        windows: windows(j, arch, num_layers)?,
        tie_embeddings: opt_bool(j, "tie_word_embeddings", false)?,
        qkv_bias: bias_default || attention_bias,
        o_bias: attention_bias,
        mlp_bias: opt_bool(j, "mlp_bias", false)?,
        hidden_act: j.get("hidden_act").and_then(Value::as_str).unwrap_or("silu").to_string(),
        scale_by_layer: false,
        bos_token_id: token_ids(j, "bos_token_id", None)?.first().copied(),
        eos_token_ids: token_ids(j, "eos_token_id", None)?,
    };
    if cfg.hidden_act != "silu" {
        return Err(Error::config("hidden_act", format!("{:?} is not supported (silu)", cfg.hidden_act)));
    }
    cfg.validate()?;
    Ok(cfg)
}

fn from_gpt2(j: &Value) -> Result<Config> {
    let hidden_size = get_usize(j, "n_embd")?;
    let num_heads = get_usize(j, "n_head")?;
    if num_heads == 0 {
        return Err(Error::config("n_head", "must be positive"));
    }
    let num_layers = get_usize(j, "n_layer")?;
    let act = j.get("activation_function").and_then(Value::as_str).unwrap_or("gelu_new").to_string();
    if !matches!(act.as_str(), "gelu_new" | "gelu_pytorch_tanh" | "gelu") {
        return Err(Error::config("activation_function", format!("{act:?} is not supported")));
    }
    if opt_bool(j, "reorder_and_upcast_attn", false)? && !opt_bool(j, "scale_attn_weights", true)? {
        return Err(Error::config("scale_attn_weights", "false is not supported"));
    }
    let cfg = Config {
        arch: Arch::Gpt2,
        vocab_size: get_usize(j, "vocab_size")?,
        hidden_size,
        intermediate_size: opt_usize(j, "n_inner")?.unwrap_or(4 * hidden_size),
        num_layers,
        num_heads,
        num_kv_heads: num_heads,
        head_dim: hidden_size / num_heads,
        max_positions: opt_usize(j, "n_positions")?.unwrap_or(1024),
        norm_eps: opt_f64(j, "layer_norm_epsilon")?.unwrap_or(1e-5),
        rope_theta: None,
        rope_llama3: None,
        rotary_dim: 0,
        features: Features::default(),
        windows: vec![None; num_layers],
        tie_embeddings: true,
        qkv_bias: true,
        o_bias: true,
        mlp_bias: true,
        hidden_act: act,
        scale_by_layer: opt_bool(j, "scale_attn_by_inverse_layer_idx", false)?,
        bos_token_id: token_ids(j, "bos_token_id", None)?.first().copied(),
        eos_token_ids: token_ids(j, "eos_token_id", None)?,
    };
    cfg.validate()?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_architecture_is_named() {
        let err = Config::from_json(&json!({"model_type": "bert"})).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"bert\"") && msg.contains("llama"), "{msg}");
    }

    #[test]
    fn qwen2_windows_start_at_max_window_layers() {
        let j = json!({"model_type": "qwen2", "hidden_size": 8, "intermediate_size": 16,
            "num_hidden_layers": 3, "num_attention_heads": 2, "vocab_size": 10,
            "use_sliding_window": true, "sliding_window": 4, "max_window_layers": 1});
        let c = Config::from_json(&j).unwrap();
        assert_eq!(c.windows, vec![None, Some(4), Some(4)]);
        assert!(c.qkv_bias && !c.o_bias);
    }

    #[test]
    fn qwen3_defaults_and_transformers_5_floats() {
        let j = json!({"model_type": "qwen3", "hidden_size": 8, "intermediate_size": 16,
            "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 10,
            "use_sliding_window": false, "sliding_window": 4,
            "rope_parameters": {"rope_type": "default", "rope_theta": {"__float__": "Infinity"}}});
        let c = Config::from_json(&j).unwrap();
        // Qwen3Config's head_dim defaults to 128 whatever hidden / heads is.
        assert_eq!((c.head_dim, c.rotary_dim, c.windows.clone()), (128, 128, vec![None, None]));
        assert!(c.features.qk_norm && !c.qkv_bias && !c.features.parallel_residual);
        assert_eq!(c.rope_theta, Some(f32::INFINITY));
    }

    #[test]
    fn llama_with_partial_rotary_is_refused() {
        let j = json!({"model_type": "llama", "hidden_size": 8, "intermediate_size": 16,
            "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 10, "partial_rotary_factor": 0.5});
        assert!(Config::from_json(&j).unwrap_err().to_string().contains("partial_rotary_factor"));
    }

    #[test]
    fn gqa_head_map() {
        let j = json!({"model_type": "llama", "hidden_size": 12, "intermediate_size": 16,
            "num_hidden_layers": 1, "num_attention_heads": 6, "num_key_value_heads": 2, "vocab_size": 10});
        let c = Config::from_json(&j).unwrap();
        let map: Vec<_> = (0..6).map(|h| c.kv_head_of(h)).collect();
        assert_eq!(map, vec![0, 0, 0, 1, 1, 1]);
    }

    #[test]
    fn indivisible_kv_heads_rejected() {
        let j = json!({"model_type": "llama", "hidden_size": 8, "intermediate_size": 16,
            "num_hidden_layers": 1, "num_attention_heads": 6, "num_key_value_heads": 4, "vocab_size": 10});
        assert!(Config::from_json(&j).unwrap_err().to_string().contains("num_key_value_heads"));
    }
}

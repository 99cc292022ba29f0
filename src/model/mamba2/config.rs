//! Mamba-2's shape and options from transformers' `Mamba2Config`
//! (`configuration_mamba2.py`, `model_type: "mamba2"`); defaults are that file's.

use crate::error::{Error, Result};
use crate::model::json::{get_usize, number, opt_bool, opt_f64, opt_usize, token_ids};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Mamba2Config {
    pub vocab_size: usize,
    pub d_model: usize,
    pub n_layer: usize,
    /// SSM heads, each with its own scalar A, Δ and D.
    pub heads: usize,
    pub head_dim: usize,
    /// heads · head_dim = expand · d_model channels in the mixer.
    pub d_inner: usize,
    /// N: state size per channel.
    pub d_state: usize,
    /// Groups sharing one B and one C (heads / n_groups heads each).
    pub n_groups: usize,
    /// Causal conv kernel width.
    pub d_conv: usize,
    pub eps: f64,
    pub conv_bias: bool,
    /// Biases on in_proj and out_proj.
    pub proj_bias: bool,
    pub tie_embeddings: bool,
    /// Δ is clamped to [lo, hi] after softplus.
    pub time_step_limit: (f32, f32),
    pub chunk_size: usize,
    pub eos_token_ids: Vec<u32>,
    pub bos_token_id: Option<u32>,
}

impl Mamba2Config {
    pub fn is_mamba2(j: &Value) -> bool {
        j.get("model_type").and_then(Value::as_str) == Some("mamba2")
    }

    pub fn from_json(j: &Value) -> Result<Self> {
        if !Self::is_mamba2(j) {
            let t = j.get("model_type").map_or("missing".to_string(), Value::to_string);
            return Err(Error::config("model_type", format!("{t} is not a Mamba-2 model")));
        }
        let d_model = get_usize(j, "hidden_size")?;
        let expand = opt_usize(j, "expand")?.unwrap_or(2);
        let heads = opt_usize(j, "num_heads")?.unwrap_or(128);
        let head_dim = opt_usize(j, "head_dim")?.unwrap_or(64);
        let d_inner = expand * d_model;
        if heads * head_dim != d_inner {
            return Err(Error::config(
                "num_heads",
                format!("{heads} × head_dim {head_dim} ≠ expand {expand} × hidden_size {d_model}"),
            ));
        }
        let act = j.get("hidden_act").and_then(Value::as_str).unwrap_or("silu");
        if act != "silu" {
            return Err(Error::config("hidden_act", format!("{act:?} is not supported (silu)")));
        }
        if !opt_bool(j, "rms_norm", true)? {
            return Err(Error::config("rms_norm", "false is not supported"));
        }
        let cfg = Mamba2Config {
            vocab_size: get_usize(j, "vocab_size")?,
            d_model,
            n_layer: get_usize(j, "num_hidden_layers")?,
            heads,
            head_dim,
            d_inner,
            d_state: opt_usize(j, "state_size")?.unwrap_or(128),
            n_groups: opt_usize(j, "n_groups")?.unwrap_or(8),
            d_conv: opt_usize(j, "conv_kernel")?.unwrap_or(4),
            eps: opt_f64(j, "layer_norm_epsilon")?.unwrap_or(1e-5),
            conv_bias: opt_bool(j, "use_conv_bias", true)?,
            proj_bias: opt_bool(j, "use_bias", false)?,
            tie_embeddings: opt_bool(j, "tie_word_embeddings", false)?,
            time_step_limit: limit(j)?,
            chunk_size: opt_usize(j, "chunk_size")?.unwrap_or(256),
            eos_token_ids: token_ids(j, "eos_token_id", Some(2))?,
            bos_token_id: token_ids(j, "bos_token_id", Some(0))?.first().copied(),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Channels through the conv: x, then B and C of every group.
    pub fn conv_dim(&self) -> usize {
        self.d_inner + 2 * self.n_groups * self.d_state
    }

    /// f32 recurrent state of all layers: ssm (heads, head_dim, d_state) + conv window (conv_dim, d_conv).
    pub fn state_bytes(&self) -> usize {
        self.n_layer * (self.d_inner * self.d_state + self.conv_dim() * self.d_conv) * std::mem::size_of::<f32>()
    }

    fn validate(&self) -> Result<()> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.d_model),
            ("num_hidden_layers", self.n_layer),
            ("num_heads", self.heads),
            ("head_dim", self.head_dim),
            ("state_size", self.d_state),
            ("n_groups", self.n_groups),
            ("conv_kernel", self.d_conv),
            ("chunk_size", self.chunk_size),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(Error::config(name, "must be positive"));
            }
        }
        if !self.heads.is_multiple_of(self.n_groups) {
            let (h, g) = (self.heads, self.n_groups);
            return Err(Error::config("n_groups", format!("{g} does not divide num_heads {h}")));
        }
        Ok(())
    }
}

/// `time_step_limit`: [lo, hi], hi often written as `{"__float__": "Infinity"}`.
fn limit(j: &Value) -> Result<(f32, f32)> {
    let bad = |v: &Value| Error::config("time_step_limit", format!("expected [min, max], got {v}"));
    match j.get("time_step_limit") {
        None | Some(Value::Null) => Ok((0.0, f32::INFINITY)),
        Some(v) => {
            let a = v.as_array().filter(|a| a.len() == 2).ok_or_else(|| bad(v))?;
            let (lo, hi) = (number(&a[0]).ok_or_else(|| bad(v))?, number(&a[1]).ok_or_else(|| bad(v))?);
            if lo.is_nan() || hi.is_nan() || lo > hi {
                return Err(bad(v));
            }
            Ok((lo as f32, hi as f32))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hf_130m() -> Value {
        // mamba2-130m's config.json as transformers 5 writes it, trimmed to the keys read here.
        json!({"model_type": "mamba2", "hidden_size": 768, "num_hidden_layers": 24, "vocab_size": 50288,
            "num_heads": 24, "head_dim": 64, "expand": 2, "n_groups": 1, "state_size": 128, "conv_kernel": 4,
            "chunk_size": 256, "layer_norm_epsilon": 1e-5, "use_bias": false, "use_conv_bias": true,
            "time_step_limit": [0.0, {"__float__": "Infinity"}], "tie_word_embeddings": true,
            "bos_token_id": 0, "eos_token_id": 0, "hidden_act": "silu", "rms_norm": true})
    }

    #[test]
    fn reads_130m() {
        let c = Mamba2Config::from_json(&hf_130m()).unwrap();
        assert_eq!((c.d_inner, c.heads, c.head_dim, c.d_state, c.n_groups, c.conv_dim()), (1536, 24, 64, 128, 1, 1792));
        assert_eq!(c.time_step_limit, (0.0, f32::INFINITY));
        assert!(c.tie_embeddings && c.conv_bias && !c.proj_bias);
        assert_eq!(c.state_bytes(), 24 * (1536 * 128 + 1792 * 4) * 4);
    }

    #[test]
    fn bad_keys_are_named() {
        let err = |edit: &dyn Fn(&mut Value)| {
            let mut j = hf_130m();
            edit(&mut j);
            Mamba2Config::from_json(&j).unwrap_err().to_string()
        };
        assert_eq!(err(&|j| drop(j.as_object_mut().unwrap().remove("hidden_size"))), "config hidden_size: missing");
        assert!(err(&|j| j["num_heads"] = json!(23)).starts_with("config num_heads: 23 × head_dim 64"));
        assert!(err(&|j| j["n_groups"] = json!(5)).starts_with("config n_groups: 5 does not divide"));
        assert!(err(&|j| j["time_step_limit"] = json!([1.0])).starts_with("config time_step_limit: expected"));
        assert!(!Mamba2Config::is_mamba2(&json!({"model_type": "mamba"})));
    }
}

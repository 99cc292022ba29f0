//! Mamba's shape and options, from either checkpoint naming:
//! transformers' `MambaConfig` (`configuration_mamba.py`, `model_type: "mamba"`)
//! or the original state-spaces `mamba_ssm` `MambaConfig` (`d_model`, `n_layer`,
//! `ssm_cfg`). Defaults are those of the library that wrote each file.

use crate::error::{Error, Result};
use crate::model::json::{get_usize, opt_bool, opt_f64, opt_usize, token_ids};
use serde_json::Value;

/// Which library's tensor names (and config keys) a checkpoint uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// transformers `MambaForCausalLM`: `backbone.embeddings.weight`.
    Hf,
    /// state-spaces `MambaLMHeadModel`: `backbone.embedding.weight`.
    StateSpaces,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MambaConfig {
    /// Rows of the embedding (and logits per position); for state-spaces the
    /// `vocab_size` rounded up to `pad_vocab_size_multiple`.
    pub vocab_size: usize,
    pub d_model: usize,
    pub n_layer: usize,
    /// N: state size per channel.
    pub d_state: usize,
    /// Causal conv kernel width.
    pub d_conv: usize,
    pub expand: usize,
    /// expand · d_model channels in the mixer.
    pub d_inner: usize,
    /// Rank of the Δ projection.
    pub dt_rank: usize,
    pub eps: f64,
    pub conv_bias: bool,
    /// Biases on in_proj and out_proj.
    pub proj_bias: bool,
    pub tie_embeddings: bool,
    /// Empty for state-spaces configs, which carry no ids (take them from the tokenizer).
    pub eos_token_ids: Vec<u32>,
    pub bos_token_id: Option<u32>,
    pub naming: Naming,
}

impl MambaConfig {
    /// A transformers Mamba config, or a state-spaces one (no `model_type`, has `d_model` and `n_layer`).
    pub fn is_mamba(j: &Value) -> bool {
        match j.get("model_type").and_then(Value::as_str) {
            Some(t) => t == "mamba",
            None => j.get("d_model").is_some() && j.get("n_layer").is_some(),
        }
    }

    pub fn from_json(j: &Value) -> Result<Self> {
        let cfg = match j.get("model_type") {
            Some(Value::String(t)) if t == "mamba" => from_hf(j)?,
            Some(other) => return Err(Error::config("model_type", format!("{other} is not a Mamba (v1) model"))),
            None if j.get("d_model").is_some() || j.get("n_layer").is_some() => from_state_spaces(j)?,
            None => return Err(Error::config("model_type", "missing")),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// f32 recurrent state of all layers: ssm (d_inner, d_state) + conv window (d_inner, d_conv).
    pub fn state_bytes(&self) -> usize {
        self.n_layer * self.d_inner * (self.d_state + self.d_conv) * std::mem::size_of::<f32>()
    }

    fn validate(&self) -> Result<()> {
        let (model, layers, state, conv, expand, rank) = match self.naming {
            Naming::Hf => ("hidden_size", "num_hidden_layers", "state_size", "conv_kernel", "expand", "time_step_rank"),
            Naming::StateSpaces => {
                ("d_model", "n_layer", "ssm_cfg.d_state", "ssm_cfg.d_conv", "ssm_cfg.expand", "ssm_cfg.dt_rank")
            }
        };
        let positive = [
            ("vocab_size", self.vocab_size),
            (model, self.d_model),
            (layers, self.n_layer),
            (state, self.d_state),
            (conv, self.d_conv),
            (expand, self.expand),
            (rank, self.dt_rank),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(Error::config(name, "must be positive"));
            }
        }
        Ok(())
    }
}

fn from_hf(j: &Value) -> Result<MambaConfig> {
    let d_model = get_usize(j, "hidden_size")?;
    let expand = opt_usize(j, "expand")?.unwrap_or(2);
    // transformers recomputes intermediate_size = expand · hidden_size and
    // ignores the saved value; a disagreement means a hand-edited file.
    let d_inner = expand * d_model;
    if let Some(saved) = opt_usize(j, "intermediate_size")? {
        if saved != d_inner {
            return Err(Error::config(
                "intermediate_size",
                format!("{saved} disagrees with expand {expand} × hidden_size {d_model}"),
            ));
        }
    }
    let act = j.get("hidden_act").and_then(Value::as_str).unwrap_or("silu");
    if act != "silu" {
        return Err(Error::config("hidden_act", format!("{act:?} is not supported (silu)")));
    }
    Ok(MambaConfig {
        vocab_size: get_usize(j, "vocab_size")?,
        d_model,
        n_layer: get_usize(j, "num_hidden_layers")?,
        d_state: opt_usize(j, "state_size")?.unwrap_or(16),
        d_conv: opt_usize(j, "conv_kernel")?.unwrap_or(4),
        expand,
        d_inner,
        dt_rank: rank(j, "time_step_rank", "time_step_rank", d_model)?,
        eps: opt_f64(j, "layer_norm_epsilon")?.unwrap_or(1e-5),
        conv_bias: opt_bool(j, "use_conv_bias", true)?,
        proj_bias: opt_bool(j, "use_bias", false)?,
        tie_embeddings: opt_bool(j, "tie_word_embeddings", true)?,
        // transformers' MambaConfig defaults both ids to 0 (GPT-NeoX's <|endoftext|>).
        eos_token_ids: token_ids(j, "eos_token_id", Some(0))?,
        bos_token_id: token_ids(j, "bos_token_id", Some(0))?.first().copied(),
        naming: Naming::Hf,
    })
}

fn from_state_spaces(j: &Value) -> Result<MambaConfig> {
    let d_model = get_usize(j, "d_model")?;
    let empty = Value::Object(Default::default());
    let ssm = match j.get("ssm_cfg") {
        None | Some(Value::Null) => &empty,
        Some(v @ Value::Object(_)) => v,
        Some(v) => return Err(Error::config("ssm_cfg", format!("expected an object, got {v}"))),
    };
    let key = |k: &str| format!("ssm_cfg.{k}");
    let sub_usize = |k: &str| opt_usize(ssm, k).map_err(|e| rename(e, &key(k)));
    let sub_bool = |k: &str, d| opt_bool(ssm, k, d).map_err(|e| rename(e, &key(k)));
    if let Some(layer) = ssm.get("layer").and_then(Value::as_str) {
        if layer != "Mamba1" {
            return Err(Error::config("ssm_cfg.layer", format!("{layer:?} is not supported (Mamba1)")));
        }
    }
    if !opt_bool(j, "rms_norm", true)? {
        return Err(Error::config("rms_norm", "false (LayerNorm blocks) is not supported"));
    }
    if opt_usize(j, "d_intermediate")?.unwrap_or(0) != 0 {
        return Err(Error::config("d_intermediate", "MLP blocks are not supported"));
    }
    if j.get("attn_layer_idx").and_then(Value::as_array).is_some_and(|a| !a.is_empty()) {
        return Err(Error::config("attn_layer_idx", "attention layers are not supported"));
    }
    // mamba_ssm pads the embedding (and so the logits) to a multiple of 8 by default.
    let vocab = get_usize(j, "vocab_size")?;
    let multiple = opt_usize(j, "pad_vocab_size_multiple")?.unwrap_or(8).max(1);
    let expand = sub_usize("expand")?.unwrap_or(2);
    Ok(MambaConfig {
        vocab_size: vocab.div_ceil(multiple) * multiple,
        d_model,
        n_layer: get_usize(j, "n_layer")?,
        d_state: sub_usize("d_state")?.unwrap_or(16),
        d_conv: sub_usize("d_conv")?.unwrap_or(4),
        expand,
        d_inner: expand * d_model,
        dt_rank: rank(ssm, "dt_rank", &key("dt_rank"), d_model)?,
        eps: opt_f64(j, "norm_epsilon")?.unwrap_or(1e-5),
        conv_bias: sub_bool("conv_bias", true)?,
        proj_bias: sub_bool("bias", false)?,
        tie_embeddings: opt_bool(j, "tie_embeddings", true)?,
        eos_token_ids: vec![],
        bos_token_id: None,
        naming: Naming::StateSpaces,
    })
}

/// Δ rank: an integer, or "auto" = ⌈d_model / 16⌉ (both libraries).
fn rank(j: &Value, key: &str, shown: &str, d_model: usize) -> Result<usize> {
    match j.get(key) {
        None | Some(Value::Null) => Ok(d_model.div_ceil(16)),
        Some(Value::String(s)) if s == "auto" => Ok(d_model.div_ceil(16)),
        Some(v) => v
            .as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| Error::config(shown, format!("expected an integer or \"auto\", got {v}"))),
    }
}

/// Errors from a nested object name the full path.
fn rename(e: Error, key: &str) -> Error {
    match e {
        Error::Config { msg, .. } => Error::config(key, msg),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hf_130m() -> Value {
        // mamba-130m-hf's config.json, trimmed to the keys read here.
        json!({"model_type": "mamba", "hidden_size": 768, "num_hidden_layers": 24, "vocab_size": 50280,
            "state_size": 16, "conv_kernel": 4, "expand": 2, "intermediate_size": 1536,
            "time_step_rank": 48, "layer_norm_epsilon": 1e-5, "use_bias": false, "use_conv_bias": true,
            "bos_token_id": 0, "eos_token_id": 0, "hidden_act": "silu"})
    }

    #[test]
    fn hf_naming() {
        let c = MambaConfig::from_json(&hf_130m()).unwrap();
        assert!(MambaConfig::is_mamba(&hf_130m()));
        assert_eq!(c.naming, Naming::Hf);
        assert_eq!((c.d_model, c.n_layer, c.d_inner, c.dt_rank, c.d_state, c.d_conv), (768, 24, 1536, 48, 16, 4));
        assert_eq!((c.vocab_size, c.eos_token_ids.clone(), c.bos_token_id), (50280, vec![0], Some(0)));
        assert!(c.conv_bias && !c.proj_bias && c.tie_embeddings);
        assert_eq!(c.state_bytes(), 24 * 1536 * 20 * 4);
    }

    #[test]
    fn hf_reads_every_size_and_auto_rank() {
        let j = json!({"model_type": "mamba", "hidden_size": 40, "num_hidden_layers": 3, "vocab_size": 7,
            "state_size": 5, "conv_kernel": 3, "expand": 3, "time_step_rank": "auto", "use_bias": true,
            "use_conv_bias": false, "tie_word_embeddings": false, "eos_token_id": [1, 2], "layer_norm_epsilon": 1e-6});
        let c = MambaConfig::from_json(&j).unwrap();
        assert_eq!((c.d_state, c.d_conv, c.expand, c.d_inner, c.dt_rank), (5, 3, 3, 120, 3)); // ⌈40/16⌉
        assert!(!c.conv_bias && c.proj_bias && !c.tie_embeddings);
        assert_eq!((c.eos_token_ids.clone(), c.eps), (vec![1, 2], 1e-6));
    }

    #[test]
    fn state_spaces_naming() {
        // state-spaces/mamba-130m's config.json.
        let j = json!({"d_model": 768, "n_layer": 24, "vocab_size": 50277, "ssm_cfg": {}, "rms_norm": true,
            "residual_in_fp32": true, "fused_add_norm": true, "pad_vocab_size_multiple": 8});
        assert!(MambaConfig::is_mamba(&j));
        let c = MambaConfig::from_json(&j).unwrap();
        assert_eq!(c.naming, Naming::StateSpaces);
        assert_eq!((c.vocab_size, c.d_inner, c.dt_rank, c.d_state, c.d_conv, c.eps), (50280, 1536, 48, 16, 4, 1e-5));
        assert!(c.tie_embeddings && c.conv_bias && !c.proj_bias && c.eos_token_ids.is_empty());

        let j = json!({"d_model": 64, "n_layer": 2, "vocab_size": 400, "pad_vocab_size_multiple": 16,
            "ssm_cfg": {"d_state": 8, "d_conv": 3, "expand": 3, "dt_rank": 6, "conv_bias": false, "bias": true}});
        let c = MambaConfig::from_json(&j).unwrap();
        assert_eq!((c.vocab_size, c.d_state, c.d_conv, c.d_inner, c.dt_rank), (400, 8, 3, 192, 6));
        assert!(!c.conv_bias && c.proj_bias);
    }

    #[test]
    fn missing_and_bad_keys_are_named() {
        let mut j = hf_130m();
        j.as_object_mut().unwrap().remove("num_hidden_layers");
        let msg = MambaConfig::from_json(&j).unwrap_err().to_string();
        assert_eq!(msg, "config num_hidden_layers: missing");

        let msg = MambaConfig::from_json(&json!({"n_layer": 2, "vocab_size": 9})).unwrap_err().to_string();
        assert_eq!(msg, "config d_model: missing");

        let j = json!({"d_model": 8, "n_layer": 2, "vocab_size": 9, "ssm_cfg": {"dt_rank": "big"}});
        let msg = MambaConfig::from_json(&j).unwrap_err().to_string();
        assert!(msg.starts_with("config ssm_cfg.dt_rank: expected"), "{msg}");

        let j = json!({"d_model": 8, "n_layer": 2, "vocab_size": 9, "ssm_cfg": {"layer": "Mamba2"}});
        assert!(MambaConfig::from_json(&j).unwrap_err().to_string().contains("ssm_cfg.layer"));

        let mut j = hf_130m();
        j["intermediate_size"] = json!(1000);
        assert!(MambaConfig::from_json(&j).unwrap_err().to_string().contains("intermediate_size"));

        assert!(!MambaConfig::is_mamba(&json!({"model_type": "llama"})));
        assert!(!MambaConfig::is_mamba(&json!({"model_type": "mamba2", "d_model": 8, "n_layer": 2})));
    }
}

//! Gemma 2 and Gemma 3 (text) configs. Older Hub files give `rope_theta`,
//! `rope_local_base_freq`, `rope_scaling` and `sliding_window_pattern`;
//! transformers 5 writes `layer_types` and `rope_parameters` nested per layer
//! type. A multimodal `gemma3` checkpoint's text model is in `text_config`.

use super::{rope_with_default, windows, Arch, Config, Features};
use crate::error::{Error, Result};
use crate::model::json::{get_usize, number, opt_bool, opt_f64, opt_usize, token_ids};
use serde_json::Value;

/// A float that defaults when absent and is off when null (the soft-caps).
fn cap(j: &Value, key: &str, default: Option<f64>) -> Result<Option<f64>> {
    match j.get(key) {
        None => Ok(default),
        Some(Value::Null) => Ok(None),
        Some(v) => number(v).map(Some).ok_or_else(|| Error::config(key, format!("expected a number, got {v}"))),
    }
}

/// The text model of a multimodal `gemma3` checkpoint; token ids may sit at the top level.
pub fn from_gemma3_multimodal(j: &Value) -> Result<Config> {
    let Some(text) = j.get("text_config").filter(|t| t.is_object()) else {
        return Err(Error::config("text_config", "missing (a gemma3 checkpoint keeps its text model there)"));
    };
    let mut text = text.clone();
    for key in ["bos_token_id", "eos_token_id", "tie_word_embeddings"] {
        if let (Some(v), None) = (j.get(key), text.get(key)) {
            text[key] = v.clone();
        }
    }
    from_gemma(&text, Arch::Gemma3)
}

/// Gemma 3's two RoPEs: (global theta, linear factor of the global layers, local theta).
fn gemma3_rope(j: &Value) -> Result<(f32, Option<f32>, f32)> {
    let params = j.get("rope_parameters").filter(|v| v.is_object());
    let nested = params.filter(|p| p.get("full_attention").is_some() || p.get("sliding_attention").is_some());
    let (full, local) = match nested {
        Some(p) => (p.get("full_attention").cloned(), p.get("sliding_attention").cloned()),
        None => (params.or(j.get("rope_scaling").filter(|v| v.is_object())).cloned(), None),
    };
    let full = full.filter(|v| v.is_object()).unwrap_or(Value::Null);
    let local = local.filter(|v| v.is_object()).unwrap_or(Value::Null);
    let theta = opt_f64(&full, "rope_theta")?.or(opt_f64(j, "rope_theta")?).unwrap_or(1_000_000.0);
    let local_theta = opt_f64(&local, "rope_theta")?.or(opt_f64(j, "rope_local_base_freq")?).unwrap_or(10_000.0);
    let kind = |v: &Value| v.get("rope_type").or_else(|| v.get("type")).and_then(Value::as_str).map(str::to_string);
    let linear = match kind(&full).as_deref() {
        None | Some("default") => None,
        Some("linear") => {
            Some(opt_f64(&full, "factor")?.ok_or_else(|| Error::config("rope.factor", "missing"))? as f32)
        }
        Some(other) => {
            return Err(Error::config(
                "rope_parameters.full_attention.rope_type",
                format!("{other:?} is not supported (default, linear)"),
            ))
        }
    };
    if !matches!(kind(&local).as_deref(), None | Some("default")) {
        return Err(Error::config("rope_parameters.sliding_attention.rope_type", "only default is supported"));
    }
    Ok((theta as f32, linear, local_theta as f32))
}

pub fn from_gemma(j: &Value, arch: Arch) -> Result<Config> {
    let hidden_size = get_usize(j, "hidden_size")?;
    let num_heads = get_usize(j, "num_attention_heads")?;
    let num_layers = get_usize(j, "num_hidden_layers")?;
    if num_heads == 0 {
        return Err(Error::config("num_attention_heads", "must be positive"));
    }
    if opt_bool(j, "use_bidirectional_attention", false)? {
        return Err(Error::config("use_bidirectional_attention", "true is not supported (a causal model is needed)"));
    }
    let act = j.get("hidden_activation").or(j.get("hidden_act")).and_then(Value::as_str).unwrap_or("gelu_pytorch_tanh");
    if !matches!(act, "gelu_pytorch_tanh" | "gelu_new") {
        return Err(Error::config("hidden_activation", format!("{act:?} is not supported (gelu_pytorch_tanh)")));
    }
    let gemma2 = arch == Arch::Gemma2;
    let (theta, linear, local) = match gemma2 {
        true => (rope_with_default(j, 10_000.0)?.0, None, None),
        false => {
            let (t, lin, loc) = gemma3_rope(j)?;
            (t, lin, Some(loc))
        }
    };
    let head_dim = opt_usize(j, "head_dim")?.unwrap_or(256);
    let bias = opt_bool(j, "attention_bias", false)?;
    let cfg = Config {
        arch,
        vocab_size: get_usize(j, "vocab_size")?,
        hidden_size,
        intermediate_size: get_usize(j, "intermediate_size")?,
        num_layers,
        num_heads,
        num_kv_heads: opt_usize(j, "num_key_value_heads")?.unwrap_or(num_heads),
        head_dim,
        max_positions: opt_usize(j, "max_position_embeddings")?.unwrap_or(if gemma2 { 8192 } else { 131_072 }),
        norm_eps: opt_f64(j, "rms_norm_eps")?.unwrap_or(1e-6),
        rope_theta: Some(theta),
        rope_llama3: None,
        rotary_dim: head_dim,
        features: Features {
            qk_norm: !gemma2,
            norm_plus_one: true,
            sandwich_norms: true,
            embed_scale: true,
            gelu_mlp: true,
            query_pre_attn_scalar: Some(opt_f64(j, "query_pre_attn_scalar")?.unwrap_or(256.0)),
            attn_softcap: cap(j, "attn_logit_softcapping", if gemma2 { Some(50.0) } else { None })?,
            final_softcap: cap(j, "final_logit_softcapping", if gemma2 { Some(30.0) } else { None })?,
            local_rope_theta: local,
            rope_linear_factor: linear,
            ..Features::default()
        },
        windows: windows(j, arch, num_layers)?,
        tie_embeddings: opt_bool(j, "tie_word_embeddings", true)?,
        qkv_bias: bias,
        o_bias: bias,
        mlp_bias: false,
        hidden_act: act.to_string(),
        scale_by_layer: false,
        bos_token_id: token_ids(j, "bos_token_id", Some(2))?.first().copied(),
        eos_token_ids: token_ids(j, "eos_token_id", Some(1))?,
    };
    if cfg.features.query_pre_attn_scalar.is_some_and(|s| s <= 0.0) {
        return Err(Error::config("query_pre_attn_scalar", "must be positive"));
    }
    cfg.validate()?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// google/gemma-2-2b's config.json (the keys that matter): no layer_types, soft-caps set.
    fn gemma2_2b() -> Value {
        json!({"model_type": "gemma2", "architectures": ["Gemma2ForCausalLM"], "attn_logit_softcapping": 50.0,
            "final_logit_softcapping": 30.0, "head_dim": 256, "hidden_act": "gelu_pytorch_tanh",
            "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 2304, "intermediate_size": 9216,
            "max_position_embeddings": 8192, "num_attention_heads": 8, "num_hidden_layers": 26,
            "num_key_value_heads": 4, "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_theta": 10000.0,
            "sliding_window": 4096, "vocab_size": 256000, "bos_token_id": 2, "eos_token_id": 1,
            "cache_implementation": "hybrid"})
    }

    /// google/gemma-3-1b-it's config.json: the older Gemma 3 keys.
    fn gemma3_1b() -> Value {
        json!({"model_type": "gemma3_text", "architectures": ["Gemma3ForCausalLM"], "attn_logit_softcapping": null,
            "final_logit_softcapping": null, "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh",
            "hidden_size": 1152, "intermediate_size": 6912, "max_position_embeddings": 32768,
            "num_attention_heads": 4, "num_hidden_layers": 26, "num_key_value_heads": 1, "query_pre_attn_scalar": 256,
            "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000, "rope_scaling": null, "rope_theta": 1000000,
            "sliding_window": 512, "sliding_window_pattern": 6, "vocab_size": 262144, "bos_token_id": 2,
            "eos_token_id": [1, 106]})
    }

    #[test]
    fn gemma2_hub_config_alternates_windows() {
        let c = Config::from_json(&gemma2_2b()).unwrap();
        assert_eq!(&c.windows[..3], &[Some(4096), None, Some(4096)]);
        let f = &c.features;
        assert_eq!((f.attn_softcap, f.final_softcap, f.query_pre_attn_scalar), (Some(50.0), Some(30.0), Some(256.0)));
        assert!(f.norm_plus_one && f.sandwich_norms && f.embed_scale && f.gelu_mlp && !f.qk_norm);
        assert_eq!((c.rope_theta, f.local_rope_theta, c.tie_embeddings), (Some(10_000.0), None, true));
    }

    #[test]
    fn gemma3_old_and_new_keys_agree() {
        let old = Config::from_json(&gemma3_1b()).unwrap();
        assert_eq!(old.windows.iter().filter(|w| w.is_none()).count(), 4); // layers 5, 11, 17, 23
        assert_eq!((old.windows[5], old.windows[6]), (None, Some(512)));
        let f = &old.features;
        assert_eq!((f.attn_softcap, f.final_softcap, f.local_rope_theta), (None, None, Some(10_000.0)));
        assert_eq!((old.rope_theta, old.eos_token_ids.clone()), (Some(1_000_000.0), vec![1, 106]));
        // The same model as transformers 5 writes it.
        let mut new = gemma3_1b();
        let o = new.as_object_mut().unwrap();
        for k in ["rope_local_base_freq", "rope_scaling", "rope_theta", "sliding_window_pattern"] {
            o.remove(k);
        }
        let types: Vec<&str> =
            (0..26).map(|i| if (i + 1) % 6 == 0 { "full_attention" } else { "sliding_attention" }).collect();
        new["layer_types"] = json!(types);
        new["rope_parameters"] = json!({"full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}});
        assert_eq!(Config::from_json(&new).unwrap(), old);
    }

    #[test]
    fn gemma3_refusals_are_named() {
        let mut j = gemma3_1b();
        j["use_bidirectional_attention"] = json!(true);
        assert!(Config::from_json(&j).unwrap_err().to_string().contains("use_bidirectional_attention"));
        let mut j = gemma3_1b();
        j["rope_scaling"] = json!({"rope_type": "yarn", "factor": 8.0});
        assert!(Config::from_json(&j).unwrap_err().to_string().contains("\"yarn\" is not supported"));
        let e = Config::from_json(&json!({"model_type": "gemma3"})).unwrap_err().to_string();
        assert!(e.contains("text_config"), "{e}");
    }
}

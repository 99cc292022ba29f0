//! Phi-3 / Phi-3.5 / Phi-4-mini configs: `partial_rotary_factor` (top level
//! on the Hub, inside `rope_parameters` in transformers 5) and LongRoPE
//! (`rope_scaling` / `rope_parameters` of type `longrope`, formerly `su`).

use super::{partial_rotary_factor, windows, Arch, Config, Features};
use crate::error::{Error, Result};
use crate::model::json::{get_usize, number, opt_bool, opt_f64, opt_usize, token_ids};
use serde_json::Value;

/// LongRoPE: per-frequency divisors, short ones up to `original_max` positions
/// and long ones beyond, with cos and sin scaled by `attention_factor`.
#[derive(Debug, Clone, PartialEq)]
pub struct LongRope {
    pub short_factor: Vec<f32>,
    pub long_factor: Vec<f32>,
    /// A forward pass whose last position is at or past this uses the long factors.
    pub original_max: usize,
    pub attention_factor: f32,
}

fn factors(s: &Value, key: &str, n: usize) -> Result<Vec<f32>> {
    let bad = || Error::config(format!("rope_scaling.{key}"), format!("expected a list of {n} numbers"));
    let list = s.get(key).and_then(Value::as_array).ok_or_else(bad)?;
    let out: Vec<f32> = list.iter().map(|v| number(v).map(|x| x as f32)).collect::<Option<_>>().ok_or_else(bad)?;
    if out.len() != n {
        return Err(bad());
    }
    Ok(out)
}

/// (theta, LongRoPE if configured), as `_compute_longrope_parameters` reads them.
fn rope(j: &Value, rotary_dim: usize, max_positions: usize) -> Result<(f32, Option<LongRope>)> {
    let params = j.get("rope_parameters").filter(|v| v.is_object());
    let s = params.or(j.get("rope_scaling").filter(|v| v.is_object()));
    let theta = s.map(|s| opt_f64(s, "rope_theta")).transpose()?.flatten();
    let theta = theta.or(opt_f64(j, "rope_theta")?).unwrap_or(10_000.0) as f32;
    let Some(s) = s else { return Ok((theta, None)) };
    match s.get("rope_type").or_else(|| s.get("type")).and_then(Value::as_str).unwrap_or("default") {
        "default" => return Ok((theta, None)),
        "longrope" | "su" | "yarn" => {}
        other => {
            return Err(Error::config(
                "rope_scaling.rope_type",
                format!("{other:?} is not supported (default, longrope)"),
            ))
        }
    }
    let original_max = match opt_usize(s, "original_max_position_embeddings")? {
        Some(v) => v,
        None => opt_usize(j, "original_max_position_embeddings")?.unwrap_or(max_positions),
    };
    if original_max < 2 {
        return Err(Error::config("original_max_position_embeddings", "must be at least 2"));
    }
    let factor = opt_f64(s, "factor")?.unwrap_or(max_positions as f64 / original_max as f64);
    let attention_factor = match opt_f64(s, "attention_factor")? {
        Some(a) => a,
        None if factor <= 1.0 => 1.0,
        None => (1.0 + factor.ln() / (original_max as f64).ln()).sqrt(),
    };
    Ok((
        theta,
        Some(LongRope {
            short_factor: factors(s, "short_factor", rotary_dim / 2)?,
            long_factor: factors(s, "long_factor", rotary_dim / 2)?,
            original_max,
            attention_factor: attention_factor as f32,
        }),
    ))
}

pub fn from_phi3(j: &Value) -> Result<Config> {
    let hidden_size = get_usize(j, "hidden_size")?;
    let num_heads = get_usize(j, "num_attention_heads")?;
    let num_layers = get_usize(j, "num_hidden_layers")?;
    if num_heads == 0 {
        return Err(Error::config("num_attention_heads", "must be positive"));
    }
    let head_dim = opt_usize(j, "head_dim")?.unwrap_or(hidden_size / num_heads);
    let max_positions = opt_usize(j, "max_position_embeddings")?.unwrap_or(4096);
    let rotary_dim = (head_dim as f64 * partial_rotary_factor(j, "partial_rotary_factor", 1.0)?) as usize;
    let (theta, longrope) = rope(j, rotary_dim, max_positions)?;
    let act = j.get("hidden_act").and_then(Value::as_str).unwrap_or("silu");
    if act != "silu" {
        return Err(Error::config("hidden_act", format!("{act:?} is not supported (silu)")));
    }
    // Phi3Attention passes config.sliding_window to every layer.
    let window = opt_usize(j, "sliding_window")?;
    let cfg = Config {
        arch: Arch::Phi3,
        vocab_size: get_usize(j, "vocab_size")?,
        hidden_size,
        intermediate_size: get_usize(j, "intermediate_size")?,
        num_layers,
        num_heads,
        num_kv_heads: opt_usize(j, "num_key_value_heads")?.unwrap_or(num_heads),
        head_dim,
        max_positions,
        norm_eps: opt_f64(j, "rms_norm_eps")?.unwrap_or(1e-5),
        rope_theta: Some(theta),
        rope_llama3: None,
        rotary_dim,
        features: Features { longrope, ..Features::default() },
        windows: match j.get("layer_types") {
            Some(_) => windows(j, Arch::Phi3, num_layers)?,
            None => vec![window; num_layers],
        },
        tie_embeddings: opt_bool(j, "tie_word_embeddings", false)?,
        qkv_bias: false,
        o_bias: false,
        mlp_bias: false,
        hidden_act: act.to_string(),
        scale_by_layer: false,
        bos_token_id: token_ids(j, "bos_token_id", Some(1))?.first().copied(),
        eos_token_ids: token_ids(j, "eos_token_id", Some(32000))?,
    };
    cfg.validate()?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// microsoft/Phi-4-mini-instruct's config.json, the keys that matter (factors shortened to their count).
    fn phi4_mini() -> Value {
        let f: Vec<f64> = (0..48).map(|i| 1.0 + i as f64 / 10.0).collect();
        json!({"model_type": "phi3", "architectures": ["Phi3ForCausalLM"], "hidden_size": 3072,
            "intermediate_size": 8192, "num_attention_heads": 24, "num_key_value_heads": 8, "num_hidden_layers": 32,
            "max_position_embeddings": 131072, "original_max_position_embeddings": 4096,
            "partial_rotary_factor": 0.75, "rope_theta": 10000.0, "rms_norm_eps": 1e-05, "sliding_window": 262144,
            "tie_word_embeddings": true, "vocab_size": 200064, "hidden_act": "silu",
            "rope_scaling": {"long_factor": f, "short_factor": f, "type": "longrope"},
            "bos_token_id": 199999, "eos_token_id": 199999})
    }

    #[test]
    fn phi4_mini_partial_rotary_and_longrope() {
        let c = Config::from_json(&phi4_mini()).unwrap();
        assert_eq!((c.head_dim, c.rotary_dim, c.num_kv_heads, c.windows[0]), (128, 96, 8, Some(262144)));
        let l = c.features.longrope.unwrap();
        assert_eq!((l.original_max, l.short_factor.len()), (4096, 48));
        // sqrt(1 + ln(32) / ln(4096))
        assert!((l.attention_factor - 1.190_239).abs() < 1e-6, "{}", l.attention_factor);
    }

    #[test]
    fn wrong_factor_count_is_named() {
        let mut j = phi4_mini();
        j["partial_rotary_factor"] = json!(1.0);
        let e = Config::from_json(&j).unwrap_err().to_string();
        assert!(e.contains("short_factor") && e.contains("64 numbers"), "{e}");
    }
}

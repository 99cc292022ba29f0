//! GPT-NeoX / Pythia configs, in both forms: the Hub's (`rotary_pct`,
//! `rotary_emb_base`) and the one transformers 5 writes (`rope_parameters`
//! with `partial_rotary_factor`).

use super::{partial_rotary_factor, rope_with_default, windows, Arch, Config, Features};
use crate::error::{Error, Result};
use crate::model::json::{get_usize, opt_bool, opt_f64, opt_usize, token_ids};
use serde_json::Value;

pub fn from_gpt_neox(j: &Value) -> Result<Config> {
    let hidden_size = get_usize(j, "hidden_size")?;
    let num_heads = get_usize(j, "num_attention_heads")?;
    let num_layers = get_usize(j, "num_hidden_layers")?;
    if num_heads == 0 || hidden_size % num_heads != 0 {
        return Err(Error::config(
            "num_attention_heads",
            format!("{num_heads} does not divide hidden_size {hidden_size}"),
        ));
    }
    let head_dim = hidden_size / num_heads;
    let base = opt_f64(j, "rotary_emb_base")?.unwrap_or(10_000.0);
    let (theta, llama3) = rope_with_default(j, base)?;
    if llama3.is_some() {
        return Err(Error::config("rope_parameters.rope_type", "llama3 is not supported for gpt_neox"));
    }
    // GPTNeoXConfig: partial_rotary_factor, else rotary_pct, else 0.25.
    let fraction = partial_rotary_factor(j, "rotary_pct", 0.25)?;
    let act = j.get("hidden_act").and_then(Value::as_str).unwrap_or("gelu").to_string();
    if !matches!(act.as_str(), "gelu" | "gelu_new" | "gelu_pytorch_tanh") {
        return Err(Error::config("hidden_act", format!("{act:?} is not supported (gelu, gelu_new)")));
    }
    let bias = opt_bool(j, "attention_bias", true)?;
    let cfg = Config {
        arch: Arch::GptNeox,
        vocab_size: get_usize(j, "vocab_size")?,
        hidden_size,
        intermediate_size: get_usize(j, "intermediate_size")?,
        num_layers,
        num_heads,
        num_kv_heads: num_heads,
        head_dim,
        max_positions: opt_usize(j, "max_position_embeddings")?.unwrap_or(2048),
        norm_eps: opt_f64(j, "layer_norm_eps")?.unwrap_or(1e-5),
        rope_theta: Some(theta),
        rope_llama3: None,
        // int(head_dim * factor), as transformers truncates it
        rotary_dim: (head_dim as f64 * fraction) as usize,
        features: Features { parallel_residual: opt_bool(j, "use_parallel_residual", true)?, ..Features::default() },
        windows: windows(j, Arch::GptNeox, num_layers)?,
        tie_embeddings: opt_bool(j, "tie_word_embeddings", false)?,
        qkv_bias: bias,
        o_bias: bias,
        mlp_bias: true,
        hidden_act: act,
        scale_by_layer: false,
        bos_token_id: token_ids(j, "bos_token_id", Some(0))?.first().copied(),
        eos_token_ids: token_ids(j, "eos_token_id", Some(2))?,
    };
    cfg.validate()?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// EleutherAI/pythia-160m's config.json as the Hub holds it.
    fn pythia_160m() -> Value {
        json!({"architectures": ["GPTNeoXForCausalLM"], "bos_token_id": 0, "eos_token_id": 0,
            "hidden_act": "gelu", "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 3072,
            "layer_norm_eps": 1e-05, "max_position_embeddings": 2048, "model_type": "gpt_neox",
            "num_attention_heads": 12, "num_hidden_layers": 12, "rotary_emb_base": 10000, "rotary_pct": 0.25,
            "tie_word_embeddings": false, "torch_dtype": "float16", "transformers_version": "4.24.0",
            "use_cache": true, "use_parallel_residual": true, "vocab_size": 50304})
    }

    #[test]
    fn hub_pythia_config() {
        let c = Config::from_json(&pythia_160m()).unwrap();
        assert_eq!((c.head_dim, c.rotary_dim, c.rope_theta, c.num_kv_heads), (64, 16, Some(10_000.0), 12));
        assert!(c.features.parallel_residual && c.qkv_bias && c.o_bias && !c.tie_embeddings);
        assert_eq!((c.bos_token_id, c.eos_token_ids.clone()), (Some(0), vec![0]));
    }

    #[test]
    fn transformers_5_form_wins_over_the_old_keys() {
        let mut j = pythia_160m();
        j["rope_parameters"] = json!({"rope_type": "default", "rope_theta": 500.0, "partial_rotary_factor": 0.5});
        j["use_parallel_residual"] = json!(false);
        let c = Config::from_json(&j).unwrap();
        assert_eq!((c.rotary_dim, c.rope_theta, c.features.parallel_residual), (32, Some(500.0), false));
        j["rope_parameters"]["partial_rotary_factor"] = json!(1.5);
        assert!(Config::from_json(&j).unwrap_err().to_string().contains("partial_rotary_factor: 1.5 is not"));
    }
}

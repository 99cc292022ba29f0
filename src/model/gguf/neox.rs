//! GGUF files of llama.cpp's `gptneox` architecture (`conversion/gptneox.py`
//! `GPTNeoXModel`, Pythia). The converter regroups the fused q/k/v rows from
//! per head (q, k, v of head 0, then head 1, …) to all q, all k, all v; they
//! are grouped back here so the GPT-NeoX loader reads the checkpoint's layout.
//! It writes no RoPE base (llama.cpp then uses 10000, as every Pythia does)
//! and no activation: GPT-NeoX's is exact GELU (llama.cpp computes the tanh
//! approximation), which is what this reader takes, as transformers does.

use super::{Gguf, Rows, Target};
use crate::error::{Error, Result};
use crate::model::config::{Arch, Config, Features};
use crate::model::weights::Weights;
use candle_core::quantized::gguf_file::Value;
use candle_core::{DType, Device};
use std::fs::File;
use std::path::Path;

impl Gguf {
    pub(super) fn neox_config(&self, path: &Path) -> Result<Config> {
        let a = &self.arch;
        let hidden = self.count(path, "embedding_length")?;
        let heads = self.count(path, "attention.head_count")?;
        let layers = self.count(path, "block_count")?;
        if heads == 0 || !hidden.is_multiple_of(heads) {
            return Err(Error::bad_file(
                path,
                format!("GGUF metadata {a}.attention.head_count {heads} does not divide {a}.embedding_length {hidden}"),
            ));
        }
        let head_dim = hidden / heads;
        let eps_key = format!("{a}.attention.layer_norm_epsilon");
        let eps = self.num(&eps_key).ok_or_else(|| Error::bad_file(path, format!("GGUF metadata has no {eps_key}")))?;
        let parallel =
            !matches!(self.content.metadata.get(&format!("{a}.use_parallel_residual")), Some(Value::Bool(false)));
        let has = |name: &str| self.content.tensor_infos.contains_key(name);
        let bias = has("blk.0.attn_qkv.bias");
        let id = |key: &str| self.num(key).map(|v| v as u32);
        let cfg = Config {
            arch: Arch::GptNeox,
            vocab_size: self.dims(path, "token_embd.weight")?.first().copied().unwrap_or(0),
            hidden_size: hidden,
            intermediate_size: self.count(path, "feed_forward_length")?,
            num_layers: layers,
            num_heads: heads,
            num_kv_heads: heads,
            head_dim,
            max_positions: self.count(path, "context_length")?,
            norm_eps: eps,
            rope_theta: Some(self.num(&format!("{a}.rope.freq_base")).unwrap_or(10_000.0) as f32),
            rope_llama3: None,
            rotary_dim: self.num(&format!("{a}.rope.dimension_count")).map_or(head_dim, |v| v as usize),
            features: Features { parallel_residual: parallel, ..Features::default() },
            windows: vec![None; layers],
            tie_embeddings: !has("output.weight"),
            qkv_bias: bias,
            o_bias: bias,
            mlp_bias: true,
            hidden_act: "gelu".into(),
            scale_by_layer: false,
            bos_token_id: id("tokenizer.ggml.bos_token_id"),
            eos_token_ids: id("tokenizer.ggml.eos_token_id").into_iter().collect(),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The tensors under transformers' `GPTNeoXForCausalLM` names.
    pub(super) fn neox_weights(
        &self,
        file: &mut File,
        path: &Path,
        cfg: &Config,
        device: &Device,
        dtype: DType,
    ) -> Result<Weights> {
        self.tensors(file, path, device, dtype, |name| {
            let rows = if name.contains(".attn_qkv.") { Rows::PerHeadQkv(cfg.num_heads) } else { Rows::AsStored };
            Some(Target { name: neox_name(name)?, rows, reshape: None, map: None })
        })
    }
}

/// llama.cpp's GPT-NeoX tensor name → transformers' (None for tensors not used).
fn neox_name(name: &str) -> Option<String> {
    let (module, kind) = name.rsplit_once('.')?;
    let fixed = match module {
        "token_embd" => Some("gpt_neox.embed_in"),
        "output_norm" => Some("gpt_neox.final_layer_norm"),
        "output" => Some("embed_out"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(format!("{f}.{kind}"));
    }
    let (layer, part) = module.strip_prefix("blk.")?.split_once('.')?;
    let hf = match part {
        "attn_norm" => "input_layernorm",
        "attn_qkv" => "attention.query_key_value",
        "attn_output" => "attention.dense",
        "ffn_norm" => "post_attention_layernorm",
        "ffn_up" => "mlp.dense_h_to_4h",
        "ffn_down" => "mlp.dense_4h_to_h",
        _ => return None,
    };
    Some(format!("gpt_neox.layers.{layer}.{hf}.{kind}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_transformers() {
        let cases = [
            ("token_embd.weight", "gpt_neox.embed_in.weight"),
            ("output_norm.bias", "gpt_neox.final_layer_norm.bias"),
            ("output.weight", "embed_out.weight"),
            ("blk.2.attn_norm.bias", "gpt_neox.layers.2.input_layernorm.bias"),
            ("blk.0.attn_qkv.weight", "gpt_neox.layers.0.attention.query_key_value.weight"),
            ("blk.0.attn_output.bias", "gpt_neox.layers.0.attention.dense.bias"),
            ("blk.1.ffn_norm.weight", "gpt_neox.layers.1.post_attention_layernorm.weight"),
            ("blk.1.ffn_up.weight", "gpt_neox.layers.1.mlp.dense_h_to_4h.weight"),
            ("blk.1.ffn_down.bias", "gpt_neox.layers.1.mlp.dense_4h_to_h.bias"),
        ];
        for (gguf, hf) in cases {
            assert_eq!(neox_name(gguf).as_deref(), Some(hf), "{gguf}");
        }
        assert_eq!(neox_name("blk.0.attn_q.weight"), None);
    }
}

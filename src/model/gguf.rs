//! GGUF files (llama.cpp's format): metadata becomes a `Config`, tensors are
//! dequantized to f32 and renamed to their Hugging Face names, so the same
//! decoder runs them. llama.cpp's converter permutes the rows of q/k for its
//! interleaved RoPE; we undo that so RoPE and captured queries and keys are
//! in transformers' layout. Gemma, GPT-NeoX, Phi-3, Mamba and Mamba-2 files
//! are read in `gguf/`.

mod gemma;
mod mamba;
mod mamba2;
mod neox;
mod phi3;

use super::config::{Arch, Config, Features};
use super::gemv::GemvWeights;
use super::weights::{one_line, Weights};
use crate::error::{Error, Result};
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

/// `general.architecture` values this reader loads.
pub const ARCHS: &[&str] = &["llama", "qwen2", "qwen3", "gemma2", "gemma3", "gptneox", "phi3", "mamba", "mamba2"];

pub struct Gguf {
    pub content: Content,
    pub arch: String,
}

impl Gguf {
    pub fn open(path: &Path) -> Result<(Self, File)> {
        let mut file = File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound { path: path.into() },
            _ => Error::io(path, e),
        })?;
        let content = Content::read(&mut file)
            .map_err(|e| Error::bad_file(path, format!("not a valid GGUF file ({})", one_line(&e))))?;
        let arch = content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .ok_or_else(|| Error::bad_file(path, "GGUF metadata has no general.architecture"))?;
        if !ARCHS.contains(&arch.as_str()) {
            let msg = format!("GGUF architecture {arch:?} is not supported; supported: {}", ARCHS.join(", "));
            return Err(Error::bad_file(path, msg));
        }
        Ok((Self { content, arch }, file))
    }

    fn num(&self, key: &str) -> Option<f64> {
        number(self.content.metadata.get(key)?)
    }

    fn count(&self, path: &Path, key: &str) -> Result<usize> {
        let full = format!("{}.{key}", self.arch);
        self.num(&full).map(|v| v as usize).ok_or_else(|| Error::bad_file(path, format!("GGUF metadata has no {full}")))
    }

    /// The typed config this file describes (a transformer's; see `mamba_config`
    /// and `mamba2_config` for those). Phi-3's LongRoPE factors are tensors, read from `file`.
    pub fn config(&self, file: &mut File, path: &Path) -> Result<Config> {
        let arch = match self.arch.as_str() {
            "llama" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            "qwen3" => Arch::Qwen3,
            "gemma2" => return self.gemma_config(path, Arch::Gemma2),
            "gemma3" => return self.gemma_config(path, Arch::Gemma3),
            "gptneox" => return self.neox_config(path),
            "phi3" => return self.phi3_config(file, path),
            other => return Err(Error::bad_file(path, format!("GGUF architecture {other:?} is not a transformer"))),
        };
        let a = &self.arch;
        let hidden = self.count(path, "embedding_length")?;
        let heads = self.count(path, "attention.head_count")?;
        let layers = self.count(path, "block_count")?;
        let kv_heads = self.num(&format!("{a}.attention.head_count_kv")).map_or(heads, |v| v as usize);
        let vocab = match self.content.tensor_infos.get("token_embd.weight") {
            Some(info) => info.shape.dims()[0],
            None => return Err(Error::Weights(format!("tensor token_embd.weight is missing from {}", path.display()))),
        };
        if self.content.tensor_infos.contains_key("rope_freqs.weight") {
            return Err(Error::bad_file(path, "RoPE frequency factors (rope_freqs.weight) are not supported yet"));
        }
        let window = self.num(&format!("{a}.attention.sliding_window")).map(|v| v as usize);
        let eos = self.num("tokenizer.ggml.eos_token_id").map(|v| v as u32);
        let head_dim = self.num(&format!("{a}.attention.key_length")).map_or(hidden / heads.max(1), |v| v as usize);
        let cfg = Config {
            arch,
            vocab_size: vocab,
            hidden_size: hidden,
            intermediate_size: self.count(path, "feed_forward_length")?,
            num_layers: layers,
            num_heads: heads,
            num_kv_heads: kv_heads,
            head_dim,
            max_positions: self.count(path, "context_length")?,
            norm_eps: self.num(&format!("{a}.attention.layer_norm_rms_epsilon")).unwrap_or(1e-5),
            rope_theta: Some(self.num(&format!("{a}.rope.freq_base")).unwrap_or(10_000.0) as f32),
            rope_llama3: None,
            rotary_dim: self.num(&format!("{a}.rope.dimension_count")).map_or(head_dim, |v| v as usize),
            features: Features { qk_norm: arch == Arch::Qwen3, ..Features::default() },
            windows: vec![window; layers],
            tie_embeddings: !self.content.tensor_infos.contains_key("output.weight"),
            qkv_bias: arch == Arch::Qwen2,
            o_bias: false,
            mlp_bias: false,
            hidden_act: "silu".into(),
            scale_by_layer: false,
            bos_token_id: self.num("tokenizer.ggml.bos_token_id").map(|v| v as u32),
            eos_token_ids: eos.into_iter().collect(),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Every tensor under its Hugging Face name: matrices the CPU kernels can
    /// stream stay in their ggml blocks, the rest is dequantized to f32.
    pub fn weights(
        &self,
        file: &mut File,
        path: &Path,
        cfg: &Config,
        device: &Device,
        dtype: DType,
    ) -> Result<Weights> {
        if cfg.arch == Arch::GptNeox {
            return self.neox_weights(file, path, cfg, device, dtype);
        }
        self.tensors(file, path, device, dtype, |name| {
            // llama.cpp permuted q/k rows for its interleaved RoPE.
            let rows = match (cfg.arch, name.ends_with("attn_q.weight"), name.ends_with("attn_k.weight")) {
                (Arch::Llama, true, _) => Rows::UnpermuteQk(cfg.num_heads),
                (Arch::Llama, _, true) => Rows::UnpermuteQk(cfg.num_kv_heads),
                _ => Rows::AsStored,
            };
            Some(Target { name: hf_name(name, cfg.arch)?, rows, reshape: None, map: None })
        })
    }

    /// The tensors `target` names, under the names it gives: 2-D ones the CPU
    /// kernels can stream stay in their ggml blocks, the rest become f32.
    fn tensors(
        &self,
        file: &mut File,
        path: &Path,
        device: &Device,
        dtype: DType,
        target: impl Fn(&str) -> Option<Target>,
    ) -> Result<Weights> {
        let mut map = HashMap::new();
        let mut rows = HashMap::new();
        let mut names: Vec<&String> = self.content.tensor_infos.keys().collect();
        names.sort();
        let bad = |name: &str, e: candle_core::Error| Error::bad_file(path, format!("tensor {name}: {}", one_line(&e)));
        for name in names {
            let Some(Target { name: hf, rows: reorder, reshape, map: f }) = target(name) else { continue };
            let q = self.content.tensor(file, name, &Device::Cpu).map_err(|e| bad(name, e))?;
            let order = reorder.order(q.shape().dims().first().copied().unwrap_or(0))?;
            if let (&[r, c], None, None) = (q.shape().dims(), &reshape, f) {
                let bytes = q.data().map_err(|e| bad(name, e))?;
                if let Some(mut g) = GemvWeights::from_ggml(q.dtype(), r, c, &bytes) {
                    if let Some(order) = &order {
                        g.permute_rows(order);
                    }
                    rows.insert(hf, g);
                    continue;
                }
            }
            let mut t = q.dequantize(&Device::Cpu).map_err(|e| bad(name, e))?;
            if let Some(order) = order {
                let index = Tensor::new(order.iter().map(|&i| i as u32).collect::<Vec<_>>(), &Device::Cpu)?;
                t = t.index_select(&index, 0).map_err(|e| bad(name, e))?;
            }
            if let Some(f) = f {
                t = f(&t).map_err(|e| bad(name, e))?;
            }
            if let Some(shape) = reshape {
                t = t.reshape(shape).map_err(|e| bad(name, e))?;
            }
            map.insert(hf, t);
        }
        Ok(Weights::from_parts(map, rows, path, device, dtype))
    }
}

/// Where one GGUF tensor goes in `Weights`.
struct Target {
    /// The checkpoint name the model's loader reads.
    name: String,
    /// How llama.cpp reordered the rows (outermost axis).
    rows: Rows,
    /// Dequantize and reshape to this (so never kept as rows).
    reshape: Option<Vec<usize>>,
    /// Dequantize and apply this (before `reshape`), for values stored in another form.
    map: Option<Map>,
}

/// A conversion of a dequantized tensor.
type Map = fn(&Tensor) -> candle_core::Result<Tensor>;

/// Row orders llama.cpp's converter applies, undone at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rows {
    AsStored,
    /// Llama's q/k of this many heads, permuted for interleaved RoPE.
    UnpermuteQk(usize),
    /// GPT-NeoX's fused q/k/v of this many heads: stored as all q, all k, all v;
    /// the checkpoint groups them per head (q, k, v of head 0, then head 1, …).
    PerHeadQkv(usize),
}

impl Rows {
    /// New row r = stored row order[r] (None: as stored).
    fn order(self, rows: usize) -> Result<Option<Vec<usize>>> {
        match self {
            Rows::AsStored => Ok(None),
            Rows::UnpermuteQk(heads) => unpermute_order(rows, heads).map(Some),
            Rows::PerHeadQkv(heads) => {
                if heads == 0 || !rows.is_multiple_of(3 * heads) {
                    return Err(Error::Weights(format!("fused q/k/v rows {rows} do not split into 3 × {heads} heads")));
                }
                let (d, width) = (rows / 3 / heads, rows / 3);
                // checkpoint row (h, j, i) of (heads, 3, d) is stored row (j, h, i) of (3, heads, d)
                Ok(Some((0..rows).map(|r| (r / d % 3) * width + r / (3 * d) * d + r % d).collect()))
            }
        }
    }
}

fn number(v: &Value) -> Option<f64> {
    Some(match v {
        Value::U8(x) => *x as f64,
        Value::I8(x) => *x as f64,
        Value::U16(x) => *x as f64,
        Value::I16(x) => *x as f64,
        Value::U32(x) => *x as f64,
        Value::I32(x) => *x as f64,
        Value::U64(x) => *x as f64,
        Value::I64(x) => *x as f64,
        Value::F32(x) => *x as f64,
        Value::F64(x) => *x,
        _ => return None,
    })
}

/// GGUF tensor name → Hugging Face name (None for tensors we do not use).
/// Gemma: `ffn_norm` is the MLP's pre-norm, beside its post-norms. Phi-3:
/// `attn_qkv` and `ffn_up` are the fused `qkv_proj` and `gate_up_proj`.
fn hf_name(name: &str, arch: Arch) -> Option<String> {
    let fixed = match name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    let (module, kind) = part.rsplit_once('.')?;
    let gemma = matches!(arch, Arch::Gemma2 | Arch::Gemma3);
    let phi3 = arch == Arch::Phi3;
    let hf = match module {
        "attn_norm" => "input_layernorm",
        "ffn_norm" if gemma => "pre_feedforward_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "post_attention_norm" => "post_attention_layernorm",
        "post_ffw_norm" => "post_feedforward_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_qkv" if phi3 => "self_attn.qkv_proj",
        "attn_output" => "self_attn.o_proj",
        "attn_q_norm" => "self_attn.q_norm",
        "attn_k_norm" => "self_attn.k_norm",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" if phi3 => "mlp.gate_up_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{kind}"))
}

/// Row order that undoes llama.cpp's `permute`: HF row (h, j, i) of layout
/// (heads, 2, d/2) was stored at (h, i, j) of layout (heads, d/2, 2).
fn unpermute_order(rows: usize, heads: usize) -> Result<Vec<usize>> {
    if heads == 0 || !rows.is_multiple_of(2 * heads) {
        return Err(Error::Weights(format!("q/k rows {rows} do not split into {heads} heads")));
    }
    let d = rows / heads;
    let half = d / 2;
    Ok((0..rows)
        .map(|r| {
            let (h, j, i) = (r / d, (r % d) / half, r % half);
            h * d + 2 * i + j
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_hugging_face() {
        let llama = |n| hf_name(n, Arch::Llama);
        assert_eq!(llama("blk.3.attn_q.weight").as_deref(), Some("model.layers.3.self_attn.q_proj.weight"));
        assert_eq!(llama("blk.0.ffn_down.weight").as_deref(), Some("model.layers.0.mlp.down_proj.weight"));
        assert_eq!(llama("output.weight").as_deref(), Some("lm_head.weight"));
        assert_eq!(llama("rope_freqs.weight"), None);
        assert_eq!(llama("blk.0.attn_qkv.weight"), None);
        let ffn = |arch| hf_name("blk.1.ffn_norm.weight", arch);
        assert_eq!(ffn(Arch::Qwen3).as_deref(), Some("model.layers.1.post_attention_layernorm.weight"));
        assert_eq!(ffn(Arch::Gemma2).as_deref(), Some("model.layers.1.pre_feedforward_layernorm.weight"));
        let phi3 = |n| hf_name(n, Arch::Phi3);
        assert_eq!(phi3("blk.1.attn_qkv.weight").as_deref(), Some("model.layers.1.self_attn.qkv_proj.weight"));
        assert_eq!(phi3("blk.1.ffn_up.weight").as_deref(), Some("model.layers.1.mlp.gate_up_proj.weight"));
        assert_eq!(phi3("rope_factors_long.weight"), None);
    }

    /// Rows as values: each row of the result holds the index of the stored row it came from.
    fn reordered(rows: Rows, n: usize) -> Vec<f32> {
        let stored = Tensor::arange(0f32, n as f32, &Device::Cpu).unwrap();
        let order = rows.order(n).unwrap().unwrap();
        let index = Tensor::new(order.iter().map(|&i| i as u32).collect::<Vec<_>>(), &Device::Cpu).unwrap();
        stored.index_select(&index, 0).unwrap().to_vec1().unwrap()
    }

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        // One head of dim 4: HF rows [a0 a1 b0 b1] are stored by llama.cpp as [a0 b0 a1 b1].
        assert_eq!(reordered(Rows::UnpermuteQk(1), 4), vec![0., 2., 1., 3.]);
        assert_eq!(unpermute_order(4, 1).unwrap(), vec![0, 2, 1, 3]);
        assert!(Rows::UnpermuteQk(3).order(8).is_err());
        assert_eq!(Rows::AsStored.order(8).unwrap(), None);
    }

    #[test]
    fn neox_qkv_goes_back_to_per_head_groups() {
        // 2 heads of dim 2, stored [q0 q0 q1 q1 k0 k0 k1 k1 v0 v0 v1 v1] (rows 0..12);
        // the checkpoint wants [q0 q0 k0 k0 v0 v0 q1 q1 k1 k1 v1 v1].
        let want = [0, 1, 4, 5, 8, 9, 2, 3, 6, 7, 10, 11].map(|i| i as f32);
        assert_eq!(reordered(Rows::PerHeadQkv(2), 12), want);
        assert!(Rows::PerHeadQkv(2).order(10).is_err());
    }
}

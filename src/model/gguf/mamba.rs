//! GGUF files of llama.cpp's `mamba` architecture, as its converter writes them
//! (`convert_hf_to_gguf.py`, `conversion/mamba.py` `MambaModel`): the `mamba.*`
//! metadata becomes a `MambaConfig` and the tensors take transformers'
//! `MambaForCausalLM` names, which `Mamba::load` reads. Two tensors are stored
//! differently: `ssm_a` holds A = −exp(A_log) itself (handed over as `mixer.A`,
//! which `Mamba::load` uses unchanged) and `ssm_conv1d` is squeezed to
//! (d_inner, d_conv) (reshaped back to (d_inner, 1, d_conv)).

use super::{number, Gguf, Rows, Target};
use crate::error::{Error, Result};
use crate::model::mamba::{MambaConfig, Naming};
use crate::model::weights::Weights;
use candle_core::quantized::gguf_file::Value;
use candle_core::{DType, Device};
use std::fs::File;
use std::path::Path;

impl Gguf {
    /// The Mamba this file describes; every size comes from the metadata.
    pub fn mamba_config(&self, path: &Path) -> Result<MambaConfig> {
        let size = |key: &str| -> Result<usize> {
            match self.count(path, key)? {
                0 => Err(Error::bad_file(path, format!("GGUF metadata {}.{key} must be positive", self.arch))),
                n => Ok(n),
            }
        };
        let (d_model, n_layer) = (size("embedding_length")?, size("block_count")?);
        let (d_conv, d_inner) = (size("ssm.conv_kernel")?, size("ssm.inner_size")?);
        let (d_state, dt_rank) = (size("ssm.state_size")?, size("ssm.time_step_rank")?);
        let eps_key = "mamba.attention.layer_norm_rms_epsilon";
        let eps = self.num(eps_key).ok_or_else(|| Error::bad_file(path, format!("GGUF metadata has no {eps_key}")))?;
        // Falcon-Mamba normalizes Δ, B and C inside the mixer; Mamba v1 does not.
        if let Some(Value::Bool(true)) = self.content.metadata.get("mamba.ssm.dt_b_c_rms") {
            return Err(Error::bad_file(path, "mamba.ssm.dt_b_c_rms (Falcon-Mamba's Δ/B/C norms) is not supported"));
        }
        if d_inner % d_model != 0 {
            return Err(Error::bad_file(
                path,
                format!("mamba.ssm.inner_size {d_inner} is not a multiple of mamba.embedding_length {d_model}"),
            ));
        }
        let vocab_size = self.dims(path, "token_embd.weight")?.first().copied().unwrap_or(0);
        let has = |name: &str| self.content.tensor_infos.contains_key(name);
        let id = |key: &str| self.content.metadata.get(key).and_then(number).map(|v| v as u32);
        Ok(MambaConfig {
            vocab_size,
            d_model,
            n_layer,
            d_state,
            d_conv,
            expand: d_inner / d_model,
            d_inner,
            dt_rank,
            eps,
            conv_bias: has("blk.0.ssm_conv1d.bias"),
            proj_bias: has("blk.0.ssm_in.bias"),
            tie_embeddings: !has("output.weight"),
            eos_token_ids: id("tokenizer.ggml.eos_token_id").into_iter().collect(),
            bos_token_id: id("tokenizer.ggml.bos_token_id"),
            naming: Naming::Hf,
        })
    }

    /// The tensors under the names `Mamba::load` reads, after checking that
    /// each is present with the shape the metadata implies (named as in the file).
    pub fn mamba_weights(
        &self,
        file: &mut File,
        path: &Path,
        cfg: &MambaConfig,
        device: &Device,
        dtype: DType,
    ) -> Result<Weights> {
        self.check_shapes(path, expected(cfg, self.content.tensor_infos.contains_key("output.weight")))?;
        let conv = vec![cfg.d_inner, 1, cfg.d_conv];
        self.tensors(file, path, device, dtype, |name| {
            let hf = hf_name(name)?;
            let reshape = hf.ends_with("conv1d.weight").then(|| conv.clone());
            Some(Target { name: hf, rows: Rows::AsStored, reshape, map: None })
        })
    }

    /// Each tensor is present with the shape the metadata implies (named as in the file).
    pub(super) fn check_shapes(&self, path: &Path, expected: Vec<(String, Vec<usize>)>) -> Result<()> {
        for (name, want) in expected {
            let got = self.dims(path, &name)?;
            if got != want {
                return Err(Error::Weights(format!(
                    "{name} in {} has shape {got:?} but the GGUF metadata implies {want:?}",
                    path.display()
                )));
            }
        }
        Ok(())
    }

    /// A tensor's shape, outermost first (as PyTorch writes it).
    pub(super) fn dims(&self, path: &Path, name: &str) -> Result<Vec<usize>> {
        match self.content.tensor_infos.get(name) {
            Some(info) => Ok(info.shape.dims().to_vec()),
            None => Err(Error::Weights(format!("tensor {name} is missing from {}", path.display()))),
        }
    }
}

/// Every tensor the model needs, with its shape.
fn expected(c: &MambaConfig, untied: bool) -> Vec<(String, Vec<usize>)> {
    let (dm, di, n, k, r) = (c.d_model, c.d_inner, c.d_state, c.d_conv, c.dt_rank);
    let mut out = vec![("token_embd.weight".to_string(), vec![c.vocab_size, dm])];
    for l in 0..c.n_layer {
        let mut t = |part: &str, shape: Vec<usize>| out.push((format!("blk.{l}.{part}"), shape));
        t("attn_norm.weight", vec![dm]);
        t("ssm_in.weight", vec![2 * di, dm]);
        t("ssm_conv1d.weight", vec![di, k]);
        t("ssm_x.weight", vec![r + 2 * n, di]);
        t("ssm_dt.weight", vec![di, r]);
        t("ssm_dt.bias", vec![di]);
        t("ssm_a", vec![di, n]);
        t("ssm_d", vec![di]);
        t("ssm_out.weight", vec![dm, di]);
        if c.conv_bias {
            t("ssm_conv1d.bias", vec![di]);
        }
        if c.proj_bias {
            t("ssm_in.bias", vec![2 * di]);
            t("ssm_out.bias", vec![dm]);
        }
    }
    out.push(("output_norm.weight".into(), vec![dm]));
    if untied {
        out.push(("output.weight".into(), vec![c.vocab_size, dm]));
    }
    out
}

/// llama.cpp's names of the tensors outside the layers → transformers' (Mamba and Mamba-2).
pub(super) fn outer_name(name: &str) -> Option<&'static str> {
    match name {
        "token_embd.weight" => Some("backbone.embeddings.weight"),
        "output_norm.weight" => Some("backbone.norm_f.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    }
}

/// llama.cpp's Mamba tensor name → transformers' (None for tensors not used).
fn hf_name(name: &str) -> Option<String> {
    if let Some(f) = outer_name(name) {
        return Some(f.to_string());
    }
    let (layer, part) = name.strip_prefix("blk.")?.split_once('.')?;
    let p = format!("backbone.layers.{layer}");
    Some(match part {
        // Stored without a `.weight` suffix.
        "ssm_a" => format!("{p}.mixer.A"),
        "ssm_d" => format!("{p}.mixer.D"),
        _ => {
            let (module, kind) = part.split_once('.')?;
            let hf = match module {
                "attn_norm" => return Some(format!("{p}.norm.{kind}")),
                "ssm_in" => "in_proj",
                "ssm_conv1d" => "conv1d",
                "ssm_x" => "x_proj",
                "ssm_dt" => "dt_proj",
                "ssm_out" => "out_proj",
                _ => return None,
            };
            format!("{p}.mixer.{hf}.{kind}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_transformers() {
        let cases = [
            ("token_embd.weight", "backbone.embeddings.weight"),
            ("output.weight", "lm_head.weight"),
            ("output_norm.weight", "backbone.norm_f.weight"),
            ("blk.3.attn_norm.weight", "backbone.layers.3.norm.weight"),
            ("blk.0.ssm_in.weight", "backbone.layers.0.mixer.in_proj.weight"),
            ("blk.1.ssm_conv1d.bias", "backbone.layers.1.mixer.conv1d.bias"),
            ("blk.1.ssm_x.weight", "backbone.layers.1.mixer.x_proj.weight"),
            ("blk.1.ssm_dt.bias", "backbone.layers.1.mixer.dt_proj.bias"),
            ("blk.12.ssm_a", "backbone.layers.12.mixer.A"),
            ("blk.12.ssm_d", "backbone.layers.12.mixer.D"),
            ("blk.0.ssm_out.weight", "backbone.layers.0.mixer.out_proj.weight"),
        ];
        for (gguf, hf) in cases {
            assert_eq!(hf_name(gguf).as_deref(), Some(hf), "{gguf}");
        }
        assert_eq!(hf_name("blk.0.ssm_norm.weight"), None);
        assert_eq!(hf_name("rope_freqs.weight"), None);
    }

    #[test]
    fn expected_shapes_follow_the_config() {
        let cfg = MambaConfig {
            vocab_size: 10,
            d_model: 4,
            n_layer: 2,
            d_state: 3,
            d_conv: 2,
            expand: 2,
            d_inner: 8,
            dt_rank: 1,
            eps: 1e-5,
            conv_bias: false,
            proj_bias: false,
            tie_embeddings: true,
            eos_token_ids: vec![],
            bos_token_id: None,
            naming: Naming::Hf,
        };
        let all = expected(&cfg, false);
        assert_eq!(all.len(), 1 + 2 * 9 + 1);
        let shape = |n: &str| all.iter().find(|(name, _)| name == n).map(|(_, s)| s.clone());
        assert_eq!(shape("blk.1.ssm_x.weight"), Some(vec![1 + 2 * 3, 8]));
        assert_eq!(shape("blk.0.ssm_conv1d.weight"), Some(vec![8, 2]));
        assert_eq!(shape("blk.0.ssm_conv1d.bias"), None);
        assert_eq!(expected(&cfg, true).last().map(|(n, _)| n.as_str()), Some("output.weight"));
    }
}

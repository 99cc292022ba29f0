//! GGUF files of llama.cpp's `mamba2` architecture (`conversion/mamba.py`
//! `Mamba2Model`): the `mamba2.*` metadata becomes a `Mamba2Config` (heads =
//! `ssm.time_step_rank`, groups = `ssm.group_count`) and the tensors take
//! transformers' `Mamba2ForCausalLM` names, which `Mamba2::load` reads. Stored
//! differently: `ssm_a` holds A = −exp(A_log) as (heads, 1) (handed over as
//! A_log = ln(−A), computed in f64), `ssm_d` is (heads, 1), the gated norm's
//! weight is (n_groups, d_inner / n_groups), the conv is squeezed to
//! (conv_dim, d_conv) and `dt_bias` is `ssm_dt.bias`. The file has no
//! `time_step_limit` (llama.cpp clamps nothing: [0, ∞)) and no `chunk_size`
//! (the recurrence here is exact at any).

use super::{Gguf, Map, Rows, Target};
use crate::error::{Error, Result};
use crate::model::mamba2::Mamba2Config;
use crate::model::weights::Weights;
use candle_core::{DType, Device, Tensor};
use std::fs::File;
use std::path::Path;

impl Gguf {
    /// The Mamba-2 this file describes; every size comes from the metadata.
    pub fn mamba2_config(&self, path: &Path) -> Result<Mamba2Config> {
        let size = |key: &str| -> Result<usize> {
            match self.count(path, key)? {
                0 => Err(Error::bad_file(path, format!("GGUF metadata {}.{key} must be positive", self.arch))),
                n => Ok(n),
            }
        };
        let (d_model, n_layer) = (size("embedding_length")?, size("block_count")?);
        let (d_conv, d_inner, d_state) = (size("ssm.conv_kernel")?, size("ssm.inner_size")?, size("ssm.state_size")?);
        let (heads, n_groups) = (size("ssm.time_step_rank")?, size("ssm.group_count")?);
        let eps_key = "mamba2.attention.layer_norm_rms_epsilon";
        let eps = self.num(eps_key).ok_or_else(|| Error::bad_file(path, format!("GGUF metadata has no {eps_key}")))?;
        let (a, di) = (&self.arch, d_inner);
        if !di.is_multiple_of(heads) {
            let msg = format!("{a}.ssm.inner_size {di} does not split into {a}.ssm.time_step_rank {heads} heads");
            return Err(Error::bad_file(path, msg));
        }
        if !heads.is_multiple_of(n_groups) {
            let msg = format!("{a}.ssm.group_count {n_groups} does not divide the {heads} heads");
            return Err(Error::bad_file(path, msg));
        }
        let has = |name: &str| self.content.tensor_infos.contains_key(name);
        let id = |key: &str| self.num(key).map(|v| v as u32);
        Ok(Mamba2Config {
            vocab_size: self.dims(path, "token_embd.weight")?.first().copied().unwrap_or(0),
            d_model,
            n_layer,
            heads,
            head_dim: d_inner / heads,
            d_inner,
            d_state,
            n_groups,
            d_conv,
            eps,
            conv_bias: has("blk.0.ssm_conv1d.bias"),
            proj_bias: has("blk.0.ssm_in.bias"),
            tie_embeddings: !has("output.weight"),
            time_step_limit: (0.0, f32::INFINITY),
            chunk_size: 256,
            eos_token_ids: id("tokenizer.ggml.eos_token_id").into_iter().collect(),
            bos_token_id: id("tokenizer.ggml.bos_token_id"),
        })
    }

    /// The tensors under the names `Mamba2::load` reads, after checking that
    /// each is present with the shape the metadata implies (named as in the file).
    pub fn mamba2_weights(
        &self,
        file: &mut File,
        path: &Path,
        cfg: &Mamba2Config,
        device: &Device,
        dtype: DType,
    ) -> Result<Weights> {
        self.check_shapes(path, expected(cfg, self.content.tensor_infos.contains_key("output.weight")))?;
        let (h, di, cd, k) = (cfg.heads, cfg.d_inner, cfg.conv_dim(), cfg.d_conv);
        self.tensors(file, path, device, dtype, |name| {
            let hf = hf_name(name)?;
            let (reshape, map): (_, Option<Map>) = match name.rsplit('.').next() {
                Some("ssm_a") => (Some(vec![h]), Some(a_log)),
                Some("ssm_d") => (Some(vec![h]), None),
                _ if name.ends_with("ssm_norm.weight") => (Some(vec![di]), None),
                _ if name.ends_with("ssm_conv1d.weight") => (Some(vec![cd, 1, k]), None),
                _ => (None, None),
            };
            Some(Target { name: hf, rows: Rows::AsStored, reshape, map })
        })
    }
}

/// A_log = ln(−A) from the stored A = −exp(A_log), in f64.
fn a_log(a: &Tensor) -> candle_core::Result<Tensor> {
    a.to_dtype(DType::F64)?.neg()?.log()?.to_dtype(DType::F32)
}

/// Every tensor the model needs, with its shape.
fn expected(c: &Mamba2Config, untied: bool) -> Vec<(String, Vec<usize>)> {
    let (dm, di, h, cd, k) = (c.d_model, c.d_inner, c.heads, c.conv_dim(), c.d_conv);
    let mut out = vec![("token_embd.weight".to_string(), vec![c.vocab_size, dm])];
    for l in 0..c.n_layer {
        let mut t = |part: &str, shape: Vec<usize>| out.push((format!("blk.{l}.{part}"), shape));
        t("attn_norm.weight", vec![dm]);
        t("ssm_in.weight", vec![di + cd + h, dm]);
        t("ssm_conv1d.weight", vec![cd, k]);
        t("ssm_dt.bias", vec![h]);
        t("ssm_a", vec![h, 1]);
        t("ssm_d", vec![h, 1]);
        t("ssm_norm.weight", vec![c.n_groups, di / c.n_groups]);
        t("ssm_out.weight", vec![dm, di]);
        if c.conv_bias {
            t("ssm_conv1d.bias", vec![cd]);
        }
        if c.proj_bias {
            t("ssm_in.bias", vec![di + cd + h]);
            t("ssm_out.bias", vec![dm]);
        }
    }
    out.push(("output_norm.weight".into(), vec![dm]));
    if untied {
        out.push(("output.weight".into(), vec![c.vocab_size, dm]));
    }
    out
}

/// llama.cpp's Mamba-2 tensor name → transformers' (None for tensors not used).
fn hf_name(name: &str) -> Option<String> {
    if let Some(f) = super::mamba::outer_name(name) {
        return Some(f.to_string());
    }
    let (layer, part) = name.strip_prefix("blk.")?.split_once('.')?;
    let (p, m) = (format!("backbone.layers.{layer}"), format!("backbone.layers.{layer}.mixer"));
    Some(match part {
        // Stored without a `.weight` suffix.
        "ssm_a" => format!("{m}.A_log"),
        "ssm_d" => format!("{m}.D"),
        "ssm_dt.bias" => format!("{m}.dt_bias"),
        "attn_norm.weight" => format!("{p}.norm.weight"),
        "ssm_norm.weight" => format!("{m}.norm.weight"),
        _ => {
            let (module, kind) = part.split_once('.')?;
            let hf = match module {
                "ssm_in" => "in_proj",
                "ssm_conv1d" => "conv1d",
                "ssm_out" => "out_proj",
                _ => return None,
            };
            format!("{m}.{hf}.{kind}")
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
            ("output_norm.weight", "backbone.norm_f.weight"),
            ("blk.3.attn_norm.weight", "backbone.layers.3.norm.weight"),
            ("blk.0.ssm_in.weight", "backbone.layers.0.mixer.in_proj.weight"),
            ("blk.1.ssm_conv1d.bias", "backbone.layers.1.mixer.conv1d.bias"),
            ("blk.1.ssm_dt.bias", "backbone.layers.1.mixer.dt_bias"),
            ("blk.12.ssm_a", "backbone.layers.12.mixer.A_log"),
            ("blk.12.ssm_d", "backbone.layers.12.mixer.D"),
            ("blk.0.ssm_norm.weight", "backbone.layers.0.mixer.norm.weight"),
            ("blk.0.ssm_out.weight", "backbone.layers.0.mixer.out_proj.weight"),
        ];
        for (gguf, hf) in cases {
            assert_eq!(hf_name(gguf).as_deref(), Some(hf), "{gguf}");
        }
        assert_eq!(hf_name("blk.0.ssm_x.weight"), None);
    }

    #[test]
    fn a_is_stored_as_minus_exp_a_log() {
        let a = Tensor::new(&[[-1f32], [-2.5], [-0.125]], &Device::Cpu).unwrap();
        let back: Vec<f32> = a_log(&a).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let want = [0f32, 2.5f32.ln(), 0.125f32.ln()];
        assert!(back.iter().zip(want).all(|(x, y)| (x - y).abs() < 1e-7), "{back:?}");
    }
}

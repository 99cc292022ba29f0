//! Reading a Mamba model's weights for `Replay`: the zoo's embedded bytes, a
//! local folder or a Hub id in Hugging Face form, as f32 on the CPU, with
//! either naming (transformers' or state-spaces'). GGUF files are not read.

use super::{Replay, ReplayDims, ReplayLayer};
use crate::error::{Error, Result};
use crate::model::mamba::{MambaConfig, Naming};
use crate::model::source::{self, Source};
use crate::model::weights::Weights;
use candle_core::{DType, Device};
use std::path::Path;

pub fn weights(src: &str) -> Result<Replay> {
    let (cfg, w) = match Source::parse(src)? {
        Source::Zoo(m) => {
            let (config, bytes, _) = m.parts()?;
            let json = serde_json::from_str(config).map_err(|e| Error::Usage(format!("{src}: config.json: {e}")))?;
            (config_of(src, &json)?, Weights::from_embedded(Path::new(m.name), bytes, &Device::Cpu, DType::F32)?)
        }
        Source::Folder(dir) => files(src, &source::folder_files(&dir)?)?,
        Source::Hub { id, revision } => files(src, &source::hub_files(&id, &revision)?)?,
        Source::Gguf(_) => return Err(Error::Usage(format!("{src}: the scan replay reads safetensors, not GGUF"))),
    };
    from(&cfg, &w)
}

fn config_of(src: &str, json: &serde_json::Value) -> Result<MambaConfig> {
    if !MambaConfig::is_mamba(json) {
        return Err(Error::Usage(format!("{src} is not a Mamba model")));
    }
    MambaConfig::from_json(json)
}

fn files(src: &str, f: &source::ModelFiles) -> Result<(MambaConfig, Weights)> {
    let cfg = config_of(src, &crate::model::json::read_json(&f.config)?)?;
    Ok((cfg, Weights::from_files(&f.weights, &Device::Cpu, DType::F32)?))
}

fn from(cfg: &MambaConfig, w: &Weights) -> Result<Replay> {
    let (dm, di, n, k, r) = (cfg.d_model, cfg.d_inner, cfg.d_state, cfg.d_conv, cfg.dt_rank);
    let get = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
        Ok(w.get(name, shape)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
    };
    let opt = |name: &str, shape: &[usize]| -> Result<Option<Vec<f32>>> {
        if w.contains(name) {
            get(name, shape).map(Some)
        } else {
            Ok(None)
        }
    };
    let (mine, other) = match cfg.naming {
        Naming::Hf => ("backbone.embeddings.weight", "backbone.embedding.weight"),
        Naming::StateSpaces => ("backbone.embedding.weight", "backbone.embeddings.weight"),
    };
    let embed = get(if !w.contains(mine) && w.contains(other) { other } else { mine }, &[cfg.vocab_size, dm])?;
    let mut layers = Vec::with_capacity(cfg.n_layer);
    for l in 0..cfg.n_layer {
        let m = format!("backbone.layers.{l}.mixer");
        let a = match opt(&format!("{m}.A"), &[di, n])? {
            Some(a) => a,
            None => Replay::a_of(&get(&format!("{m}.A_log"), &[di, n])?),
        };
        layers.push(ReplayLayer {
            norm: get(&format!("backbone.layers.{l}.norm.weight"), &[dm])?,
            in_proj: get(&format!("{m}.in_proj.weight"), &[2 * di, dm])?,
            in_bias: opt(&format!("{m}.in_proj.bias"), &[2 * di])?,
            conv_w: get(&format!("{m}.conv1d.weight"), &[di, 1, k])?,
            conv_b: if cfg.conv_bias { opt(&format!("{m}.conv1d.bias"), &[di])? } else { None },
            x_proj: get(&format!("{m}.x_proj.weight"), &[r + 2 * n, di])?,
            dt_w: get(&format!("{m}.dt_proj.weight"), &[di, r])?,
            dt_b: get(&format!("{m}.dt_proj.bias"), &[di])?,
            a,
            d: get(&format!("{m}.D"), &[di])?,
            out_proj: get(&format!("{m}.out_proj.weight"), &[dm, di])?,
            out_bias: opt(&format!("{m}.out_proj.bias"), &[dm])?,
        });
    }
    let dims = ReplayDims {
        vocab: cfg.vocab_size,
        d_model: dm,
        d_inner: di,
        d_state: n,
        d_conv: k,
        dt_rank: r,
        eps: cfg.eps as f32,
    };
    Replay::from_weights(dims, embed, layers)
}

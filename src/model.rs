//! Loading models: a `--model SRC` string becomes a ready `Model` and its
//! `Tokenizer`, whatever the source (folder, Hub id, GGUF).

pub mod catalog;
pub mod config;
pub mod decoder;
pub mod engine;
pub mod flash;
pub mod gemv;
pub mod gguf;
pub mod json;
pub mod kv_cache;
pub mod layers;
pub mod mamba;
pub mod mamba2;
pub mod rope;
pub mod source;
pub mod tokenizer;
pub mod weights;
pub mod zoo;

use crate::error::{Error, Result};
use candle_core::{DType, Device};
use config::Config;
use decoder::Decoder;
pub use engine::{Capture, Forward, Model};
use source::{ModelFiles, Source};
use std::path::Path;
use tokenizer::Tokenizer;

/// A model ready to run.
pub struct Loaded {
    pub model: Model,
    pub tokenizer: Tokenizer,
    /// What the user named, for display and trace metadata.
    pub source: String,
}

/// A pass's token ids are not empty and inside the vocabulary (every family checks this first).
pub(crate) fn check_ids(ids: &[u32], vocab_size: usize) -> Result<()> {
    if ids.is_empty() {
        return Err(Error::Prompt("nothing to feed".into()));
    }
    match ids.iter().find(|&&id| id as usize >= vocab_size) {
        Some(bad) => Err(Error::Prompt(format!("token id {bad} is outside the vocabulary of {vocab_size}"))),
        None => Ok(()),
    }
}

/// `cpu`, `cuda` or `cuda:N`.
pub fn device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        _ if name == "cuda" || name.starts_with("cuda:") => {
            let ordinal = match name.strip_prefix("cuda:") {
                Some(n) => n.parse().map_err(|_| Error::Usage(format!("--device {name}: bad GPU number")))?,
                None => 0,
            };
            if !candle_core::utils::cuda_is_available() {
                return Err(Error::Usage(format!(
                    "--device {name}: this attnviz was built without CUDA (rebuild with --features cuda)"
                )));
            }
            Ok(Device::new_cuda(ordinal)?)
        }
        _ => Err(Error::Usage(format!("--device {name}: expected cpu, cuda or cuda:N"))),
    }
}

pub fn load(src: &str, device: &Device) -> Result<Loaded> {
    let (model, tokenizer) = match Source::parse(src)? {
        Source::Folder(dir) => load_files(&source::folder_files(&dir)?, device)?,
        Source::Hub { id, revision } => load_files(&source::hub_files(&id, &revision)?, device)?,
        Source::Gguf(path) => load_gguf(&path, device)?,
        Source::Zoo(m) => load_zoo(m, device)?,
    };
    Ok(Loaded { model, tokenizer, source: src.to_string() })
}

fn load_files(files: &ModelFiles, device: &Device) -> Result<(Model, Tokenizer)> {
    let json = json::read_json(&files.config)?;
    let dir = files.config.parent().unwrap_or(Path::new("."));
    let extra_eos = generation_eos(&dir.join("generation_config.json"))?;
    // Parse the config before touching weights, so a wrong architecture is named first.
    let family = family(&json, &extra_eos)?;
    let tokenizer = Tokenizer::from_files(&files.tokenizer, files.tokenizer_config.as_deref())?;
    let weights = weights::Weights::from_files(&files.weights, device, DType::F32)?;
    Ok((build(family, &weights)?, tokenizer))
}

/// A zoo model from the bytes compiled into the binary.
fn load_zoo(m: &'static zoo::Embedded, device: &Device) -> Result<(Model, Tokenizer)> {
    let origin = Path::new(m.name);
    let (config, weights, tokenizer) = m.parts()?;
    let parse = |text: &str, file: &str| -> Result<serde_json::Value> {
        serde_json::from_str(text).map_err(|e| Error::bad_file(origin.join(file), format!("not valid JSON ({e})")))
    };
    let extra_eos = match m.generation_config {
        Some(text) => eos_ids(&parse(text, "generation_config.json")?),
        None => vec![],
    };
    let family = family(&parse(config, "config.json")?, &extra_eos)?;
    let tokenizer = Tokenizer::from_json_text(tokenizer, m.tokenizer_config, origin)?;
    let weights = weights::Weights::from_embedded(origin, weights, device, DType::F32)?;
    Ok((build(family, &weights)?, tokenizer))
}

/// A parsed config of one of the families.
enum Family {
    Decoder(Box<Config>),
    Mamba(mamba::MambaConfig),
    Mamba2(mamba2::Mamba2Config),
}

/// The typed config of the family, with generation_config's eos ids merged in.
fn family(json: &serde_json::Value, extra_eos: &[u32]) -> Result<Family> {
    Ok(if mamba::MambaConfig::is_mamba(json) {
        let mut cfg = mamba::MambaConfig::from_json(json)?;
        merge(&mut cfg.eos_token_ids, extra_eos);
        Family::Mamba(cfg)
    } else if mamba2::Mamba2Config::is_mamba2(json) {
        let mut cfg = mamba2::Mamba2Config::from_json(json)?;
        merge(&mut cfg.eos_token_ids, extra_eos);
        Family::Mamba2(cfg)
    } else {
        let mut cfg = Config::from_json(json)?;
        merge(&mut cfg.eos_token_ids, extra_eos);
        Family::Decoder(Box::new(cfg))
    })
}

fn build(family: Family, weights: &weights::Weights) -> Result<Model> {
    Ok(match family {
        Family::Decoder(cfg) => Model::Decoder(Decoder::load(*cfg, weights)?),
        Family::Mamba(cfg) => Model::Mamba(mamba::Mamba::load(cfg, weights)?),
        Family::Mamba2(cfg) => Model::Mamba2(mamba2::Mamba2::load(cfg, weights)?),
    })
}

fn load_gguf(path: &Path, device: &Device) -> Result<(Model, Tokenizer)> {
    let (gguf, mut file) = gguf::Gguf::open(path)?;
    if gguf.arch == "mamba" {
        let cfg = gguf.mamba_config(path)?;
        let tokenizer = Tokenizer::from_gguf(&gguf.content.metadata, path)?;
        let weights = gguf.mamba_weights(&mut file, path, &cfg, device, DType::F32)?;
        return Ok((Model::Mamba(mamba::Mamba::load(cfg, &weights)?), tokenizer));
    }
    if gguf.arch == "mamba2" {
        let cfg = gguf.mamba2_config(path)?;
        let tokenizer = Tokenizer::from_gguf(&gguf.content.metadata, path)?;
        let weights = gguf.mamba2_weights(&mut file, path, &cfg, device, DType::F32)?;
        return Ok((Model::Mamba2(mamba2::Mamba2::load(cfg, &weights)?), tokenizer));
    }
    let cfg = gguf.config(&mut file, path)?;
    let tokenizer = Tokenizer::from_gguf(&gguf.content.metadata, path)?;
    let weights = gguf.weights(&mut file, path, &cfg, device, DType::F32)?;
    Ok((Model::Decoder(Decoder::load(cfg, &weights)?), tokenizer))
}

fn merge(ids: &mut Vec<u32>, extra: &[u32]) {
    for &id in extra {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
}

/// `generate()` stops at the eos ids of generation_config.json too.
fn generation_eos(path: &Path) -> Result<Vec<u32>> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(vec![]) };
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::bad_file(path, format!("not valid JSON ({e})")))?;
    Ok(eos_ids(&json))
}

fn eos_ids(json: &serde_json::Value) -> Vec<u32> {
    match json.get("eos_token_id") {
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_u64()).map(|v| v as u32).collect(),
        Some(v) => v.as_u64().map(|v| v as u32).into_iter().collect(),
        None => vec![],
    }
}

//! What `attnviz models` lists: the zoo built into the binary and the
//! models in the local Hugging Face cache, described from their config and
//! safetensors headers alone (no weights are read).

use super::config::Config;
use super::mamba::MambaConfig;
use super::mamba2::Mamba2Config;
use super::{source, zoo};
use crate::error::{Error, Result};
use serde::Serialize;
use serde_json::Value;
use std::io::Read;
use std::path::Path;

#[derive(Serialize, Debug, Clone)]
pub struct Entry {
    /// What to pass to `--model`.
    pub name: String,
    /// "zoo" or "hf-cache".
    pub origin: &'static str,
    pub arch: String,
    /// How tokens mix: MHA, GQA, MQA (+ sliding window), or SSM for Mamba.
    pub mixing: String,
    /// None where the weights are not safetensors (their header gives the count).
    pub parameters: Option<usize>,
    pub layers: usize,
    /// Query heads and key/value heads; None for Mamba.
    pub heads: Option<(usize, usize)>,
    /// Sliding window, where any layer has one.
    pub window: Option<usize>,
    /// f32 KV cache added per token (0 for Mamba, whose state is fixed).
    pub kv_bytes_per_token: usize,
    /// Mamba's fixed recurrent state, f32.
    pub state_bytes: Option<usize>,
    /// The zoo's training record (steps, tokens, time, losses).
    pub training: Option<Value>,
}

/// Describe a model from its config.json and the bytes of its safetensors header(s).
pub fn describe(name: &str, origin: &'static str, cfg: &Value, parameters: Option<usize>) -> Result<Entry> {
    let f32 = std::mem::size_of::<f32>();
    if MambaConfig::is_mamba(cfg) {
        let c = MambaConfig::from_json(cfg)?;
        return Ok(Entry {
            name: name.into(),
            origin,
            arch: "mamba".into(),
            mixing: "SSM".into(),
            parameters,
            layers: c.n_layer,
            heads: None,
            window: None,
            kv_bytes_per_token: 0,
            state_bytes: Some(c.state_bytes()),
            training: None,
        });
    }
    if Mamba2Config::is_mamba2(cfg) {
        let c = Mamba2Config::from_json(cfg)?;
        return Ok(Entry {
            name: name.into(),
            origin,
            arch: "mamba2".into(),
            mixing: format!("SSM, {} heads", c.heads),
            parameters,
            layers: c.n_layer,
            heads: None,
            window: None,
            kv_bytes_per_token: 0,
            state_bytes: Some(c.state_bytes()),
            training: None,
        });
    }
    let c = Config::from_json(cfg)?;
    let window = c.windows.iter().flatten().copied().max();
    let kind = match (c.num_heads, c.num_kv_heads) {
        (h, kv) if h == kv => "MHA",
        (_, 1) => "MQA",
        _ => "GQA",
    };
    Ok(Entry {
        name: name.into(),
        origin,
        arch: c.arch.name().into(),
        mixing: if window.is_some() { format!("{kind}+window") } else { kind.into() },
        parameters,
        layers: c.num_layers,
        heads: Some((c.num_heads, c.num_kv_heads)),
        window,
        kv_bytes_per_token: 2 * c.num_layers * c.num_kv_heads * c.head_dim * f32,
        state_bytes: None,
        training: None,
    })
}

/// The zoo, in its built-in order.
pub fn zoo_entries() -> Result<Vec<Entry>> {
    zoo::all()
        .iter()
        .map(|m| {
            let (config, weights, _) = m.parts()?;
            let origin = Path::new(m.name);
            let cfg = serde_json::from_str(config)
                .map_err(|e| Error::bad_file(origin.join("config.json"), format!("not valid JSON ({e})")))?;
            let mut e = describe(m.name, "zoo", &cfg, Some(header_parameters(&mut &weights[..], origin)?))?;
            e.training = m.training.and_then(|t| serde_json::from_str(t).ok());
            Ok(e)
        })
        .collect()
}

/// Every `models--org--name` in the Hub cache with a usable snapshot; ones
/// that don't parse are skipped (a listing shouldn't fail on one bad folder).
pub fn cache_entries() -> Vec<Entry> {
    let Ok(dirs) = std::fs::read_dir(source::cache_root()) else { return vec![] };
    let mut out: Vec<Entry> = dirs
        .flatten()
        .filter_map(|d| {
            let id = d.file_name().to_str()?.strip_prefix("models--")?.replacen("--", "/", 1);
            let snapshots = d.path().join("snapshots");
            let main = std::fs::read_to_string(d.path().join("refs/main")).ok();
            let snap = match main {
                Some(commit) => snapshots.join(commit.trim()),
                None => std::fs::read_dir(&snapshots).ok()?.flatten().next()?.path(),
            };
            let files = source::folder_files(&snap).ok()?;
            let cfg = super::json::read_json(&files.config).ok()?;
            let params = files.weights.iter().try_fold(0, |sum, p| {
                let mut f = std::fs::File::open(p).ok()?;
                header_parameters(&mut f, p).ok().map(|n| sum + n)
            });
            describe(&id, "hf-cache", &cfg, params).ok()
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Parameters counted from a safetensors header: 8-byte length, then JSON of shapes.
fn header_parameters(r: &mut impl Read, origin: &Path) -> Result<usize> {
    let bad = |what: &str| Error::bad_file(origin, format!("not a valid safetensors file ({what})"));
    let mut len = [0u8; 8];
    r.read_exact(&mut len).map_err(|_| bad("too short"))?;
    let len = u64::from_le_bytes(len);
    if len > 100_000_000 {
        return Err(bad("header too large"));
    }
    let mut header = vec![0u8; len as usize];
    r.read_exact(&mut header).map_err(|_| bad("truncated header"))?;
    let json: Value = serde_json::from_slice(&header).map_err(|_| bad("header is not JSON"))?;
    let tensors = json.as_object().ok_or_else(|| bad("header is not an object"))?;
    Ok(tensors
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .filter_map(|(_, v)| v.get("shape")?.as_array().map(|s| s.iter().filter_map(Value::as_u64).product::<u64>()))
        .sum::<u64>() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_gqa_and_mamba_configs() -> Result<()> {
        let gqa = serde_json::json!({"model_type": "llama", "vocab_size": 100, "hidden_size": 64,
            "intermediate_size": 128, "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2});
        let e = describe("x", "zoo", &gqa, Some(7))?;
        assert_eq!((e.layers, e.heads, e.window, e.mixing.as_str()), (3, Some((4, 2)), None, "GQA"));
        assert_eq!(e.kv_bytes_per_token, 2 * 3 * 2 * 16 * 4);
        let mamba = serde_json::json!({"model_type": "mamba", "vocab_size": 100, "hidden_size": 64,
            "num_hidden_layers": 2, "state_size": 8, "conv_kernel": 4, "expand": 2});
        let e = describe("m", "zoo", &mamba, None)?;
        assert_eq!((e.kv_bytes_per_token, e.state_bytes), (0, Some(2 * 128 * (8 + 4) * 4)));
        let mamba2 = serde_json::json!({"model_type": "mamba2", "vocab_size": 100, "hidden_size": 64,
            "num_hidden_layers": 2, "num_heads": 8, "head_dim": 16, "n_groups": 2, "state_size": 8});
        let e = describe("m2", "zoo", &mamba2, None)?;
        assert_eq!((e.arch.as_str(), e.mixing.as_str()), ("mamba2", "SSM, 8 heads"));
        assert_eq!(e.state_bytes, Some(2 * (128 * 8 + (128 + 2 * 2 * 8) * 4) * 4));
        Ok(())
    }

    #[test]
    fn counts_parameters_from_the_header() -> Result<()> {
        let header = br#"{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"__metadata__":{"x":"y"}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        assert_eq!(header_parameters(&mut &bytes[..], Path::new("t"))?, 6);
        assert!(header_parameters(&mut &bytes[..5], Path::new("t")).is_err());
        Ok(())
    }
}

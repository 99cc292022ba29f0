//! Where a model comes from: one `--model SRC` string names a local Hugging
//! Face folder, a GGUF file, or a Hub id (`org/name[@revision]`) resolved
//! through the standard cache (`HF_HOME`, `HF_HUB_CACHE`, `HF_HUB_OFFLINE`).

use crate::error::{Error, Result};
use hf_hub::{Cache, Repo, RepoType};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Folder(PathBuf),
    Gguf(PathBuf),
    Hub { id: String, revision: String },
}

/// The files of a Hugging Face-format model.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub config: PathBuf,
    pub weights: Vec<PathBuf>,
    pub tokenizer: PathBuf,
    pub tokenizer_config: Option<PathBuf>,
}

impl Source {
    pub fn parse(src: &str) -> Result<Self> {
        let path = Path::new(src);
        if path.is_dir() {
            return Ok(Source::Folder(path.into()));
        }
        if path.is_file() {
            return if src.to_ascii_lowercase().ends_with(".gguf") {
                Ok(Source::Gguf(path.into()))
            } else if path.file_name().is_some_and(|n| n == "config.json") {
                Ok(Source::Folder(path.parent().unwrap_or(Path::new(".")).into()))
            } else {
                Err(Error::bad_file(path, "expected a model folder, a .gguf file or a Hub id"))
            };
        }
        if src.ends_with(".gguf") || src.starts_with('.') || src.starts_with('/') || src.matches('/').count() != 1 {
            return Err(Error::NotFound { path: path.into() });
        }
        let (id, revision) = match src.split_once('@') {
            Some((id, rev)) => (id, rev),
            None => (src, "main"),
        };
        let ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        let (org, name) = id.split_once('/').unwrap_or_default();
        if !ok(org) || !ok(name) || revision.is_empty() {
            return Err(Error::Hub(format!("{src:?} is neither a local path nor a Hub id like org/name[@revision]")));
        }
        Ok(Source::Hub { id: id.into(), revision: revision.into() })
    }
}

/// The files of a local folder.
pub fn folder_files(dir: &Path) -> Result<ModelFiles> {
    let need = |name: &str| -> Result<PathBuf> {
        let p = dir.join(name);
        if p.is_file() {
            Ok(p)
        } else {
            Err(Error::NotFound { path: p })
        }
    };
    let optional = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
    Ok(ModelFiles {
        config: need("config.json")?,
        weights: weight_files(dir)?,
        tokenizer: need("tokenizer.json")?,
        tokenizer_config: optional("tokenizer_config.json"),
    })
}

/// `model.safetensors`, or the shards an index names, or `model-*.safetensors`.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        return shards_from_index(&index);
    }
    let mut shards: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("model-") && name.ends_with(".safetensors")
        })
        .collect();
    shards.sort();
    if shards.is_empty() {
        return Err(Error::NotFound { path: single });
    }
    Ok(shards)
}

fn shards_from_index(index: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(index).map_err(|e| Error::io(index, e))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::bad_file(index, format!("not valid JSON ({e})")))?;
    let map =
        json.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| Error::bad_file(index, "no weight_map"))?;
    let mut names: Vec<&str> = map.values().filter_map(|v| v.as_str()).collect();
    names.sort();
    names.dedup();
    let dir = index.parent().unwrap_or(Path::new("."));
    Ok(names.into_iter().map(|n| dir.join(n)).collect())
}

fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false" | "False"))
}

fn cache() -> Cache {
    match std::env::var_os("HF_HUB_CACHE") {
        Some(p) => Cache::new(p.into()),
        None => Cache::from_env(),
    }
}

/// Resolve a Hub id to files: from the cache when offline, else downloading
/// what is missing (with progress on stderr).
pub fn hub_files(id: &str, revision: &str) -> Result<ModelFiles> {
    let cache = cache();
    if let Some(files) = cached_files(&cache, id, revision) {
        return Ok(files);
    }
    if offline() {
        return Err(Error::Hub(format!(
            "{id}@{revision} is not in the Hugging Face cache at {} (HF_HUB_OFFLINE is set)",
            cache.path().display()
        )));
    }
    download(cache, id, revision)
}

/// The snapshot folder for `revision`, which may be a ref name or a commit hash.
fn snapshot_dir(cache: &Cache, id: &str, revision: &str) -> Option<PathBuf> {
    let repo = Repo::with_revision(id.into(), RepoType::Model, revision.into());
    let root = cache.path().join(repo.folder_name());
    let commit = std::fs::read_to_string(root.join("refs").join(revision))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| revision.to_string());
    Some(root.join("snapshots").join(commit)).filter(|p| p.is_dir())
}

fn cached_files(cache: &Cache, id: &str, revision: &str) -> Option<ModelFiles> {
    folder_files(&snapshot_dir(cache, id, revision)?).ok()
}

fn download(cache: Cache, id: &str, revision: &str) -> Result<ModelFiles> {
    let err = |e: hf_hub::api::sync::ApiError| Error::Hub(format!("{id}@{revision}: {e}"));
    let api = hf_hub::api::sync::ApiBuilder::from_cache(cache).with_progress(true).build().map_err(err)?;
    let repo = api.repo(Repo::with_revision(id.into(), RepoType::Model, revision.into()));
    let config = repo.get("config.json").map_err(err)?;
    let tokenizer = repo.get("tokenizer.json").map_err(err)?;
    let tokenizer_config = repo.get("tokenizer_config.json").ok();
    let weights = match repo.get("model.safetensors") {
        Ok(p) => vec![p],
        Err(_) => {
            let index = repo.get("model.safetensors.index.json").map_err(err)?;
            let shards = shards_from_index(&index)?;
            for s in &shards {
                let name = s.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                repo.get(name).map_err(err)?;
            }
            shards
        }
    };
    Ok(ModelFiles { config, weights, tokenizer, tokenizer_config })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids_parse_with_revision() {
        assert_eq!(
            Source::parse("HuggingFaceTB/SmolLM2-135M@v1.0").unwrap(),
            Source::Hub { id: "HuggingFaceTB/SmolLM2-135M".into(), revision: "v1.0".into() }
        );
        assert!(matches!(Source::parse("org/name").unwrap(), Source::Hub { revision, .. } if revision == "main"));
    }

    #[test]
    fn missing_paths_are_not_hub_ids() {
        assert!(matches!(Source::parse("./nope/model").unwrap_err(), Error::NotFound { .. }));
        assert!(matches!(Source::parse("missing.gguf").unwrap_err(), Error::NotFound { .. }));
        assert!(matches!(Source::parse("a/b/c").unwrap_err(), Error::NotFound { .. }));
    }
}

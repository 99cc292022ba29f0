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
    Hub {
        id: String,
        revision: String,
    },
    /// A model compiled into the binary (`model::zoo`).
    Zoo(&'static super::zoo::Embedded),
}

/// The files of a Hugging Face-format model.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub config: PathBuf,
    /// Safetensors files, or PyTorch `pytorch_model*.bin` checkpoints when a repo has no safetensors.
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
        if let Some(m) = super::zoo::get(src) {
            return Ok(Source::Zoo(m));
        }
        if super::zoo::is_zoo_name(src) {
            return Err(Error::Usage(format!("{src}: no such zoo model (built in: {})", super::zoo::names())));
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

/// The weights of a folder: safetensors when there are any (`model.safetensors`,
/// the shards its index names, or `model-*.safetensors`), else the same three
/// forms of PyTorch's `pytorch_model.bin` (older and state-spaces repos ship only that).
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    for (single, prefix, ext) in [("model", "model-", ".safetensors"), ("pytorch_model", "pytorch_model-", ".bin")] {
        let file = dir.join(format!("{single}{ext}"));
        if file.is_file() {
            return Ok(vec![file]);
        }
        let index = dir.join(format!("{single}{ext}.index.json"));
        if index.is_file() {
            return shards_from_index(&index);
        }
        let shards = matching(dir, prefix, ext)?;
        if !shards.is_empty() {
            return Ok(shards);
        }
    }
    Err(Error::NotFound { path: dir.join("model.safetensors") })
}

/// Files of `dir` named `{prefix}…{ext}`, sorted.
fn matching(dir: &Path, prefix: &str, ext: &str) -> Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with(prefix) && name.ends_with(ext)
        })
        .collect();
    found.sort();
    Ok(found)
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

/// Where Hub downloads are cached (`HF_HUB_CACHE`, else `HF_HOME`/hub, else ~/.cache/huggingface/hub).
pub fn cache_root() -> PathBuf {
    cache().path().clone()
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

static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Stop download progress bars on stderr (the terminal UI owns the screen).
pub fn quiet_downloads() {
    QUIET.store(true, std::sync::atomic::Ordering::Relaxed);
}

fn download(cache: Cache, id: &str, revision: &str) -> Result<ModelFiles> {
    let err = |e: hf_hub::api::sync::ApiError| Error::Hub(format!("{id}@{revision}: {e}"));
    let progress = !QUIET.load(std::sync::atomic::Ordering::Relaxed);
    let api = hf_hub::api::sync::ApiBuilder::from_cache(cache).with_progress(progress).build().map_err(err)?;
    let repo = api.repo(Repo::with_revision(id.into(), RepoType::Model, revision.into()));
    let config = repo.get("config.json").map_err(err)?;
    let tokenizer = repo.get("tokenizer.json").map_err(err)?;
    let tokenizer_config = repo.get("tokenizer_config.json").ok();
    let weights = download_weights(&repo, &format!("{id}@{revision}"))?;
    Ok(ModelFiles { config, weights, tokenizer, tokenizer_config })
}

/// Safetensors first, then PyTorch `.bin`: the single file, else the shards its index names.
fn download_weights(repo: &hf_hub::api::sync::ApiRepo, what: &str) -> Result<Vec<PathBuf>> {
    let err = |e: hf_hub::api::sync::ApiError| Error::Hub(format!("{what}: {e}"));
    let mut first_miss = None;
    for single in ["model.safetensors", "pytorch_model.bin"] {
        match repo.get(single) {
            Ok(p) => return Ok(vec![p]),
            Err(e) => {
                first_miss.get_or_insert(e.to_string());
            }
        }
        let Ok(index) = repo.get(&format!("{single}.index.json")) else { continue };
        let shards = shards_from_index(&index)?;
        for s in &shards {
            repo.get(s.file_name().and_then(|n| n.to_str()).unwrap_or_default()).map_err(err)?;
        }
        return Ok(shards);
    }
    Err(Error::Hub(format!(
        "{what}: no model.safetensors or pytorch_model.bin, nor a sharded index ({})",
        first_miss.unwrap_or_default()
    )))
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

    fn folder(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            std::fs::write(dir.path().join(f), "{}").unwrap();
        }
        dir
    }

    fn names(dir: &tempfile::TempDir) -> Vec<String> {
        let files = weight_files(dir.path()).unwrap();
        files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn safetensors_win_over_pytorch_bin() {
        let d = folder(&["model.safetensors", "pytorch_model.bin"]);
        assert_eq!(names(&d), ["model.safetensors"]);
        let d = folder(&["model-00002-of-00002.safetensors", "model-00001-of-00002.safetensors", "pytorch_model.bin"]);
        assert_eq!(names(&d), ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]);
    }

    #[test]
    fn pytorch_bin_single_indexed_or_globbed() {
        assert_eq!(names(&folder(&["pytorch_model.bin"])), ["pytorch_model.bin"]);
        let d = folder(&["pytorch_model-00002-of-00002.bin", "pytorch_model-00001-of-00002.bin"]);
        assert_eq!(names(&d), ["pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"]);
        let d = folder(&[]);
        let index =
            r#"{"weight_map": {"a": "pytorch_model-2.bin", "b": "pytorch_model-1.bin", "c": "pytorch_model-2.bin"}}"#;
        std::fs::write(d.path().join("pytorch_model.bin.index.json"), index).unwrap();
        assert_eq!(names(&d), ["pytorch_model-1.bin", "pytorch_model-2.bin"]);
        let e = weight_files(folder(&["tokenizer.json"]).path()).unwrap_err();
        assert!(matches!(e, Error::NotFound { path } if path.ends_with("model.safetensors")));
    }

    #[test]
    fn missing_paths_are_not_hub_ids() {
        assert!(matches!(Source::parse("./nope/model").unwrap_err(), Error::NotFound { .. }));
        assert!(matches!(Source::parse("missing.gguf").unwrap_err(), Error::NotFound { .. }));
        assert!(matches!(Source::parse("a/b/c").unwrap_err(), Error::NotFound { .. }));
    }
}

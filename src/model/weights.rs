//! Named weight tensors from safetensors files (memory-mapped) or from an
//! in-memory map (GGUF, dequantized). Every lookup checks the shape the
//! config expects and names the tensor and file when something is wrong.

use crate::error::{Error, Result};
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub struct Weights {
    files: Vec<(PathBuf, MmapedSafetensors)>,
    map: HashMap<String, Tensor>,
    origin: PathBuf,
    device: Device,
    dtype: DType,
}

impl Weights {
    pub fn from_safetensors(paths: &[PathBuf], device: &Device, dtype: DType) -> Result<Self> {
        let mut files = Vec::with_capacity(paths.len());
        for p in paths {
            if !p.exists() {
                return Err(Error::NotFound { path: p.clone() });
            }
            // SAFETY: the file is only read; mmap is how candle loads safetensors.
            let st = unsafe { MmapedSafetensors::new(p) }
                .map_err(|e| Error::bad_file(p, format!("not a valid safetensors file ({})", one_line(&e))))?;
            files.push((p.clone(), st));
        }
        let origin = paths.first().cloned().unwrap_or_default();
        Ok(Self { files, map: HashMap::new(), origin, device: device.clone(), dtype })
    }

    pub fn from_map(map: HashMap<String, Tensor>, origin: &Path, device: &Device, dtype: DType) -> Self {
        Self { files: vec![], map, origin: origin.into(), device: device.clone(), dtype }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name) || self.files.iter().any(|(_, st)| st.get(name).is_ok())
    }

    /// The tensor `name`, which must have shape `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let (t, file) = self.fetch(name)?;
        if t.dims() != shape {
            return Err(Error::Weights(format!(
                "{name} in {} has shape {:?} but the config implies {:?}",
                file.display(),
                t.dims(),
                shape
            )));
        }
        Ok(t)
    }

    /// Like `get`, but a missing tensor is `None`.
    pub fn get_opt(&self, name: &str, shape: &[usize]) -> Result<Option<Tensor>> {
        if self.contains(name) {
            self.get(name, shape).map(Some)
        } else {
            Ok(None)
        }
    }

    fn fetch(&self, name: &str) -> Result<(Tensor, &Path)> {
        if let Some(t) = self.map.get(name) {
            let t = t.to_device(&self.device)?.to_dtype(self.dtype)?;
            return Ok((t, &self.origin));
        }
        for (path, st) in &self.files {
            if st.get(name).is_ok() {
                let t = st
                    .load(name, &self.device)
                    .and_then(|t| t.to_dtype(self.dtype))
                    .map_err(|e| Error::bad_file(path, format!("tensor {name}: {}", one_line(&e))))?;
                return Ok((t, path));
            }
        }
        Err(Error::Weights(format!("tensor {name} is missing from {}", self.origin.display())))
    }
}

/// candle errors can carry backtraces and context on several lines; keep the first.
pub fn one_line(e: &candle_core::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

//! Named weight tensors from safetensors files (memory-mapped) or from GGUF
//! (kept as quantized rows, dequantized only where an f32 tensor is needed).
//! Every lookup checks the shape the config expects and names the tensor and
//! file when something is wrong.

use super::gemv::GemvWeights;
use crate::error::{Error, Result};
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Weights {
    files: Vec<(PathBuf, MmapedSafetensors)>,
    map: HashMap<String, Tensor>,
    rows: HashMap<String, Arc<GemvWeights>>,
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
        Ok(Self { files, map: HashMap::new(), rows: HashMap::new(), origin, device: device.clone(), dtype })
    }

    /// Tensors already in memory, plus matrices kept as (quantized) rows.
    pub fn from_parts(
        map: HashMap<String, Tensor>,
        rows: HashMap<String, GemvWeights>,
        origin: &Path,
        device: &Device,
        dtype: DType,
    ) -> Self {
        let rows = rows.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
        Self { files: vec![], map, rows, origin: origin.into(), device: device.clone(), dtype }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
            || self.rows.contains_key(name)
            || self.files.iter().any(|(_, st)| st.get(name).is_ok())
    }

    /// The tensor `name`, which must have shape `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        if let Some(r) = self.rows.get(name) {
            self.check(name, &[r.rows(), r.cols()], shape, &self.origin)?;
            let mut data = vec![0f32; r.rows() * r.cols()];
            for (i, row) in data.chunks_mut(r.cols()).enumerate() {
                r.row(i, row);
            }
            let t = Tensor::from_vec(data, (r.rows(), r.cols()), &Device::Cpu)?;
            return Ok(t.to_device(&self.device)?.to_dtype(self.dtype)?);
        }
        let (t, file) = self.fetch(name)?;
        self.check(name, t.dims(), shape, file)?;
        Ok(t)
    }

    /// The matrix `name` (rows, cols) as rows for the CPU kernels: shared
    /// quantized rows from GGUF, or an f32 copy of a safetensors tensor.
    pub fn rows(&self, name: &str, shape: [usize; 2]) -> Result<Arc<GemvWeights>> {
        if let Some(r) = self.rows.get(name) {
            self.check(name, &[r.rows(), r.cols()], &shape, &self.origin)?;
            return Ok(r.clone());
        }
        let t = self.get(name, &shape)?;
        Ok(Arc::new(rows_of(&t)?))
    }

    fn check(&self, name: &str, got: &[usize], want: &[usize], file: &Path) -> Result<()> {
        if got == want {
            return Ok(());
        }
        Err(Error::Weights(format!("{name} in {} has shape {got:?} but the config implies {want:?}", file.display())))
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

/// An f32 copy of a 2-D tensor as rows for the CPU kernels.
pub fn rows_of(t: &Tensor) -> Result<GemvWeights> {
    let (rows, cols) = t.dims2()?;
    let data = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    Ok(GemvWeights::F32 { rows, cols, data })
}

/// candle errors can carry backtraces and context on several lines; keep the first.
pub fn one_line(e: &candle_core::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

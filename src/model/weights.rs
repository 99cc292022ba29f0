//! Named weight tensors from safetensors files (memory-mapped), PyTorch
//! `pytorch_model*.bin` checkpoints (read lazily, one tensor at a time) or
//! GGUF (kept as quantized rows, dequantized only where an f32 tensor is
//! needed). Every lookup checks the shape the config expects and names the
//! tensor and file when something is wrong.

use super::gemv::{GemvWeights, HalfRows, Matrix};
use crate::error::{Error, Result};
use candle_core::pickle::PthTensors;
use candle_core::safetensors::{MmapedSafetensors, SliceSafetensors};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One weights file.
enum Store {
    Safetensors(MmapedSafetensors),
    /// A `torch.save`d state dict (zip of a pickle and raw storages).
    Pickle(PthTensors),
    /// Safetensors bytes compiled into the binary (the zoo).
    Embedded(SliceSafetensors<'static>),
}

impl Store {
    fn open(p: &Path, pickle: bool) -> Result<Self> {
        if !p.exists() {
            return Err(Error::NotFound { path: p.into() });
        }
        if pickle {
            let pth = PthTensors::new(p, None)
                .map_err(|e| Error::bad_file(p, format!("not a readable PyTorch checkpoint ({})", one_line(&e))))?;
            if pth.tensor_infos().is_empty() {
                return Err(Error::bad_file(p, "PyTorch checkpoint holds no tensors (expected a state dict)"));
            }
            return Ok(Store::Pickle(pth));
        }
        // SAFETY: the file is only read; mmap is how candle loads safetensors.
        let st = unsafe { MmapedSafetensors::new(p) }
            .map_err(|e| Error::bad_file(p, format!("not a valid safetensors file ({})", one_line(&e))))?;
        Ok(Store::Safetensors(st))
    }

    fn contains(&self, name: &str) -> bool {
        match self {
            Store::Safetensors(st) => st.get(name).is_ok(),
            Store::Pickle(pth) => pth.tensor_infos().contains_key(name),
            Store::Embedded(st) => st.get(name).is_ok(),
        }
    }

    /// The tensor on the CPU-or-`device`, as stored (None when absent).
    fn load(&self, name: &str, device: &Device) -> candle_core::Result<Option<Tensor>> {
        match self {
            Store::Safetensors(st) if st.get(name).is_ok() => st.load(name, device).map(Some),
            Store::Safetensors(_) => Ok(None),
            Store::Pickle(pth) => pth.get(name)?.map(|t| t.to_device(device)).transpose(),
            Store::Embedded(st) if st.get(name).is_ok() => st.load(name, device).map(Some),
            Store::Embedded(_) => Ok(None),
        }
    }
}

/// `pytorch_model.bin` and its shards (also `.pt` / `.pth`), told by extension.
pub fn is_pickle(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "bin" | "pt" | "pth"))
}

pub struct Weights {
    files: Vec<(PathBuf, Store)>,
    map: HashMap<String, Tensor>,
    rows: HashMap<String, Arc<GemvWeights>>,
    origin: PathBuf,
    device: Device,
    dtype: DType,
}

impl Weights {
    /// Safetensors files, or PyTorch checkpoints where the extension says so (`is_pickle`).
    pub fn from_files(paths: &[PathBuf], device: &Device, dtype: DType) -> Result<Self> {
        Self::open(paths, is_pickle, device, dtype)
    }

    pub fn from_safetensors(paths: &[PathBuf], device: &Device, dtype: DType) -> Result<Self> {
        Self::open(paths, |_| false, device, dtype)
    }

    fn open(paths: &[PathBuf], pickle: impl Fn(&Path) -> bool, device: &Device, dtype: DType) -> Result<Self> {
        let files = paths.iter().map(|p| Ok((p.clone(), Store::open(p, pickle(p))?))).collect::<Result<Vec<_>>>()?;
        Ok(Self::of_files(files, paths.first().cloned().unwrap_or_default(), device, dtype))
    }

    fn of_files(files: Vec<(PathBuf, Store)>, origin: PathBuf, device: &Device, dtype: DType) -> Self {
        Self { files, map: HashMap::new(), rows: HashMap::new(), origin, device: device.clone(), dtype }
    }

    /// Safetensors bytes held in memory; `origin` names them in errors.
    pub fn from_embedded(origin: &Path, bytes: &'static [u8], device: &Device, dtype: DType) -> Result<Self> {
        let st = SliceSafetensors::new(bytes)
            .map_err(|e| Error::bad_file(origin, format!("not a valid safetensors file ({})", one_line(&e))))?;
        let files = vec![(origin.join("model.safetensors"), Store::Embedded(st))];
        Ok(Self {
            files,
            map: HashMap::new(),
            rows: HashMap::new(),
            origin: origin.into(),
            device: device.clone(),
            dtype,
        })
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
            || self.files.iter().any(|(_, st)| st.contains(name))
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

    /// The matrix `name` (rows, cols) for the CPU kernels, as `rows` gives it,
    /// except that a bf16 or f16 safetensors / PyTorch matrix stays 16-bit
    /// when the model computes in f32 (`HalfRows`: widened exactly in the kernels).
    pub fn matrix(&self, name: &str, shape: [usize; 2]) -> Result<Matrix> {
        if self.dtype != DType::F32 || !self.device.is_cpu() || self.rows.contains_key(name) {
            return Ok(Matrix::Rows(self.rows(name, shape)?));
        }
        let (t, file) = self.fetch_stored(name)?;
        self.check(name, t.dims(), &shape, file)?;
        Ok(match HalfRows::from_tensor(&t)? {
            Some(h) => Matrix::Half(Arc::new(h)),
            None => Matrix::Rows(Arc::new(rows_of(&t)?)),
        })
    }

    fn check(&self, name: &str, got: &[usize], want: &[usize], file: &Path) -> Result<()> {
        if got == want {
            return Ok(());
        }
        Err(Error::Weights(format!("{name} in {} has shape {got:?} but the config implies {want:?}", file.display())))
    }

    fn fetch(&self, name: &str) -> Result<(Tensor, &Path)> {
        let (t, file) = self.fetch_stored(name)?;
        let t =
            t.to_dtype(self.dtype).map_err(|e| Error::bad_file(file, format!("tensor {name}: {}", one_line(&e))))?;
        Ok((t, file))
    }

    /// The tensor on the device in the dtype it is stored in.
    fn fetch_stored(&self, name: &str) -> Result<(Tensor, &Path)> {
        if let Some(t) = self.map.get(name) {
            return Ok((t.to_device(&self.device)?, &self.origin));
        }
        for (path, st) in &self.files {
            let bad = |e: candle_core::Error| Error::bad_file(path, format!("tensor {name}: {}", one_line(&e)));
            if let Some(t) = st.load(name, &self.device).map_err(bad)? {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel)
    }

    #[test]
    fn pytorch_bin_reads_like_safetensors() {
        let bin = Weights::from_files(&[fixture("mamba_bin/pytorch_model.bin")], &Device::Cpu, DType::F32).unwrap();
        let st = Weights::from_files(&[fixture("mamba_ss/model.safetensors")], &Device::Cpu, DType::F32).unwrap();
        let name = "backbone.layers.1.mixer.x_proj.weight";
        assert!(bin.contains(name) && !bin.contains("nope"));
        let (a, b) = (bin.get(name, &[24, 128]).unwrap(), st.get(name, &[24, 128]).unwrap());
        assert_eq!(
            a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            b.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
        let e = bin.get(name, &[24, 64]).unwrap_err().to_string();
        assert!(e.contains("pytorch_model.bin has shape [24, 128] but the config implies [24, 64]"), "{e}");
        let e = bin.get("nope", &[1]).unwrap_err().to_string();
        assert!(e.starts_with("weights: tensor nope is missing from") && e.ends_with("pytorch_model.bin"), "{e}");
        assert!(
            is_pickle(Path::new("a/pytorch_model-00001-of-00002.bin")) && !is_pickle(Path::new("model.safetensors"))
        );
    }
}

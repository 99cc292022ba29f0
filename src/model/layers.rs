//! The small building blocks of a decoder: linear maps, norms and MLPs,
//! each loaded by its checkpoint name with its shape checked.

use super::gemv::Matrix;
use super::weights::{rows_of, Weights};
use crate::error::Result;
use candle_core::{DType, Device, Module, Tensor};
use std::sync::Arc;

/// y = x Wᵀ + b, with W stored (out, in) as in PyTorch's `nn.Linear`.
/// On the CPU the weight stays in rows for the streaming kernels (quantized
/// when it came from GGUF, 16-bit when the checkpoint is); elsewhere it is an
/// ordinary tensor.
pub struct Linear {
    w: Weight,
    b: Option<Tensor>,
    b_vec: Option<Vec<f32>>,
}

enum Weight {
    Tensor(Tensor),
    Rows(Matrix),
}

impl Linear {
    pub fn load(w: &Weights, name: &str, out: usize, inp: usize, bias: bool) -> Result<Self> {
        let wname = format!("{name}.weight");
        let b = if bias { Some(w.get(&format!("{name}.bias"), &[out])?) } else { None };
        if w.device().is_cpu() {
            Self::from_matrix(w.matrix(&wname, [out, inp])?, b)
        } else {
            Ok(Self { w: Weight::Tensor(w.get(&wname, &[out, inp])?), b, b_vec: None })
        }
    }

    /// From a (out, in) tensor, e.g. a slice of a fused projection.
    pub fn new(w: Tensor, b: Option<Tensor>) -> Result<Self> {
        if w.device().is_cpu() {
            Self::from_matrix(Matrix::Rows(Arc::new(rows_of(&w)?)), b)
        } else {
            Ok(Self { w: Weight::Tensor(w), b, b_vec: None })
        }
    }

    pub fn from_matrix(rows: Matrix, b: Option<Tensor>) -> Result<Self> {
        let b_vec = b.as_ref().map(|b| b.to_dtype(DType::F32)?.to_vec1::<f32>()).transpose()?;
        Ok(Self { w: Weight::Rows(rows), b, b_vec })
    }

    /// x: (t, in) → (t, out)
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.w {
            Weight::Tensor(w) => {
                let y = x.matmul(&w.t()?)?;
                Ok(match &self.b {
                    Some(b) => y.broadcast_add(b)?,
                    None => y,
                })
            }
            Weight::Rows(w) => {
                let t = x.dim(0)?;
                let xs = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
                let mut y = vec![0f32; t * w.rows()];
                w.gemm(&xs, t, self.b_vec.as_deref(), &mut y);
                Ok(Tensor::from_vec(y, (t, w.rows()), x.device())?.to_dtype(x.dtype())?)
            }
        }
    }
}

/// Token embeddings: a lookup table (vocab, hidden). On the CPU it shares
/// the (possibly quantized or 16-bit) rows with a tied output head.
pub enum Embedding {
    Tensor(Tensor),
    Rows(Matrix),
}

impl Embedding {
    pub fn load(w: &Weights, name: &str, vocab: usize, hidden: usize) -> Result<Self> {
        Ok(if w.device().is_cpu() {
            Embedding::Rows(w.matrix(name, [vocab, hidden])?)
        } else {
            Embedding::Tensor(w.get(name, &[vocab, hidden])?)
        })
    }

    /// ids → (t, hidden)
    pub fn forward(&self, ids: &[u32], device: &Device, dtype: DType) -> Result<Tensor> {
        match self {
            Embedding::Tensor(e) => Ok(e.index_select(&Tensor::new(ids, device)?, 0)?),
            Embedding::Rows(r) => {
                let mut out = vec![0f32; ids.len() * r.cols()];
                for (&id, row) in ids.iter().zip(out.chunks_mut(r.cols())) {
                    r.row(id as usize, row);
                }
                Ok(Tensor::from_vec(out, (ids.len(), r.cols()), device)?.to_dtype(dtype)?)
            }
        }
    }

    /// The same table as an output head (tied embeddings).
    pub fn as_linear(&self) -> Result<Linear> {
        match self {
            Embedding::Tensor(e) => Linear::new(e.clone(), None),
            Embedding::Rows(r) => Linear::from_matrix(r.clone(), None),
        }
    }
}

pub enum Norm {
    Rms { w: Tensor, eps: f32 },
    Layer { w: Tensor, b: Tensor, eps: f32 },
}

impl Norm {
    pub fn rms(w: &Weights, name: &str, dim: usize, eps: f64) -> Result<Self> {
        Ok(Norm::Rms { w: w.get(&format!("{name}.weight"), &[dim])?, eps: eps as f32 })
    }

    /// RMSNorm scaling by (1 + w) when `plus_one` (Gemma stores w around 0), else by w.
    pub fn rms_maybe_plus_one(w: &Weights, name: &str, dim: usize, eps: f64, plus_one: bool) -> Result<Self> {
        let weight = w.get(&format!("{name}.weight"), &[dim])?;
        let weight = if plus_one { (weight + 1.0)? } else { weight };
        Ok(Norm::Rms { w: weight, eps: eps as f32 })
    }

    pub fn layer(w: &Weights, name: &str, dim: usize, eps: f64) -> Result<Self> {
        Ok(Norm::Layer {
            w: w.get(&format!("{name}.weight"), &[dim])?,
            b: w.get(&format!("{name}.bias"), &[dim])?,
            eps: eps as f32,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Norm::Rms { w, eps } => candle_nn::ops::rms_norm(x, w, *eps)?,
            Norm::Layer { w, b, eps } => candle_nn::ops::layer_norm(x, w, b, *eps)?,
        })
    }
}

pub enum Mlp {
    /// down(act(gate(x)) · up(x)): SiLU (Llama family) or tanh GELU (Gemma's GeGLU).
    Gated { gate: Linear, up: Linear, down: Linear, gelu: bool },
    /// proj(gelu(fc(x))), GPT-2 (tanh approximation) and GPT-NeoX (exact, erf).
    Gelu { fc: Linear, proj: Linear, exact: bool },
}

impl Mlp {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Mlp::Gated { gate, up, down, gelu } => {
                let g = gate.forward(x)?;
                let g = if *gelu { g.gelu()? } else { candle_nn::Activation::Silu.forward(&g)? };
                down.forward(&(g * up.forward(x)?)?)
            }
            Mlp::Gelu { fc, proj, exact: true } => proj.forward(&fc.forward(x)?.gelu_erf()?),
            Mlp::Gelu { fc, proj, exact: false } => proj.forward(&fc.forward(x)?.gelu()?),
        }
    }
}

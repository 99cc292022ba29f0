//! The small building blocks of a decoder: linear maps, norms and MLPs,
//! each loaded by its checkpoint name with its shape checked.

use super::weights::Weights;
use crate::error::Result;
use candle_core::{Module, Tensor};

/// y = x Wᵀ + b, with W stored (out, in) as in PyTorch's `nn.Linear`.
pub struct Linear {
    w: Tensor,
    b: Option<Tensor>,
}

impl Linear {
    pub fn load(w: &Weights, name: &str, out: usize, inp: usize, bias: bool) -> Result<Self> {
        let weight = w.get(&format!("{name}.weight"), &[out, inp])?;
        let b = if bias { Some(w.get(&format!("{name}.bias"), &[out])?) } else { None };
        Ok(Self { w: weight, b })
    }

    pub fn new(w: Tensor, b: Option<Tensor>) -> Self {
        Self { w, b }
    }

    /// x: (t, in) → (t, out)
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.matmul(&self.w.t()?)?;
        Ok(match &self.b {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
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
    /// down(silu(gate(x)) · up(x)), Llama family.
    Gated { gate: Linear, up: Linear, down: Linear },
    /// proj(gelu_tanh(fc(x))), GPT-2.
    Gelu { fc: Linear, proj: Linear },
}

impl Mlp {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Mlp::Gated { gate, up, down } => {
                let g = candle_nn::Activation::Silu.forward(&gate.forward(x)?)?;
                down.forward(&(g * up.forward(x)?)?)
            }
            Mlp::Gelu { fc, proj } => proj.forward(&fc.forward(x)?.gelu()?),
        }
    }
}

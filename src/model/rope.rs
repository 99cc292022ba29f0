//! Rotary position embeddings (Su et al. 2021, "RoFormer"), in the
//! rotate-half layout transformers uses, with optional Llama 3 scaling and
//! partial rotary (only the first `rotary_dim` dimensions of a head turn, as
//! in GPT-NeoX) and Phi-3's LongRoPE. Frequencies are computed in f32 exactly
//! as transformers does.

use super::config::{Config, Llama3Scaling};
use crate::error::Result;
use candle_core::{DType, Device, Tensor};

pub struct Rope {
    cos: Tensor, // (max_positions, rotary_dim / 2)
    sin: Tensor,
    rotary_dim: usize,
    /// LongRoPE's long-factor tables, used by a forward pass that ends past `.1`.
    long: Option<(Box<Rope>, usize)>,
}

impl Rope {
    /// `global`: the RoPE of full-attention layers, which carries the config's
    /// scaling; Gemma 3's local RoPE (sliding layers) has none.
    pub fn new(cfg: &Config, theta: f32, global: bool, device: &Device, dtype: DType) -> Result<Self> {
        let n = cfg.max_positions;
        if let (Some(l), true) = (&cfg.features.longrope, global) {
            let table = |f: &[f32]| Self::table(&longrope_inv_freq(cfg.rotary_dim, theta, f), n, l.attention_factor);
            let (cos, sin) = table(&l.short_factor)?;
            let (lc, ls) = table(&l.long_factor)?;
            let to = |t: Tensor| -> Result<Tensor> { Ok(t.to_device(device)?.to_dtype(dtype)?) };
            let long = Rope { cos: to(lc)?, sin: to(ls)?, rotary_dim: cfg.rotary_dim, long: None };
            let (cos, sin) = (to(cos)?, to(sin)?);
            return Ok(Self { cos, sin, rotary_dim: cfg.rotary_dim, long: Some((Box::new(long), l.original_max)) });
        }
        let mut inv = inv_freq(cfg.rotary_dim, theta, cfg.rope_llama3.as_ref().filter(|_| global));
        if let (Some(f), true) = (cfg.features.rope_linear_factor, global) {
            inv.iter_mut().for_each(|x| *x /= f);
        }
        let (cos, sin) = Self::table(&inv, n, 1.0)?;
        let (cos, sin) = (cos.to_device(device)?.to_dtype(dtype)?, sin.to_device(device)?.to_dtype(dtype)?);
        Ok(Self { cos, sin, rotary_dim: cfg.rotary_dim, long: None })
    }

    /// cos and sin of p·f for positions 0..n, times `scale` (LongRoPE's attention factor).
    fn table(inv: &[f32], n: usize, scale: f32) -> Result<(Tensor, Tensor)> {
        let half = inv.len();
        let mut cos = Vec::with_capacity(n * half);
        let mut sin = Vec::with_capacity(n * half);
        for p in 0..n {
            for f in inv {
                let a = p as f32 * f;
                cos.push(a.cos() * scale);
                sin.push(a.sin() * scale);
            }
        }
        Ok((Tensor::from_vec(cos, (n, half), &Device::Cpu)?, Tensor::from_vec(sin, (n, half), &Device::Cpu)?))
    }

    /// The tables for a forward pass whose last position is `end − 1`: LongRoPE
    /// switches to its long factors once `end` exceeds the original context,
    /// per pass, as transformers does (keys cached before keep their rotation).
    pub fn for_pass_ending(&self, end: usize) -> &Rope {
        match &self.long {
            Some((long, original_max)) if end > *original_max => long,
            _ => self,
        }
    }

    /// Rotate `x` (1, heads, t, head_dim) whose first row sits at absolute position `offset`.
    pub fn apply(&self, x: &Tensor, offset: usize) -> Result<Tensor> {
        let t = x.dim(2)?;
        let cos = self.cos.narrow(0, offset, t)?;
        let sin = self.sin.narrow(0, offset, t)?;
        let d = x.dim(3)?;
        if self.rotary_dim == d {
            return Ok(candle_nn::rotary_emb::rope(&x.contiguous()?, &cos, &sin)?);
        }
        let turned = candle_nn::rotary_emb::rope(&x.narrow(3, 0, self.rotary_dim)?.contiguous()?, &cos, &sin)?;
        let kept = x.narrow(3, self.rotary_dim, d - self.rotary_dim)?;
        Ok(Tensor::cat(&[&turned, &kept], 3)?.contiguous()?)
    }
}

/// transformers' `_compute_longrope_parameters`: 1 / (factor · θ^(i/dim)).
fn longrope_inv_freq(dim: usize, theta: f32, factors: &[f32]) -> Vec<f32> {
    (0..dim).step_by(2).zip(factors).map(|(i, f)| 1.0 / (f * theta.powf(i as f32 / dim as f32))).collect()
}

fn inv_freq(dim: usize, theta: f32, llama3: Option<&Llama3Scaling>) -> Vec<f32> {
    let base: Vec<f32> = (0..dim).step_by(2).map(|i| 1.0 / theta.powf(i as f32 / dim as f32)).collect();
    match llama3 {
        None => base,
        Some(s) => base.into_iter().map(|f| llama3_scale(f, s)).collect(),
    }
}

/// transformers' `_compute_llama3_parameters`, one frequency at a time.
fn llama3_scale(f: f32, s: &Llama3Scaling) -> f32 {
    let old = s.original_max_position_embeddings as f32;
    let low_wavelen = old / s.low_freq_factor;
    let high_wavelen = old / s.high_freq_factor;
    let wavelen = 2.0 * std::f32::consts::PI / f;
    if wavelen < high_wavelen {
        f
    } else if wavelen > low_wavelen {
        f / s.factor
    } else {
        let smooth = (old / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        (1.0 - smooth) * f / s.factor + smooth * f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_keeps_high_and_divides_low_frequencies() {
        let s = Llama3Scaling {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 32,
        };
        let inv = inv_freq(16, 10_000.0, None);
        let scaled = inv_freq(16, 10_000.0, Some(&s));
        assert_eq!(inv[0], scaled[0]); // wavelength 2π < 32 / 4
        let last = inv.len() - 1;
        assert!((scaled[last] - inv[last] / 8.0).abs() < 1e-12);
    }
}

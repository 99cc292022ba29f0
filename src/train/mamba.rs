//! The Mamba zoo member written with differentiable candle ops for
//! training: the same block as `model::mamba` (transformers'
//! `MambaMixer` torch path), with the selective scan as one autograd op
//! (`scan_op`). Initialisation follows transformers' `MambaPreTrainedModel`.

use super::llama::{linear, rms_norm};
use super::params::Params;
use super::scan_op::selective_scan;
use super::Shape;
use crate::error::Result;
use candle_core::Tensor;

struct Mixer {
    norm: Tensor,     // (d_model)
    in_proj: Tensor,  // (2·d_inner, d_model)
    conv_w: Tensor,   // (d_inner, 1, d_conv)
    conv_b: Tensor,   // (d_inner)
    x_proj: Tensor,   // (dt_rank + 2·d_state, d_inner)
    dt_proj: Tensor,  // (d_inner, dt_rank)
    dt_bias: Tensor,  // (d_inner)
    a_log: Tensor,    // (d_inner, d_state)
    d: Tensor,        // (d_inner)
    out_proj: Tensor, // (d_model, d_inner)
}

pub struct Mamba {
    embed: Tensor, // (vocab, d_model), tied
    layers: Vec<Mixer>,
    norm_f: Tensor,
    d_inner: usize,
    d_state: usize,
    d_conv: usize,
    dt_rank: usize,
}

const INIT_STD: f64 = 0.02;
const DT_MIN: f64 = 0.001;
const DT_MAX: f64 = 0.1;

impl Mamba {
    pub fn init(p: &mut Params, s: &Shape) -> Result<Self> {
        let (d, di, n, k, r) = (s.d_model, s.d_inner(), s.d_state, s.d_conv, s.dt_rank());
        let embed = p.normal("backbone.embeddings.weight", &[s.vocab, d], INIT_STD)?;
        let mut layers = Vec::with_capacity(s.layers);
        for l in 0..s.layers {
            let m = |part: &str| format!("backbone.layers.{l}.mixer.{part}");
            let conv_bound = 1.0 / (k as f64).sqrt(); // PyTorch's default for a depthwise conv
            let dt_std = 1.0 / (r as f64).sqrt();
            let norm = p.add(&format!("backbone.layers.{l}.norm.weight"), &[d], vec![1.0; d])?;
            let in_proj = p.normal(&m("in_proj.weight"), &[2 * di, d], INIT_STD)?;
            let conv_w = p.uniform(&m("conv1d.weight"), &[di, 1, k], -conv_bound, conv_bound)?;
            let conv_b = p.uniform(&m("conv1d.bias"), &[di], -conv_bound, conv_bound)?;
            let x_proj = p.normal(&m("x_proj.weight"), &[r + 2 * n, di], INIT_STD)?;
            let dt_proj = p.uniform(&m("dt_proj.weight"), &[di, r], -dt_std, dt_std)?;
            // Bias = softplus⁻¹(Δ) for Δ log-uniform in [DT_MIN, DT_MAX].
            let dt_bias: Vec<f32> = (0..di)
                .map(|_| {
                    let dt = (p.next_f64() * (DT_MAX.ln() - DT_MIN.ln()) + DT_MIN.ln()).exp().max(1e-4);
                    (dt + (-(-dt).exp_m1()).ln()) as f32
                })
                .collect();
            let dt_bias = p.add(&m("dt_proj.bias"), &[di], dt_bias)?;
            let a_log = p.add(&m("A_log"), &[di, n], (0..di * n).map(|i| ((i % n + 1) as f32).ln()).collect())?;
            let dv = p.add(&m("D"), &[di], vec![1.0; di])?;
            let out_proj = p.normal(&m("out_proj.weight"), &[d, di], INIT_STD)?;
            layers.push(Mixer { norm, in_proj, conv_w, conv_b, x_proj, dt_proj, dt_bias, a_log, d: dv, out_proj });
        }
        let norm_f = p.add("backbone.norm_f.weight", &[d], vec![1.0; d])?;
        Ok(Self { embed, layers, norm_f, d_inner: di, d_state: n, d_conv: k, dt_rank: r })
    }

    /// ids (b, t) → logits (b, t, vocab).
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let mut x = self.embed.index_select(&ids.flatten_all()?, 0)?.reshape((b, t, ()))?; // (b, t, d)
        for m in &self.layers {
            x = (&x + self.mixer(m, &rms_norm(&x, &m.norm)?)?)?;
        }
        linear(&rms_norm(&x, &self.norm_f)?, &self.embed)
    }

    fn mixer(&self, m: &Mixer, h: &Tensor) -> Result<Tensor> {
        let (b, t, _) = h.dims3()?;
        let (di, n, k, r) = (self.d_inner, self.d_state, self.d_conv, self.dt_rank);
        let xz = linear(h, &m.in_proj)?; // (b, t, 2·di)
        let (xs, z) = (xz.narrow(2, 0, di)?, xz.narrow(2, di, di)?);
        // Depthwise causal conv: out_t = Σ_j w[j] · x_{t−k+1+j} + bias, zeros before the start.
        let padded = Tensor::cat(&[&Tensor::zeros((b, k - 1, di), xs.dtype(), xs.device())?, &xs], 1)?;
        let w = m.conv_w.squeeze(1)?; // (di, k)
        let mut conv = m.conv_b.reshape((1, 1, di))?.broadcast_as((b, t, di))?.contiguous()?;
        for j in 0..k {
            let wj = w.narrow(1, j, 1)?.reshape((1, 1, di))?;
            conv = (conv + padded.narrow(1, j, t)?.broadcast_mul(&wj)?)?;
        }
        let u = conv.silu()?; // (b, t, di)
        let dbc = linear(&u, &m.x_proj)?; // (b, t, r + 2n)
        let (dt_low, bm, cm) = (dbc.narrow(2, 0, r)?, dbc.narrow(2, r, n)?, dbc.narrow(2, r + n, n)?);
        let dt = softplus(&linear(&dt_low, &m.dt_proj)?.broadcast_add(&m.dt_bias)?)?; // (b, t, di)
        let a = m.a_log.exp()?.neg()?; // (di, n)
        let y = selective_scan(&u, &dt, &bm.contiguous()?, &cm.contiguous()?, &a)?; // (b, t, di)
        let y = ((y + u.broadcast_mul(&m.d)?)? * z.silu()?)?;
        linear(&y, &m.out_proj)
    }
}

/// ln(1 + eˣ) without overflow: max(x, 0) + ln(1 + e^−|x|).
fn softplus(x: &Tensor) -> Result<Tensor> {
    Ok((x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?)
}

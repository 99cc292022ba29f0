//! Mamba-2: the SSD layer (Dao & Gu 2024, "Transformers are SSMs").
//!
//! Follows transformers' `models/mamba2/modeling_mamba2.py` (`Mamba2Mixer`'s
//! torch path). Each head has a scalar A, its own Δ and D; B and C are shared
//! by the heads of a group. The state per layer is h (heads, head_dim,
//! d_state) and the conv window over the x, B and C channels (conv_dim,
//! d_conv). Prefill and decode run the same recurrence in `ssd.rs`, which is
//! the SSD chunked scan's result without its rounding; a multi-token forward
//! continues from the saved state, so chunked prefill equals decoding token
//! by token.

mod config;
mod ssd;

pub use config::Mamba2Config;

use super::layers::{Embedding, Linear, Norm};
use super::mamba::{pool, scan, MambaForward, StateCapture, StateDims};
use super::weights::Weights;
use crate::error::{Error, Result};
use candle_core::{DType, Device, Tensor};
use std::sync::Arc;

struct Mixer {
    in_proj: Linear,          // (d_inner + conv_dim + heads, d_model): z, then x B C, then Δ
    conv_w: Vec<f32>,         // (conv_dim, d_conv), depthwise
    conv_b: Option<Vec<f32>>, // (conv_dim)
    dt_bias: Vec<f32>,        // (heads)
    a: Vec<f32>,              // (heads) = −exp(A_log)
    d: Vec<f32>,              // (heads)
    norm_w: Vec<f32>,         // (d_inner), gated RMSNorm
    out_proj: Linear,         // (d_model, d_inner)
}

struct Layer {
    norm: Norm, // RMSNorm (d_model)
    mixer: Mixer,
}

/// A layer's state. A capture shares `ssm` with the trace instead of copying
/// it (19.6 MB a step at the 130m shape); while shared, the next state is
/// written into a recycled buffer rather than in place.
struct State {
    ssm: Arc<Vec<f32>>, // (heads, head_dim, d_state)
    conv: Vec<f32>,     // (conv_dim, d_conv)
}

pub struct Mamba2 {
    cfg: Mamba2Config,
    embed: Embedding,
    layers: Vec<Layer>,
    norm_f: Norm,
    lm_head: Linear,
    states: Vec<State>,
    fed: usize,
    device: Device,
    dtype: DType,
}

/// Positions per pass through the layers (bounds activations; the state carries over).
const PREFILL_CHUNK: usize = 256;

impl Mamba2 {
    pub fn load(cfg: Mamba2Config, w: &Weights) -> Result<Self> {
        let (dm, di, h, k, cd) = (cfg.d_model, cfg.d_inner, cfg.heads, cfg.d_conv, cfg.conv_dim());
        let embed = Embedding::load(w, "backbone.embeddings.weight", cfg.vocab_size, dm)?;
        let mut layers = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let p = format!("backbone.layers.{i}");
            let m = format!("{p}.mixer");
            let vec = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
                Ok(w.get(&format!("{m}.{name}"), shape)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
            };
            layers.push(Layer {
                norm: Norm::rms(w, &format!("{p}.norm"), dm, cfg.eps)?,
                mixer: Mixer {
                    in_proj: Linear::load(w, &format!("{m}.in_proj"), di + cd + h, dm, cfg.proj_bias)?,
                    conv_w: vec("conv1d.weight", &[cd, 1, k])?,
                    conv_b: if cfg.conv_bias { Some(vec("conv1d.bias", &[cd])?) } else { None },
                    dt_bias: vec("dt_bias", &[h])?,
                    a: vec("A_log", &[h])?.iter().map(|v| -v.exp()).collect(),
                    d: vec("D", &[h])?,
                    norm_w: vec("norm.weight", &[di])?,
                    out_proj: Linear::load(w, &format!("{m}.out_proj"), dm, di, cfg.proj_bias)?,
                },
            });
        }
        let lm_head = match (cfg.tie_embeddings, w.contains("lm_head.weight")) {
            (true, _) => embed.as_linear()?,
            (false, true) => Linear::load(w, "lm_head", cfg.vocab_size, dm, false)?,
            (false, false) => {
                return Err(Error::Weights("tensor lm_head.weight is missing and the embeddings are not tied".into()))
            }
        };
        Ok(Self {
            norm_f: Norm::rms(w, "backbone.norm_f", dm, cfg.eps)?,
            embed,
            layers,
            lm_head,
            states: fresh_states(&cfg),
            fed: 0,
            device: w.device().clone(),
            dtype: w.dtype(),
            cfg,
        })
    }

    pub fn config(&self) -> &Mamba2Config {
        &self.cfg
    }

    /// Tokens fed so far.
    pub fn position(&self) -> usize {
        self.fed
    }

    /// Back to zero states, reusing their memory (fresh memory costs page faults).
    pub fn reset(&mut self) {
        for s in &mut self.states {
            match Arc::get_mut(&mut s.ssm) {
                Some(h) => h.fill(0.0),
                None => {
                    let mut h = pool::take(s.ssm.len());
                    h.fill(0.0);
                    s.ssm = Arc::new(h);
                }
            }
            s.conv.fill(0.0);
        }
        self.fed = 0;
    }

    /// Feed `ids` after those fed so far; return the last position's logits and,
    /// with `capture`, each layer's state afterwards and Δ (t, heads) of every fed position.
    pub fn forward(&mut self, ids: &[u32], capture: bool) -> Result<MambaForward> {
        super::check_ids(ids, self.cfg.vocab_size)?;
        let mut dts: Vec<Vec<f32>> = vec![vec![]; if capture { self.layers.len() } else { 0 }];
        let mut x = None;
        for chunk in ids.chunks(PREFILL_CHUNK) {
            x = Some(self.forward_chunk(chunk, &mut dts)?);
        }
        let Some(x) = x else { return Err(Error::Prompt("nothing to feed".into())) };
        let x = x.narrow(0, x.dim(0)? - 1, 1)?;
        let h = self.norm_f.forward(&x.to_dtype(self.dtype)?)?;
        let logits = self.lm_head.forward(&h)?.squeeze(0)?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        let layers = dts
            .into_iter()
            .zip(&self.states)
            .map(|(dt, s)| StateCapture { ssm: Arc::clone(&s.ssm), conv: s.conv.clone(), dt })
            .collect();
        Ok(MambaForward { logits, layers })
    }

    fn forward_chunk(&mut self, ids: &[u32], dts: &mut [Vec<f32>]) -> Result<Tensor> {
        let mut x = self.embed.forward(ids, &self.device, self.dtype)?.to_dtype(DType::F32)?; // (t, d_model)
        for (i, (layer, state)) in self.layers.iter().zip(self.states.iter_mut()).enumerate() {
            let h = layer.norm.forward(&x.to_dtype(self.dtype)?)?;
            let (out, dt) = layer.mixer.forward(&self.cfg, &h, state, &self.device)?;
            x = (x + out.to_dtype(DType::F32)?)?; // residual in f32
            if let Some(all) = dts.get_mut(i) {
                all.extend_from_slice(&dt);
            }
        }
        self.fed += ids.len();
        Ok(x)
    }
}

fn fresh_states(cfg: &Mamba2Config) -> Vec<State> {
    let fresh =
        || State { ssm: Arc::new(vec![0.0; cfg.d_inner * cfg.d_state]), conv: vec![0.0; cfg.conv_dim() * cfg.d_conv] };
    (0..cfg.n_layer).map(|_| fresh()).collect()
}

impl Mamba2Config {
    /// How a trace lays out this model's states.
    pub fn state_dims(&self) -> StateDims {
        StateDims {
            layers: self.n_layer,
            d_inner: self.d_inner,
            d_state: self.d_state,
            d_conv: self.d_conv,
            ssm_shape: vec![self.heads, self.head_dim, self.d_state],
            conv_channels: self.conv_dim(),
            dt_width: self.heads,
            bytes: self.state_bytes(),
        }
    }
}

/// Columns `from..from + width` of a row-major (rows, cols) matrix.
fn columns(m: &[f32], cols: usize, from: usize, width: usize) -> Vec<f32> {
    m.chunks_exact(cols).flat_map(|row| &row[from..from + width]).copied().collect()
}

impl Mixer {
    /// h: (t, d_model) normalized hidden states → ((t, d_model) output, (t, heads) Δ).
    fn forward(&self, cfg: &Mamba2Config, h: &Tensor, state: &mut State, dev: &Device) -> Result<(Tensor, Vec<f32>)> {
        let (t, di, cd, nh) = (h.dim(0)?, cfg.d_inner, cfg.conv_dim(), cfg.heads);
        let width = di + cd + nh;
        let proj = self.in_proj.forward(h)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let (z, xbc, dt_raw) =
            (columns(&proj, width, 0, di), columns(&proj, width, di, cd), columns(&proj, width, di + cd, nh));

        let mut u = vec![0f32; t * cd]; // SiLU(conv(x B C))
        scan::conv_silu(cfg.d_conv, &mut state.conv, &xbc, &self.conv_w, self.conv_b.as_deref(), &mut u);

        let (lo, hi) = cfg.time_step_limit;
        let dt: Vec<f32> =
            dt_raw.iter().enumerate().map(|(i, v)| scan::softplus(v + self.dt_bias[i % nh]).clamp(lo, hi)).collect();

        let dims = ssd::Dims { t, heads: nh, head_dim: cfg.head_dim, d_state: cfg.d_state, groups: cfg.n_groups };
        let mut y = vec![0f32; t * di];
        if let Some(h) = Arc::get_mut(&mut state.ssm) {
            ssd::scan(dims, None, h, &self.a, &u, &dt, &self.d, &mut y);
        } else {
            // A trace holds the current state: leave it, write the next one elsewhere.
            let mut next = pool::take(state.ssm.len());
            ssd::scan(dims, Some(&state.ssm), &mut next, &self.a, &u, &dt, &self.d, &mut y);
            state.ssm = Arc::new(next);
        }
        ssd::gated_norm(&mut y, &z, &self.norm_w, di / cfg.n_groups, cfg.eps as f32);
        let y = Tensor::from_vec(y, (t, di), &Device::Cpu)?.to_device(dev)?.to_dtype(h.dtype())?;
        Ok((self.out_proj.forward(&y)?, dt))
    }
}

#[cfg(test)]
mod tests;

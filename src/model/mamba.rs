//! Mamba (v1): selective state-space language model (Gu & Dao 2023,
//! "Mamba: Linear-Time Sequence Modeling with Selective State Spaces").
//!
//! Follows transformers' `models/mamba/modeling_mamba.py` (`MambaMixer`'s
//! torch path: `causal_conv1d_fn` / `causal_conv1d_update`,
//! `mamba_selective_scan` / `mamba_selective_state_update`) operation for
//! operation, so logits and states match it. Each layer keeps a recurrent
//! state, not a cache that grows: the SSM state h (d_inner, d_state) and the
//! conv window (d_inner, d_conv). Projections run through the shared
//! `Linear` kernels for all t fed positions at once; the conv and the scan
//! are plain loops in `scan.rs`. A multi-token forward after earlier tokens
//! continues from the saved state (transformers' own multi-token path
//! would restart the scan from zero), so chunked prefill equals decoding
//! token by token.

mod config;
pub mod pool;
pub(crate) mod scan;

pub use config::{MambaConfig, Naming};

use super::layers::{Embedding, Linear, Norm};
use super::weights::Weights;
use crate::error::{Error, Result};
use candle_core::{DType, Device, Tensor};
use scan::Dims;
use std::sync::Arc;

/// What one forward leaves behind.
pub struct MambaForward {
    /// Logits of the last fed position, (vocab,).
    pub logits: Vec<f32>,
    /// Per layer, when capture is on.
    pub layers: Vec<StateCapture>,
}

/// One layer's recurrent state after a forward, and the step sizes it used.
#[derive(Debug, Clone)]
pub struct StateCapture {
    /// (d_inner, d_state): h after the last fed position. Mamba-2 shares it
    /// with the model, which then writes its next state elsewhere.
    pub ssm: Arc<Vec<f32>>,
    /// (d_inner, d_conv): the last d_conv pre-conv x-branch inputs, newest
    /// last, zero-padded on the left while fewer have been fed.
    pub conv: Vec<f32>,
    /// (t, d_inner): Δ after softplus, for each position of this forward.
    pub dt: Vec<f32>,
}

/// How a state-space model's states are laid out in a trace, whatever the family.
#[derive(Debug, Clone, PartialEq)]
pub struct StateDims {
    pub layers: usize,
    /// Channels of the SSM state seen as a (d_inner, d_state) matrix.
    pub d_inner: usize,
    pub d_state: usize,
    pub d_conv: usize,
    /// One step's `ssm` shape: [d_inner, d_state] (Mamba) or [heads, head_dim, d_state] (Mamba-2).
    pub ssm_shape: Vec<usize>,
    /// Rows of the conv window: d_inner (Mamba) or d_inner + 2·n_groups·d_state (Mamba-2).
    pub conv_channels: usize,
    /// Δ values per position: d_inner (Mamba) or heads (Mamba-2).
    pub dt_width: usize,
    /// f32 bytes of one step's states, all layers.
    pub bytes: usize,
}

impl MambaConfig {
    pub fn state_dims(&self) -> StateDims {
        StateDims {
            layers: self.n_layer,
            d_inner: self.d_inner,
            d_state: self.d_state,
            d_conv: self.d_conv,
            ssm_shape: vec![self.d_inner, self.d_state],
            conv_channels: self.d_inner,
            dt_width: self.d_inner,
            bytes: self.state_bytes(),
        }
    }
}

struct Mixer {
    in_proj: Linear,          // (2·d_inner, d_model): x branch, then gate z
    conv_w: Vec<f32>,         // (d_inner, d_conv), depthwise
    conv_b: Option<Vec<f32>>, // (d_inner)
    x_proj: Linear,           // (dt_rank + 2·d_state, d_inner): Δ_low, B, C
    dt_proj: Linear,          // (d_inner, dt_rank), with bias
    a: Vec<f32>,              // (d_inner, d_state) = −exp(A_log)
    d: Vec<f32>,              // (d_inner)
    out_proj: Linear,         // (d_model, d_inner)
}

struct Layer {
    norm: Norm, // RMSNorm (d_model)
    mixer: Mixer,
}

/// Per-layer recurrent state, f32.
#[derive(Clone)]
struct State {
    ssm: Vec<f32>,  // (d_inner, d_state)
    conv: Vec<f32>, // (d_inner, d_conv)
}

pub struct Mamba {
    cfg: MambaConfig,
    embed: Embedding, // (vocab, d_model)
    layers: Vec<Layer>,
    norm_f: Norm,
    lm_head: Linear, // (vocab, d_model)
    states: Vec<State>,
    fed: usize,
    device: Device,
    dtype: DType,
}

/// Positions per pass through the layers: bounds the (t, 2·d_inner)
/// activations of a long prompt; the state carries over, so results are unchanged.
const PREFILL_CHUNK: usize = 256;

impl Mamba {
    pub fn load(cfg: MambaConfig, w: &Weights) -> Result<Self> {
        let (dm, di, n, k, r) = (cfg.d_model, cfg.d_inner, cfg.d_state, cfg.d_conv, cfg.dt_rank);
        // transformers renames state-spaces' `embedding.` on load, so accept either.
        let (mine, other) = match cfg.naming {
            Naming::Hf => ("backbone.embeddings.weight", "backbone.embedding.weight"),
            Naming::StateSpaces => ("backbone.embedding.weight", "backbone.embeddings.weight"),
        };
        let embed_name = if !w.contains(mine) && w.contains(other) { other } else { mine };
        let embed = Embedding::load(w, embed_name, cfg.vocab_size, dm)?;
        let mut layers = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let p = format!("backbone.layers.{i}");
            let m = format!("{p}.mixer");
            let vec = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
                Ok(w.get(&format!("{m}.{name}"), shape)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
            };
            // llama.cpp's GGUF stores A = −exp(A_log) itself: taken as is, not round-tripped.
            let a = if w.contains(&format!("{m}.A")) {
                vec("A", &[di, n])?
            } else {
                vec("A_log", &[di, n])?.iter().map(|v| -v.exp()).collect()
            };
            layers.push(Layer {
                norm: Norm::rms(w, &format!("{p}.norm"), dm, cfg.eps)?,
                mixer: Mixer {
                    in_proj: Linear::load(w, &format!("{m}.in_proj"), 2 * di, dm, cfg.proj_bias)?,
                    conv_w: vec("conv1d.weight", &[di, 1, k])?,
                    conv_b: if cfg.conv_bias { Some(vec("conv1d.bias", &[di])?) } else { None },
                    x_proj: Linear::load(w, &format!("{m}.x_proj"), r + 2 * n, di, false)?,
                    dt_proj: Linear::load(w, &format!("{m}.dt_proj"), di, r, true)?,
                    a,
                    d: vec("D", &[di])?,
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
        let states = fresh_states(&cfg);
        Ok(Self {
            norm_f: Norm::rms(w, "backbone.norm_f", dm, cfg.eps)?,
            embed,
            layers,
            lm_head,
            states,
            fed: 0,
            device: w.device().clone(),
            dtype: w.dtype(),
            cfg,
        })
    }

    pub fn config(&self) -> &MambaConfig {
        &self.cfg
    }

    /// Tokens fed so far.
    pub fn position(&self) -> usize {
        self.fed
    }

    /// Back to the empty state (zeros), as before the first token.
    pub fn reset(&mut self) {
        self.states = fresh_states(&self.cfg);
        self.fed = 0;
    }

    /// Feed `ids` after those fed so far; return the last position's logits.
    /// With `capture`, each layer's state after this forward and Δ of every fed position.
    pub fn forward(&mut self, ids: &[u32], capture: bool) -> Result<MambaForward> {
        super::check_ids(ids, self.cfg.vocab_size)?;
        let mut dts: Vec<Vec<f32>> = vec![vec![]; if capture { self.layers.len() } else { 0 }];
        let mut last = None;
        for chunk in ids.chunks(PREFILL_CHUNK) {
            let x = self.forward_chunk(chunk, &mut dts)?;
            last = Some(x);
        }
        let Some(x) = last else { unreachable!("ids is not empty") };
        let x = x.narrow(0, x.dim(0)? - 1, 1)?; // (1, d_model) residual, f32
        let h = self.norm_f.forward(&x.to_dtype(self.dtype)?)?;
        let logits = self.lm_head.forward(&h)?.squeeze(0)?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        let layers = dts
            .into_iter()
            .zip(&self.states)
            .map(|(dt, s)| {
                let mut ssm = pool::take(s.ssm.len());
                ssm.copy_from_slice(&s.ssm);
                StateCapture { ssm: Arc::new(ssm), conv: s.conv.clone(), dt }
            })
            .collect();
        Ok(MambaForward { logits, layers })
    }

    /// Run the blocks over one chunk; returns the residual stream (t, d_model) in f32.
    fn forward_chunk(&mut self, ids: &[u32], dts: &mut [Vec<f32>]) -> Result<Tensor> {
        let mut x = self.embed.forward(ids, &self.device, self.dtype)?.to_dtype(DType::F32)?; // (t, d_model)
        for (i, (layer, state)) in self.layers.iter().zip(self.states.iter_mut()).enumerate() {
            // residual + mixer(norm(hidden)), residual kept in f32 (residual_in_fp32).
            let h = layer.norm.forward(&x.to_dtype(self.dtype)?)?;
            let (out, dt) = layer.mixer.forward(&self.cfg, &h, state, &self.device)?;
            x = (x + out.to_dtype(DType::F32)?)?;
            if let Some(all) = dts.get_mut(i) {
                all.extend_from_slice(&dt);
            }
        }
        self.fed += ids.len();
        Ok(x)
    }
}

fn fresh_states(cfg: &MambaConfig) -> Vec<State> {
    let s = State { ssm: vec![0.0; cfg.d_inner * cfg.d_state], conv: vec![0.0; cfg.d_inner * cfg.d_conv] };
    vec![s; cfg.n_layer]
}

/// A tensor's values as f32, row-major.
fn values(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}

/// Columns `from..from + width` of a row-major (rows, cols) matrix.
fn columns(m: &[f32], cols: usize, from: usize, width: usize) -> Vec<f32> {
    m.chunks_exact(cols).flat_map(|row| &row[from..from + width]).copied().collect()
}

impl Mixer {
    /// h: (t, d_model) normalized hidden states → ((t, d_model) output, (t, d_inner) Δ).
    fn forward(&self, cfg: &MambaConfig, h: &Tensor, state: &mut State, dev: &Device) -> Result<(Tensor, Vec<f32>)> {
        let (t, di, n, r) = (h.dim(0)?, cfg.d_inner, cfg.d_state, cfg.dt_rank);
        let dtype = h.dtype();
        let tensor = |v: Vec<f32>, cols: usize| -> Result<Tensor> {
            Ok(Tensor::from_vec(v, (t, cols), &Device::Cpu)?.to_device(dev)?.to_dtype(dtype)?)
        };
        let xz = values(&self.in_proj.forward(h)?)?; // (t, 2·d_inner)
        let (xs, z) = (columns(&xz, 2 * di, 0, di), columns(&xz, 2 * di, di, di)); // (t, d_inner) each

        let mut u = vec![0f32; t * di]; // (t, d_inner) = SiLU(conv(x))
        scan::conv_silu(cfg.d_conv, &mut state.conv, &xs, &self.conv_w, self.conv_b.as_deref(), &mut u);

        let dbc = values(&self.x_proj.forward(&tensor(u.clone(), di)?)?)?; // (t, dt_rank + 2·d_state)
        let cols = r + 2 * n;
        let (b, c) = (columns(&dbc, cols, r, n), columns(&dbc, cols, r + n, n)); // (t, d_state) each
        let dt_low = tensor(columns(&dbc, cols, 0, r), r)?; // (t, dt_rank)
        let mut dt = values(&self.dt_proj.forward(&dt_low)?)?; // (t, d_inner)
        dt.iter_mut().for_each(|v| *v = scan::softplus(*v));

        let mut y = vec![0f32; t * di]; // (t, d_inner)
        let dims = Dims { t, d_inner: di, d_state: n };
        scan::selective_scan(dims, &mut state.ssm, &self.a, &u, &dt, &b, &c, &self.d, &mut y);
        scan::gate(&mut y, &z);
        Ok((self.out_proj.forward(&tensor(y, di)?)?, dt))
    }
}

#[cfg(test)]
mod tests;

//! One face for every model family, so sessions, traces and the CLI do not
//! care whether attention or a state-space recurrence is inside.

use super::decoder::{Decoder, LayerCapture};
use super::mamba::{Mamba, StateCapture, StateDims};
use super::mamba2::Mamba2;
use crate::error::Result;
use serde_json::{json, Value};

pub enum Model {
    Decoder(Decoder),
    Mamba(Mamba),
    Mamba2(Mamba2),
}

/// What one forward pass recorded, per layer, when capture is on.
#[derive(Debug, Clone)]
pub enum Capture {
    None,
    /// Post-RoPE queries and keys of the fed positions.
    Attention(Vec<LayerCapture>),
    /// SSM and convolution states after the forward, Δ of the fed positions.
    State(Vec<StateCapture>),
}

pub struct Forward {
    /// Logits of the last fed position, (vocab,).
    pub logits: Vec<f32>,
    pub capture: Capture,
}

impl Model {
    pub fn forward(&mut self, ids: &[u32], capture: bool) -> Result<Forward> {
        match self {
            Model::Decoder(d) => {
                let f = d.forward(ids, capture)?;
                let capture = if capture { Capture::Attention(f.layers) } else { Capture::None };
                Ok(Forward { logits: f.logits, capture })
            }
            Model::Mamba(m) => Ok(state_forward(m.forward(ids, capture)?, capture)),
            Model::Mamba2(m) => Ok(state_forward(m.forward(ids, capture)?, capture)),
        }
    }

    /// Positions fed so far.
    pub fn position(&self) -> usize {
        match self {
            Model::Decoder(d) => d.position(),
            Model::Mamba(m) => m.position(),
            Model::Mamba2(m) => m.position(),
        }
    }

    pub fn reset(&mut self) {
        match self {
            Model::Decoder(d) => d.reset(),
            Model::Mamba(m) => m.reset(),
            Model::Mamba2(m) => m.reset(),
        }
    }

    /// Longest sequence the model accepts.
    pub fn max_positions(&self) -> usize {
        match self {
            Model::Decoder(d) => d.config().max_positions,
            // A recurrence has no context limit; keep sizes sane.
            Model::Mamba(_) | Model::Mamba2(_) => 1 << 20,
        }
    }

    pub fn eos_token_ids(&self) -> &[u32] {
        match self {
            Model::Decoder(d) => &d.config().eos_token_ids,
            Model::Mamba(m) => &m.config().eos_token_ids,
            Model::Mamba2(m) => &m.config().eos_token_ids,
        }
    }

    /// Positions each layer's cache holds for future tokens.
    pub fn cache_lens(&self) -> Vec<usize> {
        match self {
            Model::Decoder(d) => d.kv_lens(),
            Model::Mamba(_) | Model::Mamba2(_) => vec![],
        }
    }

    /// Bytes of cache (KV cache, or recurrent state) held now.
    pub fn cache_bytes(&self) -> usize {
        match self {
            Model::Decoder(d) => d.kv_bytes(),
            Model::Mamba(m) => m.config().state_bytes(),
            Model::Mamba2(m) => m.config().state_bytes(),
        }
    }

    /// A recurrent state instead of attention: no heads to score or draw.
    pub fn is_state_space(&self) -> bool {
        self.state_dims().is_some()
    }

    /// How a trace lays out the states (state-space models only).
    pub fn state_dims(&self) -> Option<StateDims> {
        match self {
            Model::Decoder(_) => None,
            Model::Mamba(m) => Some(m.config().state_dims()),
            Model::Mamba2(m) => Some(m.config().state_dims()),
        }
    }

    /// What a reader of a trace needs to know about the model; GQA as data.
    pub fn summary(&self, source: &str) -> Value {
        match self {
            Model::Decoder(d) => {
                let cfg = d.config();
                json!({
                    "source": source,
                    "family": "transformer",
                    "arch": cfg.arch.name(),
                    "layers": cfg.num_layers,
                    "heads": cfg.num_heads,
                    "kv_heads": cfg.num_kv_heads,
                    "head_dim": cfg.head_dim,
                    "hidden_size": cfg.hidden_size,
                    "vocab_size": cfg.vocab_size,
                    "max_positions": cfg.max_positions,
                    "windows": cfg.windows,
                    "kv_head_of": (0..cfg.num_heads).map(|h| cfg.kv_head_of(h)).collect::<Vec<_>>(),
                    "kv_bytes_per_position": cfg.kv_bytes_per_position() * cfg.num_layers,
                })
            }
            Model::Mamba(m) => {
                let c = m.config();
                json!({
                    "source": source,
                    "family": "state-space",
                    "arch": "mamba",
                    "layers": c.n_layer,
                    "hidden_size": c.d_model,
                    "d_inner": c.d_inner,
                    "d_state": c.d_state,
                    "d_conv": c.d_conv,
                    "dt_rank": c.dt_rank,
                    "vocab_size": c.vocab_size,
                    "state_bytes": c.state_bytes(),
                })
            }
            Model::Mamba2(m) => {
                let c = m.config();
                // d_inner × d_state is how the UI reads h: heads·head_dim rows.
                json!({
                    "source": source,
                    "family": "state-space",
                    "arch": "mamba2",
                    "layers": c.n_layer,
                    "hidden_size": c.d_model,
                    "d_inner": c.d_inner,
                    "d_state": c.d_state,
                    "d_conv": c.d_conv,
                    "ssm_heads": c.heads,
                    "head_dim": c.head_dim,
                    "n_groups": c.n_groups,
                    "conv_dim": c.conv_dim(),
                    "chunk_size": c.chunk_size,
                    "vocab_size": c.vocab_size,
                    "state_bytes": c.state_bytes(),
                })
            }
        }
    }
}

fn state_forward(f: super::mamba::MambaForward, capture: bool) -> Forward {
    let capture = if capture { Capture::State(f.layers) } else { Capture::None };
    Forward { logits: f.logits, capture }
}

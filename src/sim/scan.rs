//! Mamba's selective scan, one token at a time, with every piece exposed so
//! a lesson can show it (Gu & Dao 2023, arXiv:2312.00752, as shipped in
//! state-spaces/mamba `selective_scan_ref` and transformers' `MambaMixer`):
//!
//!   Δ = softplus(Δ_raw),  Ā = exp(Δ·A),  B̄x = Δ·B·x,
//!   h ← Ā ⊙ h + B̄x,      y = C·h + D·x
//!
//! The paper's eq. 4 discretises B exactly (ZOH); the code uses Δ·B (Euler),
//! and so does this. Works on any set of channels: pass their slices.

use crate::error::{Error, Result};

pub mod replay;

pub use replay::{Channels, Replay, ReplayStep};

/// torch's `F.softplus` (β = 1, threshold 20): ln(1 + eˣ), identity above 20.
pub fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

/// A = −exp(A_log), as checkpoints store it.
pub fn a_from_log(a_log: &[f32]) -> Vec<f32> {
    a_log.iter().map(|v| -v.exp()).collect()
}

/// Everything one step computed, per channel (c channels, n = d_state).
#[derive(Debug, Clone, PartialEq)]
pub struct ScanStep {
    /// (c) Δ after softplus.
    pub dt: Vec<f32>,
    /// (c, n) Ā = exp(Δ·A): how much of each state survives.
    pub a_bar: Vec<f32>,
    /// (c, n) B̄x = Δ·B·x: what the input writes into the state.
    pub bx: Vec<f32>,
    /// (c, n) the state after this token.
    pub h: Vec<f32>,
    /// (c) C·h, the read-out before the skip.
    pub ch: Vec<f32>,
    /// (c) y = C·h + D·x.
    pub y: Vec<f32>,
}

/// One layer's scan over a set of channels, holding its state h.
#[derive(Debug, Clone, PartialEq)]
pub struct Scanner {
    d_state: usize,
    /// (c, n) A = −exp(A_log).
    a: Vec<f32>,
    /// (c) the skip D.
    d: Vec<f32>,
    /// (c, n)
    h: Vec<f32>,
}

impl Scanner {
    /// `a`: (c, d_state), `d`: (c); the state starts at zero.
    pub fn new(a: Vec<f32>, d: Vec<f32>, d_state: usize) -> Result<Self> {
        if d_state == 0 || d.is_empty() || a.len() != d.len() * d_state {
            return Err(Error::Usage(format!(
                "scan: A has {} values for {} channels × d_state {d_state}",
                a.len(),
                d.len()
            )));
        }
        let h = vec![0.0; a.len()];
        Ok(Self { d_state, a, d, h })
    }

    pub fn channels(&self) -> usize {
        self.d.len()
    }

    pub fn d_state(&self) -> usize {
        self.d_state
    }

    /// h, (c, d_state).
    pub fn state(&self) -> &[f32] {
        &self.h
    }

    /// Continue from a saved state (c, d_state), e.g. one the engine captured.
    pub fn set_state(&mut self, h: &[f32]) -> Result<()> {
        if h.len() != self.h.len() {
            return Err(Error::Usage(format!("scan: state of {} values, expected {}", h.len(), self.h.len())));
        }
        self.h.copy_from_slice(h);
        Ok(())
    }

    pub fn reset(&mut self) {
        self.h.iter_mut().for_each(|v| *v = 0.0);
    }

    /// Feed one token: `dt_raw` and `x` per channel (Δ before softplus, with
    /// dt_proj's bias; x after the conv and SiLU), `b` and `c` (d_state),
    /// shared by the channels.
    pub fn step(&mut self, dt_raw: &[f32], x: &[f32], b: &[f32], c: &[f32]) -> Result<ScanStep> {
        let (ch, n) = (self.channels(), self.d_state);
        if dt_raw.len() != ch || x.len() != ch || b.len() != n || c.len() != n {
            return Err(Error::Usage(format!(
                "scan: Δ {}, x {}, B {}, C {} values; expected {ch}, {ch}, {n}, {n}",
                dt_raw.len(),
                x.len(),
                b.len(),
                c.len()
            )));
        }
        let dt: Vec<f32> = dt_raw.iter().map(|&v| softplus(v)).collect();
        let mut a_bar = vec![0f32; ch * n];
        let mut bx = vec![0f32; ch * n];
        let mut read = vec![0f32; ch];
        for k in 0..ch {
            let row = k * n..(k + 1) * n;
            for s in row.clone() {
                a_bar[s] = (dt[k] * self.a[s]).exp();
                bx[s] = dt[k] * b[s - k * n] * x[k];
                self.h[s] = a_bar[s] * self.h[s] + bx[s];
            }
            read[k] = self.h[row].iter().zip(c).map(|(h, c)| h * c).sum();
        }
        let y = read.iter().zip(&self.d).zip(x).map(|((r, d), x)| r + d * x).collect();
        Ok(ScanStep { dt, a_bar, bx, h: self.h.clone(), ch: read, y })
    }
}

#[cfg(test)]
mod tests;

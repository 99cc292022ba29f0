//! A Mamba (v1) model recomputed in plain loops from its weights, token by
//! token, with the scan done by `Scanner`, so every quantity of one layer's
//! selective scan can be shown: x after the conv and SiLU, Δ, the model's
//! trained A, Ā, B, C, B̄x, h and y. Follows transformers' `MambaMixer`
//! (RMSNorm → in_proj → causal conv → SiLU → x_proj → dt_proj → scan → gate
//! → out_proj, residual in f32); the tests hold it to the engine's states.

use super::{a_from_log, Scanner};
use crate::error::{Error, Result};

/// The sizes a replay needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayDims {
    pub vocab: usize,
    pub d_model: usize,
    pub d_inner: usize,
    pub d_state: usize,
    pub d_conv: usize,
    pub dt_rank: usize,
    pub eps: f32,
}

/// One layer's weights as row-major f32 vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayLayer {
    pub norm: Vec<f32>,             // (d_model)
    pub in_proj: Vec<f32>,          // (2·d_inner, d_model)
    pub in_bias: Option<Vec<f32>>,  // (2·d_inner)
    pub conv_w: Vec<f32>,           // (d_inner, d_conv)
    pub conv_b: Option<Vec<f32>>,   // (d_inner)
    pub x_proj: Vec<f32>,           // (dt_rank + 2·d_state, d_inner)
    pub dt_w: Vec<f32>,             // (d_inner, dt_rank)
    pub dt_b: Vec<f32>,             // (d_inner)
    pub a: Vec<f32>,                // (d_inner, d_state) = −exp(A_log)
    pub d: Vec<f32>,                // (d_inner)
    pub out_proj: Vec<f32>,         // (d_model, d_inner)
    pub out_bias: Option<Vec<f32>>, // (d_model)
}

/// Which channels a replay keeps the details of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channels {
    One(usize),
    All,
}

/// One position of the chosen layer, for the kept channels (k of them; n = d_state).
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayStep {
    /// (k) x after the conv and SiLU.
    pub x: Vec<f32>,
    /// (k) Δ after softplus.
    pub dt: Vec<f32>,
    /// (n) B and C, shared by the channels.
    pub b: Vec<f32>,
    pub c: Vec<f32>,
    /// (k, n) Ā = exp(Δ·A) and B̄x = Δ·B·x.
    pub a_bar: Vec<f32>,
    pub bx: Vec<f32>,
    /// (k, n) h before and after this token.
    pub h_before: Vec<f32>,
    pub h: Vec<f32>,
    /// (k) C·h and y = C·h + D·x.
    pub ch: Vec<f32>,
    pub y: Vec<f32>,
}

/// The whole layer at one position: Δ (d_inner) and h (d_inner, d_state), for checks.
pub struct Full<'a> {
    pub position: usize,
    pub dt: &'a [f32],
    pub h: &'a [f32],
}

/// A Mamba model's weights, ready to replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    pub dims: ReplayDims,
    /// (vocab, d_model)
    pub embed: Vec<f32>,
    pub layers: Vec<ReplayLayer>,
}

/// y = W x for a row-major (rows, x.len()) W.
fn matvec(w: &[f32], x: &[f32]) -> Vec<f32> {
    w.chunks_exact(x.len().max(1)).map(|row| row.iter().zip(x).map(|(a, b)| a * b).sum()).collect()
}

fn add(v: &mut [f32], bias: Option<&Vec<f32>>) {
    if let Some(b) = bias {
        v.iter_mut().zip(b).for_each(|(x, b)| *x += b);
    }
}

fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

impl Replay {
    /// From weights already read; checks every shape.
    pub fn from_weights(dims: ReplayDims, embed: Vec<f32>, layers: Vec<ReplayLayer>) -> Result<Self> {
        let (dm, di, n, k, r) = (dims.d_model, dims.d_inner, dims.d_state, dims.d_conv, dims.dt_rank);
        let bad = |what: &str| Err(Error::Usage(format!("replay: {what} has the wrong size")));
        if dm == 0 || di == 0 || n == 0 || k == 0 || r == 0 || embed.len() != dims.vocab * dm || layers.is_empty() {
            return bad("the embedding or a size");
        }
        for l in &layers {
            let sizes = [
                (l.norm.len(), dm),
                (l.in_proj.len(), 2 * di * dm),
                (l.conv_w.len(), di * k),
                (l.x_proj.len(), (r + 2 * n) * di),
                (l.dt_w.len(), di * r),
                (l.dt_b.len(), di),
                (l.a.len(), di * n),
                (l.d.len(), di),
                (l.out_proj.len(), dm * di),
                (l.in_bias.as_ref().map_or(2 * di, Vec::len), 2 * di),
                (l.conv_b.as_ref().map_or(di, Vec::len), di),
                (l.out_bias.as_ref().map_or(dm, Vec::len), dm),
            ];
            if sizes.iter().any(|(a, b)| a != b) {
                return bad("a layer's weight");
            }
        }
        Ok(Self { dims, embed, layers })
    }

    /// Read the weights of the Mamba model `source` names (zoo, folder or Hub id), f32 on the CPU.
    pub fn load(source: &str) -> Result<Self> {
        load::weights(source)
    }

    /// A = −exp(A_log) for one layer's (d_inner, d_state) `A_log`.
    pub fn a_of(a_log: &[f32]) -> Vec<f32> {
        a_from_log(a_log)
    }

    /// Feed `tokens` from an empty state through layers 0..=layer and keep,
    /// per position, `layer`'s scan for `channels`; `full` sees the whole layer's Δ and h.
    pub fn replay_with(
        &self,
        tokens: &[u32],
        layer: usize,
        channels: Channels,
        mut full: impl FnMut(Full<'_>),
    ) -> Result<Vec<ReplayStep>> {
        let ReplayDims { vocab, d_model: dm, d_inner: di, d_state: n, d_conv: k, dt_rank: r, eps } = self.dims;
        if layer >= self.layers.len() {
            return Err(Error::Usage(format!("replay: layer {layer} of {}", self.layers.len())));
        }
        let keep = match channels {
            Channels::One(c) if c < di => c..c + 1,
            Channels::One(c) => return Err(Error::Usage(format!("replay: channel {c} of {di}"))),
            Channels::All => 0..di,
        };
        let layers = &self.layers[..=layer];
        let mut scanners =
            layers.iter().map(|l| Scanner::new(l.a.clone(), l.d.clone(), n)).collect::<Result<Vec<_>>>()?;
        let mut windows = vec![vec![0f32; di * k]; layers.len()];
        let mut out = Vec::with_capacity(tokens.len());
        for (pos, &id) in tokens.iter().enumerate() {
            let id = id as usize;
            if id >= vocab {
                return Err(Error::Usage(format!("replay: token id {id} outside the vocabulary of {vocab}")));
            }
            let mut resid = self.embed[id * dm..(id + 1) * dm].to_vec();
            for (l, w) in layers.iter().enumerate() {
                let rms = (resid.iter().map(|v| v * v).sum::<f32>() / dm as f32 + eps).sqrt();
                let normed: Vec<f32> = resid.iter().zip(&w.norm).map(|(v, g)| v / rms * g).collect();
                let mut xz = matvec(&w.in_proj, &normed);
                add(&mut xz, w.in_bias.as_ref());
                let (xs, z) = xz.split_at(di);
                let win = &mut windows[l];
                let u: Vec<f32> = (0..di)
                    .map(|c| {
                        let wc = &mut win[c * k..(c + 1) * k];
                        wc.rotate_left(1);
                        wc[k - 1] = xs[c];
                        let conv: f32 = wc.iter().zip(&w.conv_w[c * k..(c + 1) * k]).map(|(a, b)| a * b).sum();
                        silu(conv + w.conv_b.as_ref().map_or(0.0, |b| b[c]))
                    })
                    .collect();
                let dbc = matvec(&w.x_proj, &u);
                let dt_raw: Vec<f32> = matvec(&w.dt_w, &dbc[..r]).iter().zip(&w.dt_b).map(|(a, b)| a + b).collect();
                let (b, c) = (&dbc[r..r + n], &dbc[r + n..]);
                let before = scanners[l].state()[keep.start * n..keep.end * n].to_vec();
                let step = scanners[l].step(&dt_raw, &u, b, c)?;
                if l == layer {
                    full(Full { position: pos, dt: &step.dt, h: &step.h });
                    let rows = keep.start * n..keep.end * n;
                    out.push(ReplayStep {
                        x: u[keep.clone()].to_vec(),
                        dt: step.dt[keep.clone()].to_vec(),
                        b: b.to_vec(),
                        c: c.to_vec(),
                        a_bar: step.a_bar[rows.clone()].to_vec(),
                        bx: step.bx[rows.clone()].to_vec(),
                        h_before: before,
                        h: step.h[rows].to_vec(),
                        ch: step.ch[keep.clone()].to_vec(),
                        y: step.y[keep.clone()].to_vec(),
                    });
                    break;
                }
                let gated: Vec<f32> = step.y.iter().zip(z).map(|(y, z)| y * silu(*z)).collect();
                let mut o = matvec(&w.out_proj, &gated);
                add(&mut o, w.out_bias.as_ref());
                resid.iter_mut().zip(o).for_each(|(x, o)| *x += o);
            }
        }
        Ok(out)
    }

    /// As `replay_with`, without looking at the whole layer.
    pub fn replay(&self, tokens: &[u32], layer: usize, channels: Channels) -> Result<Vec<ReplayStep>> {
        self.replay_with(tokens, layer, channels, |_| {})
    }
}

mod load;

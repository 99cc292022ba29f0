//! The per-channel parts of the Mamba mixer as plain loops on f32 slices:
//! causal depthwise conv, softplus, the selective scan and the SiLU gate.
//! One call covers all t positions of a forward, so decoding one token and
//! prefilling t tokens run the same code; channels are independent, so long
//! runs split them over rayon's threads without changing any arithmetic.

use crate::model::gemv::dot;
use rayon::prelude::*;

/// Channel × position × state products below which threads cost more than they save.
const PAR_WORK: usize = 1 << 16;

/// Causal depthwise conv then SiLU, continuing from `window`.
///
/// - `window`: (d_inner, d_conv), the last d_conv inputs of each channel,
///   newest last (zeros before the first token); left holding the newest.
/// - `xs`: (t, d_inner) new inputs; `w`: (d_inner, d_conv); `bias`: (d_inner).
/// - `out`: (t, d_inner) = SiLU(bias + Σ_k w[k]·x[pos − d_conv + 1 + k]).
///
/// Sliding the window one input at a time is the same sum as transformers'
/// `conv1d(padding = d_conv − 1)[:t]` over the left-padded sequence.
pub fn conv_silu(d_conv: usize, window: &mut [f32], xs: &[f32], w: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
    let channels = window.len() / d_conv.max(1);
    assert!(d_conv > 0 && window.len() == channels * d_conv && w.len() == window.len(), "conv: window shapes");
    assert!(xs.len() == out.len() && xs.len().is_multiple_of(channels.max(1)), "conv: input shapes");
    assert!(bias.is_none_or(|b| b.len() == channels), "conv: bias shape");
    for c in 0..channels {
        let win = &mut window[c * d_conv..(c + 1) * d_conv];
        let wc = &w[c * d_conv..(c + 1) * d_conv];
        let b = bias.map_or(0.0, |b| b[c]);
        for (x, o) in xs.iter().skip(c).step_by(channels).zip(out.iter_mut().skip(c).step_by(channels)) {
            // A few values: a loop, not `copy_within` (a memmove call each time).
            for j in 1..d_conv {
                win[j - 1] = win[j];
            }
            win[d_conv - 1] = *x;
            let acc: f32 = win.iter().zip(wc).map(|(v, w)| v * w).sum();
            *o = acc + b;
        }
    }
    out.iter_mut().for_each(|o| *o = silu(*o));
}

/// x·σ(x) = x / (1 + e^−x), as torch's `F.silu`.
#[inline]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + exp(-x))
}

/// torch's `F.softplus` (β = 1, threshold 20): identity above 20.
pub fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

/// Shapes for one layer's scan.
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub t: usize,
    pub d_inner: usize,
    pub d_state: usize,
}

/// The selective scan over t positions, continuing from state `h`:
///
///   h ← exp(A·Δ) ⊙ h + (Δ·B)·u,   y = C·h + D·u
///
/// exactly as transformers' `mamba_selective_scan` / `selective_state_update`
/// discretize (ZOH for A, Euler for B), position by position.
///
/// - `h`: (d_inner, d_state), updated in place; `a`: (d_inner, d_state) = −exp(A_log)
/// - `u`, `dt`: (t, d_inner), conv output and Δ after softplus
/// - `b`, `c`: (t, d_state); `d`: (d_inner)
/// - `y`: (t, d_inner)
#[allow(clippy::too_many_arguments)]
pub fn selective_scan(
    dims: Dims,
    h: &mut [f32],
    a: &[f32],
    u: &[f32],
    dt: &[f32],
    b: &[f32],
    c: &[f32],
    d: &[f32],
    y: &mut [f32],
) {
    let Dims { t, d_inner, d_state: n } = dims;
    assert!(h.len() == d_inner * n && a.len() == h.len() && d.len() == d_inner, "scan: state shapes");
    assert!(u.len() == t * d_inner && dt.len() == u.len() && y.len() == u.len(), "scan: input shapes");
    assert!(b.len() == t * n && c.len() == b.len(), "scan: B/C shapes");
    if t == 0 || n == 0 {
        return;
    }
    // Channel-major: each channel's state row stays in L1 across all
    // positions. Outputs go to a (d_inner, t) buffer so threads own whole rows.
    let mut yt = vec![0f32; t * d_inner];
    let channel = |ch: usize, hc: &mut [f32], yc: &mut [f32]| {
        let ac = &a[ch * n..(ch + 1) * n];
        for (i, yi) in yc.iter_mut().enumerate() {
            let (dti, ui) = (dt[i * d_inner + ch], u[i * d_inner + ch]);
            *yi = step(hc, ac, dti, ui, &b[i * n..(i + 1) * n], &c[i * n..(i + 1) * n]) + d[ch] * ui;
        }
    };
    let per = d_inner.div_ceil(rayon::current_num_threads().max(1) * 2).max(1);
    if t * d_inner * n < PAR_WORK || per == d_inner {
        for (ch, (hc, yc)) in h.chunks_mut(n).zip(yt.chunks_mut(t)).enumerate() {
            channel(ch, hc, yc);
        }
    } else {
        h.par_chunks_mut(per * n).zip(yt.par_chunks_mut(per * t)).enumerate().for_each(|(k, (hs, ys))| {
            for (j, (hc, yc)) in hs.chunks_mut(n).zip(ys.chunks_mut(t)).enumerate() {
                channel(k * per + j, hc, yc);
            }
        });
    }
    for (ch, yc) in yt.chunks(t).enumerate() {
        for (i, v) in yc.iter().enumerate() {
            y[i * d_inner + ch] = *v;
        }
    }
}

/// One channel, one position: update its state row, return C·h.
#[inline]
fn step(h: &mut [f32], a: &[f32], dt: f32, u: f32, b: &[f32], c: &[f32]) -> f32 {
    // dA = exp(A·Δ), dB·u = (Δ·B)·u, in transformers' order. No reduction
    // in this loop, so it vectorises over d_state.
    for ((h, a), b) in h.iter_mut().zip(a).zip(b) {
        *h = exp(a * dt) * *h + (dt * b) * u;
    }
    dot(h, c)
}

/// e^x to within 2 ulp of the correctly rounded value (Cephes `expf`),
/// branch-free so that loops over it vectorise; `f32::exp` is a libm call
/// per element and was most of the scan's time. Inputs are clamped to
/// [−87, 88]: below, the result is under 1.7e-38 instead of smaller.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const MAGIC: f32 = 12_582_912.0; // 1.5·2²³: adding it rounds to an integer held in the low mantissa bits
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0); // NaN stays NaN
    let t = x * LOG2E + MAGIC;
    let k = t - MAGIC; // round(x / ln 2)
    let ki = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let r = x - k * LN2_HI - k * LN2_LO; // |r| ≤ ln 2 / 2
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    er * f32::from_bits(((ki + 127) as u32) << 23) // · 2^k
}

/// y ← y · SiLU(z), both (t, d_inner).
pub fn gate(y: &mut [f32], z: &[f32]) {
    y.iter_mut().zip(z).for_each(|(y, z)| *y *= silu(*z));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_within_two_ulp() {
        let mut worst = 0f32;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (got, want) = (exp(x), (x as f64).exp() as f32);
            let ulp = (want.to_bits() as i64 - got.to_bits() as i64).abs();
            assert!(ulp <= 2, "exp({x}) = {got}, want {want}");
            worst = worst.max(ulp as f32);
            x += 0.000_731;
        }
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1000.0) < 1.7e-38 && exp(-1000.0) >= 0.0);
        assert!(worst <= 2.0);
    }
}

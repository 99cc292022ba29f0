//! The Mamba-2 SSD recurrence and its gated RMSNorm as plain loops on f32
//! slices. Position by position it is what transformers' decode step
//! (`mamba2_selective_state_update`) computes; the chunked SSD form of its
//! prefill is the same sum regrouped, so one loop serves both and a prompt
//! fed in pieces gives what feeding it whole gives. Heads are independent,
//! so long runs split them over rayon's threads without changing arithmetic.

use crate::model::gemv::dot;
use crate::model::mamba::scan::{exp, silu};
use rayon::prelude::*;

/// Head × position × state products below which threads cost more than they save.
const PAR_WORK: usize = 1 << 16;

#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub t: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub d_state: usize,
    /// Groups sharing B and C; heads / groups consecutive heads per group.
    pub groups: usize,
}

/// Run t positions from state `h`:
///
///   h ← exp(Δ·A)·h + (Δ·B) ⊗ x,   y = h·C + D·x   (per head; A, Δ, D scalars)
///
/// - `h`: (heads, head_dim, d_state), updated in place; or, with `from`, the
///   first position reads `from` and `h` is only written, so that a trace can
///   keep the old state with nothing copied (in place is faster: writing to
///   another buffer first fetches its lines, 0.4 ms a step at the 130m shape)
/// - `a`, `d`: (heads)
/// - `u`: (t, d_inner + 2·groups·d_state) = x, B of each group, C of each group (after conv and SiLU)
/// - `dt`: (t, heads), after softplus and clamping; `y`: (t, d_inner)
#[allow(clippy::too_many_arguments)]
pub fn scan(
    dims: Dims,
    from: Option<&[f32]>,
    h: &mut [f32],
    a: &[f32],
    u: &[f32],
    dt: &[f32],
    d: &[f32],
    y: &mut [f32],
) {
    let Dims { t, heads, head_dim: p, d_state: n, groups } = dims;
    let di = heads * p;
    let width = di + 2 * groups * n;
    assert!(h.len() == di * n && a.len() == heads && d.len() == heads, "ssd: state shapes");
    assert!(from.is_none_or(|f| f.len() == h.len()), "ssd: state shapes");
    assert!(u.len() == t * width && dt.len() == t * heads && y.len() == t * di, "ssd: input shapes");
    assert!(groups > 0 && heads.is_multiple_of(groups), "ssd: groups");
    if t == 0 || n == 0 || p == 0 {
        if let Some(f) = from {
            h.copy_from_slice(f);
        }
        return;
    }
    let per_group = heads / groups;
    // Outputs go to a (heads, t, head_dim) buffer so each thread owns whole heads.
    let mut yh = vec![0f32; t * di];
    let head = |hd: usize, hs: &mut [f32], ys: &mut [f32]| {
        let g = hd / per_group;
        let old = from.map(|f| &f[hd * p * n..(hd + 1) * p * n]);
        for (i, yi) in ys.chunks_mut(p).enumerate() {
            let row = &u[i * width..(i + 1) * width];
            let (x, b, c) =
                (&row[hd * p..(hd + 1) * p], &row[di + g * n..di + (g + 1) * n], &row[di + (groups + g) * n..]);
            let c = &c[..n];
            let delta = dt[i * heads + hd];
            let decay = exp(delta * a[hd]);
            for (j, ((s, &xj), yj)) in hs.chunks_mut(n).zip(x).zip(yi.iter_mut()).enumerate() {
                // transformers' order: state·dA + (Δ·B)·x; no reduction here, so it vectorises.
                match old.filter(|_| i == 0) {
                    None => {
                        for (sv, &bv) in s.iter_mut().zip(b) {
                            *sv = *sv * decay + (delta * bv) * xj;
                        }
                    }
                    Some(old) => {
                        for ((sv, &ov), &bv) in s.iter_mut().zip(&old[j * n..(j + 1) * n]).zip(b) {
                            *sv = ov * decay + (delta * bv) * xj;
                        }
                    }
                }
                *yj = dot(s, c) + xj * d[hd];
            }
        }
    };
    if t * di * n < PAR_WORK || heads == 1 {
        for (hd, (hs, ys)) in h.chunks_mut(p * n).zip(yh.chunks_mut(t * p)).enumerate() {
            head(hd, hs, ys);
        }
    } else {
        h.par_chunks_mut(p * n).zip(yh.par_chunks_mut(t * p)).enumerate().for_each(|(hd, (hs, ys))| head(hd, hs, ys));
    }
    for (hd, ys) in yh.chunks(t * p).enumerate() {
        for (i, yi) in ys.chunks(p).enumerate() {
            y[i * di + hd * p..i * di + (hd + 1) * p].copy_from_slice(yi);
        }
    }
}

/// transformers' `MambaRMSNormGated` (gate applied before the norm):
/// y ← w · rms_normalize(y · SiLU(z)) over groups of `group` channels, each row of y.
pub fn gated_norm(y: &mut [f32], z: &[f32], w: &[f32], group: usize, eps: f32) {
    assert!(y.len() == z.len() && group > 0 && w.len().is_multiple_of(group), "gated norm: shapes");
    y.iter_mut().zip(z).for_each(|(y, z)| *y *= silu(*z));
    for row in y.chunks_mut(w.len()) {
        for (vals, ws) in row.chunks_mut(group).zip(w.chunks(group)) {
            let var = vals.iter().map(|v| v * v).sum::<f32>() / group as f32;
            let r = 1.0 / (var + eps).sqrt();
            vals.iter_mut().zip(ws).for_each(|(v, w)| *v = w * (*v * r));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_position_by_hand() {
        // 2 heads of dim 1 in one group, d_state 2.
        let dims = Dims { t: 1, heads: 2, head_dim: 1, d_state: 2, groups: 1 };
        let mut h = vec![1.0, 0.0, 0.0, 2.0];
        let (a, d) = ([-1.0, -2.0], [0.5, 0.0]);
        let u = [3.0, 4.0, /* B */ 1.0, 2.0, /* C */ 1.0, 1.0];
        let dt = [0.1, 0.2];
        let mut y = [0.0; 2];
        let old = h.clone();
        scan(dims, None, &mut h, &a, &u, &dt, &d, &mut y);
        let (e1, e2) = ((-0.1f32).exp(), (-0.4f32).exp());
        let want_h = [e1 + 0.1 * 3.0, 0.2 * 3.0, 0.2 * 4.0, 2.0 * e2 + 0.4 * 4.0];
        for (g, w) in h.iter().zip(want_h) {
            assert!((g - w).abs() < 1e-6, "{h:?}");
        }
        assert!((y[0] - (want_h[0] + want_h[1] + 1.5)).abs() < 1e-6);
        assert!((y[1] - (want_h[2] + want_h[3])).abs() < 1e-6);
        // From a separate old state into garbage: bit-identical.
        let (mut h2, mut y2) = (vec![f32::NAN; 4], [0.0; 2]);
        scan(dims, Some(&old), &mut h2, &a, &u, &dt, &d, &mut y2);
        assert_eq!((h2, y2), (h, y));
    }

    #[test]
    fn from_equals_in_place_over_positions_and_threads() {
        let val = |i: usize| ((i * 2654435761) % 1000) as f32 / 1000.0 - 0.5;
        // One position (decode) and three, both on the threaded path (t·d_inner·d_state ≥ PAR_WORK).
        for t in [1, 3] {
            let dims = Dims { t, heads: 4, head_dim: 16, d_state: 1030, groups: 2 };
            let (di, n) = (64, 1030);
            let h0: Vec<f32> = (0..di * n).map(val).collect();
            let u: Vec<f32> = (0..t * (di + 4 * n)).map(|i| val(i + 7)).collect();
            let (a, d, dt) = ([-0.5, -1.0, -2.0, -0.1], [0.1, 0.2, 0.3, 0.4], vec![0.1; 4 * t]);
            let (mut h, mut y) = (h0.clone(), vec![0.0; t * di]);
            scan(dims, None, &mut h, &a, &u, &dt, &d, &mut y);
            // Into a buffer with garbage, one float in.
            let (mut buf, mut y2) = (vec![f32::NAN; di * n + 1], vec![0.0; t * di]);
            scan(dims, Some(&h0), &mut buf[1..], &a, &u, &dt, &d, &mut y2);
            assert!(h == buf[1..] && y == y2, "t = {t}");
        }
    }
}

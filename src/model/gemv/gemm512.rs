//! `gemm`'s microkernel with AVX-512: a packed block of XB = 16 input rows is
//! one vector, so each weight row's sums for the block are one accumulator;
//! 32 registers leave room for 12 weight rows × two blocks (24 FMA chains,
//! each weight broadcast feeding two) where AVX2 takes 6 rows × one block.

use super::gemm::XB;
use std::arch::x86_64::*;

pub(super) fn detected() -> bool {
    is_x86_feature_detected!("avx512f")
}

/// out[k][i] = Σ_c w[k·n + c]·xp[c·XB + i] for R weight rows (row-major,
/// n = cols) and all XB rows of a packed block. Each sum is one FMA chain
/// over c, as in `panel_two`, so a value does not depend on how rows were
/// grouped (short groups, at the ends of bands, lose some speed only).
/// SAFETY: the CPU has avx512f.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn panel<const R: usize>(w: &[f32], xp: &[f32], n: usize, out: &mut [[f32; XB]]) {
    assert!(w.len() >= R * n && xp.len() >= XB * n && out.len() >= R, "panel: short slices");
    let (wp, xq) = (w.as_ptr(), xp.as_ptr());
    let mut acc = [_mm512_setzero_ps(); R];
    for c in 0..n {
        // SAFETY: c < n: inside xp's first n·XB values and w's first R rows.
        let xv = unsafe { _mm512_loadu_ps(xq.add(c * XB)) };
        for (k, a) in acc.iter_mut().enumerate() {
            *a = _mm512_fmadd_ps(_mm512_set1_ps(unsafe { *wp.add(k * n + c) }), xv, *a);
        }
    }
    for (out, a) in out.iter_mut().zip(&acc) {
        // SAFETY: XB = 16 floats = one vector.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), *a) };
    }
}

/// `panel` for two consecutive packed blocks at once (xp holds 2·XB·n
/// values): each weight broadcast feeds two FMAs, so loads no longer bound
/// the loop. out[k] for the first block, out[R + k] for the second.
/// SAFETY: the CPU has avx512f.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn panel_two<const R: usize>(w: &[f32], xp: &[f32], n: usize, out: &mut [[f32; XB]]) {
    assert!(w.len() >= R * n && xp.len() >= 2 * XB * n && out.len() >= 2 * R, "panel_two: short slices");
    let (wp, x0, x1) = (w.as_ptr(), xp.as_ptr(), xp[XB * n..].as_ptr());
    let mut acc = [[_mm512_setzero_ps(); R]; 2];
    for c in 0..n {
        // SAFETY: c < n: inside both blocks and w's first R rows.
        let (a, b) = unsafe { (_mm512_loadu_ps(x0.add(c * XB)), _mm512_loadu_ps(x1.add(c * XB))) };
        let [first, second] = &mut acc;
        for (k, (s0, s1)) in first.iter_mut().zip(second.iter_mut()).enumerate() {
            let wv = _mm512_set1_ps(unsafe { *wp.add(k * n + c) });
            *s0 = _mm512_fmadd_ps(wv, a, *s0);
            *s1 = _mm512_fmadd_ps(wv, b, *s1);
        }
    }
    for (h, acc) in acc.iter().enumerate() {
        for (k, a) in acc.iter().enumerate() {
            // SAFETY: h·R + k < out.len(); XB = 16 floats = one vector.
            unsafe { _mm512_storeu_ps(out[h * R + k].as_mut_ptr(), *a) };
        }
    }
}

//! `gemm`'s microkernel with AVX-512: a packed block of XB = 16 input rows is
//! one vector, so each weight row's sums for the block are one accumulator;
//! 32 registers leave room for 12 weight rows (12 FMA chains, enough to
//! cover the FMA latency) where AVX2 takes 6.

use super::gemm::XB;
use std::arch::x86_64::*;

pub(super) fn detected() -> bool {
    is_x86_feature_detected!("avx512f")
}

/// out[k][i] = Σ_c w[k·n + c]·xp[c·XB + i] for R weight rows (row-major,
/// n = cols) and all XB rows of a packed block. With U = 2, two sets of
/// accumulators take alternate columns (for R too small to hide the latency).
/// SAFETY: the CPU has avx512f.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn panel<const R: usize, const U: usize>(w: &[f32], xp: &[f32], n: usize, out: &mut [[f32; XB]]) {
    assert!(w.len() >= R * n && xp.len() >= XB * n && out.len() >= R, "panel: short slices");
    let (wp, xq) = (w.as_ptr(), xp.as_ptr());
    let mut acc = [[_mm512_setzero_ps(); R]; U];
    let nu = n / U * U;
    let column = |c: usize, acc: &mut [__m512; R]| {
        // SAFETY: c < n: inside xp's first n·XB values and w's first R rows.
        let xv = unsafe { _mm512_loadu_ps(xq.add(c * XB)) };
        for (k, a) in acc.iter_mut().enumerate() {
            *a = _mm512_fmadd_ps(_mm512_set1_ps(unsafe { *wp.add(k * n + c) }), xv, *a);
        }
    };
    let mut c = 0;
    while c < nu {
        for (u, acc) in acc.iter_mut().enumerate() {
            column(c + u, acc);
        }
        c += U;
    }
    for c in nu..n {
        column(c, &mut acc[0]);
    }
    for (k, out) in out.iter_mut().take(R).enumerate() {
        let sum = acc[1..].iter().fold(acc[0][k], |s, a| _mm512_add_ps(s, a[k]));
        // SAFETY: XB = 16 floats = one vector.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), sum) };
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
        for k in 0..R {
            let wv = _mm512_set1_ps(unsafe { *wp.add(k * n + c) });
            acc[0][k] = _mm512_fmadd_ps(wv, a, acc[0][k]);
            acc[1][k] = _mm512_fmadd_ps(wv, b, acc[1][k]);
        }
    }
    for (h, acc) in acc.iter().enumerate() {
        for (k, a) in acc.iter().enumerate() {
            // SAFETY: h·R + k < out.len(); XB = 16 floats = one vector.
            unsafe { _mm512_storeu_ps(out[h * R + k].as_mut_ptr(), *a) };
        }
    }
}

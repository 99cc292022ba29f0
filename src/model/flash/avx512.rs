//! The block kernel's two products with AVX-512 register tiles, for head
//! dimensions that are whole vectors (16 floats). 32 vector registers hold a
//! 4-row × 64-column tile of sums with room for the operands, where AVX2's 16
//! hold a quarter of that; everything else in the block kernel is shared.

use super::{View, BK, BQ};
use std::arch::x86_64::*;

/// Query rows per register tile.
const MR: usize = 4;
/// Vectors per 64 columns.
const NV: usize = BK / 16;

/// s = qt · kt for the block's rows, in tiles of 4 rows × all 64 keys: per
/// step of the head dimension, 4 loads of keys, 4 broadcasts of queries and
/// 16 FMAs. `qt` is zero-padded to BQ rows, `kt` holds BK readable columns
/// from its start on each of its d rows (`stride` apart).
/// SAFETY: the CPU has avx512f; `qt.len() >= BQ·d`, `kt` as said.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn scores(qt: &[f32], kt: &[f32], stride: usize, d: usize, nq: usize, s: &mut [[f32; BK]; BQ]) {
    assert!(qt.len() >= BQ * d && (d == 0 || kt.len() >= (d - 1) * stride + BK), "scores: short slices");
    let (q, k) = (qt.as_ptr(), kt.as_ptr());
    for r0 in (0..nq).step_by(MR) {
        let mut acc = [[_mm512_setzero_ps(); NV]; MR];
        for i in 0..d {
            // SAFETY: i < d and v·16 + 16 <= BK: inside kt (asserted above).
            let kv: [__m512; NV] = std::array::from_fn(|v| unsafe { _mm512_loadu_ps(k.add(i * stride + 16 * v)) });
            for (r, acc) in acc.iter_mut().enumerate() {
                // SAFETY: r0 + r < BQ (nq <= BQ, BQ a multiple of MR) and i < d.
                let qv = _mm512_set1_ps(unsafe { *q.add((r0 + r) * d + i) });
                for (a, kv) in acc.iter_mut().zip(&kv) {
                    *a = _mm512_fmadd_ps(qv, *kv, *a);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (v, a) in acc.iter().enumerate() {
                // SAFETY: r0 + r < BQ, 16v + 16 <= BK.
                unsafe { _mm512_storeu_ps(s[r0 + r].as_mut_ptr().add(16 * v), *a) };
            }
        }
    }
}

/// out[i] += Σ_j p[i][j]·v[c0 + j] for j < len and the block's rows i < nq,
/// in tiles of 4 rows × 64 output columns (d a multiple of 16; the last tile
/// of a row may be narrower): per key, the tile's value vectors load once for
/// 4 rows. Rows past nq up to the tile's end are computed and ignored (so
/// every tile has 4 rows and its sums stay in registers).
/// SAFETY: the CPU has avx512f; `out.len() >= BQ·d`; v's rows c0..c0+len exist.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn accumulate(
    p: &[[f32; BK]; BQ],
    nq: usize,
    v: View,
    kv: usize,
    c0: usize,
    len: usize,
    d: usize,
    out: &mut [f32],
) {
    assert!(d.is_multiple_of(16) && out.len() >= BQ * d && len <= BK && nq <= BQ, "accumulate: bad shapes");
    let rows: [&[f32]; BK] = std::array::from_fn(|j| if j < len { v.row(kv, c0 + j, d) } else { &[] });
    let rows = &rows[..len];
    for col in (0..d).step_by(64) {
        let nv = ((d - col) / 16).min(NV);
        for r0 in (0..nq).step_by(MR) {
            let (p, out) = (&p[r0..r0 + MR], &mut out[r0 * d..(r0 + MR) * d]);
            match nv {
                4 => tile::<4>(p, rows, col, d, out),
                3 => tile::<3>(p, rows, col, d, out),
                2 => tile::<2>(p, rows, col, d, out),
                _ => tile::<1>(p, rows, col, d, out),
            }
        }
    }
}

/// One tile of `accumulate`: 4 rows × 16·N columns from `col`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn tile<const N: usize>(p: &[[f32; BK]], rows: &[&[f32]], col: usize, d: usize, out: &mut [f32]) {
    assert!(p.len() == MR && out.len() == MR * d && col + 16 * N <= d, "tile: bad shapes");
    let o = out.as_mut_ptr();
    let mut acc = [[_mm512_setzero_ps(); N]; MR];
    for (r, acc) in acc.iter_mut().enumerate() {
        for (v, a) in acc.iter_mut().enumerate() {
            // SAFETY: inside `out` (asserted above).
            *a = unsafe { _mm512_loadu_ps(o.add(r * d + col + 16 * v)) };
        }
    }
    for (j, row) in rows.iter().enumerate() {
        assert!(row.len() >= col + 16 * N);
        // SAFETY: col + 16v + 16 <= row.len().
        let vv: [__m512; N] = std::array::from_fn(|x| unsafe { _mm512_loadu_ps(row.as_ptr().add(col + 16 * x)) });
        for r in 0..MR {
            let w = _mm512_set1_ps(p[r][j]);
            for (a, vv) in acc[r].iter_mut().zip(&vv) {
                *a = _mm512_fmadd_ps(w, *vv, *a);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (v, a) in acc.iter().enumerate() {
            // SAFETY: as above.
            unsafe { _mm512_storeu_ps(o.add(r * d + col + 16 * v), *a) };
        }
    }
}

/// x ← x·scale on [lo, hi), −∞ elsewhere (no soft-cap); returns the max.
/// SAFETY: the CPU has avx512f.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn scale_mask_max(x: &mut [f32; BK], scale: f32, lo: usize, hi: usize) -> f32 {
    let (sc, ninf) = (_mm512_set1_ps(scale), _mm512_set1_ps(f32::NEG_INFINITY));
    let iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let (lo, hi) = (_mm512_set1_epi32(lo as i32), _mm512_set1_epi32(hi as i32));
    let mut mx = ninf;
    for v in 0..NV {
        let j = _mm512_add_epi32(iota, _mm512_set1_epi32(16 * v as i32));
        let seen = _mm512_cmpge_epi32_mask(j, lo) & _mm512_cmplt_epi32_mask(j, hi);
        // SAFETY: 16v + 16 <= BK.
        let p = unsafe { x.as_mut_ptr().add(16 * v) };
        let y = _mm512_mask_mul_ps(ninf, seen, unsafe { _mm512_loadu_ps(p) }, sc);
        unsafe { _mm512_storeu_ps(p, y) };
        mx = _mm512_max_ps(mx, y);
    }
    _mm512_reduce_max_ps(mx)
}

/// x ← exp(x − m) (0 where x is −∞, or where x − m < −87); returns the sum.
/// Cephes' expf as `exp_approx`, with fused steps.
/// SAFETY: the CPU has avx512f.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn exp_row(x: &mut [f32; BK], m: f32) -> f32 {
    let mv = _mm512_set1_ps(m);
    let mut sum = _mm512_setzero_ps();
    for v in 0..NV {
        // SAFETY: 16v + 16 <= BK.
        let p = unsafe { x.as_mut_ptr().add(16 * v) };
        let y = _mm512_sub_ps(unsafe { _mm512_loadu_ps(p) }, mv);
        let keep = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(y, _mm512_set1_ps(-87.0));
        let e = _mm512_maskz_mov_ps(keep, exp(y));
        unsafe { _mm512_storeu_ps(p, e) };
        sum = _mm512_add_ps(sum, e);
    }
    _mm512_reduce_add_ps(sum)
}

/// eˣ for −87 ≤ x ≤ 0 (clamped), within a few ulp.
#[inline]
#[target_feature(enable = "avx512f")]
fn exp(x: __m512) -> __m512 {
    let x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0)), _mm512_setzero_ps());
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(
        x,
        _mm512_set1_ps(std::f32::consts::LOG2_E),
    ));
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm512_set1_ps(1.987_569_1e-4);
    for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    let e = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0)));
    _mm512_scalef_ps(e, n)
}

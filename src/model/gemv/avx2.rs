//! AVX2 + FMA + F16C inner loops, picked at runtime (the binary is built for
//! generic x86-64). The one safety requirement is that the CPU has those
//! features (`detected`): every load stays inside a `chunks_exact` slice.
//! `w` holds `y.len()` rows of `x.len()` columns (checked by the caller).

use super::{Q4_1_BYTES, Q8_0_BYTES, QK};
use std::arch::x86_64::*;

pub(super) fn detected() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c")
}

#[target_feature(enable = "avx2,fma")]
unsafe fn hsum(acc: [__m256; 4]) -> f32 {
    let v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

/// Four accumulators hide the FMA latency; x stays in L1 across rows.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn f32_rows(w: &[f32], x: &[f32], y: &mut [f32]) {
    let n = x.len();
    let n32 = n / 32 * 32;
    for (y, w) in y.iter_mut().zip(w.chunks_exact(n)) {
        let (wp, xp) = (w.as_ptr(), x.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        for i in (0..n32).step_by(32) {
            for (k, acc) in acc.iter_mut().enumerate() {
                // SAFETY: i + 8k + 8 <= n32 <= n = w.len() = x.len().
                *acc = _mm256_fmadd_ps(_mm256_loadu_ps(wp.add(i + 8 * k)), _mm256_loadu_ps(xp.add(i + 8 * k)), *acc);
            }
        }
        *y = hsum(acc) + w[n32..].iter().zip(&x[n32..]).map(|(w, x)| w * x).sum::<f32>();
    }
}

/// Per block: d and m from f16, 16 bytes widened to 32 nibbles, each weight
/// `q·d + m`, then FMA with x. The weight is one FMA, yet bit-identical to
/// candle's multiply-then-add: q < 16 has 4 significant bits and d (from f16)
/// 11, so q·d is exact in f32 and both forms round once, at the add.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q4_1_rows(w: &[u8], x: &[f32], y: &mut [f32]) {
    let row_bytes = x.len() / QK * Q4_1_BYTES;
    let nibble = _mm256_set1_epi32(0x0F);
    for (y, row) in y.iter_mut().zip(w.chunks_exact(row_bytes)) {
        let mut acc = [_mm256_setzero_ps(); 4];
        for (b, xs) in row.chunks_exact(Q4_1_BYTES).zip(x.chunks_exact(QK)) {
            let (b, xs) = (b.as_ptr(), xs.as_ptr());
            // SAFETY (all loads in this block): `b` has 20 bytes (4 of d, m, then
            // 16 at offsets 4 and 12, 8 each), `xs` has 32 floats (4 × 8).
            // [d, m, d, m, ...] from one 4-byte broadcast.
            let dm = _mm256_cvtph_ps(_mm_set1_epi32(b.cast::<i32>().read_unaligned()));
            let (d, m) = (_mm256_moveldup_ps(dm), _mm256_movehdup_ps(dm));
            let q0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(b.add(4).cast()));
            let q1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(b.add(12).cast()));
            // Values 0..8, 8..16 are low nibbles of bytes 0..16; 16..32 the high ones.
            let qs = [
                _mm256_and_si256(q0, nibble),
                _mm256_and_si256(q1, nibble),
                _mm256_srli_epi32(q0, 4),
                _mm256_srli_epi32(q1, 4),
            ];
            for (k, (q, acc)) in qs.into_iter().zip(acc.iter_mut()).enumerate() {
                let w = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), d, m);
                *acc = _mm256_fmadd_ps(w, _mm256_loadu_ps(xs.add(8 * k)), *acc);
            }
        }
        *y = hsum(acc);
    }
}

/// Per block: d from f16, 32 signed bytes widened, weight `q·d` as candle, FMA with x.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q8_0_rows(w: &[u8], x: &[f32], y: &mut [f32]) {
    let row_bytes = x.len() / QK * Q8_0_BYTES;
    for (y, row) in y.iter_mut().zip(w.chunks_exact(row_bytes)) {
        let mut acc = [_mm256_setzero_ps(); 4];
        for (b, xs) in row.chunks_exact(Q8_0_BYTES).zip(x.chunks_exact(QK)) {
            let (b, xs) = (b.as_ptr(), xs.as_ptr());
            // SAFETY (all loads in this block): `b` has 34 bytes (2 of d, then
            // 4 × 8 from offset 2), `xs` has 32 floats (4 × 8).
            let d = _mm256_cvtph_ps(_mm_set1_epi16(b.cast::<i16>().read_unaligned()));
            for (k, acc) in acc.iter_mut().enumerate() {
                let q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(b.add(2 + 8 * k).cast()));
                let w = _mm256_mul_ps(_mm256_cvtepi32_ps(q), d);
                *acc = _mm256_fmadd_ps(w, _mm256_loadu_ps(xs.add(8 * k)), *acc);
            }
        }
        *y = hsum(acc);
    }
}

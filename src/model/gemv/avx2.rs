//! AVX2 + FMA + F16C inner loops, picked at runtime (the binary is built for
//! generic x86-64). The one safety requirement is that the CPU has those
//! features (`detected`): every load stays inside a `chunks_exact` slice or
//! one whose length the function asserts first. For the gemv kernels `w`
//! holds `y.len()` rows of `x.len()` columns (checked by the caller).

use super::gemm::XB;
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

/// One block_q4_1 → 4 × 8 weights: d and m from f16, 16 bytes widened to 32
/// nibbles, each weight `q·d + m`. One FMA, yet bit-identical to candle's
/// multiply-then-add: q < 16 has 4 significant bits and d (from f16) 11, so
/// q·d is exact in f32 and both forms round once, at the add.
///
/// SAFETY: the CPU has avx2, fma and f16c, and `b` points at 20 readable bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_1_block(b: *const u8) -> [__m256; 4] {
    // Loads: d, m (4 bytes), then 16 at offsets 4 and 12, 8 each.
    // [d, m, d, m, ...] from one 4-byte broadcast.
    let dm = _mm256_cvtph_ps(_mm_set1_epi32(b.cast::<i32>().read_unaligned()));
    let (d, m) = (_mm256_moveldup_ps(dm), _mm256_movehdup_ps(dm));
    let q0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(b.add(4).cast()));
    let q1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(b.add(12).cast()));
    let nibble = _mm256_set1_epi32(0x0F);
    // Values 0..8, 8..16 are low nibbles of bytes 0..16; 16..32 the high ones.
    let qs = [
        _mm256_and_si256(q0, nibble),
        _mm256_and_si256(q1, nibble),
        _mm256_srli_epi32(q0, 4),
        _mm256_srli_epi32(q1, 4),
    ];
    // A loop, not `map`: a closure would not inherit this function's target features.
    let mut w = [m; 4];
    for (w, q) in w.iter_mut().zip(qs) {
        *w = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), d, m);
    }
    w
}

/// One block_q8_0 → 4 × 8 weights: d from f16, 32 signed bytes widened, `q·d` as candle.
///
/// SAFETY: the CPU has avx2, fma and f16c, and `b` points at 34 readable bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_0_block(b: *const u8) -> [__m256; 4] {
    // Loads: d (2 bytes), then 4 × 8 from offset 2.
    let d = _mm256_cvtph_ps(_mm_set1_epi16(b.cast::<i16>().read_unaligned()));
    let mut w = [d; 4];
    for (k, w) in w.iter_mut().enumerate() {
        let q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(b.add(2 + 8 * k).cast()));
        *w = _mm256_mul_ps(_mm256_cvtepi32_ps(q), d);
    }
    w
}

/// Dequantize, then FMA with x; `q4_1_block` explains why the weights are exact.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q4_1_rows(w: &[u8], x: &[f32], y: &mut [f32]) {
    let row_bytes = x.len() / QK * Q4_1_BYTES;
    for (y, row) in y.iter_mut().zip(w.chunks_exact(row_bytes)) {
        let mut acc = [_mm256_setzero_ps(); 4];
        for (b, xs) in row.chunks_exact(Q4_1_BYTES).zip(x.chunks_exact(QK)) {
            // SAFETY: `b` has 20 bytes, `xs` 32 floats (4 × 8).
            let w = q4_1_block(b.as_ptr());
            for (k, (w, acc)) in w.into_iter().zip(acc.iter_mut()).enumerate() {
                *acc = _mm256_fmadd_ps(w, _mm256_loadu_ps(xs.as_ptr().add(8 * k)), *acc);
            }
        }
        *y = hsum(acc);
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q8_0_rows(w: &[u8], x: &[f32], y: &mut [f32]) {
    let row_bytes = x.len() / QK * Q8_0_BYTES;
    for (y, row) in y.iter_mut().zip(w.chunks_exact(row_bytes)) {
        let mut acc = [_mm256_setzero_ps(); 4];
        for (b, xs) in row.chunks_exact(Q8_0_BYTES).zip(x.chunks_exact(QK)) {
            // SAFETY: `b` has 34 bytes, `xs` 32 floats (4 × 8).
            let w = q8_0_block(b.as_ptr());
            for (k, (w, acc)) in w.into_iter().zip(acc.iter_mut()).enumerate() {
                *acc = _mm256_fmadd_ps(w, _mm256_loadu_ps(xs.as_ptr().add(8 * k)), *acc);
            }
        }
        *y = hsum(acc);
    }
}

/// Whole blocks of Q4_1 bytes → f32 for `gemm`'s tile; same values as `q4_1_rows` uses.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q4_1_tile(blocks: &[u8], out: &mut [f32]) {
    for (b, o) in blocks.chunks_exact(Q4_1_BYTES).zip(out.chunks_exact_mut(QK)) {
        // SAFETY: `b` has 20 bytes, `o` 32 floats (4 × 8).
        for (k, w) in q4_1_block(b.as_ptr()).into_iter().enumerate() {
            _mm256_storeu_ps(o.as_mut_ptr().add(8 * k), w);
        }
    }
}

/// Whole blocks of Q8_0 bytes → f32 for `gemm`'s tile.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q8_0_tile(blocks: &[u8], out: &mut [f32]) {
    for (b, o) in blocks.chunks_exact(Q8_0_BYTES).zip(out.chunks_exact_mut(QK)) {
        // SAFETY: `b` has 34 bytes, `o` 32 floats (4 × 8).
        for (k, w) in q8_0_block(b.as_ptr()).into_iter().enumerate() {
            _mm256_storeu_ps(o.as_mut_ptr().add(8 * k), w);
        }
    }
}

/// `gemm`'s microkernel, outer-product form: out[k][i] = Σ_c w[k·n + c]·xp[c·XB + i]
/// for R ≤ 6 weight rows (row-major, n = cols) and the first 8·V of an XB = 16
/// wide packed block of input rows. Per column: V loads of x, R broadcasts of
/// a weight, R·V FMAs into accumulators that stay in registers for the whole
/// row, so no horizontal sums. FMA latency needs ~8 independent chains: with
/// V = 1, U = 2 sets of accumulators take alternate columns.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn panel<const R: usize, const V: usize, const U: usize>(
    w: &[f32],
    xp: &[f32],
    n: usize,
    out: &mut [[f32; XB]],
) {
    // The loads below rely on this.
    assert!(V <= XB / 8 && w.len() >= R * n && xp.len() >= XB * n && out.len() >= R, "panel: short slices");
    let mut acc = [[[_mm256_setzero_ps(); V]; R]; U];
    let (mut c, nu) = (0, n / U * U);
    while c < nu {
        for (u, acc) in acc.iter_mut().enumerate() {
            column(w.as_ptr(), xp.as_ptr(), n, c + u, acc);
        }
        c += U;
    }
    for c in nu..n {
        column(w.as_ptr(), xp.as_ptr(), n, c, &mut acc[0]);
    }
    let (first, rest) = acc.split_at_mut(1);
    for (k, out) in out.iter_mut().take(R).enumerate() {
        for v in 0..V {
            let sum = rest.iter().fold(first[0][k][v], |s, acc| _mm256_add_ps(s, acc[k][v]));
            // SAFETY: 8v + 8 <= XB = out.len().
            _mm256_storeu_ps(out.as_mut_ptr().add(8 * v), sum);
        }
    }
}

/// One column c of `panel`. SAFETY: c < n, and `panel`'s slice lengths.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn column<const R: usize, const V: usize>(
    w: *const f32,
    xp: *const f32,
    n: usize,
    c: usize,
    acc: &mut [[__m256; V]; R],
) {
    let mut xv = [_mm256_setzero_ps(); V];
    for (v, xv) in xv.iter_mut().enumerate() {
        // SAFETY: c < n and 8v + 8 <= XB: inside xp's first n·XB values.
        *xv = _mm256_loadu_ps(xp.add(c * XB + 8 * v));
    }
    for (k, acc) in acc.iter_mut().enumerate() {
        // SAFETY: k < R and c < n: inside w's first R rows.
        let wv = _mm256_broadcast_ss(&*w.add(k * n + c));
        for (acc, xv) in acc.iter_mut().zip(&xv) {
            *acc = _mm256_fmadd_ps(wv, *xv, *acc);
        }
    }
}

/// `gemm`'s X packing: out[c·XB + i0 + j] = x[j·cols + c] for 8 rows j of x,
/// as 8 × 8 transposes (unpack, shuffle, swap halves) plus a scalar tail.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn pack8(x: &[f32], cols: usize, out: &mut [f32], i0: usize) {
    // The loads and stores below rely on this.
    assert!(x.len() >= 8 * cols && out.len() >= XB * cols && i0 + 8 <= XB, "pack8: short slices");
    let (xp, op) = (x.as_ptr(), out.as_mut_ptr());
    let c8 = cols / 8 * 8;
    for c in (0..c8).step_by(8) {
        let mut r = [_mm256_setzero_ps(); 8];
        for (j, r) in r.iter_mut().enumerate() {
            // SAFETY: j < 8 and c + 8 <= cols: inside x's first 8 rows.
            *r = _mm256_loadu_ps(xp.add(j * cols + c));
        }
        let t = [
            _mm256_unpacklo_ps(r[0], r[1]),
            _mm256_unpackhi_ps(r[0], r[1]),
            _mm256_unpacklo_ps(r[2], r[3]),
            _mm256_unpackhi_ps(r[2], r[3]),
            _mm256_unpacklo_ps(r[4], r[5]),
            _mm256_unpackhi_ps(r[4], r[5]),
            _mm256_unpacklo_ps(r[6], r[7]),
            _mm256_unpackhi_ps(r[6], r[7]),
        ];
        // s[k] holds columns k and k + 4 of rows 0..4 (k < 4) or 4..8.
        let s = [
            _mm256_shuffle_ps(t[0], t[2], 0x44),
            _mm256_shuffle_ps(t[0], t[2], 0xEE),
            _mm256_shuffle_ps(t[1], t[3], 0x44),
            _mm256_shuffle_ps(t[1], t[3], 0xEE),
            _mm256_shuffle_ps(t[4], t[6], 0x44),
            _mm256_shuffle_ps(t[4], t[6], 0xEE),
            _mm256_shuffle_ps(t[5], t[7], 0x44),
            _mm256_shuffle_ps(t[5], t[7], 0xEE),
        ];
        let cols8 = [
            _mm256_permute2f128_ps(s[0], s[4], 0x20),
            _mm256_permute2f128_ps(s[1], s[5], 0x20),
            _mm256_permute2f128_ps(s[2], s[6], 0x20),
            _mm256_permute2f128_ps(s[3], s[7], 0x20),
            _mm256_permute2f128_ps(s[0], s[4], 0x31),
            _mm256_permute2f128_ps(s[1], s[5], 0x31),
            _mm256_permute2f128_ps(s[2], s[6], 0x31),
            _mm256_permute2f128_ps(s[3], s[7], 0x31),
        ];
        for (k, v) in cols8.into_iter().enumerate() {
            // SAFETY: c + k < cols and i0 + 8 <= XB: inside out's cols · XB.
            _mm256_storeu_ps(op.add((c + k) * XB + i0), v);
        }
    }
    for c in c8..cols {
        for j in 0..8 {
            out[c * XB + i0 + j] = x[j * cols + c];
        }
    }
}

//! AVX2 + FMA + F16C loops for bf16 and f16 rows, chosen at run time like
//! `avx2.rs`. The safety requirement is the same: the CPU has those features,
//! and `w` holds `y.len()` rows of `x.len()` values (asserted here too).
//! Eight accumulators per row: with four, the FMA latency chains, not memory,
//! were the limit (measured: 37 → 55 GB/s of bf16 from L2 on one core).

use std::arch::x86_64::*;

#[target_feature(enable = "avx2,fma")]
unsafe fn hsum(acc: [__m256; 8]) -> f32 {
    let mut v = acc[0];
    for a in &acc[1..] {
        v = _mm256_add_ps(v, *a);
    }
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

/// bf16 is the top half of an f32, so one 32-byte load of 16 weights gives,
/// per 32-bit lane, an even-indexed weight in the low half and the next one in
/// the high half: `<< 16` makes the evens f32, masking the low half the odds.
/// No conversion instruction, no shuffle; x comes pre-split to match
/// (`split`: per block of 16, the 8 even entries, then the 8 odd ones).
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn bf16_rows(w: &[u16], split: &[f32], x: &[f32], y: &mut [f32]) {
    let n = x.len();
    let n16 = n / 16 * 16;
    // The loads below rely on this.
    assert!(split.len() >= n16 && w.len() >= y.len() * n, "bf16_rows: short slices");
    let sp = split.as_ptr();
    for (y, w) in y.iter_mut().zip(w.chunks_exact(n)) {
        let wp = w.as_ptr();
        let mut acc = [_mm256_setzero_ps(); 8];
        // Four blocks of 16 at a time, one accumulator pair each (constant
        // indices keep the accumulators in registers), then the rest.
        let n64 = n16 / 64 * 64;
        for i in (0..n64).step_by(64) {
            for (k, a) in acc.chunks_exact_mut(2).enumerate() {
                // SAFETY: i + 16k + 16 <= n64 <= n = w.len(), and <= split.len().
                bf16_block(wp.add(i + 16 * k), sp.add(i + 16 * k), a);
            }
        }
        for i in (n64..n16).step_by(16) {
            // SAFETY: i + 16 <= n16, as above.
            bf16_block(wp.add(i), sp.add(i), &mut acc[..2]);
        }
        let tail: f32 = w[n16..].iter().zip(&x[n16..]).map(|(&w, x)| f32::from_bits((w as u32) << 16) * x).sum();
        *y = hsum(acc) + tail;
    }
}

/// 16 weights at `w` into the accumulator pair `a`, against 16 split x values at `x`.
///
/// SAFETY: the CPU has avx2 and fma; `w` and `x` have 16 readable values, `a` 2.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn bf16_block(w: *const u16, x: *const f32, a: &mut [__m256]) {
    let v = _mm256_loadu_si256(w.cast());
    let (even, odd) = (_mm256_slli_epi32(v, 16), _mm256_and_si256(v, _mm256_set1_epi32(0xFFFF_0000_u32 as i32)));
    a[0] = _mm256_fmadd_ps(_mm256_castsi256_ps(even), _mm256_loadu_ps(x), a[0]);
    a[1] = _mm256_fmadd_ps(_mm256_castsi256_ps(odd), _mm256_loadu_ps(x.add(8)), a[1]);
}

/// f16: F16C widens 8 weights per instruction, exactly.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn f16_rows(w: &[u16], x: &[f32], y: &mut [f32]) {
    let n = x.len();
    let n8 = n / 8 * 8;
    assert!(w.len() >= y.len() * n, "f16_rows: short slices");
    let xp = x.as_ptr();
    for (y, w) in y.iter_mut().zip(w.chunks_exact(n)) {
        let wp = w.as_ptr();
        let mut acc = [_mm256_setzero_ps(); 8];
        let n64 = n / 64 * 64;
        for i in (0..n64).step_by(64) {
            for (k, a) in acc.iter_mut().enumerate() {
                // SAFETY: i + 8k + 8 <= n64 <= n = w.len() = x.len().
                f16_block(wp.add(i + 8 * k), xp.add(i + 8 * k), a);
            }
        }
        for i in (n64..n8).step_by(8) {
            // SAFETY: i + 8 <= n8 <= n, as above.
            f16_block(wp.add(i), xp.add(i), &mut acc[0]);
        }
        let tail: f32 = w[n8..].iter().zip(&x[n8..]).map(|(&w, x)| half::f16::from_bits(w).to_f32() * x).sum();
        *y = hsum(acc) + tail;
    }
}

/// 8 weights at `w` times 8 x values at `x`, into `a`.
///
/// SAFETY: the CPU has avx2, fma and f16c; `w` and `x` have 8 readable values.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_block(w: *const u16, x: *const f32, a: &mut __m256) {
    *a = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(w.cast())), _mm256_loadu_ps(x), *a);
}

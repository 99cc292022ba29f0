//! Matrix–vector products for decoding one token: y = W·x with W row-major
//! (out, in), kept as f32 or as ggml blocks. candle's matmul for a single row
//! packs the whole weight matrix on every call; here each row is streamed
//! once, in its stored form, and rows are split over rayon's threads.
//!
//! Dequantized weights are bit-identical to candle's `q·d + m` (multiply, then
//! add; the AVX2 kernel's single FMA gives the same value, see `avx2.rs`); only
//! the dot-product summation order differs.

use candle_core::quantized::GgmlDType;
use half::f16;
use rayon::prelude::*;
use std::sync::OnceLock;

#[cfg(target_arch = "x86_64")]
mod avx2;
mod gemm;
#[cfg(target_arch = "x86_64")]
mod gemm512;
mod half_rows;

pub use half_rows::{Half, HalfRows, Matrix};

/// Values per quantized block.
const QK: usize = 32;
const Q4_1_BYTES: usize = 20;
const Q8_0_BYTES: usize = 34;

/// Weights for y = W·x, kept in the form they are cheapest to stream.
#[derive(Clone, Debug)]
pub enum GemvWeights {
    /// Row-major.
    F32 { rows: usize, cols: usize, data: Vec<f32> },
    /// ggml block_q4_1 rows: `{ d: f16, m: f16, qs: [u8; 16] }`, 20 bytes per 32 values.
    Q4_1 { rows: usize, cols: usize, blocks: Vec<u8> },
    /// ggml block_q8_0 rows: `{ d: f16, qs: [i8; 32] }`, 34 bytes per 32 values.
    Q8_0 { rows: usize, cols: usize, blocks: Vec<u8> },
}

/// Which inner loops run; chosen once per process from the CPU's features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    Portable,
    /// Only ever constructed after `is_x86_feature_detected!` said yes.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX2's kernels, and AVX-512 register tiles for `gemm` (likewise detected).
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

fn best_kernel() -> Kernel {
    static KERNEL: OnceLock<Kernel> = OnceLock::new();
    *KERNEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if avx2::detected() {
            return if gemm512::detected() { Kernel::Avx512 } else { Kernel::Avx2 };
        }
        Kernel::Portable
    })
}

impl GemvWeights {
    pub fn rows(&self) -> usize {
        match self {
            Self::F32 { rows, .. } | Self::Q4_1 { rows, .. } | Self::Q8_0 { rows, .. } => *rows,
        }
    }

    pub fn cols(&self) -> usize {
        match self {
            Self::F32 { cols, .. } | Self::Q4_1 { cols, .. } | Self::Q8_0 { cols, .. } => *cols,
        }
    }

    /// Raw ggml bytes of a (rows, cols) tensor of `dtype` (from candle's
    /// `QTensor::data()`). None if no kernel here handles the type, or the
    /// sizes don't match; the caller then falls back to dequantized f32.
    pub fn from_ggml(dtype: GgmlDType, rows: usize, cols: usize, bytes: &[u8]) -> Option<Self> {
        let quantized = |block_bytes: usize| -> Option<Vec<u8>> {
            let len = rows.checked_mul(cols / QK)?.checked_mul(block_bytes)?;
            (cols.is_multiple_of(QK) && bytes.len() == len).then(|| bytes.to_vec())
        };
        match dtype {
            GgmlDType::F32 => {
                if bytes.len() != rows.checked_mul(cols)?.checked_mul(4)? {
                    return None;
                }
                let data = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                Some(Self::F32 { rows, cols, data })
            }
            GgmlDType::Q4_1 => Some(Self::Q4_1 { rows, cols, blocks: quantized(Q4_1_BYTES)? }),
            GgmlDType::Q8_0 => Some(Self::Q8_0 { rows, cols, blocks: quantized(Q8_0_BYTES)? }),
            _ => None,
        }
    }

    /// Reorder rows: new row r = old row perm[r] (undoes llama.cpp's q/k
    /// permutation). Panics if `perm` has the wrong length or an index out of range.
    pub fn permute_rows(&mut self, perm: &[usize]) {
        fn permute<T: Copy>(data: &mut Vec<T>, row_len: usize, perm: &[usize]) {
            let mut out = Vec::with_capacity(data.len());
            for &p in perm {
                out.extend_from_slice(&data[p * row_len..(p + 1) * row_len]);
            }
            *data = out;
        }
        assert_eq!(perm.len(), self.rows(), "permute_rows: one index per row");
        let cols = self.cols();
        match self {
            Self::F32 { data, .. } => permute(data, cols, perm),
            Self::Q4_1 { blocks, .. } => permute(blocks, cols / QK * Q4_1_BYTES, perm),
            Self::Q8_0 { blocks, .. } => permute(blocks, cols / QK * Q8_0_BYTES, perm),
        }
    }

    /// y[r] = Σ_c W[r,c]·x[c] (+ bias[r]); parallel over rows with rayon.
    /// Panics if `x`, `y` or `bias` have the wrong length.
    pub fn gemv(&self, x: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
        self.gemv_with(best_kernel(), x, bias, y)
    }

    fn gemv_with(&self, kernel: Kernel, x: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
        let (rows, cols) = (self.rows(), self.cols());
        // Wrong lengths would otherwise silently drop rows or columns.
        self.check();
        assert_eq!(x.len(), cols, "gemv: x has {} values for {cols} columns", x.len());
        assert_eq!(y.len(), rows, "gemv: y has {} values for {rows} rows", y.len());
        if let Some(b) = bias {
            assert_eq!(b.len(), rows, "gemv: bias has {} values for {rows} rows", b.len());
        }
        if cols == 0 {
            y.iter_mut().enumerate().for_each(|(r, y)| *y = bias.map_or(0.0, |b| b[r]));
            return;
        }
        let chunk = chunk_rows(rows, cols);
        let run = |i: usize, y: &mut [f32]| {
            let r0 = i * chunk;
            let r = r0..r0 + y.len();
            match self {
                Self::F32 { data, .. } => f32_rows(kernel, &data[r.start * cols..r.end * cols], x, y),
                Self::Q4_1 { blocks, .. } => {
                    let rb = cols / QK * Q4_1_BYTES;
                    q4_1_rows(kernel, &blocks[r.start * rb..r.end * rb], x, y)
                }
                Self::Q8_0 { blocks, .. } => {
                    let rb = cols / QK * Q8_0_BYTES;
                    q8_0_rows(kernel, &blocks[r.start * rb..r.end * rb], x, y)
                }
            }
            if let Some(b) = bias {
                y.iter_mut().zip(&b[r]).for_each(|(y, b)| *y += b);
            }
        };
        run_chunks(y, chunk, run);
    }

    /// The variants are public, so a hand-built one may not hold what it says.
    fn check(&self) {
        let (rows, cols) = (self.rows(), self.cols());
        let (len, want) = match self {
            Self::F32 { data, .. } => (data.len(), rows * cols),
            Self::Q4_1 { blocks, .. } => (blocks.len(), rows * cols / QK * Q4_1_BYTES),
            Self::Q8_0 { blocks, .. } => (blocks.len(), rows * cols / QK * Q8_0_BYTES),
        };
        let blocks_ok = matches!(self, Self::F32 { .. }) || cols % QK == 0;
        assert!(len == want && blocks_ok, "GemvWeights: {len} stored values for {rows}x{cols}");
    }

    /// Dequantize row r to f32 (tests, embedding lookup). Bit-identical to candle.
    pub fn row(&self, r: usize, out: &mut [f32]) {
        let cols = self.cols();
        self.check();
        assert_eq!(out.len(), cols, "row: out has {} values for {cols} columns", out.len());
        match self {
            Self::F32 { data, .. } => out.copy_from_slice(&data[r * cols..(r + 1) * cols]),
            Self::Q4_1 { blocks, .. } => {
                let rb = cols / QK * Q4_1_BYTES;
                for (b, o) in blocks[r * rb..(r + 1) * rb].chunks_exact(Q4_1_BYTES).zip(out.chunks_exact_mut(QK)) {
                    dequant_q4_1(b, o);
                }
            }
            Self::Q8_0 { blocks, .. } => {
                let rb = cols / QK * Q8_0_BYTES;
                for (b, o) in blocks[r * rb..(r + 1) * rb].chunks_exact(Q8_0_BYTES).zip(out.chunks_exact_mut(QK)) {
                    dequant_q8_0(b, o);
                }
            }
        }
    }
}

/// `run(i, chunk i of y)` for every chunk of `chunk` rows, over rayon's threads.
fn run_chunks(y: &mut [f32], chunk: usize, run: impl Fn(usize, &mut [f32]) + Sync) {
    if chunk >= y.len() {
        run(0, y); // not worth waking the pool
    } else if rayon::current_thread_index().is_none() {
        // Called from outside the pool (a decode thread): rather than sleep
        // until the pool is done, do half the chunks here. Saves most of
        // the wake-up round trip, which dominates small matrices.
        let mine = y.len().div_ceil(chunk) / 2;
        let (first, rest) = y.split_at_mut(mine * chunk);
        rayon::in_place_scope(|s| {
            s.spawn(|_| rest.par_chunks_mut(chunk).enumerate().for_each(|(i, y)| run(mine + i, y)));
            first.chunks_mut(chunk).enumerate().for_each(|(i, y)| run(i, y));
        });
    } else {
        y.par_chunks_mut(chunk).enumerate().for_each(|(i, y)| run(i, y));
    }
}

/// Rows per rayon task: a few tasks per thread to even out, each big enough
/// (≥ ~64K weights) that task overhead stays small next to the work.
fn chunk_rows(rows: usize, cols: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let min_rows = (65_536 / cols.max(1)).max(16);
    rows.div_ceil(threads * 4).clamp(min_rows, 1024.max(min_rows))
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// One block_q4_1 → 32 values, exactly as candle's `BlockQ4_1::to_float`.
fn dequant_q4_1(b: &[u8], out: &mut [f32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    let (lo, hi) = out.split_at_mut(QK / 2);
    for ((q, lo), hi) in b[4..Q4_1_BYTES].iter().zip(lo).zip(hi) {
        *lo = (q & 0x0F) as f32 * d + m;
        *hi = (q >> 4) as f32 * d + m;
    }
}

/// One block_q8_0 → 32 values, exactly as candle's `BlockQ8_0::to_float`.
fn dequant_q8_0(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    for (q, o) in b[2..Q8_0_BYTES].iter().zip(out) {
        *o = (*q as i8) as f32 * d;
    }
}

fn f32_rows(kernel: Kernel, w: &[f32], x: &[f32], y: &mut [f32]) {
    match kernel {
        Kernel::Portable => y.iter_mut().zip(w.chunks_exact(x.len())).for_each(|(y, w)| *y = dot(w, x)),
        // SAFETY: `Avx2` is only constructed once the CPU reported avx2, fma and f16c.
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 | Kernel::Avx512 => unsafe { avx2::f32_rows(w, x, y) },
    }
}

fn q4_1_rows(kernel: Kernel, w: &[u8], x: &[f32], y: &mut [f32]) {
    match kernel {
        Kernel::Portable => quant_rows(w, Q4_1_BYTES, dequant_q4_1, x, y),
        // SAFETY: as in `f32_rows`.
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 | Kernel::Avx512 => unsafe { avx2::q4_1_rows(w, x, y) },
    }
}

fn q8_0_rows(kernel: Kernel, w: &[u8], x: &[f32], y: &mut [f32]) {
    match kernel {
        Kernel::Portable => quant_rows(w, Q8_0_BYTES, dequant_q8_0, x, y),
        // SAFETY: as in `f32_rows`.
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 | Kernel::Avx512 => unsafe { avx2::q8_0_rows(w, x, y) },
    }
}

/// Portable: dequantize a block to the stack, then an 8-lane dot the
/// compiler vectorises for whatever the target has.
fn quant_rows(w: &[u8], block_bytes: usize, dequant: impl Fn(&[u8], &mut [f32]), x: &[f32], y: &mut [f32]) {
    let row_bytes = x.len() / QK * block_bytes;
    for (y, row) in y.iter_mut().zip(w.chunks_exact(row_bytes)) {
        let mut acc = [0f32; 8];
        let mut buf = [0f32; QK];
        for (b, xs) in row.chunks_exact(block_bytes).zip(x.chunks_exact(QK)) {
            dequant(b, &mut buf);
            for (w8, x8) in buf.chunks_exact(8).zip(xs.chunks_exact(8)) {
                for i in 0..8 {
                    acc[i] += w8[i] * x8[i];
                }
            }
        }
        *y = acc.iter().sum();
    }
}

/// Σ w·x with eight running sums, so the compiler vectorises it.
pub(crate) fn dot(w: &[f32], x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (w8, x8) = (w.chunks_exact(8), x.chunks_exact(8));
    let tail: f32 = w8.remainder().iter().zip(x8.remainder()).map(|(w, x)| w * x).sum();
    for (w, x) in w8.zip(x8) {
        for i in 0..8 {
            acc[i] += w[i] * x[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod gemm_tests;
#[cfg(test)]
mod tests;

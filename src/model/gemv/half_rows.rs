//! Matrices kept as bf16 or f16, the form most Hub checkpoints ship in
//! (Qwen3, Gemma and Llama in bf16, Pythia in f16), and widened to f32 inside
//! the kernels. Every bf16 and f16 value is exactly an f32 value, so the
//! products are those of the f32 weights transformers computes with when it
//! loads the same checkpoint as float32; only the summation order differs, as
//! for any kernel here. Decoding streams every weight once per token, so half
//! the bytes is up to half the time where memory bandwidth is the limit.
//!
//! `Matrix` is what the layers hold on the CPU: these, or `GemvWeights`.

use super::{chunk_rows, run_chunks, GemvWeights, Kernel};
use crate::error::{Error, Result};
use candle_core::{DType, Tensor};
use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
use half::{bf16, f16};
use rayon::prelude::*;
use std::sync::Arc;

#[cfg(target_arch = "x86_64")]
mod x86;

/// Weights per band widened to f32 for `gemm` (8 MB: stays in L3 while used).
const BAND_WEIGHTS: usize = 1 << 21;
/// Up to this many input rows, `gemv` per row beats widening a band (as in `gemm`).
const GEMV_ROWS: usize = 4;

/// Which 16-bit float format the rows hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Half {
    Bf16,
    F16,
}

impl Half {
    /// out ← src widened: bf16 is the top half of an f32; f16 goes through
    /// `half`'s slice conversion (F16C where the CPU has it; one value at a
    /// time it checks the CPU on every call).
    fn widen(self, src: &[u16], out: &mut [f32]) {
        match self {
            Half::Bf16 => out.iter_mut().zip(src).for_each(|(o, &v)| *o = f32::from_bits((v as u32) << 16)),
            Half::F16 => src.reinterpret_cast::<f16>().convert_to_f32_slice(out),
        }
    }
}

/// Row-major (rows, cols) 16-bit floats for y = W·x.
#[derive(Clone, Debug)]
pub struct HalfRows {
    rows: usize,
    cols: usize,
    kind: Half,
    data: Vec<u16>,
}

impl HalfRows {
    /// None when `data` does not hold rows × cols values.
    pub fn new(kind: Half, rows: usize, cols: usize, data: Vec<u16>) -> Option<Self> {
        (rows.checked_mul(cols) == Some(data.len())).then_some(Self { rows, cols, kind, data })
    }

    /// A 2-D bf16 or f16 tensor as rows; None for any other dtype.
    pub fn from_tensor(t: &Tensor) -> Result<Option<Self>> {
        let (rows, cols) = t.dims2()?;
        let flat = t.flatten_all()?;
        let (kind, data): (Half, Vec<u16>) = match t.dtype() {
            DType::BF16 => (Half::Bf16, flat.to_vec1::<bf16>()?.into_iter().map(bf16::to_bits).collect()),
            DType::F16 => (Half::F16, flat.to_vec1::<f16>()?.into_iter().map(f16::to_bits).collect()),
            _ => return Ok(None),
        };
        Self::new(kind, rows, cols, data).map(Some).ok_or_else(|| Error::Weights("half rows: bad length".into()))
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn kind(&self) -> Half {
        self.kind
    }

    /// Row r widened to f32. Panics if `out` is not `cols` long.
    pub fn row(&self, r: usize, out: &mut [f32]) {
        assert_eq!(out.len(), self.cols, "row: out has {} values for {} columns", out.len(), self.cols);
        self.kind.widen(&self.data[r * self.cols..(r + 1) * self.cols], out);
    }

    /// y[r] = Σ_c W[r,c]·x[c] (+ bias[r]); parallel over rows as `GemvWeights::gemv`.
    /// Panics if `x`, `y` or `bias` have the wrong length.
    pub fn gemv(&self, x: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
        self.gemv_with(super::best_kernel(), x, bias, y)
    }

    fn gemv_with(&self, kernel: Kernel, x: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
        let (rows, cols) = (self.rows, self.cols);
        assert_eq!(x.len(), cols, "gemv: x has {} values for {cols} columns", x.len());
        assert_eq!(y.len(), rows, "gemv: y has {} values for {rows} rows", y.len());
        if let Some(b) = bias {
            assert_eq!(b.len(), rows, "gemv: bias has {} values for {rows} rows", b.len());
        }
        if cols == 0 {
            y.iter_mut().enumerate().for_each(|(r, y)| *y = bias.map_or(0.0, |b| b[r]));
            return;
        }
        let xs = Prepared::new(kernel, self.kind, x);
        let chunk = chunk_rows(rows, cols);
        let run = |i: usize, y: &mut [f32]| {
            let r0 = i * chunk;
            self.rows_kernel(kernel, &self.data[r0 * cols..(r0 + y.len()) * cols], &xs, y);
            if let Some(b) = bias {
                y.iter_mut().zip(&b[r0..]).for_each(|(y, b)| *y += b);
            }
        };
        run_chunks(y, chunk, run);
    }

    fn rows_kernel(&self, kernel: Kernel, w: &[u16], xs: &Prepared, y: &mut [f32]) {
        match (kernel, self.kind) {
            (Kernel::Portable, kind) => portable_rows(kind, w, xs.x, y),
            // SAFETY: `Avx2` is only constructed once the CPU reported avx2, fma and f16c;
            // `w` holds y.len() rows of x.len() values and `xs` was prepared for this kernel.
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2 | Kernel::Avx512, Half::Bf16) => unsafe { x86::bf16_rows(w, &xs.split, xs.x, y) },
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2 | Kernel::Avx512, Half::F16) => unsafe { x86::f16_rows(w, xs.x, y) },
        }
    }

    /// Y (t × rows) = X (t × cols) · Wᵀ (+ bias on every row), as `GemvWeights::gemm`:
    /// bands of rows are widened to f32 and run through its f32 kernel.
    /// Panics if `x`, `y` or `bias` have the wrong length.
    pub fn gemm(&self, x: &[f32], t: usize, bias: Option<&[f32]>, y: &mut [f32]) {
        let (rows, cols) = (self.rows, self.cols);
        assert_eq!(t.checked_mul(cols), Some(x.len()), "gemm: x has {} values for {t}x{cols}", x.len());
        assert_eq!(t.checked_mul(rows), Some(y.len()), "gemm: y has {} values for {t}x{rows}", y.len());
        if t <= GEMV_ROWS || rows == 0 || cols == 0 {
            for (i, y) in y.chunks_exact_mut(rows.max(1)).enumerate() {
                self.gemv(&x[i * cols..(i + 1) * cols], bias, y);
            }
            return;
        }
        let band = (BAND_WEIGHTS / cols).clamp(1, rows);
        let (mut wide, mut yb) = (Vec::new(), Vec::new());
        for r0 in (0..rows).step_by(band) {
            let r = r0..(r0 + band).min(rows);
            wide.resize(r.len() * cols, 0.0);
            let src = &self.data[r.start * cols..r.end * cols];
            let per_task = cols * 64;
            wide.par_chunks_mut(per_task).zip(src.par_chunks(per_task)).for_each(|(o, s)| self.kind.widen(s, o));
            let w = GemvWeights::F32 { rows: r.len(), cols, data: std::mem::take(&mut wide) };
            yb.resize(t * r.len(), 0.0);
            w.gemm(x, t, bias.map(|b| &b[r.clone()]), &mut yb);
            if let GemvWeights::F32 { data, .. } = w {
                wide = data;
            }
            for (y, yb) in y.chunks_exact_mut(rows).zip(yb.chunks_exact(r.len())) {
                y[r.clone()].copy_from_slice(yb);
            }
        }
    }
}

/// x as the kernel reads it: the AVX2 bf16 kernel wants each block of 16
/// split into its 8 even and 8 odd entries (see `x86::bf16_rows`).
struct Prepared<'x> {
    x: &'x [f32],
    split: Vec<f32>,
}

impl<'x> Prepared<'x> {
    fn new(kernel: Kernel, kind: Half, x: &'x [f32]) -> Self {
        let split = match (kernel, kind) {
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2 | Kernel::Avx512, Half::Bf16) => x
                .chunks_exact(16)
                .flat_map(|b| (0..16).map(move |i| b[if i < 8 { 2 * i } else { 2 * (i - 8) + 1 }]))
                .collect(),
            _ => vec![],
        };
        Self { x, split }
    }
}

/// Each row widened into a scratch row, then `dot`.
fn portable_rows(kind: Half, w: &[u16], x: &[f32], y: &mut [f32]) {
    let mut row = vec![0f32; x.len()];
    for (y, w) in y.iter_mut().zip(w.chunks_exact(x.len())) {
        kind.widen(w, &mut row);
        *y = super::dot(&row, x);
    }
}

/// A weight matrix as the CPU layers hold it.
#[derive(Clone, Debug)]
pub enum Matrix {
    /// f32 or GGUF blocks.
    Rows(Arc<GemvWeights>),
    /// bf16 or f16 from safetensors.
    Half(Arc<HalfRows>),
}

impl Matrix {
    pub fn rows(&self) -> usize {
        match self {
            Matrix::Rows(m) => m.rows(),
            Matrix::Half(m) => m.rows(),
        }
    }

    pub fn cols(&self) -> usize {
        match self {
            Matrix::Rows(m) => m.cols(),
            Matrix::Half(m) => m.cols(),
        }
    }

    /// Row r as f32 (embedding lookup).
    pub fn row(&self, r: usize, out: &mut [f32]) {
        match self {
            Matrix::Rows(m) => m.row(r, out),
            Matrix::Half(m) => m.row(r, out),
        }
    }

    /// Y (t × rows) = X (t × cols) · Wᵀ (+ bias).
    pub fn gemm(&self, x: &[f32], t: usize, bias: Option<&[f32]>, y: &mut [f32]) {
        match self {
            Matrix::Rows(m) => m.gemm(x, t, bias, y),
            Matrix::Half(m) => m.gemm(x, t, bias, y),
        }
    }
}

#[cfg(test)]
mod tests;

//! Multi-row products for prompt prefill: Y (t × rows) = X (t × cols) · Wᵀ,
//! straight from the stored weights, so no dequantized f32 copy of W is kept.
//!
//! X is packed once per call into blocks of XB = 16 input rows, column-major
//! inside a block (`xp[c·16 + i]`, zero past t). The weight rows (columns of
//! Y) are cut into bands, a rayon task each (a few per thread). A band is
//! walked in groups of MR = 6 rows (12 with AVX-512, `gemm512.rs`), each
//! dequantized (F32: copied) into a small f32 tile, bit-identical to `row()`.
//! Per group and X block (with AVX-512, two blocks), the microkernel
//! broadcasts each weight and FMAs it into 16 input rows' accumulators
//! (outer-product form): the group × 16 sums stay in registers over all of
//! `cols`, so unlike dot products of rows there are no horizontal sums, and
//! each Y value is one FMA chain over c. W is streamed
//! and dequantized once per panel of X blocks (≤ 1 MiB, so that the panel
//! stays in L2): once in all for t ≤ 448 at cols = 576.

#[cfg(target_arch = "x86_64")]
use super::{avx2, gemm512};
use super::{dequant_q4_1, dequant_q8_0, GemvWeights, Kernel, Q4_1_BYTES, Q8_0_BYTES, QK};
use rayon::prelude::*;
use std::cell::Cell;
use std::marker::PhantomData;
use std::ops::Range;

/// Input rows per packed block: two AVX2 vectors.
pub(super) const XB: usize = 16;
/// Weight rows per microkernel call: MR · 2 accumulators + 2 x + 1 weight
/// vector fit AVX2's 16 registers.
const MR: usize = 6;
/// With AVX-512: 12 accumulators (one vector per row). Measured better than
/// 6 rows × two sets of accumulators even where 12 rows of `cols` overflow L1.
const MR_WIDE: usize = 12;
/// Floats of packed X per panel: 1 MiB, half of a core's L2.
const PANEL_FLOATS: usize = 1 << 18;
/// Least multiply-adds per band, so that rayon's overhead stays small.
const MIN_TASK_FMAS: usize = 1 << 18;
/// Up to this many input rows, `gemv` per row is faster (measured).
const GEMV_ROWS: usize = 4;

thread_local! {
    /// Per-thread buffers kept between calls (no allocation or page faults
    /// per call); taken out while in use. Bands use TILE, the caller XP.
    static TILE: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    static XP: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

impl GemvWeights {
    /// y (t × rows, row-major) = X (t × cols, row-major) · Wᵀ (+ bias on every
    /// row); parallel over bands of weight rows with rayon. t ≤ 4 is `gemv`
    /// per row.
    /// Panics if `x`, `y` or `bias` have the wrong length.
    pub fn gemm(&self, x: &[f32], t: usize, bias: Option<&[f32]>, y: &mut [f32]) {
        self.gemm_with(super::best_kernel(), x, t, bias, y)
    }

    pub(super) fn gemm_with(&self, kernel: Kernel, x: &[f32], t: usize, bias: Option<&[f32]>, y: &mut [f32]) {
        let (rows, cols) = (self.rows(), self.cols());
        self.check();
        assert_eq!(t.checked_mul(cols), Some(x.len()), "gemm: x has {} values for {t}x{cols}", x.len());
        assert_eq!(t.checked_mul(rows), Some(y.len()), "gemm: y has {} values for {t}x{rows}", y.len());
        if let Some(b) = bias {
            assert_eq!(b.len(), rows, "gemm: bias has {} values for {rows} rows", b.len());
        }
        if t == 0 || rows == 0 || cols == 0 {
            for y in y.chunks_exact_mut(rows.max(1)) {
                y.iter_mut().enumerate().for_each(|(r, y)| *y = bias.map_or(0.0, |b| b[r]));
            }
            return;
        }
        if t <= GEMV_ROWS {
            // Too few rows to repay dequantizing W to a tile (the kernel
            // computes 8 input rows at a time whatever t is).
            for (x, y) in x.chunks_exact(cols).zip(y.chunks_exact_mut(rows)) {
                self.gemv_with(kernel, x, bias, y);
            }
            return;
        }
        let mut buf = XP.take();
        let xp = pack_x(kernel, x, t, cols, &mut buf);
        let mr = group_rows(kernel);
        let band = band_rows(rows, cols, t, mr);
        let bands = rows.div_ceil(band);
        let out = Out { ptr: y.as_mut_ptr(), len: y.len(), rows, _y: PhantomData };
        let run = |i: usize| self.band(kernel, mr, i * band..((i + 1) * band).min(rows), xp, t, bias, &out);
        match bands {
            1 => run(0),
            _ => (0..bands).into_par_iter().for_each(run),
        }
        XP.set(buf);
    }

    /// Y[.., r] for the weight rows r in `r`: per panel of X blocks (sized
    /// for L2), per group of MR weight rows (dequantized into a small tile
    /// that stays in L1), per X block, one microkernel call.
    #[allow(clippy::too_many_arguments)]
    fn band(&self, kernel: Kernel, mr: usize, r: Range<usize>, xp: &[f32], t: usize, bias: Option<&[f32]>, out: &Out) {
        let cols = self.cols();
        let blocks = xp.len() / (XB * cols);
        let per_panel = blocks.div_ceil(blocks.div_ceil((PANEL_FLOATS / (XB * cols)).max(1)));
        let mut tile = TILE.take();
        let mut sums = [[0f32; XB]; 2 * MR_WIDE];
        for (p, panel) in xp.chunks(per_panel * XB * cols).enumerate() {
            for g0 in r.clone().step_by(mr) {
                let g = g0..(g0 + mr).min(r.end);
                let w = match self {
                    Self::F32 { data, .. } => {
                        // Copied too: broadcasts from a few rows in L1 beat them from L2.
                        tile.clear();
                        tile.extend_from_slice(&data[g.start * cols..g.end * cols]);
                        &tile[..]
                    }
                    Self::Q4_1 { blocks, .. } => dequant_rows(kernel, blocks, Q4_1_BYTES, &g, cols, &mut tile),
                    Self::Q8_0 { blocks, .. } => dequant_rows(kernel, blocks, Q8_0_BYTES, &g, cols, &mut tile),
                };
                let nb = panel.len() / (XB * cols);
                let mut b = 0;
                while b < nb {
                    // Two X blocks per call where the AVX-512 kernel takes whole groups.
                    let two = kernel == Kernel::Avx512 && g.len() == MR_WIDE && b + 1 < nb;
                    let xb = &panel[b * XB * cols..];
                    if two {
                        microkernel_two(w, xb, cols, &mut sums);
                    } else {
                        let ni = XB.min(t - (p * per_panel + b) * XB);
                        microkernel(kernel, w, &xb[..XB * cols], cols, ni, &mut sums[..g.len()]);
                    }
                    for (k, sums) in sums.chunks_exact(MR_WIDE).take(1 + two as usize).enumerate() {
                        let i0 = (p * per_panel + b + k) * XB;
                        let ni = XB.min(t - i0);
                        // SAFETY: each band is one task, so this is the only thread
                        // writing weight rows `g` (inside the band) of any Y row.
                        unsafe { out.write(i0, ni, g.start, &sums[..g.len()], bias.map(|b| &b[g.clone()])) };
                    }
                    b += 1 + two as usize;
                }
            }
        }
        TILE.set(tile);
    }
}

/// Rows per band: several bands per thread to even out, each at least
/// `MIN_TASK_FMAS` of work; a multiple of `mr`.
fn band_rows(rows: usize, cols: usize, t: usize, mr: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    rows.div_ceil(threads * 8).max(MIN_TASK_FMAS / (t * cols)).div_ceil(mr) * mr
}

/// Weight rows per microkernel call.
fn group_rows(kernel: Kernel) -> usize {
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => MR_WIDE,
        _ => MR,
    }
}

/// X in blocks of XB rows, each column-major (`[c][i]`, zero past t), in
/// `buf` from a 32-byte boundary so that the kernel's loads never split.
/// Every X value feeds `rows` FMAs, so packing must stay well under that.
fn pack_x<'b>(kernel: Kernel, x: &[f32], t: usize, cols: usize, buf: &'b mut Vec<f32>) -> &'b [f32] {
    let len = t.div_ceil(XB) * XB * cols;
    buf.resize(len + 7, 0.0);
    let skip = buf.as_ptr().align_offset(32).min(7);
    let xp = &mut buf[skip..skip + len];
    let pack = |(b, blk): (usize, &mut [f32])| {
        let x = &x[b * XB * cols..((b + 1) * XB).min(t) * cols];
        // Half blocks of 8 rows: the AVX2 path transposes 8 × 8 tiles.
        for h in 0..XB / 8 {
            let x = x.get(8 * h * cols..).unwrap_or_default();
            match kernel {
                // SAFETY: `Avx2` is only constructed once the CPU reported avx2, fma and f16c.
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx2 | Kernel::Avx512 if x.len() >= 8 * cols => unsafe { avx2::pack8(x, cols, blk, 8 * h) },
                _ => {
                    let n = (x.len() / cols).min(8);
                    for (c, dst) in blk.chunks_exact_mut(XB).enumerate() {
                        for (i, d) in dst[8 * h..8 * h + 8].iter_mut().enumerate() {
                            // Padding: finite, and never written out.
                            *d = if i < n { x[i * cols + c] } else { 0.0 };
                        }
                    }
                }
            }
        }
    };
    // On the caller alone: waking the pool for it costs more than it saves.
    xp.chunks_exact_mut(XB * cols).enumerate().for_each(pack);
    &buf[skip..skip + len]
}

/// Y, shared by the rayon tasks; each band's writes stay in its own columns.
struct Out<'a> {
    ptr: *mut f32,
    len: usize,
    rows: usize,
    _y: PhantomData<&'a mut [f32]>,
}

// SAFETY: `Out` is a `&mut [f32]` split by columns: bands write disjoint
// elements (see `write`), and nothing reads Y while they run.
unsafe impl Sync for Out<'_> {}

impl Out<'_> {
    /// Y[i0 + i, r0 + k] = sums[k][i] (+ bias[k]) for i < ni, k < sums.len().
    /// Bounds are checked here. (Strided reads from `sums`, so that this does
    /// not become a memcpy call per row.)
    /// SAFETY: no other thread may access those elements meanwhile.
    unsafe fn write(&self, i0: usize, ni: usize, r0: usize, sums: &[[f32; XB]], bias: Option<&[f32]>) {
        // Row i0 + ni - 1 ends, at the latest, where row i0 + ni starts.
        let end = i0.checked_add(ni).and_then(|n| n.checked_mul(self.rows));
        let fits = r0 + sums.len() <= self.rows && end.is_some_and(|end| end <= self.len);
        assert!(fits, "gemm: write out of Y");
        for i in 0..ni {
            let dst = self.ptr.wrapping_add((i0 + i) * self.rows + r0);
            for (k, s) in sums.iter().enumerate() {
                let v = s[i] + bias.map_or(0.0, |b| b[k]);
                // SAFETY: in bounds (just checked); exclusive by the caller's promise.
                unsafe { dst.add(k).write(v) };
            }
        }
    }
}

/// Weight rows `r` of ggml blocks (`bytes` each) → f32 in `tile`, with the same values as `row()`.
fn dequant_rows<'t>(
    kernel: Kernel,
    blocks: &[u8],
    bytes: usize,
    r: &Range<usize>,
    cols: usize,
    tile: &'t mut Vec<f32>,
) -> &'t [f32] {
    let row_bytes = cols / QK * bytes;
    let blocks = &blocks[r.start * row_bytes..r.end * row_bytes];
    let len = r.len() * cols;
    if tile.len() < len {
        tile.resize(len, 0.0);
    }
    let tile = &mut tile[..len];
    match kernel {
        Kernel::Portable => {
            let dequant = if bytes == Q4_1_BYTES { dequant_q4_1 } else { dequant_q8_0 };
            blocks.chunks_exact(bytes).zip(tile.chunks_exact_mut(QK)).for_each(|(b, o)| dequant(b, o));
        }
        // SAFETY: `Avx2` is only constructed once the CPU reported avx2, fma and f16c.
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 | Kernel::Avx512 if bytes == Q4_1_BYTES => unsafe { avx2::q4_1_tile(blocks, tile) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 | Kernel::Avx512 => unsafe { avx2::q8_0_tile(blocks, tile) },
    }
    tile
}

/// sums[k][i] = w row k · x row i of the block, for k < sums.len() ≤ MR and
/// (at least) i < ni ≤ XB: picks the microkernel instance with those
/// compile-time sizes (one or two vectors of input rows).
fn microkernel(kernel: Kernel, w: &[f32], xb: &[f32], cols: usize, ni: usize, sums: &mut [[f32; XB]]) {
    fn by_v<const R: usize>(kernel: Kernel, w: &[f32], xb: &[f32], cols: usize, ni: usize, sums: &mut [[f32; XB]]) {
        match kernel {
            Kernel::Portable => portable_panel::<R>(w, xb, cols, sums),
            // SAFETY: `Avx512` is only constructed once the CPU reported avx512f too.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { gemm512::panel::<R>(w, xb, cols, sums) },
            // SAFETY: as in `dequant_rows`.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 if ni <= 8 => unsafe { avx2::panel::<R, 1, 2>(w, xb, cols, sums) },
            // SAFETY: as in `dequant_rows`.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { avx2::panel::<R, 2, 1>(w, xb, cols, sums) },
        }
    }
    match sums.len() {
        1 => by_v::<1>(kernel, w, xb, cols, ni, sums),
        2 => by_v::<2>(kernel, w, xb, cols, ni, sums),
        3 => by_v::<3>(kernel, w, xb, cols, ni, sums),
        4 => by_v::<4>(kernel, w, xb, cols, ni, sums),
        5 => by_v::<5>(kernel, w, xb, cols, ni, sums),
        6 => by_v::<6>(kernel, w, xb, cols, ni, sums),
        7 => by_v::<7>(kernel, w, xb, cols, ni, sums),
        8 => by_v::<8>(kernel, w, xb, cols, ni, sums),
        9 => by_v::<9>(kernel, w, xb, cols, ni, sums),
        10 => by_v::<10>(kernel, w, xb, cols, ni, sums),
        11 => by_v::<11>(kernel, w, xb, cols, ni, sums),
        _ => by_v::<MR_WIDE>(kernel, w, xb, cols, ni, sums),
    }
}

/// `microkernel` for a whole AVX-512 group and two consecutive X blocks:
/// sums[k] for the first, sums[MR_WIDE + k] for the second.
fn microkernel_two(w: &[f32], xb: &[f32], cols: usize, sums: &mut [[f32; XB]; 2 * MR_WIDE]) {
    // SAFETY: only called with `Kernel::Avx512`, constructed once the CPU reported avx512f.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        gemm512::panel_two::<MR_WIDE>(w, xb, cols, sums)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (w, xb, cols, sums);
}

/// Portable microkernel, same form: one multiply-add chain over c per value,
/// 16-wide rows the compiler vectorises for whatever the target has.
fn portable_panel<const R: usize>(w: &[f32], xb: &[f32], n: usize, sums: &mut [[f32; XB]]) {
    let mut acc = [[0f32; XB]; R];
    for (c, x) in xb.chunks_exact(XB).take(n).enumerate() {
        for (k, acc) in acc.iter_mut().enumerate() {
            let w = w[k * n + c];
            acc.iter_mut().zip(x).for_each(|(a, x)| *a += w * x);
        }
    }
    sums[..R].copy_from_slice(&acc);
}

//! Attention on the CPU without the positions × positions matrix: the
//! FlashAttention algorithm (Dao et al. 2022). A block of query rows meets
//! the keys one block at a time, keeping per row a running max and running
//! sum and rescaling its partial output; blocks the causal mask or the window
//! hides entirely are skipped. One kernel serves prefill and decode: the rows
//! of a block are the query heads that share a KV head (GQA/MQA) at
//! consecutive positions, so each KV head's keys and values are read once for
//! the whole group, straight from the cache.
//!
//! Each task runs sequentially under AVX2 + FMA when the CPU has them (the
//! same code, compiled twice; see `run_block`), or with AVX-512 register tiles
//! for the two products (`avx512.rs`), and tasks go to rayon.

use rayon::prelude::*;

/// Query rows per block (heads of a group × positions, position-major).
const BQ: usize = 32;
/// Keys per block.
const BK: usize = 64;
/// Rows × keys of the register tile of the score product.
const MR: usize = 4;
const NR: usize = 16;

/// What a layer applies between q·k and the softmax.
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub scale: f32,
    /// Scores become c·tanh(s/c) before the mask (Gemma 2).
    pub softcap: Option<f32>,
    pub window: Option<usize>,
}

/// A strided (head, row, head_dim) tensor: element (h, r, i) at
/// `off + h·head_stride + r·row_stride + i`, each row contiguous.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub off: usize,
    pub head_stride: usize,
    pub row_stride: usize,
}

impl View<'_> {
    #[inline(always)]
    fn row(&self, h: usize, r: usize, d: usize) -> &[f32] {
        let o = self.off + h * self.head_stride + r * self.row_stride;
        &self.data[o..o + d]
    }
}

/// The keys a pass sees: `n` rows of (kv_heads, n, head_dim) views, row 0 at absolute position `first`.
#[derive(Clone, Copy)]
pub struct Keys<'a> {
    pub k: View<'a>,
    pub v: View<'a>,
    pub n: usize,
    pub first: usize,
}

/// softmax(mask(cap(q·kᵀ·scale)))·v for `t` queries (heads, t, head_dim) at
/// absolute positions `pos..pos + t`; returns (t, heads·head_dim), row-major.
pub fn attend(g: &Geometry, q: View, t: usize, pos: usize, keys: Keys) -> Vec<f32> {
    attend_on(g, q, t, pos, keys, isa_detected())
}

fn attend_on(g: &Geometry, q: View, t: usize, pos: usize, keys: Keys, isa: Isa) -> Vec<f32> {
    let (h, d) = (g.heads, g.head_dim);
    let group = h / g.kv_heads.max(1);
    let blocks_per_kv = (group * t).div_ceil(BQ);
    // Few row blocks (decode) leave cores idle: split the keys too, and merge
    // the partial softmaxes (flash-decoding).
    let tasks = g.kv_heads * blocks_per_kv;
    let splits = if tasks < 4 * rayon::current_num_threads() { keys.n.div_ceil(SPLIT_KEYS).max(1) } else { 1 };
    // Many row blocks read the same keys: transpose them once for the register tile.
    let kt = (blocks_per_kv > 1).then(|| transpose_keys(&keys, g.kv_heads, d));
    let kt = kt.as_deref();
    let parts: Vec<Partial> = (0..tasks * splits)
        .into_par_iter()
        .map(|task| {
            let (kv, b, s) = (task / splits / blocks_per_kv, task / splits % blocks_per_kv, task % splits);
            let rows = b * BQ..((b + 1) * BQ).min(group * t);
            let span = s * SPLIT_KEYS..if s + 1 == splits { keys.n } else { (s + 1) * SPLIT_KEYS };
            run_block(&Block { g, q, pos, keys, kt, kv, group, rows, span }, isa)
        })
        .collect();
    let mut out = vec![0f32; t * h * d];
    for (task, parts) in parts.chunks(splits).enumerate() {
        let (kv, b) = (task / blocks_per_kv, task % blocks_per_kv);
        for (i, row) in merge(parts, d).chunks_exact(d).enumerate() {
            let row_in_group = b * BQ + i;
            let (r, head) = (row_in_group / group, kv * group + row_in_group % group);
            out[(r * h + head) * d..][..d].copy_from_slice(row);
        }
    }
    out
}

/// Keys as (kv_heads, head_dim, n + BK), zero-padded so a block from any start reads BK columns.
fn transpose_keys(keys: &Keys, kv_heads: usize, d: usize) -> Vec<f32> {
    let stride = keys.n + BK;
    let mut kt = vec![0f32; kv_heads * d * stride];
    for kv in 0..kv_heads {
        let dst = &mut kt[kv * d * stride..(kv + 1) * d * stride];
        for c in 0..keys.n {
            for (i, &x) in keys.k.row(kv, c, d).iter().enumerate() {
                dst[i * stride + c] = x;
            }
        }
    }
    kt
}

/// Keys per task when the keys are split.
const SPLIT_KEYS: usize = 512;

/// One block's rows over some keys, not yet normalised: output Σ p·v, running max and sum per row.
struct Partial {
    o: Vec<f32>,
    m: Vec<f32>,
    l: Vec<f32>,
}

/// Softmax-weighted outputs of the same rows over disjoint key spans, combined and normalised.
fn merge(parts: &[Partial], d: usize) -> Vec<f32> {
    let Some(first) = parts.first() else { return vec![] };
    let mut out = vec![0f32; first.o.len()];
    for (i, o) in out.chunks_exact_mut(d).enumerate() {
        let m = parts.iter().map(|p| p.m[i]).fold(f32::NEG_INFINITY, f32::max);
        let mut l = 0.0;
        for p in parts.iter().filter(|p| p.m[i] > f32::NEG_INFINITY) {
            let w = (p.m[i] - m).exp();
            l += w * p.l[i];
            o.iter_mut().zip(&p.o[i * d..(i + 1) * d]).for_each(|(o, x)| *o += w * x);
        }
        let inv = 1.0 / l;
        o.iter_mut().for_each(|x| *x *= inv);
    }
    out
}

/// Which build of the block kernel runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    Portable,
    /// Only chosen once the CPU reported avx2 and fma.
    Avx2,
    /// Only chosen once the CPU reported avx512f too.
    Avx512,
}

fn isa_detected() -> Isa {
    static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *ISA.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return if is_x86_feature_detected!("avx512f") { Isa::Avx512 } else { Isa::Avx2 };
        }
        Isa::Portable
    })
}

/// One task: rows `rows` of KV head `kv`'s group (row i is position i / group, head i % group).
struct Block<'a> {
    g: &'a Geometry,
    q: View<'a>,
    pos: usize,
    keys: Keys<'a>,
    /// `transpose_keys`, when made for this call.
    kt: Option<&'a [f32]>,
    kv: usize,
    group: usize,
    rows: std::ops::Range<usize>,
    /// The keys this task reads (indices into `keys`).
    span: std::ops::Range<usize>,
}

fn run_block(b: &Block, isa: Isa) -> Partial {
    match isa {
        // SAFETY: `Avx2` is only chosen when the CPU has AVX2 and FMA.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { run_block_avx2(b) },
        // SAFETY: `Avx512` is only chosen when the CPU has AVX-512F too.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { run_block_avx512(b) },
        _ => block_kernel::<false, false>(b),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_block_avx2(b: &Block) -> Partial {
    block_kernel::<true, false>(b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn run_block_avx512(b: &Block) -> Partial {
    block_kernel::<true, true>(b)
}

/// a·b + c, fused where the caller runs with FMA.
#[inline(always)]
fn fma<const F: bool>(a: f32, b: f32, c: f32) -> f32 {
    if F {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// F: fused multiply-adds; X: AVX-512 tiles for the products (head
/// dimensions in whole vectors; the caller runs with avx512f).
#[inline(always)]
fn block_kernel<const F: bool, const X: bool>(b: &Block) -> Partial {
    let wide = X && b.g.head_dim.is_multiple_of(16);
    let (g, d, keys) = (b.g, b.g.head_dim, b.keys);
    let nq = b.rows.len();
    let pos_of = |i: usize| b.pos + (b.rows.start + i) / b.group;
    let (qmin, qmax) = (pos_of(0), pos_of(nq - 1));
    // Queries, zero-padded to whole register tiles.
    let mut qt = vec![0f32; BQ * d];
    for i in 0..nq {
        let row = b.rows.start + i;
        let head = b.kv * b.group + row % b.group;
        qt[i * d..(i + 1) * d].copy_from_slice(b.q.row(head, row / b.group, d));
    }
    // Keys the block can see: causal up to qmax, window from qmin.
    let lo_pos = g.window.map_or(0, |w| (qmin + 1).saturating_sub(w));
    let lo = lo_pos.saturating_sub(keys.first).max(b.span.start);
    let hi = (qmax + 1 - keys.first).min(b.span.end);
    let mut out = vec![0f32; BQ * d];
    let (mut m, mut l) = ([f32::NEG_INFINITY; BQ], [0f32; BQ]);
    let mut kt = vec![0f32; d * BK];
    let mut s = [[0f32; BK]; BQ];
    for c0 in (lo..hi).step_by(BK) {
        let len = BK.min(hi - c0);
        // Keys transposed to (d, BK), zero-padded, for the register tile.
        let (kts, stride): (&[f32], usize) = match b.kt {
            Some(all) => (&all[b.kv * d * (keys.n + BK) + c0..], keys.n + BK),
            // A decode step's few rows: dot products straight from the cache beat a transpose.
            None if nq <= MR => {
                for (j, col) in (0..len).map(|j| (j, keys.k.row(b.kv, c0 + j, d))) {
                    for (i, srow) in s.iter_mut().enumerate().take(nq) {
                        srow[j] = dot::<F>(&qt[i * d..(i + 1) * d], col);
                    }
                }
                (&[], 0)
            }
            None => {
                for j in 0..BK {
                    if j < len {
                        for (i, &x) in keys.k.row(b.kv, c0 + j, d).iter().enumerate() {
                            kt[i * BK + j] = x;
                        }
                    } else {
                        (0..d).for_each(|i| kt[i * BK + j] = 0.0);
                    }
                }
                (&kt, BK)
            }
        };
        if stride > 0 {
            #[cfg(target_arch = "x86_64")]
            if wide {
                // SAFETY: X is only set under avx512f (`run_block_avx512`); qt and kts as `scores` needs.
                unsafe { avx512::scores(&qt, kts, stride, d, nq, &mut s) };
            } else {
                scores::<F>(&qt, kts, stride, d, nq, &mut s);
            }
            #[cfg(not(target_arch = "x86_64"))]
            scores::<F>(&qt, kts, stride, d, nq, &mut s);
        }
        let first_key = keys.first + c0;
        for (i, srow) in s.iter_mut().enumerate().take(nq) {
            // The keys this row sees are one run [lo, hi) of the block: causal
            // up to its position, window from W − 1 before it.
            let qp = pos_of(i);
            let hi = len.min((qp + 1).saturating_sub(first_key));
            let lo = g.window.map_or(0, |w| (qp + 1).saturating_sub(w).saturating_sub(first_key)).min(hi);
            let mx = if lo == hi {
                f32::NEG_INFINITY
            } else if wide && g.softcap.is_none() {
                // SAFETY: X is only set under avx512f.
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    avx512::scale_mask_max(srow, g.scale, lo, hi)
                }
                #[cfg(not(target_arch = "x86_64"))]
                scale_mask_max(srow, g, lo, hi)
            } else {
                scale_mask_max(srow, g, lo, hi)
            };
            if mx == f32::NEG_INFINITY {
                srow.fill(0.0);
                continue;
            }
            let m_new = m[i].max(mx);
            let alpha = (m[i] - m_new).exp();
            let sum = if wide {
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    avx512::exp_row(srow, m_new)
                }
                #[cfg(not(target_arch = "x86_64"))]
                exp_row(srow, m_new)
            } else {
                exp_row(srow, m_new)
            };
            l[i] = l[i] * alpha + sum;
            m[i] = m_new;
            if alpha != 1.0 {
                out[i * d..(i + 1) * d].iter_mut().for_each(|o| *o *= alpha);
            }
        }
        #[cfg(target_arch = "x86_64")]
        if wide {
            // SAFETY: as for `scores`; out holds BQ rows of d.
            unsafe { avx512::accumulate(&s, nq, keys.v, b.kv, c0, len, d, &mut out) };
        } else {
            accumulate::<F>(&s[..nq], keys.v, b.kv, c0, len, d, &mut out);
        }
        #[cfg(not(target_arch = "x86_64"))]
        accumulate::<F>(&s[..nq], keys.v, b.kv, c0, len, d, &mut out);
    }
    out.truncate(nq * d);
    Partial { o: out, m: m[..nq].to_vec(), l: l[..nq].to_vec() }
}

/// s = qt · kt for the block's `nq` rows (a decode step has only a group's few), MR × NR register tiles.
#[inline(always)]
fn scores<const F: bool>(qt: &[f32], kt: &[f32], stride: usize, d: usize, nq: usize, s: &mut [[f32; BK]; BQ]) {
    for r0 in (0..nq).step_by(MR) {
        for c0 in (0..BK).step_by(NR) {
            let mut acc = [[0f32; NR]; MR];
            for i in 0..d {
                let k: &[f32; NR] = kt[i * stride + c0..][..NR].try_into().unwrap_or(&[0.0; NR]);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let qv = qt[(r0 + r) * d + i];
                    for c in 0..NR {
                        acc[c] = fma::<F>(qv, k[c], acc[c]);
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                s[r0 + r][c0..c0 + NR].copy_from_slice(acc);
            }
        }
    }
}

/// Σ a·b with eight running sums, so it vectorises.
#[inline(always)]
fn dot<const F: bool>(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8.remainder().iter().zip(b8.remainder()).map(|(x, y)| x * y).sum();
    for (a, b) in a8.zip(b8) {
        for k in 0..8 {
            acc[k] = fma::<F>(a[k], b[k], acc[k]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// out[i] += Σ_j p[i][j]·v[c0 + j], four keys per pass over the output row.
#[inline(always)]
fn accumulate<const F: bool>(p: &[[f32; BK]], v: View, kv: usize, c0: usize, len: usize, d: usize, out: &mut [f32]) {
    let mut j = 0;
    while j < len {
        let n = (len - j).min(4);
        let rows: [&[f32]; 4] = std::array::from_fn(|x| v.row(kv, c0 + j + x.min(n - 1), d));
        for (i, prow) in p.iter().enumerate() {
            let w: [f32; 4] = std::array::from_fn(|x| if x < n { prow[j + x] } else { 0.0 });
            if w == [0.0; 4] {
                continue;
            }
            let o = &mut out[i * d..(i + 1) * d];
            for c in 0..d {
                let a = fma::<F>(w[0], rows[0][c], o[c]);
                let a = fma::<F>(w[1], rows[1][c], a);
                let a = fma::<F>(w[2], rows[2][c], a);
                o[c] = fma::<F>(w[3], rows[3][c], a);
            }
        }
        j += n;
    }
}

/// x ← cap(x·scale) on [lo, hi), −∞ elsewhere; returns the max.
#[inline(always)]
fn scale_mask_max(x: &mut [f32; BK], g: &Geometry, lo: usize, hi: usize) -> f32 {
    let mut mx = f32::NEG_INFINITY;
    for (j, x) in x.iter_mut().enumerate() {
        let v = *x * g.scale;
        let v = g.softcap.map_or(v, |c| (v / c).tanh() * c);
        *x = if j >= lo && j < hi { v } else { f32::NEG_INFINITY };
        mx = mx.max(*x);
    }
    mx
}

/// x ← exp(x − m) (0 where x is −∞); returns the sum.
#[inline(always)]
fn exp_row(x: &mut [f32; BK], m: f32) -> f32 {
    let mut sum = [0f32; 8];
    for chunk in x.chunks_exact_mut(8) {
        for (k, x) in chunk.iter_mut().enumerate() {
            let y = *x - m;
            let e = exp_approx(y);
            *x = if y < -87.0 { 0.0 } else { e };
            sum[k] += *x;
        }
    }
    sum.iter().sum()
}

/// eˣ for x ≤ 0 within ~2 ulp (Cephes' expf), branch-free so it vectorises.
#[inline(always)]
fn exp_approx(x: f32) -> f32 {
    let x = x.clamp(-87.0, 0.0);
    // Round to nearest by the 1.5·2²³ trick: plain arithmetic, no libm call.
    let n = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(test)]
mod tests;

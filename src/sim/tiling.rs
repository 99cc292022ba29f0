//! FlashAttention's tiled attention with online softmax (Dao et al. 2022,
//! arXiv:2205.14135; Dao 2023, arXiv:2307.08691), on plain f32 slices, one
//! tile at a time so a lesson can step through it.
//!
//! Per query row it keeps a running max m, a running sum ℓ and an
//! unnormalised output Õ. For each tile, with S = scale·Q_i K_jᵀ (−∞ where
//! masked): m_new = max(m, rowmax S), P̃ = exp(S − m_new),
//! ℓ ← e^(m − m_new)·ℓ + rowsum P̃, Õ ← e^(m − m_new)·Õ + P̃·V_j; at the end
//! O = Õ / ℓ. Õ / ℓ after any prefix of tiles is FA1's normalised O_i. This
//! follows the derivation, not the printed FA2 update, whose extra ⁻¹ is a
//! known typo (Dao-AILab/flash-attention #991).
//!
//! Queries are the last n_q of the n_k positions: query i sits at position
//! n_k − n_q + i (a prefill has n_q = n_k). Inputs are f32; scores, sums and
//! outputs are kept in f64 in both algorithms, so their difference shows the
//! method (equal up to rounding), not f32 noise.

use super::mask::MaskKind;
use crate::error::{Error, Result};
use std::ops::Range;

/// One head's attention inputs, row-major.
#[derive(Debug, Clone, Copy)]
pub struct Problem<'a> {
    /// (n_q, d)
    pub q: &'a [f32],
    /// (n_k, d)
    pub k: &'a [f32],
    /// (n_k, d_v)
    pub v: &'a [f32],
    pub d: usize,
    pub d_v: usize,
    /// Usually 1/√d.
    pub scale: f32,
    pub mask: MaskKind,
}

impl Problem<'_> {
    /// (n_q, n_k), after checking the shapes agree.
    pub fn sizes(&self) -> Result<(usize, usize)> {
        let bad = |what: &str| Err(Error::Usage(format!("attention inputs: {what}")));
        if self.d == 0 || self.d_v == 0 {
            return bad("d and d_v must be positive");
        }
        let (n_q, n_k) = (self.q.len() / self.d, self.k.len() / self.d);
        if !self.q.len().is_multiple_of(self.d)
            || !self.k.len().is_multiple_of(self.d)
            || self.v.len() != n_k * self.d_v
        {
            return bad("q, k, v lengths do not match d, d_v");
        }
        if n_q > n_k {
            return bad("more queries than keys");
        }
        Ok((n_q, n_k))
    }

    /// Whether query row `i` sees key `j`.
    fn visible(&self, n_q: usize, n_k: usize, i: usize, j: usize) -> bool {
        self.mask.visible(n_k - n_q + i, j)
    }

    /// scale · q_i · k_j, or −∞ where masked.
    fn score(&self, n_q: usize, n_k: usize, i: usize, j: usize) -> f64 {
        if !self.visible(n_q, n_k, i, j) {
            return f64::NEG_INFINITY;
        }
        let (q, k) = (&self.q[i * self.d..(i + 1) * self.d], &self.k[j * self.d..(j + 1) * self.d]);
        self.scale as f64 * q.iter().zip(k).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>()
    }

    /// Value row j.
    fn value(&self, j: usize) -> &[f32] {
        &self.v[j * self.d_v..(j + 1) * self.d_v]
    }
}

/// Ordinary attention: softmax(scale·QKᵀ + mask)·V, (n_q, d_v). A row that
/// sees no key is 0.
pub fn attention(p: &Problem) -> Result<Vec<f32>> {
    let (n_q, n_k) = p.sizes()?;
    let mut out = vec![0f32; n_q * p.d_v];
    for (i, o) in out.chunks_mut(p.d_v).enumerate() {
        let s: Vec<f64> = (0..n_k).map(|j| p.score(n_q, n_k, i, j)).collect();
        let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if max == f64::NEG_INFINITY {
            continue;
        }
        let e: Vec<f64> = s.iter().map(|x| (x - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        let mut acc = vec![0f64; p.d_v];
        for (j, w) in e.iter().enumerate() {
            for (a, &v) in acc.iter_mut().zip(p.value(j)) {
                *a += w / sum * v as f64;
            }
        }
        o.iter_mut().zip(acc).for_each(|(o, a)| *o = a as f32);
    }
    Ok(out)
}

/// Which loop is outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// FlashAttention (Alg. 1): outer over K/V blocks, inner over Q blocks.
    KvOuter,
    /// FlashAttention-2: outer over Q blocks, inner over K/V blocks.
    QOuter,
}

/// A block of query rows against a block of keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tile {
    /// Query rows (0..n_q).
    pub q: Range<usize>,
    /// Key positions (0..n_k).
    pub k: Range<usize>,
}

/// One query row's running online-softmax state.
#[derive(Debug, Clone, PartialEq)]
pub struct RowState {
    /// Running max of the scores seen (−∞ before any).
    pub m: f64,
    /// Running sum of exp(score − m).
    pub l: f64,
    /// Unnormalised output Σ exp(score − m)·v, (d_v).
    pub o: Vec<f64>,
}

impl RowState {
    fn new(d_v: usize) -> Self {
        Self { m: f64::NEG_INFINITY, l: 0.0, o: vec![0.0; d_v] }
    }

    /// Õ / ℓ: the attention output over the keys seen so far (0 before any).
    pub fn output(&self) -> Vec<f32> {
        let inv = if self.l > 0.0 { 1.0 / self.l } else { 0.0 };
        self.o.iter().map(|x| (x * inv) as f32).collect()
    }
}

/// What one tile did.
#[derive(Debug, Clone, PartialEq)]
pub struct TileStep {
    pub tile: Tile,
    /// Every cell masked: a kernel skips the tile, nothing changes.
    pub skipped: bool,
    /// (rows, cols) scaled scores, −∞ where masked.
    pub s: Vec<f64>,
    /// Per row, the tile's max score m̃.
    pub tile_max: Vec<f64>,
    /// (rows, cols) P̃ = exp(S − m_new).
    pub p: Vec<f64>,
    /// Per row, e^(m_old − m_new): how much the earlier ℓ and Õ shrink.
    pub rescale: Vec<f64>,
    /// The tile's rows before and after.
    pub before: Vec<RowState>,
    pub after: Vec<RowState>,
}

impl TileStep {
    /// The tile's rows' partial outputs Õ / ℓ after this step.
    pub fn output_rows(&self) -> Vec<Vec<f32>> {
        self.after.iter().map(RowState::output).collect()
    }
}

/// Steps through the tiles of one head's attention.
#[derive(Debug, Clone)]
pub struct Tiler<'a> {
    p: Problem<'a>,
    n_q: usize,
    n_k: usize,
    tiles: Vec<Tile>,
    next: usize,
    rows: Vec<RowState>,
}

impl<'a> Tiler<'a> {
    /// Blocks of `br` query rows and `bc` keys, visited in `order`.
    pub fn new(p: Problem<'a>, br: usize, bc: usize, order: Order) -> Result<Self> {
        let (n_q, n_k) = p.sizes()?;
        if br == 0 || bc == 0 {
            return Err(Error::Usage(format!("block sizes {br} × {bc}: both must be positive")));
        }
        let blocks = |n: usize, b: usize| (0..n.div_ceil(b)).map(move |x| x * b..((x + 1) * b).min(n));
        let tiles = match order {
            Order::KvOuter => {
                blocks(n_k, bc).flat_map(|k| blocks(n_q, br).map(move |q| Tile { q, k: k.clone() })).collect()
            }
            Order::QOuter => {
                blocks(n_q, br).flat_map(|q| blocks(n_k, bc).map(move |k| Tile { q: q.clone(), k })).collect()
            }
        };
        Ok(Self { p, n_q, n_k, tiles, next: 0, rows: vec![RowState::new(p.d_v); n_q] })
    }

    /// Every tile, in the order they are stepped.
    pub fn tiles(&self) -> &[Tile] {
        &self.tiles
    }

    /// Tiles stepped so far.
    pub fn steps_taken(&self) -> usize {
        self.next
    }

    pub fn done(&self) -> bool {
        self.next == self.tiles.len()
    }

    /// Every query row's state now.
    pub fn rows(&self) -> &[RowState] {
        &self.rows
    }

    /// The output so far, (n_q, d_v); the attention output once `done`.
    pub fn output(&self) -> Vec<f32> {
        self.rows.iter().flat_map(RowState::output).collect()
    }

    /// Process the next tile; None when all are done.
    pub fn step(&mut self) -> Option<TileStep> {
        let tile = self.tiles.get(self.next)?.clone();
        self.next += 1;
        let p = &self.p;
        let cols = tile.k.len();
        let (n_q, n_k) = (self.n_q, self.n_k);
        let s: Vec<f64> = tile.q.clone().flat_map(|i| tile.k.clone().map(move |j| p.score(n_q, n_k, i, j))).collect();
        let before = self.rows[tile.q.clone()].to_vec();
        let tile_max: Vec<f64> = s.chunks(cols).map(|r| r.iter().copied().fold(f64::NEG_INFINITY, f64::max)).collect();
        let skipped = tile_max.iter().all(|&m| m == f64::NEG_INFINITY);
        let mut probs = vec![0f64; s.len()];
        let mut rescale = vec![1f64; tile.q.len()];
        for (r, i) in tile.q.clone().enumerate() {
            let row = &mut self.rows[i];
            let m_new = row.m.max(tile_max[r]);
            if m_new == f64::NEG_INFINITY {
                continue; // nothing seen yet, nothing visible here
            }
            rescale[r] = (row.m - m_new).exp();
            let pr = &mut probs[r * cols..(r + 1) * cols];
            for (pv, sv) in pr.iter_mut().zip(&s[r * cols..(r + 1) * cols]) {
                *pv = (sv - m_new).exp();
            }
            row.l = rescale[r] * row.l + pr.iter().sum::<f64>();
            row.o.iter_mut().for_each(|o| *o *= rescale[r]);
            for (w, j) in pr.iter().zip(tile.k.clone()) {
                for (o, &v) in row.o.iter_mut().zip(p.value(j)) {
                    *o += w * v as f64;
                }
            }
            row.m = m_new;
        }
        let after = self.rows[tile.q.clone()].to_vec();
        Some(TileStep { tile, skipped, s, tile_max, p: probs, rescale, before, after })
    }

    /// Step through every remaining tile; the attention output (n_q, d_v).
    pub fn finish(mut self) -> Vec<f32> {
        while self.step().is_some() {}
        self.output()
    }
}

/// Tiled attention in one call.
pub fn tiled_attention(p: &Problem, br: usize, bc: usize) -> Result<Vec<f32>> {
    Ok(Tiler::new(*p, br, bc, Order::KvOuter)?.finish())
}

/// FlashAttention's block sizes for an SRAM of `m` values and head dim `d`:
/// B_c = ⌈M / 4d⌉, B_r = min(⌈M / 4d⌉, d) (Alg. 1, line 1).
pub fn block_sizes(m: usize, d: usize) -> (usize, usize) {
    let bc = m.div_ceil(4 * d.max(1));
    (bc.min(d), bc)
}

/// Values read from and written to slow memory (HBM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Io {
    pub reads: u64,
    pub writes: u64,
}

impl Io {
    pub fn total(&self) -> u64 {
        self.reads + self.writes
    }
}

/// Standard attention (the paper's Alg. 0) on N positions, head dim d,
/// counted line by line: read Q, K, write S; read S, write P; read P, V,
/// write O. Reads 3Nd + 2N², writes Nd + 2N²: Θ(Nd + N²) (Theorem 2).
/// attnviz's exact count; the paper states only the Θ.
pub fn standard_io(n: usize, d: usize) -> Io {
    let (n, d) = (n as u64, d as u64);
    Io { reads: 3 * n * d + 2 * n * n, writes: n * d + 2 * n * n }
}

/// FlashAttention (Alg. 1) with blocks `br` × `bc`, counted line by line:
/// O, ℓ, m initialised in HBM (Nd + 2N writes); each of the T_c = ⌈N/B_c⌉
/// K/V blocks loaded once (2Nd reads in all); for each tile, Q_i, O_i, ℓ_i,
/// m_i read and O_i, ℓ_i, m_i written back. Reads 2Nd + T_c·N·(2d + 2),
/// writes Nd + 2N + T_c·N·(d + 2): with B_c = Θ(M/d), Θ(N²d²/M) (Theorem 2).
/// attnviz's exact count; the paper states only the Θ.
pub fn tiled_io(n: usize, d: usize, bc: usize) -> Io {
    let (tc, n, d) = (n.div_ceil(bc.max(1)) as u64, n as u64, d as u64);
    Io { reads: 2 * n * d + tc * n * (2 * d + 2), writes: n * d + 2 * n + tc * n * (d + 2) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic, realistic-ish head inputs: smooth in position and
    /// dimension, with a strong first key (a sink) so rows' maxima move.
    fn inputs(n: usize, d: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let f = |i: usize, c: usize, a: f32, b: f32| (i as f32 * a + c as f32 * b).sin() * 1.5;
        let q: Vec<f32> = (0..n * d).map(|x| f(x / d, x % d, 0.37, 1.3)).collect();
        let mut k: Vec<f32> = (0..n * d).map(|x| f(x / d, x % d, 0.91, 0.7)).collect();
        k[..d].iter_mut().zip(&q[..d]).for_each(|(k, q)| *k = 3.0 * q.signum());
        let v: Vec<f32> = (0..n * d).map(|x| f(x / d, x % d, 0.23, 2.1) + (x / d) as f32 * 0.01).collect();
        (q, k, v)
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    #[test]
    fn tiled_equals_naive_for_every_mask_order_and_block_size() {
        let (n, d) = (53, 16);
        let (q, k, v) = inputs(n, d);
        for mask in [MaskKind::Causal, MaskKind::Sliding(7), MaskKind::Full, MaskKind::Sliding(1)] {
            let p = Problem { q: &q, k: &k, v: &v, d, d_v: d, scale: 1.0 / (d as f32).sqrt(), mask };
            let want = attention(&p).unwrap();
            for (br, bc) in [(4, 4), (8, 5), (16, 16), (1, 53), (53, 1), (7, 64)] {
                for order in [Order::KvOuter, Order::QOuter] {
                    let got = Tiler::new(p, br, bc, order).unwrap().finish();
                    let diff = max_diff(&got, &want);
                    assert!(diff < 1e-6, "{mask:?} {br}×{bc} {order:?}: {diff}");
                }
            }
        }
    }

    /// The lesson's tiler and the engine's kernel (`model::flash`, what a
    /// prefill runs) give the same attention output.
    #[test]
    fn tiled_equals_the_engines_kernel() {
        use crate::model::flash::{attend, Geometry, Keys, View};
        let (n, d) = (300, 32);
        let (q, k, v) = inputs(n, d);
        for (mask, window) in [(MaskKind::Causal, None), (MaskKind::Sliding(40), Some(40))] {
            let scale = 1.0 / (d as f32).sqrt();
            let p = Problem { q: &q, k: &k, v: &v, d, d_v: d, scale, mask };
            let lesson = Tiler::new(p, 32, 64, Order::QOuter).unwrap().finish();
            let g = Geometry { heads: 1, kv_heads: 1, head_dim: d, scale, softcap: None, window };
            let view = |data| View { data, off: 0, head_stride: n * d, row_stride: d };
            let engine = attend(&g, view(&q), n, 0, Keys { k: view(&k), v: view(&v), n, first: 0 });
            let diff = max_diff(&lesson, &engine);
            assert!(diff < 1e-5, "{mask:?}: the lesson's tiler and the engine's kernel differ by {diff}");
        }
    }

    #[test]
    fn decode_queries_sit_at_the_end() {
        let (n, d) = (30, 8);
        let (q, k, v) = inputs(n, d);
        let p = Problem { q: &q[(n - 3) * d..], k: &k, v: &v, d, d_v: d, scale: 0.35, mask: MaskKind::Sliding(9) };
        let full = Problem { q: &q, ..p };
        let last3 = attention(&full).unwrap()[(n - 3) * d..].to_vec();
        assert!(max_diff(&attention(&p).unwrap(), &last3) < 1e-7);
        assert!(max_diff(&tiled_attention(&p, 2, 4).unwrap(), &last3) < 1e-6);
    }

    #[test]
    fn steps_expose_running_max_sum_and_output() {
        // One query, keys 0..4 with scores 0, ln 2 (twice), then the max: hand-checkable.
        let ln2 = 2f64.ln();
        let q = [1.0f32];
        let k = [0.0f32, ln2 as f32, ln2 as f32, 3.0];
        let v = [1.0f32, 2.0, 4.0, 8.0];
        let p = Problem { q: &q, k: &k, v: &v, d: 1, d_v: 1, scale: 1.0, mask: MaskKind::Full };
        let mut t = Tiler::new(p, 1, 2, Order::QOuter).unwrap();
        assert_eq!(t.tiles().len(), 2);
        let s1 = t.step().unwrap();
        // Tile 1: m = ln 2, P̃ = [1/2, 1], ℓ = 1.5, Õ = 0.5·1 + 1·2 = 2.5.
        assert!((s1.after[0].m - ln2).abs() < 1e-7 && (s1.after[0].l - 1.5).abs() < 1e-7);
        assert!((s1.after[0].o[0] - 2.5).abs() < 1e-7 && !s1.skipped);
        assert_eq!((s1.before[0].m, s1.rescale[0]), (f64::NEG_INFINITY, 0.0));
        assert_eq!(s1.output_rows(), vec![vec![(2.5f64 / 1.5) as f32]]);
        let s2 = t.step().unwrap();
        // Tile 2: new max 3, so the earlier ℓ and Õ shrink by e^(ln 2 − 3); key 2 adds the same e^(ln 2 − 3).
        let r = ((ln2 as f32) as f64 - 3.0).exp(); // the key holds ln 2 rounded to f32
        assert!((s2.rescale[0] - r).abs() < 1e-12 && s2.tile_max[0] == 3.0);
        assert!((t.rows()[0].l - (1.5 * r + r + 1.0)).abs() < 1e-7);
        let e3 = 3f64.exp();
        let exact = (1.0 + 2.0 * 2.0 + 2.0 * 4.0 + e3 * 8.0) / (1.0 + 2.0 + 2.0 + e3);
        assert!((t.output()[0] as f64 - exact).abs() < 1e-6 && t.done() && t.step().is_none());
    }

    #[test]
    fn masked_tiles_are_skipped_without_change() {
        let (n, d) = (8, 4);
        let (q, k, v) = inputs(n, d);
        let p = Problem { q: &q, k: &k, v: &v, d, d_v: d, scale: 0.5, mask: MaskKind::Causal };
        let mut t = Tiler::new(p, 4, 4, Order::QOuter).unwrap();
        let steps: Vec<TileStep> = std::iter::from_fn(|| t.step()).collect();
        // Rows 0..4 against keys 4..8 lie wholly above the diagonal.
        assert_eq!(steps.iter().map(|s| s.skipped).collect::<Vec<_>>(), [false, true, false, false]);
        assert_eq!(steps[1].before, steps[1].after);
        assert_eq!(steps[1].tile, Tile { q: 0..4, k: 4..8 });
    }

    #[test]
    fn bad_inputs_are_errors() {
        let x = [0f32; 8];
        let p = Problem { q: &x, k: &x, v: &x, d: 3, d_v: 3, scale: 1.0, mask: MaskKind::Causal };
        assert!(attention(&p).is_err());
        let p = Problem { d: 2, d_v: 2, ..p };
        assert!(Tiler::new(p, 0, 2, Order::KvOuter).is_err());
        assert!(attention(&Problem { q: &x[..4], k: &x[..2], v: &x[..2], ..p }).is_err());
    }

    #[test]
    fn io_counts_follow_the_algorithms() {
        // N = 1024, d = 64, SRAM M = 16,384 values: B_c = ⌈M/4d⌉ = 64, B_r = min(64, d) = 64, T_c = 16.
        assert_eq!(block_sizes(16_384, 64), (64, 64));
        assert_eq!(block_sizes(100_000, 64), (64, 391));
        let std = standard_io(1024, 64);
        assert_eq!((std.reads, std.writes), (3 * 65_536 + 2 * 1_048_576, 65_536 + 2 * 1_048_576));
        let fl = tiled_io(1024, 64, 64);
        assert_eq!((fl.reads, fl.writes), (131_072 + 16 * 1024 * 130, 65_536 + 2048 + 16 * 1024 * 66));
        assert_eq!((fl.reads, fl.writes, fl.total(), std.total()), (2_260_992, 1_148_928, 3_409_920, 4_456_448));
        // Quadrupling SRAM quarters the N²-growing part: Θ(N²d²/M).
        let grow = |bc: usize| tiled_io(1024, 64, bc).total() - (3 * 65_536 + 2048);
        assert_eq!(grow(64), 4 * grow(256));
        // Standard grows with N², tiled with N²/B_c.
        assert!(standard_io(4096, 64).total() > 3 * tiled_io(4096, 64, 256).total());
    }
}

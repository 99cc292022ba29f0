//! The tiled kernel against the textbook formula, on prompts many tiles long.

use super::*;

/// Deterministic values in [-1, 1).
fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// softmax over every visible key, one row at a time, in f64.
#[allow(clippy::too_many_arguments)]
fn reference(g: &Geometry, q: &[f32], t: usize, pos: usize, k: &[f32], v: &[f32], n: usize, first: usize) -> Vec<f32> {
    let (h, d) = (g.heads, g.head_dim);
    let group = h / g.kv_heads;
    let mut out = vec![0f32; t * h * d];
    for r in 0..t {
        let qp = pos + r;
        for head in 0..h {
            let kv = head / group;
            let qr = &q[(head * t + r) * d..][..d];
            let mut w: Vec<(usize, f64)> = vec![];
            for c in 0..n {
                let kp = first + c;
                if kp > qp || g.window.is_some_and(|win| kp + win <= qp) {
                    continue;
                }
                let kr = &k[(kv * n + c) * d..][..d];
                let s = qr.iter().zip(kr).map(|(a, b)| (a * b) as f64).sum::<f64>() * g.scale as f64;
                w.push((c, g.softcap.map_or(s, |cap| (s / cap as f64).tanh() * cap as f64)));
            }
            let mx = w.iter().map(|x| x.1).fold(f64::NEG_INFINITY, f64::max);
            let total: f64 = w.iter().map(|x| (x.1 - mx).exp()).sum();
            let o = &mut out[(r * h + head) * d..][..d];
            for (c, s) in w {
                let p = (s - mx).exp() / total;
                for (o, x) in o.iter_mut().zip(&v[(kv * n + c) * d..][..d]) {
                    *o += (p * *x as f64) as f32;
                }
            }
        }
    }
    out
}

/// `t` queries at `pos..pos + t` against `n` keys from `first`, both ways.
fn compare(g: Geometry, t: usize, pos: usize, n: usize, first: usize) {
    let d = g.head_dim;
    // Large enough scores that the running max moves between blocks.
    let q: Vec<f32> = noise(g.heads * t * d, 1).iter().map(|x| x * 3.0).collect();
    let k = noise(g.kv_heads * n * d, 2);
    let v = noise(g.kv_heads * n * d, 3);
    let view = |data, rows| View { data, off: 0, head_stride: rows * d, row_stride: d };
    let keys = Keys { k: view(&k, n), v: view(&v, n), n, first };
    let want = reference(&g, &q, t, pos, &k, &v, n, first);
    // Every build of the kernel this CPU can run.
    for isa in isas() {
        let ours = attend_on(&g, view(&q, t), t, pos, keys, isa);
        let diff = ours.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(diff < 1e-5, "{g:?} t={t} pos={pos} n={n} first={first} {isa:?}: differs by {diff}");
    }
}

fn isas() -> Vec<Isa> {
    match isa_detected() {
        Isa::Avx512 => vec![Isa::Portable, Isa::Avx2, Isa::Avx512],
        Isa::Avx2 => vec![Isa::Portable, Isa::Avx2],
        Isa::Portable => vec![Isa::Portable],
    }
}

fn geometry(heads: usize, kv_heads: usize, head_dim: usize) -> Geometry {
    Geometry { heads, kv_heads, head_dim, scale: 1.0 / (head_dim as f32).sqrt(), softcap: None, window: None }
}

#[test]
fn prefill_many_tiles_mha_gqa_mqa() {
    for (h, kvh, d) in [(2, 2, 16), (6, 2, 64), (4, 1, 24), (4, 2, 48), (2, 1, 128)] {
        compare(geometry(h, kvh, d), 300, 0, 300, 0);
    }
}

#[test]
fn prefill_with_window_and_softcap() {
    let mut g = geometry(4, 2, 32);
    g.window = Some(50);
    compare(g, 260, 0, 260, 0);
    g.window = Some(7);
    compare(g, 130, 0, 130, 0);
    g.softcap = Some(0.5);
    compare(g, 200, 0, 200, 0);
    g.window = None;
    compare(g, 200, 0, 200, 0);
}

#[test]
fn chunk_after_cache() {
    // A second chunk of 100 after 150 held positions.
    compare(geometry(6, 2, 64), 100, 150, 250, 0);
    let mut g = geometry(6, 2, 64);
    g.window = Some(40);
    // A window cache holds W − 1 old keys, then the chunk's own.
    compare(g, 100, 150, 139, 111);
}

#[test]
fn decode_over_cache() {
    for (h, kvh) in [(9, 3), (4, 1), (3, 3)] {
        compare(geometry(h, kvh, 64), 1, 700, 701, 0);
    }
    // Keys split over tasks (SPLIT_KEYS), partial softmaxes merged.
    compare(geometry(9, 3, 64), 1, 1999, 2000, 0);
    compare(geometry(9, 3, 64), 3, 1997, 2000, 0);
    let mut g = geometry(4, 2, 16);
    g.window = Some(33);
    compare(g, 1, 500, 33, 468);
    g.softcap = Some(1.0);
    compare(g, 1, 500, 33, 468);
}

#[test]
fn exp_approx_is_close() {
    for i in 0..=8700 {
        let x = -(i as f32) / 100.0;
        let (a, b) = (exp_approx(x), x.exp());
        assert!((a - b).abs() <= 3e-7 * b, "exp({x}): {a} vs {b}");
    }
}

#[test]
#[cfg(target_arch = "x86_64")]
fn avx512_exp_row_is_close() {
    if isa_detected() != Isa::Avx512 {
        return;
    }
    for start in (0..8700).step_by(BK) {
        let mut x = [0f32; BK];
        x.iter_mut().enumerate().for_each(|(j, x)| *x = -((start + j) as f32) / 100.0 + 1.5);
        // SAFETY: the CPU reported avx512f.
        let sum = unsafe { avx512::exp_row(&mut x, 1.5) };
        let mut want = 0.0;
        for (j, &e) in x.iter().enumerate() {
            let y = -((start + j) as f32) / 100.0;
            let b = if y < -87.0 { 0.0 } else { y.exp() };
            want += b;
            assert!((e - b).abs() <= 3e-7 * b, "exp({y}): {e} vs {b}");
        }
        assert!((sum - want).abs() <= 1e-6 * want.max(1e-30), "sum {sum} vs {want}");
    }
}

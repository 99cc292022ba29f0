//! The prefill attention kernel (`model::flash::attend`) at SmolLM2-135M's
//! shape (9 query heads, 3 KV heads, head_dim 64), causal, for a few prompt
//! lengths: best time of a few calls and GFLOP/s (q·kᵀ and p·v over the
//! visible half of the square, 4·heads·head_dim·t²/2), and what 30 layers
//! would take. `cargo run --release --example flash_bench`
use attnviz::model::flash::{attend, Geometry, Keys, View};
use std::time::Instant;

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

fn main() {
    let (h, kvh, d) = (9, 3, 64);
    let g = Geometry { heads: h, kv_heads: kvh, head_dim: d, scale: 0.125, softcap: None, window: None };
    println!("rayon threads: {}", rayon::current_num_threads());
    for t in [512usize, 2048, 4096] {
        let (q, k, v) = (noise(h * t * d, 1), noise(kvh * t * d, 2), noise(kvh * t * d, 3));
        let view = |data| View { data, off: 0, head_stride: t * d, row_stride: d };
        let keys = Keys { k: view(&k), v: view(&v), n: t, first: 0 };
        let mut best = f64::MAX;
        for _ in 0..4 {
            let start = Instant::now();
            std::hint::black_box(attend(&g, view(&q), t, 0, keys));
            best = best.min(start.elapsed().as_secs_f64());
        }
        let flops = 4.0 * (h * d) as f64 * (t * t) as f64 / 2.0;
        println!(
            "t = {t:>5}: {:>8.1} ms, {:>6.1} GFLOP/s; 30 layers {:>6.2} s",
            best * 1e3,
            flops / best / 1e9,
            best * 30.0
        );
    }
}

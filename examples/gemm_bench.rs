//! Prefill-shaped products: `GemvWeights::gemm` (F32, Q4_1, Q8_0) for t input
//! rows next to candle's `x.matmul(&w.t())` on the same weights dequantized to
//! f32, in GFLOP/s (2·t·rows·cols per call); ratio = candle's time / ours, both
//! called from the main thread. `gemm` is also timed from inside a 2-thread
//! pool (as under `pool.install`). Ends with what SmolLM2-135M's 30 layers of
//! projections would take for one prompt of t tokens.
//! `cargo run --release --example gemm_bench`
use attnviz::model::gemv::GemvWeights;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Result, Tensor};
use std::hint::black_box;
use std::time::Instant;

/// Seconds per call: the best mean over ~10 ms batches during ~0.2 s, so
/// that a noisy neighbour on a small VM skews it less.
fn time(mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let (start, mut best) = (Instant::now(), f64::MAX);
    while start.elapsed().as_secs_f64() < 0.2 {
        let (t, mut n) = (Instant::now(), 0u32);
        while n < 2 || t.elapsed().as_secs_f64() < 0.01 {
            f()?;
            n += 1;
        }
        best = best.min(t.elapsed().as_secs_f64() / n as f64);
    }
    Ok(best)
}

/// (rows, cols) of one SmolLM2-135M layer's projections: q, k, v, o, gate, up, down.
const LAYER: [(usize, usize); 7] =
    [(576, 576), (192, 576), (192, 576), (576, 576), (1536, 576), (1536, 576), (576, 1536)];
/// One measurement: t, type, (rows, cols), seconds from the main thread, in the pool.
type Row = (usize, GgmlDType, (usize, usize), f64, f64);

const TYPES: [GgmlDType; 3] = [GgmlDType::F32, GgmlDType::Q4_1, GgmlDType::Q8_0];

fn main() -> Result<()> {
    let dev = Device::Cpu;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().map_err(candle_core::Error::wrap)?;
    println!("rayon threads: {}; GFLOP/s = 2·t·rows·cols / time", rayon::current_num_threads());
    println!(
        "{:>4} {:>10} {:>5} {:>9} {:>7} {:>8} {:>7} {:>10} {:>7} {:>6}",
        "t", "shape", "type", "gemm µs", "GFLOP/s", "in pool", "GFLOP/s", "candle µs", "GFLOP/s", "ratio"
    );
    // Seconds per call (main thread, in pool) per (t, type, shape), for the model estimate.
    let mut secs: Vec<Row> = Vec::new();
    for t in [64usize, 512] {
        for (rows, cols) in [(576usize, 576usize), (1536, 576), (576, 1536), (192, 576)] {
            let w = (Tensor::randn(0f32, 1.0, (rows, cols), &dev)? * 0.05)?;
            let x = Tensor::randn(0f32, 1.0, (t, cols), &dev)?;
            let xv = x.flatten_all()?.to_vec1::<f32>()?;
            let mut y = vec![0f32; t * rows];
            let flops = 2.0 * (t * rows * cols) as f64;
            for dtype in TYPES {
                let q = QTensor::quantize(&w, dtype)?;
                let Some(g) = GemvWeights::from_ggml(dtype, rows, cols, &q.data()?) else {
                    candle_core::bail!("from_ggml refused {dtype:?}")
                };
                let mut gemm = || {
                    g.gemm(black_box(&xv), t, None, black_box(&mut y));
                    Ok(())
                };
                // candle's baseline: the same (dequantized) weights as an f32 matmul.
                let wf = q.dequantize(&dev)?;
                let mut candle_mm = || black_box(x.matmul(&wf.t()?)).map(drop);
                // Rounds taking turns, best of each: load that comes and goes
                // hits all three alike.
                let (mut ours, mut in_pool, mut candle) = (f64::MAX, f64::MAX, f64::MAX);
                for _ in 0..3 {
                    ours = ours.min(time(&mut gemm)?);
                    in_pool = in_pool.min(pool.install(|| time(&mut gemm))?);
                    candle = candle.min(time(&mut candle_mm)?);
                }
                secs.push((t, dtype, (rows, cols), ours, in_pool));
                let gf = |s: f64| flops / s / 1e9;
                println!(
                    "{t:>4} {:>10} {:>5} {:>9.1} {:>7.1} {:>8.1} {:>7.1} {:>10.1} {:>7.1} {:>6.2}",
                    format!("{rows}x{cols}"),
                    format!("{dtype:?}"),
                    ours * 1e6,
                    gf(ours),
                    in_pool * 1e6,
                    gf(in_pool),
                    candle * 1e6,
                    gf(candle),
                    candle / ours,
                );
            }
        }
    }
    println!("\nSmolLM2-135M, 30 layers of q k v o gate up down (from the main thread / in the pool):");
    for t in [64usize, 512] {
        for dtype in TYPES {
            let layer = |pick: fn(&Row) -> f64| -> f64 {
                let find = |s: &(usize, usize)| secs.iter().find(|e| e.0 == t && e.1 == dtype && e.2 == *s);
                30.0 * LAYER.iter().filter_map(find).map(pick).sum::<f64>()
            };
            let (main, pooled) = (layer(|e| e.3), layer(|e| e.4));
            println!("  t = {t:>3} {:>5}: {:>7.1} ms / {:>7.1} ms", format!("{dtype:?}"), main * 1e3, pooled * 1e3);
        }
    }
    Ok(())
}

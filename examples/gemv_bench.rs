//! Decode-shaped matrix–vector products: `GemvWeights::gemv` (F32, Q4_1,
//! Q8_0) next to candle's `x.matmul(&w.t())` on the same weights in f32 and
//! candle's own `QMatMul` on the quantized ones. `gemv` is timed from the main
//! thread (outside rayon's pool, like a decode thread) and from inside a
//! 2-thread pool (as when the caller runs its step under `pool.install`).
//! `cargo run --release --example gemv_bench`
use attnviz::model::gemv::GemvWeights;
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Result, Tensor};
use std::hint::black_box;
use std::time::Instant;

/// Seconds per call: the best mean over ~10 ms batches during ~0.5 s, so
/// that a noisy neighbour on a small VM skews it less.
fn time(mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..3 {
        f()?;
    }
    let (start, mut best) = (Instant::now(), f64::MAX);
    while start.elapsed().as_secs_f64() < 0.5 {
        let (t, mut n) = (Instant::now(), 0u32);
        while n < 3 || t.elapsed().as_secs_f64() < 0.01 {
            f()?;
            n += 1;
        }
        best = best.min(t.elapsed().as_secs_f64() / n as f64);
    }
    Ok(best)
}

fn main() -> Result<()> {
    let dev = Device::Cpu;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().map_err(candle_core::Error::wrap)?;
    println!("rayon threads: {}; times in µs per call, GB/s of weight bytes", rayon::current_num_threads());
    println!(
        "{:>10} {:>5} {:>10} {:>8} {:>6} {:>8} {:>6} {:>11} {:>11}",
        "shape", "type", "bytes", "gemv", "GB/s", "in pool", "GB/s", "candle f32", "candle QMM"
    );
    for (rows, cols) in [(576usize, 576usize), (1536, 576), (576, 1536), (49152, 576)] {
        let w = (Tensor::randn(0f32, 1.0, (rows, cols), &dev)? * 0.05)?;
        let x = Tensor::randn(0f32, 1.0, (1, cols), &dev)?;
        let xv = x.flatten_all()?.to_vec1::<f32>()?;
        let mut y = vec![0f32; rows];
        for dtype in [GgmlDType::F32, GgmlDType::Q4_1, GgmlDType::Q8_0] {
            let q = QTensor::quantize(&w, dtype)?;
            let bytes = q.data()?.len();
            let Some(g) = GemvWeights::from_ggml(dtype, rows, cols, &q.data()?) else {
                candle_core::bail!("from_ggml refused {dtype:?}")
            };
            let mut gemv = || {
                g.gemv(black_box(&xv), None, black_box(&mut y));
                Ok(())
            };
            let ours = time(&mut gemv)?;
            let in_pool = pool.install(|| time(&mut gemv))?;
            // candle's baseline: the same (dequantized) weights as an f32 matmul.
            let wf = q.dequantize(&dev)?;
            let candle = time(|| black_box(x.matmul(&wf.t()?)).map(drop))?;
            let qmm = QMatMul::from_qtensor(q)?;
            let candle_q = time(|| black_box(qmm.forward(&x)).map(drop))?;
            let gbs = |t: f64| bytes as f64 / t / 1e9;
            println!(
                "{:>10} {:>5} {:>10} {:>8.1} {:>6.1} {:>8.1} {:>6.1} {:>11.1} {:>11.1}",
                format!("{rows}x{cols}"),
                format!("{dtype:?}"),
                bytes,
                ours * 1e6,
                gbs(ours),
                in_pool * 1e6,
                gbs(in_pool),
                candle * 1e6,
                candle_q * 1e6,
            );
        }
    }
    Ok(())
}

//! `gemm` against candle's f32 matmul on the dequantized weights.
use super::tests::{dequantized, kernels, max_rel, random, Rng, TYPES};
use super::*;
use candle_core::{Device, Tensor};

/// candle's X · Wᵀ on the dequantized weights, without bias.
fn reference(w: &GemvWeights, x: &[f32], t: usize) -> Vec<f32> {
    let wt = Tensor::from_vec(dequantized(w), (w.rows(), w.cols()), &Device::Cpu).unwrap();
    let xt = Tensor::from_slice(x, (t, w.cols()), &Device::Cpu).unwrap();
    xt.matmul(&wt.t().unwrap()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn with_bias(y: &[f32], bias: &[f32]) -> Vec<f32> {
    y.chunks_exact(bias.len()).flat_map(|y| y.iter().zip(bias).map(|(y, b)| y + b)).collect()
}

fn gemm(w: &GemvWeights, kernel: Kernel, x: &[f32], t: usize, bias: Option<&[f32]>) -> Vec<f32> {
    let mut y = vec![f32::NAN; t * w.rows()];
    w.gemm_with(kernel, x, t, bias, &mut y);
    y
}

#[test]
fn gemm_matches_dequantized_matmul() {
    let mut rng = Rng(11);
    for dtype in TYPES {
        for cols in [64, 576, 1536] {
            // 1001 rows: several bands, the last one short, ending in a part group (1001 = 166·6 + 5).
            for rows in [1, 37, 576, 1001] {
                let w = random(&mut rng, dtype, rows, cols);
                let bias: Vec<f32> = (0..rows).map(|_| rng.f32()).collect();
                // t = 5: one narrow block; 300 rows of 1536: two L2 panels, a part block.
                for t in [1, 2, 5, 64, 300] {
                    let x: Vec<f32> = (0..t * cols).map(|_| rng.f32()).collect();
                    let plain = reference(&w, &x, t);
                    let biased = with_bias(&plain, &bias);
                    for kernel in kernels() {
                        for (b, expected) in [(None, &plain), (Some(&bias[..]), &biased)] {
                            let err = max_rel(&gemm(&w, kernel, &x, t, b), expected);
                            let what = format!("{dtype:?} {rows}x{cols} t={t} {kernel:?} bias={}", b.is_some());
                            assert!(err < 1e-5, "{what}: {err}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn gemm_sees_exactly_the_dequantized_weights() {
    // X = I makes Y = Wᵀ: every kernel must reproduce `row()` bit for bit,
    // over the whole range of f16 scales.
    let mut rng = Rng(12);
    let (rows, cols) = (50, 64);
    let x: Vec<f32> = (0..cols * cols).map(|i| if i / cols == i % cols { 1.0 } else { 0.0 }).collect();
    for dtype in TYPES {
        let w = if dtype == GgmlDType::F32 {
            random(&mut rng, dtype, rows, cols)
        } else {
            let mut bytes = Vec::new();
            let (block_bytes, scales) = if dtype == GgmlDType::Q4_1 { (Q4_1_BYTES, 2) } else { (Q8_0_BYTES, 1) };
            for _ in 0..rows * cols / QK {
                (0..scales).for_each(|_| bytes.extend(rng.finite_f16()));
                bytes.extend((0..block_bytes - 2 * scales).map(|_| rng.byte()));
            }
            GemvWeights::from_ggml(dtype, rows, cols, &bytes).unwrap()
        };
        let all = dequantized(&w);
        for kernel in kernels() {
            let y = gemm(&w, kernel, &x, cols, None);
            for (j, y) in y.chunks_exact(rows).enumerate() {
                for (r, y) in y.iter().enumerate() {
                    let want = all[r * cols + j];
                    assert!(y.to_bits() == want.to_bits() || (*y == 0.0 && want == 0.0), "{dtype:?} {kernel:?}");
                }
            }
        }
    }
}

#[test]
fn avx2_and_portable_gemm_agree() {
    // Summation orders differ (FMA vs multiply-add, alternate columns for
    // narrow blocks), so agreement is to rounding, not bits.
    let mut rng = Rng(13);
    for dtype in TYPES {
        let w = random(&mut rng, dtype, 301, 576);
        for t in [7, 37] {
            let x: Vec<f32> = (0..t * 576).map(|_| rng.f32()).collect();
            let ys: Vec<Vec<f32>> = kernels().into_iter().map(|k| gemm(&w, k, &x, t, None)).collect();
            for y in &ys[1..] {
                let err = max_rel(y, &ys[0]);
                assert!(err < 1e-5, "{dtype:?} t={t}: {err}");
            }
        }
    }
}

#[test]
fn f32_gemm_with_columns_not_a_multiple_of_the_vector_width() {
    let mut rng = Rng(14);
    for cols in [1, 7, 33, 100] {
        let data: Vec<f32> = (0..19 * cols).map(|_| rng.f32()).collect();
        let w = GemvWeights::F32 { rows: 19, cols, data };
        for t in [5, 7, 8, 17] {
            let x: Vec<f32> = (0..t * cols).map(|_| rng.f32()).collect();
            let expected = reference(&w, &x, t);
            for kernel in kernels() {
                assert!(max_rel(&gemm(&w, kernel, &x, t, None), &expected) < 1e-5, "cols {cols} t {t} {kernel:?}");
            }
        }
    }
}

#[test]
fn gemm_rows_are_independent_of_threads_and_batch() {
    // Bands never split a dot product, so neither the pool nor the other
    // input rows can change a result: a full block of 16 rows equals itself
    // in a larger batch (narrower blocks use another summation order).
    let mut rng = Rng(15);
    let w = random(&mut rng, GgmlDType::Q4_1, 1001, 576);
    let x: Vec<f32> = (0..37 * 576).map(|_| rng.f32()).collect();
    let mut outside = vec![0f32; 37 * 1001];
    w.gemm(&x, 37, None, &mut outside);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let mut inside = vec![0f32; 37 * 1001];
    pool.install(|| w.gemm(&x, 37, None, &mut inside));
    assert_eq!(outside, inside);
    let mut alone = vec![0f32; 16 * 1001];
    w.gemm(&x[16 * 576..32 * 576], 16, None, &mut alone);
    assert_eq!(alone, outside[16 * 1001..32 * 1001]);
}

#[test]
fn gemm_of_empty_shapes() {
    let mut rng = Rng(16);
    let w = random(&mut rng, GgmlDType::Q8_0, 3, 64);
    w.gemm(&[], 0, None, &mut []);
    let empty = GemvWeights::F32 { rows: 3, cols: 0, data: Vec::new() };
    let mut y = [f32::NAN; 6];
    empty.gemm(&[], 2, Some(&[1.0, 2.0, 3.0]), &mut y);
    assert_eq!(y, [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    let none = GemvWeights::F32 { rows: 0, cols: 5, data: Vec::new() };
    none.gemm(&[0.0; 10], 2, None, &mut []);
}

#[test]
#[should_panic(expected = "gemm: x has")]
fn gemm_rejects_a_short_input() {
    let w = GemvWeights::F32 { rows: 2, cols: 4, data: vec![0.0; 8] };
    w.gemm(&[0.0; 7], 2, None, &mut [0.0; 4]);
}

//! The 16-bit kernels against f64 sums of the widened weights, and `gemm` against the f32 kernel.

use super::super::tests::{kernels, max_rel, Rng};
use super::*;
use candle_core::Device;

fn random(rng: &mut Rng, kind: Half, rows: usize, cols: usize) -> HalfRows {
    let data = (0..rows * cols)
        .map(|_| {
            let v = rng.f32() * 0.1;
            match kind {
                Half::Bf16 => bf16::from_f32(v).to_bits(),
                Half::F16 => f16::from_f32(v).to_bits(),
            }
        })
        .collect();
    HalfRows::new(kind, rows, cols, data).unwrap()
}

fn widened(w: &HalfRows) -> Vec<f32> {
    let mut out = vec![0f32; w.rows() * w.cols()];
    for (r, o) in out.chunks_exact_mut(w.cols()).enumerate() {
        w.row(r, o);
    }
    out
}

/// In f64 from the widened weights: independent of every kernel's order.
fn reference(w: &[f32], x: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let dot = |r: &[f32]| r.iter().zip(x).map(|(&w, &x)| w as f64 * x as f64).sum::<f64>();
    let y = w.chunks_exact(x.len()).map(dot);
    y.enumerate().map(|(r, v)| (v + bias.map_or(0.0, |b| b[r] as f64)) as f32).collect()
}

#[test]
fn widening_is_exact() {
    let bits: Vec<u16> = vec![0, 0x8000, 0x0001, 0x3F80, 0xC2F7, 0x7F7F, 0x0400, 0x03FF, 0x7BFF, 0xFBFF];
    let b = HalfRows::new(Half::Bf16, 1, bits.len(), bits.clone()).unwrap();
    let f = HalfRows::new(Half::F16, 1, bits.len(), bits.clone()).unwrap();
    let (mut wb, mut wf) = (vec![0f32; bits.len()], vec![0f32; bits.len()]);
    b.row(0, &mut wb);
    f.row(0, &mut wf);
    for (i, &v) in bits.iter().enumerate() {
        assert_eq!(wb[i].to_bits(), bf16::from_bits(v).to_f32().to_bits());
        assert_eq!(wf[i].to_bits(), f16::from_bits(v).to_f32().to_bits());
    }
    assert!(HalfRows::new(Half::Bf16, 2, 3, vec![0; 5]).is_none());
}

#[test]
fn gemv_matches_the_widened_weights() {
    let mut rng = Rng(11);
    for kind in [Half::Bf16, Half::F16] {
        // Column counts around the 16- and 32-wide steps, and the tails.
        for (rows, cols) in [(1, 1), (3, 8), (5, 16), (7, 31), (9, 32), (33, 48), (17, 1000), (300, 1024)] {
            let w = random(&mut rng, kind, rows, cols);
            let x: Vec<f32> = (0..cols).map(|_| rng.f32()).collect();
            let bias: Vec<f32> = (0..rows).map(|_| rng.f32()).collect();
            let want = reference(&widened(&w), &x, Some(&bias));
            for k in kernels() {
                let mut y = vec![f32::NAN; rows];
                w.gemv_with(k, &x, Some(&bias), &mut y);
                let e = max_rel(&y, &want);
                assert!(e < 1e-5, "{kind:?} {k:?} {rows}x{cols}: {e}");
            }
        }
    }
}

#[test]
fn gemm_is_the_f32_kernel_on_the_widened_weights() {
    let mut rng = Rng(12);
    for kind in [Half::Bf16, Half::F16] {
        // 2,100 rows × 1,000 columns spans two bands of BAND_WEIGHTS.
        for (rows, cols, t) in [(2100, 1000, 7), (40, 24, 3), (65, 64, 5)] {
            let w = random(&mut rng, kind, rows, cols);
            let x: Vec<f32> = (0..t * cols).map(|_| rng.f32()).collect();
            let bias: Vec<f32> = (0..rows).map(|_| rng.f32()).collect();
            let mut y = vec![f32::NAN; t * rows];
            w.gemm(&x, t, Some(&bias), &mut y);
            let f32w = GemvWeights::F32 { rows, cols, data: widened(&w) };
            let mut want = vec![0f32; t * rows];
            f32w.gemm(&x, t, Some(&bias), &mut want);
            if t > GEMV_ROWS {
                assert_eq!(y, want, "{kind:?} {rows}x{cols} t={t}"); // the same f32 kernel, band or not
            } else {
                assert!(max_rel(&y, &want) < 1e-5, "{kind:?} {rows}x{cols} t={t}");
            }
        }
    }
}

#[test]
fn from_tensor_keeps_16_bit_floats_only() {
    let t = Tensor::new(&[[1.5f32, -2.0], [0.25, 3.0]], &Device::Cpu).unwrap();
    assert!(HalfRows::from_tensor(&t).unwrap().is_none());
    for (dtype, kind) in [(DType::BF16, Half::Bf16), (DType::F16, Half::F16)] {
        let h = HalfRows::from_tensor(&t.to_dtype(dtype).unwrap()).unwrap().unwrap();
        assert_eq!((h.kind(), h.rows(), h.cols()), (kind, 2, 2));
        let mut row = [0f32; 2];
        h.row(1, &mut row);
        assert_eq!(row, [0.25, 3.0]);
    }
}

#[test]
fn same_results_inside_a_rayon_pool() {
    let mut rng = Rng(13);
    let w = random(&mut rng, Half::Bf16, 1001, 576);
    let x: Vec<f32> = (0..576).map(|_| rng.f32()).collect();
    let (mut outside, mut inside) = (vec![0f32; 1001], vec![0f32; 1001]);
    w.gemv(&x, None, &mut outside);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    pool.install(|| w.gemv(&x, None, &mut inside));
    assert_eq!(outside, inside);
}

use super::*;
use candle_core::quantized::QTensor;
use candle_core::{Device, Tensor};

/// xorshift64*: reproducible random data without a `rand` dependency.
pub(super) struct Rng(pub(super) u64);
impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    pub(super) fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    pub(super) fn byte(&mut self) -> u8 {
        (self.next() >> 56) as u8
    }
    /// Any finite f16: an all-ones exponent (inf, NaN) loses its top bit.
    pub(super) fn finite_f16(&mut self) -> [u8; 2] {
        let b = self.next() as u16;
        (if b & 0x7C00 == 0x7C00 { b & !0x4000 } else { b }).to_le_bytes()
    }
    fn f16_bytes(&mut self, scale: f32) -> [u8; 2] {
        f16::from_f32(self.f32() * scale).to_le_bytes()
    }
}

// Straight from the block formulas, independent of the code under test.
fn ref_q4_1(b: &[u8]) -> Vec<f32> {
    let d = f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
    let m = f16::from_bits(u16::from_le_bytes([b[2], b[3]])).to_f32();
    let mut out = vec![0f32; 32];
    for j in 0..16 {
        out[j] = ((b[4 + j] & 0xF) as f32) * d + m;
        out[j + 16] = ((b[4 + j] >> 4) as f32) * d + m;
    }
    out
}

fn ref_q8_0(b: &[u8]) -> Vec<f32> {
    let d = f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
    (0..32).map(|j| (b[2 + j] as i8 as f32) * d).collect()
}

pub(super) fn random(rng: &mut Rng, dtype: GgmlDType, rows: usize, cols: usize) -> GemvWeights {
    let mut bytes = Vec::new();
    for _ in 0..rows * cols / QK {
        match dtype {
            GgmlDType::Q4_1 => {
                bytes.extend(rng.f16_bytes(0.02)); // d (either sign)
                bytes.extend(rng.f16_bytes(0.15)); // m
                bytes.extend((0..16).map(|_| rng.byte()));
            }
            GgmlDType::Q8_0 => {
                bytes.extend(rng.f16_bytes(0.002));
                bytes.extend((0..32).map(|_| rng.byte()));
            }
            _ => (0..QK).for_each(|_| bytes.extend(rng.f32().to_le_bytes())),
        }
    }
    GemvWeights::from_ggml(dtype, rows, cols, &bytes).unwrap()
}

pub(super) fn dequantized(w: &GemvWeights) -> Vec<f32> {
    let mut out = vec![0f32; w.rows() * w.cols()];
    for (r, o) in out.chunks_exact_mut(w.cols()).enumerate() {
        w.row(r, o);
    }
    out
}

/// candle's f32 matmul on the dequantized weights, plus bias.
fn reference(w: &GemvWeights, x: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let wt = Tensor::from_vec(dequantized(w), (w.rows(), w.cols()), &Device::Cpu).unwrap();
    let xt = Tensor::from_slice(x, (1, x.len()), &Device::Cpu).unwrap();
    let mut y = xt.matmul(&wt.t().unwrap()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    if let Some(b) = bias {
        y.iter_mut().zip(b).for_each(|(y, b)| *y += b);
    }
    y
}

pub(super) fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    let diff = a.iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    diff / b.iter().map(|b| b.abs()).fold(f32::MIN_POSITIVE, f32::max)
}

pub(super) fn kernels() -> Vec<Kernel> {
    match best_kernel() {
        Kernel::Portable => vec![Kernel::Portable],
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => vec![Kernel::Portable, Kernel::Avx2],
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => vec![Kernel::Portable, Kernel::Avx2, Kernel::Avx512],
    }
}

pub(super) const TYPES: [GgmlDType; 3] = [GgmlDType::F32, GgmlDType::Q4_1, GgmlDType::Q8_0];

#[test]
fn rows_match_the_block_formulas() {
    let mut rng = Rng(1);
    for (dtype, reference, block_bytes) in
        [(GgmlDType::Q4_1, ref_q4_1 as fn(&[u8]) -> Vec<f32>, Q4_1_BYTES), (GgmlDType::Q8_0, ref_q8_0, Q8_0_BYTES)]
    {
        let w = random(&mut rng, dtype, 5, 576);
        let (GemvWeights::Q4_1 { blocks, .. } | GemvWeights::Q8_0 { blocks, .. }) = &w else { unreachable!() };
        let expected: Vec<f32> = blocks.chunks_exact(block_bytes).flat_map(reference).collect();
        let got = dequantized(&w);
        assert!(got.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits()), "{dtype:?}");
    }
}

#[test]
fn rows_match_candle_dequantize_bit_for_bit() {
    let t = (Tensor::randn(0f32, 1.0, (7, 576), &Device::Cpu).unwrap() * 0.1).unwrap();
    for dtype in TYPES {
        let q = QTensor::quantize(&t, dtype).unwrap();
        let w = GemvWeights::from_ggml(dtype, 7, 576, &q.data().unwrap()).unwrap();
        let expected = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let got = dequantized(&w);
        assert!(got.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits()), "{dtype:?}");
    }
}

#[test]
fn gemv_matches_dequantized_matmul() {
    let mut rng = Rng(2);
    // 1001 rows: several rayon chunks, the last one short.
    for (dtype, cols, rows) in TYPES.iter().flat_map(|&t| [(t, 576, 1), (t, 576, 1001), (t, 1536, 37), (t, 1536, 1001)])
    {
        let w = random(&mut rng, dtype, rows, cols);
        let x: Vec<f32> = (0..cols).map(|_| rng.f32()).collect();
        let bias: Vec<f32> = (0..rows).map(|_| rng.f32()).collect();
        for b in [None, Some(&bias[..])] {
            let expected = reference(&w, &x, b);
            for kernel in kernels() {
                let mut y = vec![f32::NAN; rows];
                w.gemv_with(kernel, &x, b, &mut y);
                let err = max_rel(&y, &expected);
                assert!(err < 1e-5, "{dtype:?} {rows}x{cols} {kernel:?} bias={}: {err}", b.is_some());
            }
        }
    }
}

#[test]
fn f32_with_columns_not_a_multiple_of_the_vector_width() {
    let mut rng = Rng(3);
    for cols in [1, 7, 33, 100] {
        let data: Vec<f32> = (0..19 * cols).map(|_| rng.f32()).collect();
        let w = GemvWeights::F32 { rows: 19, cols, data };
        let x: Vec<f32> = (0..cols).map(|_| rng.f32()).collect();
        let expected = reference(&w, &x, None);
        for kernel in kernels() {
            let mut y = vec![0f32; 19];
            w.gemv_with(kernel, &x, None, &mut y);
            assert!(max_rel(&y, &expected) < 1e-5, "cols {cols} {kernel:?}");
        }
    }
}

#[test]
fn avx2_and_portable_agree() {
    let mut rng = Rng(4);
    for dtype in TYPES {
        let w = random(&mut rng, dtype, 300, 1536);
        let x: Vec<f32> = (0..1536).map(|_| rng.f32()).collect();
        let ys: Vec<Vec<f32>> = kernels()
            .into_iter()
            .map(|k| {
                let mut y = vec![0f32; 300];
                w.gemv_with(k, &x, None, &mut y);
                y
            })
            .collect();
        for y in &ys[1..] {
            assert!(max_rel(y, &ys[0]) < 1e-6, "{dtype:?}");
        }
    }
}

#[test]
fn permute_rows_moves_whole_rows() {
    let mut rng = Rng(5);
    for dtype in TYPES {
        let w = random(&mut rng, dtype, 64, 576);
        // llama.cpp-style: even rows of each head first, then odd.
        let perm: Vec<usize> = (0..64).map(|r| (r / 32) * 32 + (r % 32 % 16) * 2 + (r % 32) / 16).collect();
        let mut p = w.clone();
        p.permute_rows(&perm);
        let (old, new) = (dequantized(&w), dequantized(&p));
        for (r, &src) in perm.iter().enumerate() {
            assert_eq!(new[r * 576..(r + 1) * 576], old[src * 576..(src + 1) * 576], "{dtype:?} row {r}");
        }
        let x: Vec<f32> = (0..576).map(|_| rng.f32()).collect();
        let (mut y, mut yp) = (vec![0f32; 64], vec![0f32; 64]);
        w.gemv(&x, None, &mut y);
        p.gemv(&x, None, &mut yp);
        assert!(perm.iter().enumerate().all(|(r, &src)| yp[r] == y[src]));
    }
}

#[test]
fn from_ggml_rejects_what_it_cannot_run() {
    let bytes = vec![0u8; 4 * 34];
    assert!(GemvWeights::from_ggml(GgmlDType::Q4_0, 4, 32, &[0u8; 4 * 18]).is_none());
    assert!(GemvWeights::from_ggml(GgmlDType::Q8_0, 4, 32, &bytes).is_some());
    assert!(GemvWeights::from_ggml(GgmlDType::Q8_0, 4, 32, &bytes[1..]).is_none());
    assert!(GemvWeights::from_ggml(GgmlDType::Q8_0, 2, 64, &bytes).is_some());
    assert!(GemvWeights::from_ggml(GgmlDType::Q8_0, 8, 16, &bytes).is_none()); // cols not a multiple of 32
    assert!(GemvWeights::from_ggml(GgmlDType::F32, 3, 5, &[0u8; 60]).is_some());
    assert!(GemvWeights::from_ggml(GgmlDType::F32, 3, 5, &[0u8; 59]).is_none());
}

#[test]
fn one_fma_gives_the_same_q4_1_weight_as_multiply_then_add() {
    // What the AVX2 kernel relies on: q·d is exact for q < 16 and any f16 d.
    let mut rng = Rng(6);
    let ms: Vec<f32> = (0..6).map(|_| f16::from_bits(rng.next() as u16 & 0x7BFF).to_f32()).chain([0.0, -1.5]).collect();
    for bits in (0..=u16::MAX).filter(|b| b & 0x7C00 != 0x7C00) {
        let d = f16::from_bits(bits).to_f32();
        for (q, &m) in (0..16u8).flat_map(|q| ms.iter().map(move |m| (q, m))) {
            let q = q as f32;
            assert_eq!((q * d + m).to_bits(), q.mul_add(d, m).to_bits(), "q {q} d {d} m {m}");
        }
    }
}

#[test]
fn kernels_see_exactly_the_dequantized_weights() {
    // x = e_j makes y = column j: every kernel must reproduce `row()` bit for bit.
    let mut rng = Rng(7);
    for dtype in [GgmlDType::Q4_1, GgmlDType::Q8_0] {
        let mut bytes = Vec::new();
        let block_bytes = if dtype == GgmlDType::Q4_1 { Q4_1_BYTES } else { Q8_0_BYTES };
        for _ in 0..50 * 2 {
            let scales = if dtype == GgmlDType::Q4_1 { 2 } else { 1 };
            for _ in 0..scales {
                bytes.extend(rng.finite_f16());
            }
            bytes.extend((0..block_bytes - 2 * scales).map(|_| rng.byte()));
        }
        let w = GemvWeights::from_ggml(dtype, 50, 64, &bytes).unwrap();
        let all = dequantized(&w);
        for kernel in kernels() {
            for j in 0..64 {
                let x: Vec<f32> = (0..64).map(|c| if c == j { 1.0 } else { 0.0 }).collect();
                let mut y = vec![0f32; 50];
                w.gemv_with(kernel, &x, None, &mut y);
                for (r, y) in y.iter().enumerate() {
                    let want = all[r * 64 + j];
                    assert!(y.to_bits() == want.to_bits() || (*y == 0.0 && want == 0.0), "{dtype:?} {kernel:?}");
                }
            }
        }
    }
}

#[test]
fn same_results_inside_a_rayon_pool() {
    let mut rng = Rng(8);
    let w = random(&mut rng, GgmlDType::Q4_1, 1001, 576);
    let x: Vec<f32> = (0..576).map(|_| rng.f32()).collect();
    let (mut outside, mut inside) = (vec![0f32; 1001], vec![0f32; 1001]);
    w.gemv(&x, None, &mut outside);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    pool.install(|| w.gemv(&x, None, &mut inside));
    assert_eq!(outside, inside); // rows are independent: chunking can't change them
}

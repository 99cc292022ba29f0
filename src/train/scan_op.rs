//! Mamba's selective scan as one autograd op, fused like the reference CUDA
//! kernel: the (batch, t, d_inner, d_state) state history never becomes a
//! tensor (as separate candle ops it would be written and read a dozen
//! times per layer, forward and backward).
//!
//! Per batch row and channel d, with a_tn = exp(Δ_t·A_n):
//!   h_tn = a_tn·h_(t−1)n + Δ_t·u_t·B_tn,   y_t = Σ_n C_tn·h_tn   (h_(−1) = 0).
//! Backward, with gy the gradient of y and gh_tn = gy_t·C_tn + a_(t+1)n·gh_(t+1)n:
//!   ∂C_tn = Σ_d gy_t·h_tn, ∂B_tn = Σ_d gh_tn·Δ_t·u_t, ∂u_t = Σ_n gh_tn·Δ_t·B_tn,
//!   ∂Δ_t = Σ_n gh_tn·(u_t·B_tn + h_(t−1)n·a_tn·A_n), ∂A_n = Σ_(b,t) gh_tn·h_(t−1)n·a_tn·Δ_t.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;

/// y (b, t, d_inner) from u, Δ (b, t, d_inner), B, C (b, t, d_state) and A (d_inner, d_state).
pub fn selective_scan(u: &Tensor, dt: &Tensor, b: &Tensor, c: &Tensor, a: &Tensor) -> crate::error::Result<Tensor> {
    let ud = Tensor::cat(&[u, dt], D::Minus1)?; // (b, t, 2·d_inner)
    let bc = Tensor::cat(&[b, c], D::Minus1)?; // (b, t, 2·d_state)
    Ok(ud.apply_op3(&bc, &a.contiguous()?, SelectiveScan)?)
}

struct SelectiveScan;

#[derive(Clone, Copy)]
struct Dims {
    batch: usize,
    t: usize,
    di: usize,
    n: usize,
}

fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    match l.contiguous_offsets() {
        Some((from, to)) => Ok(&s.as_slice::<f32>()?[from..to]),
        None => candle_core::bail!("selective_scan: input is not contiguous"),
    }
}

fn dims(ud: &Shape, bc: &Shape, a: &Shape) -> Result<Dims> {
    let (batch, t, di2) = ud.dims3()?;
    let (di, n) = a.dims2()?;
    if bc.dims3()? != (batch, t, 2 * n) || di2 != 2 * di {
        candle_core::bail!("selective_scan: shapes {ud:?}, {bc:?}, {a:?} don't fit");
    }
    Ok(Dims { batch, t, di, n })
}

/// Gradients (of ud, bc, A) from one batch row, given its h and decays from `forward_row`.
#[inline(always)]
fn backward_row(
    s: Dims,
    ud: &[f32],
    bc: &[f32],
    av: &[f32],
    gy: &[f32],
    hs: &[f32],
    decays: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let Dims { t, di, n, .. } = s;
    let zeros = vec![0f32; n];
    let (mut g_ud, mut g_bc, mut g_a) = (vec![0f32; t * 2 * di], vec![0f32; t * 2 * n], vec![0f32; di * n]);
    let mut gh = vec![0f32; n]; // carries a_(t+1)·gh_(t+1) backwards
    for d in 0..di {
        gh.fill(0.0);
        let (ad, g_ad) = (&av[d * n..(d + 1) * n], &mut g_a[d * n..(d + 1) * n]);
        for step in (0..t).rev() {
            let (u, dt) = (ud[step * 2 * di + d], ud[step * 2 * di + di + d]);
            let g = gy[step * di + d];
            let at = (step * di + d) * n;
            let (h, decay) = (&hs[at..at + n], &decays[at..at + n]);
            let prev = if step > 0 { &hs[at - di * n..at - di * n + n] } else { &zeros[..] };
            let (bs, cs) = bc[step * 2 * n..(step + 1) * 2 * n].split_at(n);
            let (g_b, g_c) = g_bc[step * 2 * n..(step + 1) * 2 * n].split_at_mut(n);
            let (mut gu, mut gdt) = (0f32, 0f32);
            for k in 0..n {
                let ghk = g * cs[k] + gh[k];
                g_c[k] += g * h[k];
                g_b[k] += ghk * dt * u;
                gu += ghk * dt * bs[k];
                let ga = ghk * prev[k] * decay[k]; // ∂(Δ·A) through a = exp(Δ·A)
                gdt += ghk * u * bs[k] + ga * ad[k];
                g_ad[k] += ga * dt;
                gh[k] = ghk * decay[k];
            }
            g_ud[step * 2 * di + d] = gu;
            g_ud[step * 2 * di + di + d] = gdt;
        }
    }
    (g_ud, g_bc, g_a)
}

/// Run `f` compiled for AVX2 + FMA where the CPU has them: the scan's
/// inner loops over d_state then vectorise 8 wide instead of SSE2's 4.
fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn run<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: the CPU reported avx2 and fma just above.
        return unsafe { run(f) };
    }
    f()
}

/// y (t·di) of one batch row; with `keep`, also every h and decay a, each (t, di, n).
#[inline(always)]
fn forward_row(s: Dims, ud: &[f32], bc: &[f32], a: &[f32], y: &mut [f32], mut keep: Option<(&mut [f32], &mut [f32])>) {
    let Dims { t, di, n, .. } = s;
    let mut h = vec![0f32; n];
    let mut decay = vec![0f32; n];
    for d in 0..di {
        h.fill(0.0);
        let ad = &a[d * n..(d + 1) * n];
        for step in 0..t {
            let (u, dt) = (ud[step * 2 * di + d], ud[step * 2 * di + di + d]);
            let (bs, cs) = bc[step * 2 * n..(step + 1) * 2 * n].split_at(n);
            decay.iter_mut().zip(ad).for_each(|(e, a)| *e = fast_exp(dt * a));
            let mut acc = 0f32;
            for k in 0..n {
                h[k] = decay[k] * h[k] + dt * u * bs[k];
                acc += cs[k] * h[k];
            }
            y[step * di + d] = acc;
            if let Some((hs, decays)) = keep.as_mut() {
                let at = (step * di + d) * n;
                hs[at..at + n].copy_from_slice(&h);
                decays[at..at + n].copy_from_slice(&decay);
            }
        }
    }
}

/// eˣ to about 2 ulp, branch-free so loops over it vectorise (libm's expf
/// was a third of training time). x ≤ −87 gives ~0, as the scan's
/// decays (x = Δ·A ≤ 0) need; x is clamped at 88.
#[inline(always)]
fn fast_exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // eˣ = 2^k · e^r with k = round(x / ln 2), |r| ≤ ln2 / 2.
    // Adding and removing 1.5·2²³ rounds to nearest without a libm call.
    let k = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
    let r = x - k * 0.693_359_4 + k * 2.121_944_4e-4; // ln 2 split in two for precision
                                                      // Taylor to degree 7: |r| ≤ 0.347 leaves a relative error under 1e-7.
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    p * f32::from_bits(((k as i32 + 127) << 23) as u32)
}

impl CustomOp3 for SelectiveScan {
    fn name(&self) -> &'static str {
        "selective-scan"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let s = dims(l1.shape(), l2.shape(), l3.shape())?;
        let (ud, bc, a) = (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        let mut y = vec![0f32; s.batch * s.t * s.di];
        y.par_chunks_mut(s.t * s.di).enumerate().for_each(|(i, y)| {
            let (ud, bc) =
                (&ud[i * s.t * 2 * s.di..(i + 1) * s.t * 2 * s.di], &bc[i * s.t * 2 * s.n..(i + 1) * s.t * 2 * s.n]);
            with_avx2(|| forward_row(s, ud, bc, a, y, None));
        });
        Ok((CpuStorage::F32(y), Shape::from((s.batch, s.t, s.di))))
    }

    fn bwd(
        &self,
        ud: &Tensor,
        bc: &Tensor,
        a: &Tensor,
        _y: &Tensor,
        gy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let s = dims(ud.shape(), bc.shape(), a.shape())?;
        let Dims { batch, t, di, n } = s;
        let vec = |x: &Tensor| x.contiguous()?.flatten_all()?.to_vec1::<f32>();
        let (udv, bcv, av, gyv) = (vec(ud)?, vec(bc)?, vec(a)?, vec(gy)?);
        // Each batch row gives its own (g_ud, g_bc, g_a); g_a is summed after.
        let rows: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = (0..batch)
            .into_par_iter()
            .map(|i| {
                let (ud, bc) = (&udv[i * t * 2 * di..(i + 1) * t * 2 * di], &bcv[i * t * 2 * n..(i + 1) * t * 2 * n]);
                let gy = &gyv[i * t * di..(i + 1) * t * di];
                let (mut hs, mut decays) = (vec![0f32; t * di * n], vec![0f32; t * di * n]);
                with_avx2(|| forward_row(s, ud, bc, &av, &mut vec![0f32; t * di], Some((&mut hs, &mut decays))));
                with_avx2(|| backward_row(s, ud, bc, &av, gy, &hs, &decays))
            })
            .collect();
        let mut g_a = vec![0f32; di * n];
        let (mut g_ud, mut g_bc) = (Vec::with_capacity(udv.len()), Vec::with_capacity(bcv.len()));
        for (u, b, ga) in rows {
            g_ud.extend(u);
            g_bc.extend(b);
            g_a.iter_mut().zip(ga).for_each(|(x, y)| *x += y);
        }
        let dev = ud.device();
        Ok((
            Some(Tensor::from_vec(g_ud, ud.shape(), dev)?),
            Some(Tensor::from_vec(g_bc, bc.shape(), dev)?),
            Some(Tensor::from_vec(g_a, a.shape(), dev)?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The same scan as plain candle ops, unrolled over time, for autograd to differentiate.
    fn unrolled(u: &Tensor, dt: &Tensor, b: &Tensor, c: &Tensor, a: &Tensor) -> Result<Tensor> {
        let (bs, t, di) = u.dims3()?;
        let n = a.dim(1)?;
        let mut h = Tensor::zeros((bs, di, n), u.dtype(), u.device())?;
        let mut ys = vec![];
        for s in 0..t {
            let (u_s, dt_s) = (u.narrow(1, s, 1)?.squeeze(1)?, dt.narrow(1, s, 1)?.squeeze(1)?); // (bs, di)
            let (b_s, c_s) = (b.narrow(1, s, 1)?, c.narrow(1, s, 1)?); // (bs, 1, n)
            let decay = dt_s.unsqueeze(2)?.broadcast_mul(a)?.exp()?; // (bs, di, n)
            h = ((decay * h)? + (dt_s * u_s)?.unsqueeze(2)?.broadcast_mul(&b_s)?)?;
            ys.push(h.broadcast_mul(&c_s)?.sum(2)?.unsqueeze(1)?); // (bs, 1, di)
        }
        Tensor::cat(&ys, 1)
    }

    #[test]
    fn fast_exp_is_close_to_exp() {
        for i in -2000..=880 {
            let x = i as f32 * 0.1;
            let (ours, libm) = (fast_exp(x), x.exp());
            assert!((ours - libm).abs() <= 4e-7 * libm + 1e-37, "exp({x}): {ours} vs {libm}");
        }
        assert!(fast_exp(-1e9) < 1e-37 && fast_exp(1e9).is_finite());
    }

    #[test]
    fn matches_unrolled_ops_forward_and_backward() -> crate::error::Result<()> {
        let dev = Device::Cpu;
        let (bs, t, di, n) = (2, 5, 3, 4);
        let var = |t: Tensor| Var::from_tensor(&t);
        let u = var(Tensor::randn(0f32, 1.0, (bs, t, di), &dev)?)?;
        let dt = var(Tensor::rand(0.01f32, 0.5, (bs, t, di), &dev)?)?;
        let b = var(Tensor::randn(0f32, 1.0, (bs, t, n), &dev)?)?;
        let c = var(Tensor::randn(0f32, 1.0, (bs, t, n), &dev)?)?;
        let a = var(Tensor::rand(-2f32, -0.1, (di, n), &dev)?)?;
        let w = Tensor::randn(0f32, 1.0, (bs, t, di), &dev)?; // a random loss direction
        let args = [&u, &dt, &b, &c, &a].map(|v| v.as_tensor());
        let ours = selective_scan(args[0], args[1], args[2], args[3], args[4])?;
        let reference = unrolled(args[0], args[1], args[2], args[3], args[4])?;
        let diff = |x: &Tensor, y: &Tensor| -> Result<f32> { (x - y)?.abs()?.max_all()?.to_scalar::<f32>() };
        assert!(diff(&ours, &reference)? < 1e-5);
        let g1 = (ours * &w)?.sum_all()?.backward()?;
        let g2 = (reference * &w)?.sum_all()?.backward()?;
        for (name, v) in ["u", "dt", "B", "C", "A"].iter().zip(args) {
            let (Some(x), Some(y)) = (g1.get(v), g2.get(v)) else {
                return Err(crate::error::Error::Usage(format!("no gradient for {name}")));
            };
            assert!(diff(x, y)? < 1e-4, "gradient of {name} differs by {}", diff(x, y)?);
        }
        Ok(())
    }
}

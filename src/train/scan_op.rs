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

/// h for every (t, d, n) of one batch row, written to `hs` (t·di·n), and y (t·di).
fn forward_row(s: Dims, ud: &[f32], bc: &[f32], a: &[f32], hs: &mut [f32], y: &mut [f32]) {
    let Dims { t, di, n, .. } = s;
    for d in 0..di {
        let mut h = vec![0f32; n];
        for step in 0..t {
            let (u, dt) = (ud[step * 2 * di + d], ud[step * 2 * di + di + d]);
            let (bs, cs) = bc[step * 2 * n..(step + 1) * 2 * n].split_at(n);
            let mut acc = 0f32;
            for k in 0..n {
                h[k] = (dt * a[d * n + k]).exp() * h[k] + dt * u * bs[k];
                acc += cs[k] * h[k];
            }
            hs[(step * di + d) * n..(step * di + d + 1) * n].copy_from_slice(&h);
            y[step * di + d] = acc;
        }
    }
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
            let mut hs = vec![0f32; s.t * s.di * s.n];
            let (ud, bc) =
                (&ud[i * s.t * 2 * s.di..(i + 1) * s.t * 2 * s.di], &bc[i * s.t * 2 * s.n..(i + 1) * s.t * 2 * s.n]);
            forward_row(s, ud, bc, a, &mut hs, y);
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
                let mut hs = vec![0f32; t * di * n];
                let mut y = vec![0f32; t * di];
                forward_row(s, ud, bc, &av, &mut hs, &mut y);
                let (mut g_ud, mut g_bc, mut g_a) = (vec![0f32; t * 2 * di], vec![0f32; t * 2 * n], vec![0f32; di * n]);
                for d in 0..di {
                    let mut gh = vec![0f32; n]; // carries a_(t+1)·gh_(t+1) backwards
                    for step in (0..t).rev() {
                        let (u, dt) = (ud[step * 2 * di + d], ud[step * 2 * di + di + d]);
                        let g = gy[step * di + d];
                        let h = &hs[(step * di + d) * n..(step * di + d + 1) * n];
                        let (bs, cs) = bc[step * 2 * n..(step + 1) * 2 * n].split_at(n);
                        let (mut gu, mut gdt) = (0f32, 0f32);
                        for k in 0..n {
                            let ghk = g * cs[k] + gh[k];
                            g_bc[step * 2 * n + n + k] += g * h[k]; // ∂C
                            g_bc[step * 2 * n + k] += ghk * dt * u; // ∂B
                            gu += ghk * dt * bs[k];
                            let ak = (dt * av[d * n + k]).exp();
                            let prev = if step > 0 { hs[((step - 1) * di + d) * n + k] } else { 0.0 };
                            let ga = ghk * prev * ak; // ∂(Δ·A) through a = exp(Δ·A)
                            gdt += ghk * u * bs[k] + ga * av[d * n + k];
                            g_a[d * n + k] += ga * dt;
                            gh[k] = ghk * ak;
                        }
                        g_ud[step * 2 * di + d] = gu;
                        g_ud[step * 2 * di + di + d] = gdt;
                    }
                }
                (g_ud, g_bc, g_a)
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

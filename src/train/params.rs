//! Trainable tensors under their Hugging Face names, initialised from a
//! seed (candle's own CPU `randn` can't be seeded), saved as safetensors.

use crate::error::{Error, Result};
use crate::sample::SplitMix64;
use candle_core::{Device, Tensor, Var};
use std::collections::HashMap;
use std::path::Path;

pub struct Params {
    vars: Vec<(String, Var)>,
    rng: SplitMix64,
    device: Device,
}

impl Params {
    pub fn new(seed: u64, device: &Device) -> Self {
        Self { vars: vec![], rng: SplitMix64(seed), device: device.clone() }
    }

    /// Normal(0, std²) values.
    pub fn normal(&mut self, name: &str, shape: &[usize], std: f64) -> Result<Tensor> {
        let n = shape.iter().product();
        let values = (0..n).map(|_| (self.gaussian() * std) as f32).collect();
        self.add(name, shape, values)
    }

    /// Uniform values in [lo, hi).
    pub fn uniform(&mut self, name: &str, shape: &[usize], lo: f64, hi: f64) -> Result<Tensor> {
        let n = shape.iter().product();
        let values = (0..n).map(|_| (lo + (hi - lo) * self.rng.next_f64()) as f32).collect();
        self.add(name, shape, values)
    }

    /// Given values, row-major.
    pub fn add(&mut self, name: &str, shape: &[usize], values: Vec<f32>) -> Result<Tensor> {
        let var = Var::from_tensor(&Tensor::from_vec(values, shape, &self.device)?)?;
        let t = var.as_tensor().clone();
        self.vars.push((name.to_string(), var));
        Ok(t)
    }

    pub fn next_f64(&mut self) -> f64 {
        self.rng.next_f64()
    }

    /// Box–Muller.
    fn gaussian(&mut self) -> f64 {
        let u1 = self.rng.next_f64().max(f64::MIN_POSITIVE);
        let u2 = self.rng.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    pub fn vars(&self) -> Vec<Var> {
        self.vars.iter().map(|(_, v)| v.clone()).collect()
    }

    pub fn count(&self) -> usize {
        self.vars.iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// Write model.safetensors through a temporary file and a rename, so an
    /// interrupted save never leaves a broken checkpoint behind.
    pub fn save(&self, path: &Path) -> Result<()> {
        let map: HashMap<String, Tensor> = self.vars.iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect();
        let tmp = path.with_extension("safetensors.partial");
        candle_core::safetensors::save(&map, &tmp)?;
        std::fs::rename(&tmp, path).map_err(|e| Error::bad_file(path, format!("cannot write ({e})")))
    }
}

//! Mamba CPU speed at the mamba-130m shape (d_model 768, 24 layers, d_state 16,
//! expand 2, vocab 50280), random f32 weights built in memory:
//! decode tokens/s and a 64-token prefill against 64 single-token steps.
//! Matrices are f32 rows (what safetensors gives), or quantized to Q8_0 /
//! Q4_1 rows (what a GGUF gives) to see the cost beyond streaming weights.
//!
//!     cargo run --release --example mamba_speed [-- DECODE_TOKENS [f32|q8_0|q4_1]]

use attnviz::model::gemv::GemvWeights;
use attnviz::model::mamba::{Mamba, MambaConfig};
use attnviz::model::weights::Weights;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

struct Rng(u64);
impl Rng {
    fn vec(&mut self, len: usize, scale: f32) -> Vec<f32> {
        (0..len)
            .map(|_| {
                self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }
}

fn main() -> anyhow::Result<()> {
    let decode: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(64);
    let kind = std::env::args().nth(2).unwrap_or_else(|| "f32".into());
    let quant = match kind.as_str() {
        "f32" => None,
        "q8_0" => Some(GgmlDType::Q8_0),
        "q4_1" => Some(GgmlDType::Q4_1),
        other => anyhow::bail!("unknown weight kind {other:?} (f32, q8_0, q4_1)"),
    };
    let cfg = MambaConfig::from_json(&serde_json::json!({"model_type": "mamba", "hidden_size": 768,
        "num_hidden_layers": 24, "vocab_size": 50280, "state_size": 16, "conv_kernel": 4, "expand": 2}))?;
    let (dm, di, n, k, r, v) = (cfg.d_model, cfg.d_inner, cfg.d_state, cfg.d_conv, cfg.dt_rank, cfg.vocab_size);
    let t0 = Instant::now();
    let mut rng = Rng(1);
    let mut rows = HashMap::new();
    let mut map = HashMap::new();
    let mut mat = |name: String, r: usize, c: usize, rng: &mut Rng| -> anyhow::Result<()> {
        let data = rng.vec(r * c, 1.0 / (c as f32).sqrt());
        let w = match quant {
            // dt_proj's 48 columns are not a whole number of 32-value blocks.
            Some(q) if c.is_multiple_of(32) => {
                let qt = QTensor::quantize(&Tensor::from_vec(data, (r, c), &Device::Cpu)?, q)?;
                GemvWeights::from_ggml(q, r, c, &qt.data()?).ok_or_else(|| anyhow::anyhow!("{name}: bad blocks"))?
            }
            _ => GemvWeights::F32 { rows: r, cols: c, data },
        };
        rows.insert(name, w);
        Ok(())
    };
    mat("backbone.embeddings.weight".into(), v, dm, &mut rng)?;
    let mut vector = |name: String, shape: &[usize], data: Vec<f32>| -> anyhow::Result<()> {
        map.insert(name, Tensor::from_vec(data, shape, &Device::Cpu)?);
        Ok(())
    };
    for l in 0..cfg.n_layer {
        let m = format!("backbone.layers.{l}.mixer");
        mat(format!("{m}.in_proj.weight"), 2 * di, dm, &mut rng)?;
        mat(format!("{m}.x_proj.weight"), r + 2 * n, di, &mut rng)?;
        mat(format!("{m}.dt_proj.weight"), di, r, &mut rng)?;
        mat(format!("{m}.out_proj.weight"), dm, di, &mut rng)?;
        vector(format!("backbone.layers.{l}.norm.weight"), &[dm], vec![1.0; dm])?;
        vector(format!("{m}.conv1d.weight"), &[di, 1, k], rng.vec(di * k, 0.5))?;
        vector(format!("{m}.conv1d.bias"), &[di], rng.vec(di, 0.1))?;
        vector(format!("{m}.dt_proj.bias"), &[di], rng.vec(di, 1.0).iter().map(|x| x - 4.0).collect())?;
        vector(format!("{m}.A_log"), &[di, n], (0..di * n).map(|i| ((i % n + 1) as f32).ln()).collect())?;
        vector(format!("{m}.D"), &[di], vec![1.0; di])?;
    }
    vector("backbone.norm_f.weight".into(), &[dm], vec![1.0; dm])?;
    let w = Weights::from_parts(map, rows, Path::new("random"), &Device::Cpu, DType::F32);
    let mut model = Mamba::load(cfg, &w)?;
    drop(w);
    println!(
        "built random mamba-130m ({kind} matrices) in {:.1}s; {} rayon threads",
        t0.elapsed().as_secs_f32(),
        rayon::current_num_threads()
    );

    let prompt: Vec<u32> = (0..64).map(|i| (i * 997 + 13) % 50_000).collect();
    model.forward(&prompt[..4], false)?; // warm up
    model.reset();

    let t = Instant::now();
    let mut next = model.forward(&prompt, false)?.logits;
    let prefill = t.elapsed().as_secs_f64();
    println!("prefill 64 tokens: {:.3}s ({:.1} tokens/s)", prefill, 64.0 / prefill);

    let t = Instant::now();
    for _ in 0..decode {
        let id = next.iter().enumerate().fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0;
        next = model.forward(&[id as u32], false)?.logits;
    }
    let dec = t.elapsed().as_secs_f64();
    println!(
        "decode {decode} tokens: {:.3}s ({:.1} tokens/s, {:.1} ms/token)",
        dec,
        decode as f64 / dec,
        dec * 1e3 / decode as f64
    );

    model.reset();
    let t = Instant::now();
    for &id in &prompt {
        model.forward(&[id], false)?;
    }
    let steps = t.elapsed().as_secs_f64();
    println!("64 single-token steps: {:.3}s (prefill / steps = {:.2})", steps, prefill / steps);

    model.reset();
    let t = Instant::now();
    model.forward(&prompt, true)?;
    println!("prefill 64 tokens with capture: {:.3}s", t.elapsed().as_secs_f64());
    Ok(())
}

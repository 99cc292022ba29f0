use super::scan::{conv_silu, selective_scan, silu, softplus, Dims};
use super::*;
use std::collections::HashMap;
use std::path::Path;

/// Deterministic values in [-scale, scale).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, scale: f32) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    }
    fn vec(&mut self, len: usize, scale: f32) -> Vec<f32> {
        (0..len).map(|_| self.next(scale)).collect()
    }
}

fn tiny_config(naming: Naming) -> MambaConfig {
    let j = match naming {
        Naming::Hf => serde_json::json!({"model_type": "mamba", "hidden_size": 16, "num_hidden_layers": 2,
            "vocab_size": 11, "state_size": 4, "conv_kernel": 3, "expand": 2, "time_step_rank": "auto",
            "tie_word_embeddings": false}),
        Naming::StateSpaces => serde_json::json!({"d_model": 16, "n_layer": 2, "vocab_size": 11,
            "pad_vocab_size_multiple": 1, "tie_embeddings": false,
            "ssm_cfg": {"d_state": 4, "d_conv": 3, "expand": 2}}),
    };
    MambaConfig::from_json(&j).unwrap()
}

/// How a tiny tensor is filled.
#[derive(Clone, Copy)]
enum Fill {
    Uniform(f32),
    /// Near 1: RMSNorm weights.
    One,
    /// Near log(1..=n): A_log rows.
    ALog,
}

/// Random weights under `cfg`'s names, minus `skip`; `reshape` overrides one shape.
fn tiny_weights(cfg: &MambaConfig, skip: &str, reshape: Option<(&str, Vec<usize>)>) -> Weights {
    let (dm, di, n, k, r, v) = (cfg.d_model, cfg.d_inner, cfg.d_state, cfg.d_conv, cfg.dt_rank, cfg.vocab_size);
    let mut rng = Lcg(7);
    let mut shapes: Vec<(String, Vec<usize>, Fill)> = vec![];
    let embed = if cfg.naming == Naming::Hf { "backbone.embeddings.weight" } else { "backbone.embedding.weight" };
    shapes.push((embed.into(), vec![v, dm], Fill::Uniform(1.0)));
    for l in 0..cfg.n_layer {
        let m = format!("backbone.layers.{l}.mixer");
        shapes.push((format!("backbone.layers.{l}.norm.weight"), vec![dm], Fill::One));
        shapes.push((format!("{m}.in_proj.weight"), vec![2 * di, dm], Fill::Uniform(0.4)));
        shapes.push((format!("{m}.conv1d.weight"), vec![di, 1, k], Fill::Uniform(0.5)));
        shapes.push((format!("{m}.conv1d.bias"), vec![di], Fill::Uniform(0.2)));
        shapes.push((format!("{m}.x_proj.weight"), vec![r + 2 * n, di], Fill::Uniform(0.4)));
        shapes.push((format!("{m}.dt_proj.weight"), vec![di, r], Fill::Uniform(0.5)));
        shapes.push((format!("{m}.dt_proj.bias"), vec![di], Fill::Uniform(0.5)));
        shapes.push((format!("{m}.A_log"), vec![di, n], Fill::ALog));
        shapes.push((format!("{m}.D"), vec![di], Fill::Uniform(1.0)));
        shapes.push((format!("{m}.out_proj.weight"), vec![dm, di], Fill::Uniform(0.3)));
    }
    shapes.push(("backbone.norm_f.weight".into(), vec![dm], Fill::One));
    shapes.push(("lm_head.weight".into(), vec![v, dm], Fill::Uniform(0.5)));
    let mut map = HashMap::new();
    for (name, shape, fill) in shapes {
        let len = shape.iter().product();
        let data = match fill {
            Fill::One => rng.vec(len, 0.2).into_iter().map(|x| 1.0 + x).collect(),
            Fill::ALog => (0..len).map(|i| ((i % n + 1) as f32).ln() + rng.next(0.1)).collect(),
            Fill::Uniform(s) => rng.vec(len, s),
        };
        let shape = match &reshape {
            Some((which, s)) if *which == name => s.clone(),
            _ => shape,
        };
        if name != skip {
            map.insert(name, Tensor::from_vec(data, shape, &Device::Cpu).unwrap());
        }
    }
    Weights::from_parts(map, HashMap::new(), Path::new("tiny.safetensors"), &Device::Cpu, DType::F32)
}

fn tiny(naming: Naming) -> Mamba {
    let cfg = tiny_config(naming);
    let w = tiny_weights(&cfg, "", None);
    Mamba::load(cfg, &w).unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn conv_window_is_zero_padded_on_the_left() {
    // One channel, kernel 4: after two inputs the window is [0, 0, x0, x1].
    let (w, b) = ([0.5, -1.0, 2.0, 3.0], [0.25]);
    let mut win = vec![0.0; 4];
    let mut out = vec![0.0; 2];
    conv_silu(4, &mut win, &[1.0, 2.0], &w, Some(&b), &mut out);
    assert_eq!(win, [0.0, 0.0, 1.0, 2.0]);
    // pos 0: 3·1 + 0.25; pos 1: 2·1 + 3·2 + 0.25.
    assert_eq!(out, [silu(3.25), silu(8.25)]);
    // A third input slides the window; the oldest zero drops out.
    let mut out1 = vec![0.0];
    conv_silu(4, &mut win, &[4.0], &w, Some(&b), &mut out1);
    assert_eq!(win, [0.0, 1.0, 2.0, 4.0]);
    assert_eq!(out1[0], silu(-1.0 + 4.0 + 12.0 + 0.25));
}

#[test]
fn conv_channels_are_independent_and_rows_are_positions() {
    // Two channels, kernel 2, two positions: xs is (t, d_inner).
    let w = [1.0, 2.0, 10.0, 20.0];
    let mut win = vec![0.0; 4];
    let mut out = vec![0.0; 4];
    conv_silu(2, &mut win, &[1.0, 3.0, 2.0, 4.0], &w, None, &mut out);
    assert_eq!(win, [1.0, 2.0, 3.0, 4.0]);
    assert_eq!(out, [silu(2.0), silu(60.0), silu(5.0), silu(110.0)]);
}

#[test]
fn scan_step_by_hand() {
    // d_inner 1, d_state 2, two positions, from h = [1, -1].
    let a = [-1.0f32, -0.5];
    let (b, c) = ([1.0f32, 2.0, 0.5, -1.0], [1.0f32, 1.0, 2.0, 0.0]);
    let (u, dt, d) = ([2.0f32, -1.0], [0.5f32, 0.25], [0.5f32]);
    let mut h = vec![1.0f32, -1.0];
    let mut y = vec![0.0f32; 2];
    selective_scan(Dims { t: 2, d_inner: 1, d_state: 2 }, &mut h, &a, &u, &dt, &b, &c, &d, &mut y);
    // pos 0: h = exp(A·0.5)·h + 0.5·B·2
    let h0 = [(-0.5f32).exp() + 1.0, -(-0.25f32).exp() + 2.0];
    let y0 = h0[0] + h0[1] + 0.5 * 2.0;
    // pos 1: h = exp(A·0.25)·h + 0.25·B·(−1)
    let h1 = [(-0.25f32).exp() * h0[0] - 0.125, (-0.125f32).exp() * h0[1] + 0.25];
    let y1 = 2.0 * h1[0] - 0.5; // + D·u = 0.5·(−1)
    assert!(max_diff(&h, &h1) < 1e-6, "{h:?} vs {h1:?}");
    assert!(max_diff(&y, &[y0, y1]) < 1e-6, "{y:?}");
}

#[test]
fn softplus_matches_torch_threshold() {
    assert_eq!(softplus(25.0), 25.0);
    assert!((softplus(0.0) - std::f32::consts::LN_2).abs() < 1e-7);
    assert!((softplus(-3.0) - (1.0 + (-3.0f32).exp()).ln()).abs() < 1e-7);
}

#[test]
fn prefill_equals_token_by_token() {
    let ids = [1u32, 5, 3, 9, 0, 2, 7];
    let mut a = tiny(Naming::Hf);
    let fa = a.forward(&ids, true).unwrap();
    let mut b = tiny(Naming::Hf);
    let mut dt: Vec<Vec<f32>> = vec![vec![]; 2];
    let mut fb = None;
    for id in ids {
        let f = b.forward(&[id], true).unwrap();
        dt.iter_mut().zip(&f.layers).for_each(|(d, l)| d.extend_from_slice(&l.dt));
        fb = Some(f);
    }
    let fb = fb.unwrap();
    assert_eq!((a.position(), b.position()), (7, 7));
    assert!(max_diff(&fa.logits, &fb.logits) < 1e-5);
    for (l, (x, y)) in fa.layers.iter().zip(&fb.layers).enumerate() {
        assert!(max_diff(&x.ssm, &y.ssm) < 1e-5, "layer {l} ssm");
        // Batched and one-row products sum in different orders.
        assert!(max_diff(&x.conv, &y.conv) < 1e-5, "layer {l} conv");
        assert!(max_diff(&x.dt, &dt[l]) < 1e-5, "layer {l} dt");
        assert_eq!(x.dt.len(), 7 * 32);
    }
}

#[test]
fn long_prompts_go_through_in_chunks_unchanged() {
    let ids: Vec<u32> = (0..PREFILL_CHUNK as u32 + 40).map(|i| (i * 7 + 3) % 11).collect();
    let mut a = tiny(Naming::Hf);
    let fa = a.forward(&ids, true).unwrap();
    let mut b = tiny(Naming::Hf);
    b.forward(&ids[..100], false).unwrap();
    let fb = b.forward(&ids[100..], true).unwrap();
    assert!(max_diff(&fa.logits, &fb.logits) < 1e-5);
    assert!(max_diff(&fa.layers[1].ssm, &fb.layers[1].ssm) < 1e-5);
    assert_eq!(fa.layers[0].dt.len(), ids.len() * 32);
    assert_eq!(fb.layers[0].dt.len(), (ids.len() - 100) * 32);
}

#[test]
fn conv_capture_is_zero_padded_then_slides() {
    let mut m = tiny(Naming::Hf);
    let f = m.forward(&[4], true).unwrap();
    let conv = &f.layers[0].conv; // (32, 3)
    assert_eq!(conv.len(), 32 * 3);
    assert!(conv.chunks(3).all(|r| r[0] == 0.0 && r[1] == 0.0));
    assert!(conv.chunks(3).any(|r| r[2] != 0.0));
    let newest: Vec<f32> = conv.chunks(3).map(|r| r[2]).collect();
    let f = m.forward(&[6], true).unwrap();
    let conv = &f.layers[0].conv;
    assert!(conv.chunks(3).zip(&newest).all(|(r, n)| r[0] == 0.0 && r[1] == *n));
    assert!(f.layers.iter().all(|l| l.ssm.len() == 32 * 4 && l.dt.len() == 32));
}

#[test]
fn reset_gives_the_same_logits_again() {
    let mut m = tiny(Naming::Hf);
    let first = m.forward(&[1, 2, 3], false).unwrap().logits;
    m.forward(&[4], false).unwrap();
    m.reset();
    assert_eq!(m.position(), 0);
    assert_eq!(m.forward(&[1, 2, 3], false).unwrap().logits, first);
    assert!(m.forward(&[1], false).unwrap().layers.is_empty());
}

#[test]
fn state_spaces_names_give_the_same_model() {
    let mut hf = tiny(Naming::Hf);
    let mut ss = tiny(Naming::StateSpaces);
    assert_eq!(ss.config().naming, Naming::StateSpaces);
    let (a, b) = (hf.forward(&[3, 1, 4, 1, 5], false).unwrap(), ss.forward(&[3, 1, 4, 1, 5], false).unwrap());
    assert_eq!(a.logits, b.logits);
    assert_eq!(a.logits.len(), 11);
}

#[test]
fn tied_head_uses_the_embedding() {
    let mut cfg = tiny_config(Naming::Hf);
    let w = tiny_weights(&cfg, "lm_head.weight", None);
    let msg = Mamba::load(cfg.clone(), &w).err().unwrap().to_string();
    assert!(msg.contains("lm_head.weight is missing"), "{msg}");
    cfg.tie_embeddings = true;
    let mut m = Mamba::load(cfg, &w).unwrap();
    assert_eq!(m.forward(&[1], false).unwrap().logits.len(), 11);
}

#[test]
fn missing_tensor_is_named() {
    let cfg = tiny_config(Naming::Hf);
    let w = tiny_weights(&cfg, "backbone.layers.1.mixer.A_log", None);
    let msg = Mamba::load(cfg, &w).err().unwrap().to_string();
    assert_eq!(msg, "weights: tensor backbone.layers.1.mixer.A_log is missing from tiny.safetensors");
}

#[test]
fn wrong_shape_is_named() {
    let cfg = tiny_config(Naming::Hf);
    let name = "backbone.layers.0.mixer.x_proj.weight";
    let w = tiny_weights(&cfg, "", Some((name, vec![12, 24])));
    let msg = Mamba::load(cfg, &w).err().unwrap().to_string();
    assert_eq!(msg, format!("weights: {name} in tiny.safetensors has shape [12, 24] but the config implies [9, 32]"));
    assert!(!msg.contains('\n'));
}

#[test]
fn bad_ids_are_rejected() {
    let mut m = tiny(Naming::Hf);
    assert_eq!(m.forward(&[], false).err().unwrap().to_string(), "prompt: nothing to feed");
    let msg = m.forward(&[1, 11], false).err().unwrap().to_string();
    assert_eq!(msg, "prompt: token id 11 is outside the vocabulary of 11");
    assert_eq!(m.position(), 0);
}

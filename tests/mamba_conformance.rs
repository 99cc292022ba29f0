//! Mamba against transformers' `MambaForCausalLM` (see tests/fixtures/README.md):
//! prefill the reference prompt, then feed the greedy tokens one by one, and
//! compare logits, greedy choices, each layer's ssm and conv state after every
//! forward, and Δ of every fed position. The state-spaces copy of the same
//! weights must give identical logits. Bad configs and weights fail in one line.

mod common;
use attnviz::model::mamba::{Mamba, MambaConfig, Naming};
use attnviz::model::weights::Weights;
use candle_core::{DType, Device};
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

const LOGITS_TOL: f32 = 1e-3;
const STATE_TOL: f32 = 1e-4;

fn case_dir(case: &str) -> PathBuf {
    fixtures().join(case)
}

fn config_json(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn weights(dir: &Path) -> Weights {
    Weights::from_safetensors(&[dir.join("model.safetensors")], &Device::Cpu, DType::F32).unwrap()
}

fn load_with(dir: &Path, j: &Value) -> attnviz::Result<Mamba> {
    Mamba::load(MambaConfig::from_json(j)?, &weights(dir))
}

fn load(case: &str) -> Mamba {
    let dir = case_dir(case);
    load_with(&dir, &config_json(&dir)).unwrap()
}

#[derive(Default, Debug)]
struct Worst {
    logits: f32,
    ssm: f32,
    conv: f32,
    dt: f32,
}

fn check_ref(k: usize) -> Worst {
    let r = StFile::read(&case_dir("mamba").join(format!("ref_{k}.safetensors")));
    let tokens: Vec<u32> = r.i64("tokens").1.iter().map(|&t| t as u32).collect();
    let (t, n) = (r.meta_usize("prompt_len"), r.meta_usize("max_new_tokens"));
    assert_eq!(tokens.len(), t + n);
    let mut m = load("mamba");
    let (di, ds, dc) = (m.config().d_inner, m.config().d_state, m.config().d_conv);
    let mut worst = Worst::default();
    let mut dt_pos = 0;
    for s in 0..n {
        // Step 0 is the prefill of the prompt; step s feeds generated token s − 1.
        let fed = if s == 0 { &tokens[..t] } else { &tokens[t + s - 1..t + s] };
        let f = m.forward(fed, true).unwrap();
        assert_eq!(m.position(), t + s);
        let (_, want) = r.step_row("logits", s);
        worst.logits = worst.logits.max(max_abs_diff(&f.logits, want));
        assert!(worst.logits < LOGITS_TOL, "ref_{k} step {s}: logits differ by {}", worst.logits);
        assert_eq!(argmax(&f.logits), tokens[t + s] as usize, "ref_{k} step {s}: greedy token");
        assert_eq!(f.layers.len(), m.config().n_layer);
        for (l, cap) in f.layers.iter().enumerate() {
            let (shape, ssm) = r.step_row(&format!("ssm.L{l}"), s);
            assert_eq!(shape, [di, ds]);
            worst.ssm = worst.ssm.max(max_abs_diff(&cap.ssm, ssm));
            let (shape, conv) = r.step_row(&format!("conv.L{l}"), s);
            assert_eq!(shape, [di, dc]);
            worst.conv = worst.conv.max(max_abs_diff(&cap.conv, conv));
            let (shape, dt) = r.f32(&format!("dt.L{l}"));
            assert_eq!(shape, &[t + n - 1, di]);
            worst.dt = worst.dt.max(max_abs_diff(&cap.dt, &dt[dt_pos * di..(dt_pos + fed.len()) * di]));
            assert!(
                worst.ssm < STATE_TOL && worst.conv < STATE_TOL && worst.dt < STATE_TOL,
                "ref_{k} step {s} layer {l}: {worst:?}"
            );
        }
        dt_pos += fed.len();
    }
    eprintln!("mamba ref_{k} (T = {t}, N = {n}): max |diff| {worst:?}");
    worst
}

#[test]
fn ref_0_matches_transformers() {
    check_ref(0);
}

#[test]
fn ref_1_matches_transformers() {
    check_ref(1);
}

#[test]
fn state_spaces_naming_gives_identical_logits() {
    let r = StFile::read(&case_dir("mamba").join("ref_1.safetensors"));
    let tokens: Vec<u32> = r.i64("tokens").1.iter().map(|&t| t as u32).collect();
    let (mut hf, mut ss) = (load("mamba"), load("mamba_ss"));
    assert_eq!((hf.config().naming, ss.config().naming), (Naming::Hf, Naming::StateSpaces));
    assert_eq!(hf.config().vocab_size, ss.config().vocab_size);
    let t = r.meta_usize("prompt_len");
    assert_eq!(hf.forward(&tokens[..t], false).unwrap().logits, ss.forward(&tokens[..t], false).unwrap().logits);
    for &id in &tokens[t..] {
        assert_eq!(hf.forward(&[id], false).unwrap().logits, ss.forward(&[id], false).unwrap().logits);
    }
}

fn one_line_error(case: &str, edit: impl FnOnce(&mut Value)) -> String {
    let dir = case_dir(case);
    let mut j = config_json(&dir);
    edit(&mut j);
    let msg = load_with(&dir, &j).err().expect("loading should fail").to_string();
    assert!(!msg.contains('\n'), "{msg}");
    msg
}

#[test]
fn config_missing_a_required_key() {
    let msg = one_line_error("mamba", |j| {
        j.as_object_mut().unwrap().remove("hidden_size");
    });
    assert_eq!(msg, "config hidden_size: missing");
    let msg = one_line_error("mamba_ss", |j| {
        j.as_object_mut().unwrap().remove("n_layer");
    });
    assert_eq!(msg, "config n_layer: missing");
}

#[test]
fn missing_tensor_is_named() {
    // One layer more than the checkpoint holds.
    let msg =
        one_line_error("mamba", |j| j["num_hidden_layers"] = Value::from(j["num_hidden_layers"].as_u64().unwrap() + 1));
    assert!(msg.starts_with("weights: tensor backbone.layers.2.") && msg.contains("is missing from"), "{msg}");
    assert!(msg.contains("model.safetensors"), "{msg}");
}

#[test]
fn wrong_shape_is_named() {
    // A larger state: A_log is the first tensor loaded whose shape depends on it.
    let msg = one_line_error("mamba", |j| j["state_size"] = Value::from(j["state_size"].as_u64().unwrap() + 1));
    assert!(msg.starts_with("weights: backbone.layers.0.mixer.A_log in "), "{msg}");
    assert!(msg.contains("has shape") && msg.contains("but the config implies"), "{msg}");
}

//! Mamba-2 against transformers' `Mamba2ForCausalLM` (see tests/fixtures/README.md):
//! prefill the reference prompt (longer than `chunk_size`, so transformers used
//! its chunked SSD), then feed the greedy tokens one by one, and compare logits,
//! greedy choices, each layer's SSM and conv state after every forward, and Δ of
//! every fed position. `attnviz capture` on the fixture folder writes the same
//! numbers into the trace file. Bad configs and weights fail in one line.

mod common;
use attnviz::model::mamba2::{Mamba2, Mamba2Config};
use attnviz::model::weights::Weights;
use attnviz::trace::TraceFile;
use candle_core::{DType, Device};
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

const LOGITS_TOL: f32 = 1e-3;
const STATE_TOL: f32 = 1e-4;

fn dir() -> PathBuf {
    fixtures().join("mamba2")
}

fn config_json(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap()
}

fn load_with(j: &Value) -> attnviz::Result<Mamba2> {
    let w = Weights::from_safetensors(&[dir().join("model.safetensors")], &Device::Cpu, DType::F32)?;
    Mamba2::load(Mamba2Config::from_json(j)?, &w)
}

#[derive(Default, Debug)]
struct Worst {
    logits: f32,
    ssm: f32,
    conv: f32,
    dt: f32,
}

fn check_ref(k: usize) -> Worst {
    let r = StFile::read(&dir().join(format!("ref_{k}.safetensors")));
    let tokens: Vec<u32> = r.i64("tokens").1.iter().map(|&t| t as u32).collect();
    let (t, n) = (r.meta_usize("prompt_len"), r.meta_usize("max_new_tokens"));
    let mut m = load_with(&config_json(&dir())).unwrap();
    let c = m.config().clone();
    let mut worst = Worst::default();
    let mut dt_pos = 0;
    for s in 0..n {
        let fed = if s == 0 { &tokens[..t] } else { &tokens[t + s - 1..t + s] };
        let f = m.forward(fed, true).unwrap();
        assert_eq!(m.position(), t + s);
        let (_, want) = r.step_row("logits", s);
        worst.logits = worst.logits.max(max_abs_diff(&f.logits, want));
        assert!(worst.logits < LOGITS_TOL, "ref_{k} step {s}: logits differ by {}", worst.logits);
        assert_eq!(argmax(&f.logits), tokens[t + s] as usize, "ref_{k} step {s}: greedy token");
        for (l, cap) in f.layers.iter().enumerate() {
            let (shape, ssm) = r.step_row(&format!("ssm.L{l}"), s);
            assert_eq!(shape, [c.heads, c.head_dim, c.d_state]);
            worst.ssm = worst.ssm.max(max_abs_diff(&cap.ssm, ssm));
            let (shape, conv) = r.step_row(&format!("conv.L{l}"), s);
            assert_eq!(shape, [c.conv_dim(), c.d_conv]);
            worst.conv = worst.conv.max(max_abs_diff(&cap.conv, conv));
            let (shape, dt) = r.f32(&format!("dt.L{l}"));
            assert_eq!(shape, &[t + n - 1, c.heads]);
            worst.dt = worst.dt.max(max_abs_diff(&cap.dt, &dt[dt_pos * c.heads..(dt_pos + fed.len()) * c.heads]));
            assert!(
                worst.ssm < STATE_TOL && worst.conv < STATE_TOL && worst.dt < STATE_TOL,
                "ref_{k} step {s} layer {l}: {worst:?}"
            );
        }
        dt_pos += fed.len();
    }
    eprintln!("mamba2 ref_{k} (T = {t}, N = {n}, chunk_size {}): max |diff| {worst:?}", c.chunk_size);
    worst
}

#[test]
fn ref_0_matches_transformers() {
    check_ref(0);
}

#[test]
fn ref_1_matches_transformers() {
    let r = StFile::read(&dir().join("ref_1.safetensors"));
    let c = Mamba2Config::from_json(&config_json(&dir())).unwrap();
    assert!(r.meta_usize("prompt_len") > c.chunk_size, "the prompt must cross a chunk boundary");
    assert!(c.n_groups > 1 && c.heads > c.n_groups);
    check_ref(1);
}

#[test]
fn capture_writes_the_reference_states() {
    let r = StFile::read(&dir().join("ref_1.safetensors"));
    let want: Vec<i64> = r.i64("tokens").1.to_vec();
    let n = r.meta_usize("max_new_tokens");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m2.safetensors");
    let (model, n_arg) = (dir().to_str().unwrap().to_string(), n.to_string());
    let args = ["capture", "--model", &model, "--prompt", &r.meta["prompt"], "--max-new-tokens", &n_arg];
    let (code, _, err) =
        attnviz(&[&args[..], &["--greedy", "--ignore-eos", "--out", out.to_str().unwrap()]].concat(), &[]);
    assert_eq!(code, 0, "{err}");
    let st = StFile::read(&out);
    assert_eq!(st.i64("tokens").1, want.as_slice());
    let f = TraceFile::open(&out).unwrap();
    assert!(f.is_state_space() && f.attention_layers().is_empty());
    let meta: Value = serde_json::from_str(&st.meta["attnviz"]).unwrap();
    let m = &meta["model"];
    assert_eq!((m["family"].as_str(), m["arch"].as_str()), (Some("state-space"), Some("mamba2")));
    let (di, ds) = (m["d_inner"].as_u64().unwrap() as usize, m["d_state"].as_u64().unwrap() as usize);
    assert_eq!(f.state_steps(), (0..n).collect::<Vec<_>>());
    for l in 0..f.num_layers() {
        for s in 0..n {
            let ssm = f.ssm(l, s).unwrap();
            assert_eq!(ssm.len(), di * ds); // the UI reads h as d_inner × d_state
            assert!(max_abs_diff(&ssm, r.step_row(&format!("ssm.L{l}"), s).1) < STATE_TOL);
            assert!(max_abs_diff(&f.conv(l, s).unwrap(), r.step_row(&format!("conv.L{l}"), s).1) < STATE_TOL);
            assert!(max_abs_diff(&f.logits(s).unwrap(), r.step_row("logits", s).1) < LOGITS_TOL);
        }
        assert_eq!(st.f32(&format!("ssm.L{l}")).0, r.f32(&format!("ssm.L{l}")).0);
        assert_eq!(st.f32(&format!("conv.L{l}")).0, r.f32(&format!("conv.L{l}")).0);
        assert_eq!(st.f32(&format!("dt.L{l}")).0, r.f32(&format!("dt.L{l}")).0);
        assert!(max_abs_diff(&f.dt(l).unwrap(), &r.f32(&format!("dt.L{l}")).1) < STATE_TOL);
    }
}

fn one_line_error(edit: impl FnOnce(&mut Value)) -> String {
    let mut j = config_json(&dir());
    edit(&mut j);
    let msg = load_with(&j).err().expect("loading should fail").to_string();
    assert!(!msg.contains('\n'), "{msg}");
    msg
}

#[test]
fn bad_input_fails_in_one_line() {
    let msg = one_line_error(|j| drop(j.as_object_mut().unwrap().remove("hidden_size")));
    assert_eq!(msg, "config hidden_size: missing");
    let msg = one_line_error(|j| j["num_hidden_layers"] = Value::from(3));
    assert!(msg.starts_with("weights: tensor backbone.layers.2.") && msg.contains("is missing from"), "{msg}");
    // More heads of a smaller size: in_proj is the first tensor whose shape changes.
    let msg = one_line_error(|j| {
        j["num_heads"] = Value::from(16);
        j["head_dim"] = Value::from(8);
    });
    assert!(msg.starts_with("weights: backbone.layers.0.mixer.in_proj.weight in "), "{msg}");
    assert!(msg.contains("has shape") && msg.contains("but the config implies"), "{msg}");
    let msg = one_line_error(|j| j["state_size"] = Value::from(9));
    assert!(msg.contains("has shape") && !msg.contains('\n'), "{msg}");
    let msg = one_line_error(|j| j["num_heads"] = Value::from(7));
    assert!(msg.starts_with("config num_heads: 7 × head_dim 16"), "{msg}");
}

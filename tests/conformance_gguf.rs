//! GGUF twins of the issue-10 families beyond Qwen3 and Gemma 3, written by
//! llama.cpp's own converter from the safetensors fixtures (see
//! tests/fixtures/README.md): `attnviz capture` on each must reproduce
//! transformers as its folder does. GPT-NeoX, Phi-3 and Mamba-2 files say
//! everything their folder says, so they meet the folder's own references;
//! Gemma 2's cannot carry `query_pre_attn_scalar` (llama.cpp scales by
//! 1/√head_dim), so its references are transformers' with that value. Broken
//! or foreign GGUF files fail in one line.

mod common;
use candle_core::quantized::gguf_file::{self, Content, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use common::*;
use std::path::{Path, PathBuf};

const LOGITS_TOL: f32 = 1e-3;
const ATTN_TOL: f32 = 1e-4;
const STATE_TOL: f32 = 1e-4;

/// The f32 GGUF llama.cpp's converter wrote from fixture `src`.
fn twin(src: &str) -> PathBuf {
    fixtures().join(format!("{src}_gguf")).join(format!("{src}-f32.gguf"))
}

/// `attnviz capture` of reference `k`'s prompt on `model`: (reference, trace).
fn capture(refs: &Path, model: &Path, k: usize, tmp: &Path) -> (StFile, StFile) {
    let reference = StFile::read(&refs.join(format!("ref_{k}.safetensors")));
    let n = reference.meta_usize("max_new_tokens").to_string();
    let out = tmp.join(format!("ref_{k}.safetensors"));
    let (model, out_s) = (model.to_str().unwrap(), out.to_str().unwrap());
    let args = ["capture", "--model", model, "--prompt", &reference.meta["prompt"], "--max-new-tokens", &n];
    let (code, _, err) = attnviz(&[&args[..], &["--greedy", "--ignore-eos", "--out", out_s]].concat(), &[]);
    assert_eq!(code, 0, "{model} ref_{k}: {err}");
    (reference, StFile::read(&out))
}

/// `model` (a GGUF) must reproduce the transformer references in `refs`; returns the worst (logits, attention).
fn check_transformer(refs: &Path, model: &Path) -> (f32, f32) {
    let tmp = tempfile::tempdir().unwrap();
    let mut worst = (0f32, 0f32);
    for k in 0..2 {
        let (reference, ours) = capture(refs, model, k, tmp.path());
        assert_eq!(ours.i64("tokens"), reference.i64("tokens"), "ref_{k}: tokens");
        assert_eq!(ours.i64("kv_len"), reference.i64("kv_len"), "ref_{k}: kv_len");
        let d = max_diff("logits", ours.f32("logits"), reference.f32("logits"));
        assert!(d < LOGITS_TOL, "ref_{k}: logits differ by {d}");
        worst.0 = worst.0.max(d);
        let layers = reference.f32s.keys().filter(|n| n.starts_with("attn.L")).count();
        assert!(layers > 0);
        for l in 0..layers {
            let name = format!("attn.L{l}");
            let d = max_diff(&name, ours.f32(&name), reference.f32(&name));
            assert!(d < ATTN_TOL, "ref_{k}: {name} differs by {d}");
            worst.1 = worst.1.max(d);
        }
    }
    eprintln!("{}: max |diff| logits {:e}, attention {:e}", model.display(), worst.0, worst.1);
    worst
}

/// Fused q/k/v regrouped per head, RoPE on 4 of 16 dimensions, parallel residual, untied `embed_out`.
#[test]
fn gpt_neox_gguf_matches_the_folders_references() {
    check_transformer(&fixtures().join("gpt_neox"), &twin("gpt_neox"));
}

/// Fused `qkv_proj` / `gate_up_proj`, LongRoPE from the factor tensors (switching mid-decode in ref_0), the
/// window of 7 on every layer as the file says.
#[test]
fn phi3_gguf_matches_the_folders_references() {
    check_transformer(&fixtures().join("phi3"), &twin("phi3"));
}

/// Soft-caps from the metadata, norms stored as 1 + w, alternating window; scores by 1/√head_dim.
#[test]
fn gemma2_gguf_matches_transformers_on_the_same_weights() {
    check_transformer(&fixtures().join("gemma2_gguf"), &twin("gemma2"));
}

/// A stored as −exp(A_log), D and the grouped gated norm reshaped, `dt_bias` as `ssm_dt.bias`: tokens,
/// logits, and every layer's SSM, conv and Δ after every forward equal the folder's references.
#[test]
fn mamba2_gguf_matches_the_folders_references() {
    let tmp = tempfile::tempdir().unwrap();
    let mut worst = (0f32, 0f32);
    for k in 0..2 {
        let (reference, ours) = capture(&fixtures().join("mamba2"), &twin("mamba2"), k, tmp.path());
        assert_eq!(ours.i64("tokens"), reference.i64("tokens"), "ref_{k}: tokens");
        let d = max_diff("logits", ours.f32("logits"), reference.f32("logits"));
        assert!(d < LOGITS_TOL, "ref_{k}: logits differ by {d}");
        worst.0 = worst.0.max(d);
        for l in 0..2 {
            for name in [format!("ssm.L{l}"), format!("conv.L{l}"), format!("dt.L{l}")] {
                let d = max_diff(&name, ours.f32(&name), reference.f32(&name));
                assert!(d < STATE_TOL, "ref_{k}: {name} differs by {d}");
                worst.1 = worst.1.max(d);
            }
        }
        let meta: serde_json::Value = serde_json::from_str(&ours.meta["attnviz"]).unwrap();
        assert_eq!((meta["model"]["arch"].as_str(), meta["model"]["n_groups"].as_u64()), (Some("mamba2"), Some(2)));
    }
    eprintln!("mamba2-f32.gguf: max |diff| logits {:e}, states {:e}", worst.0, worst.1);
}

// ---------------------------------------------------------------- bad input, through the CLI

/// `src` rewritten with `edit` applied to its metadata and tensors.
fn edited(src: &Path, to: &Path, edit: impl FnOnce(&mut Vec<(String, Value)>, &mut Vec<(String, QTensor)>)) -> PathBuf {
    let mut file = std::fs::File::open(src).unwrap();
    let content = Content::read(&mut file).unwrap();
    let mut md: Vec<(String, Value)> = content.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    md.sort_by(|a, b| a.0.cmp(&b.0));
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors: Vec<(String, QTensor)> =
        names.into_iter().map(|n| (n.clone(), content.tensor(&mut file, n, &Device::Cpu).unwrap())).collect();
    edit(&mut md, &mut tensors);
    let path = to.join("edited.gguf");
    let mut out = std::fs::File::create(&path).unwrap();
    let md: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut out, &md, &tensors).unwrap();
    path
}

fn fails(model: &Path) -> String {
    error_line(&["generate", "--model", model.to_str().unwrap(), "--prompt", "The sea", "--max-new-tokens", "1"], &[])
}

fn set(md: &mut [(String, Value)], key: &str, v: Value) {
    md.iter_mut().filter(|(k, _)| k == key).for_each(|(_, old)| *old = v.clone());
}

#[test]
fn unknown_gguf_architecture_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let path = edited(&twin("gemma2"), tmp.path(), |md, _| {
        set(md, "general.architecture", Value::String("bert".into()));
    });
    let e = fails(&path);
    assert!(e.contains("edited.gguf: GGUF architecture \"bert\" is not supported; supported: llama,"), "{e}");
    assert!(e.contains("gptneox, phi3, mamba, mamba2"), "{e}");
    let m = error_line(&["memory", "--model", path.to_str().unwrap(), "--context", "4"], &[]);
    assert!(m.contains("GGUF architecture \"bert\" is not supported"), "{m}");
}

#[test]
fn broken_twins_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let path = edited(&twin("mamba2"), tmp.path(), |md, _| md.retain(|(k, _)| k != "mamba2.ssm.group_count"));
    assert!(fails(&path).ends_with("edited.gguf: GGUF metadata has no mamba2.ssm.group_count"));
    let path = edited(&twin("mamba2"), tmp.path(), |md, _| set(md, "mamba2.ssm.group_count", Value::U32(3)));
    let e = fails(&path);
    assert!(e.contains("mamba2.ssm.group_count 3 does not divide the 8 heads"), "{e}");
    let path = edited(&twin("mamba2"), tmp.path(), |_, t| {
        let short = Tensor::zeros(64, candle_core::DType::F32, &Device::Cpu).unwrap();
        t.iter_mut().find(|(n, _)| n == "blk.1.ssm_norm.weight").unwrap().1 =
            QTensor::quantize(&short, GgmlDType::F32).unwrap();
    });
    let e = fails(&path);
    assert!(
        e.contains("blk.1.ssm_norm.weight in ") && e.contains("has shape [64] but the GGUF metadata implies [2, 64]")
    );
    // LongRoPE factors must cover half the rotated dimensions.
    let path = edited(&twin("phi3"), tmp.path(), |_, t| {
        let short = Tensor::ones(5, candle_core::DType::F32, &Device::Cpu).unwrap();
        t.iter_mut().find(|(n, _)| n == "rope_factors_long.weight").unwrap().1 =
            QTensor::quantize(&short, GgmlDType::F32).unwrap();
    });
    let e = fails(&path);
    assert!(e.contains("tensor rope_factors_long.weight: 5 factors for 12 rotated dimensions"), "{e}");
    let path = edited(&twin("gpt_neox"), tmp.path(), |md, _| {
        md.retain(|(k, _)| k != "gptneox.attention.layer_norm_epsilon");
    });
    assert!(fails(&path).ends_with("GGUF metadata has no gptneox.attention.layer_norm_epsilon"));
}

/// `attnviz memory` reads a Mamba-2 (folder or GGUF) and gives the state `capture` records.
#[test]
fn memory_of_mamba2_equals_what_capture_records() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, ours) = capture(&fixtures().join("mamba2"), &twin("mamba2"), 0, tmp.path());
    let recorded = ours.i64("kv_bytes").1.to_vec();
    assert!(recorded.iter().all(|&b| b == recorded[0]), "a fixed state");
    for src in [fixtures().join("mamba2"), twin("mamba2")] {
        let args = ["memory", "--json", "--model", src.to_str().unwrap(), "--context", "9", "--dtype", "f32"];
        let (code, out, err) = attnviz(&args, &[]);
        assert_eq!(code, 0, "{err}");
        let j: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(j["kv_bytes"].as_i64(), Some(recorded[0]), "{}", src.display());
        // 2 layers × (8 heads × 16 × d_state 8 + (128 + 2 × 2 groups × 8) × d_conv 4) f32 values.
        assert_eq!(j["state_bytes"].as_u64(), Some(2 * (8 * 16 * 8 + 160 * 4) * 4));
        assert_eq!((j["conv_channels"].as_u64(), j["ssm_heads"].as_u64()), (Some(160), Some(8)));
    }
}

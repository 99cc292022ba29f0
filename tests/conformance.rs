//! attnviz against Hugging Face transformers: for every fixture model
//! (made by tests/fixtures/make_fixtures.py) and prompt, `attnviz capture`
//! must reproduce the reference tokens exactly, attention within 1e-4,
//! logits within 1e-3, and the KV-cache lengths transformers keeps.

mod common;
use common::*;

fn check_case(case: &str) {
    check_dir(case, &fixtures().join(case));
}

/// `dir` (the fixture `case`, or a copy of it in another layout) must reproduce `case`'s references.
fn check_dir(case: &str, dir: &std::path::Path) {
    check_model(case, dir, dir);
}

/// `model` (a folder or a GGUF file) must reproduce the references in `refs`.
fn check_model(case: &str, refs: &std::path::Path, model: &std::path::Path) {
    let tmp = tempfile::tempdir().unwrap();
    for k in 0..2 {
        let reference = StFile::read(&refs.join(format!("ref_{k}.safetensors")));
        let prompt = reference.meta["prompt"].clone();
        let n = reference.meta_usize("max_new_tokens");
        let out = tmp.path().join(format!("{case}_{k}.safetensors"));
        let (code, _, err) = attnviz(
            &[
                "capture",
                "--model",
                model.to_str().unwrap(),
                "--prompt",
                &prompt,
                "--max-new-tokens",
                &n.to_string(),
                "--greedy",
                "--ignore-eos",
                "--out",
                out.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(code, 0, "{case}/{k}: {err}");
        let ours = StFile::read(&out);
        assert_eq!(ours.i64("tokens"), reference.i64("tokens"), "{case}/{k}: tokens");
        assert_eq!(ours.i64("kv_len"), reference.i64("kv_len"), "{case}/{k}: kv_len");
        let d = max_diff("logits", ours.f32("logits"), reference.f32("logits"));
        assert!(d < 1e-3, "{case}/{k}: logits differ by {d}");
        let layers = reference.f32s.keys().filter(|n| n.starts_with("attn.L")).count();
        assert!(layers > 0);
        for l in 0..layers {
            let name = format!("attn.L{l}");
            let d = max_diff(&name, ours.f32(&name), reference.f32(&name));
            assert!(d < 1e-4, "{case}/{k}: {name} differs by {d}");
        }
        let meta: serde_json::Value = serde_json::from_str(&ours.meta["attnviz"]).unwrap();
        assert_eq!(meta["prompt_len"].as_u64().unwrap() as usize, reference.meta_usize("prompt_len"));
    }
}

#[test]
fn llama_mha() {
    check_case("llama_mha");
}

#[test]
fn llama_gqa_with_llama3_rope() {
    check_case("llama_gqa");
}

#[test]
fn llama_mqa_with_explicit_head_dim() {
    check_case("llama_mqa");
}

#[test]
fn mistral_sliding_window() {
    check_case("mistral_swa");
}

#[test]
fn qwen2_biases_and_per_layer_window() {
    check_case("qwen2_bias");
}

#[test]
fn gpt2() {
    check_case("gpt2");
}

#[test]
fn qwen3_qk_norm_explicit_head_dim_and_window() {
    check_case("qwen3");
}

#[test]
fn gpt_neox_parallel_residual_quarter_rotary() {
    check_case("gpt_neox");
}

/// Sequential residual, half rotary, and the Hub's config keys (`rotary_pct`, `rotary_emb_base`).
#[test]
fn gpt_neox_sequential_residual_hub_config() {
    check_case("gpt_neox_seq");
}

#[test]
fn gemma2_softcaps_sandwich_norms_alternating_window() {
    check_case("gemma2");
}

#[test]
fn gemma3_qk_norms_local_rope_base_linear_scaling() {
    check_case("gemma3_text");
}

/// qwen3 through llama.cpp's own converter: q/k norms as `attn_q_norm` / `attn_k_norm`, q/k rows not permuted,
/// tokenizer rebuilt from the GGUF; llama.cpp's qwen3 has no window, so the references attend fully.
#[test]
fn qwen3_gguf_from_llama_cpp_converter() {
    let dir = fixtures().join("qwen3_gguf");
    check_model("qwen3_gguf", &dir, &dir.join("qwen3-f32.gguf"));
}

/// gemma3_text through llama.cpp's converter: norm weights stored as 1 + w, `ffn_norm` / `post_ffw_norm` /
/// `post_attention_norm`, local RoPE base in `rope.freq_base_swa`, no layer pattern (so every 6th layer is
/// global: here all three slide).
#[test]
fn gemma3_gguf_from_llama_cpp_converter() {
    let dir = fixtures().join("gemma3_gguf");
    check_model("gemma3_gguf", &dir, &dir.join("gemma3_text-f32.gguf"));
}

/// Fused projections, 0.75 partial rotary, and LongRoPE switching from its short to its long factors mid-decode
/// (ref_0) or from the prefill on (ref_1), with a window on every layer.
#[test]
fn phi3_fused_projections_partial_rotary_longrope() {
    check_case("phi3");
}

/// The text part of a multimodal `gemma3` checkpoint: config under `text_config` in the Hub's older keys
/// (`sliding_window_pattern`, `rope_local_base_freq`, `rope_scaling`), tensors under `model.language_model.`.
#[test]
fn gemma3_multimodal_checkpoint_hub_config() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_fixture("gemma3_text", tmp.path());
    let path = dir.join("config.json");
    let mut text: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let obj = text.as_object_mut().unwrap();
    for key in ["layer_types", "rope_parameters", "bos_token_id", "eos_token_id"] {
        obj.remove(key);
    }
    obj.insert("sliding_window_pattern".into(), 3.into());
    obj.insert("rope_theta".into(), 1_000_000.0.into());
    obj.insert("rope_local_base_freq".into(), 100.0.into());
    obj.insert("rope_scaling".into(), serde_json::json!({"rope_type": "linear", "factor": 4.0}));
    let wrapped = serde_json::json!({"model_type": "gemma3", "architectures": ["Gemma3ForConditionalGeneration"],
        "text_config": text, "vision_config": {"model_type": "siglip_vision_model"}, "bos_token_id": 1,
        "eos_token_id": 0});
    std::fs::write(&path, wrapped.to_string()).unwrap();
    let weights = dir.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let renamed = st.tensors().into_iter().map(|(n, v)| (n.replacen("model.", "model.language_model.", 1), v));
    std::fs::write(&weights, safetensors::serialize(renamed, &None).unwrap()).unwrap();
    check_dir("gemma3_text", &dir);
}

/// `attnviz capture` on a Mamba folder writes states equal to transformers'.
#[test]
fn mamba_capture_matches_transformers() {
    let tmp = tempfile::tempdir().unwrap();
    for k in 0..2 {
        let reference = StFile::read(&fixtures().join(format!("mamba/ref_{k}.safetensors")));
        let n = reference.meta_usize("max_new_tokens");
        let mut files = vec![];
        for case in ["mamba", "mamba_ss"] {
            let out = tmp.path().join(format!("{case}_{k}.safetensors"));
            let dir = fixtures().join(case);
            let (code, _, err) = attnviz(
                &[
                    "capture",
                    "--model",
                    dir.to_str().unwrap(),
                    "--prompt",
                    &reference.meta["prompt"],
                    "--max-new-tokens",
                    &n.to_string(),
                    "--greedy",
                    "--ignore-eos",
                    "--out",
                    out.to_str().unwrap(),
                ],
                &[],
            );
            assert_eq!(code, 0, "{case}/{k}: {err}");
            files.push(StFile::read(&out));
        }
        let ours = &files[0];
        assert_eq!(ours.i64("tokens"), reference.i64("tokens"), "{k}: tokens");
        assert_eq!(ours.i64("state_steps").1, (0..n as i64).collect::<Vec<_>>());
        let d = max_diff("logits", ours.f32("logits"), reference.f32("logits"));
        assert!(d < 1e-3, "{k}: logits differ by {d}");
        for l in 0..2 {
            for name in [format!("ssm.L{l}"), format!("conv.L{l}"), format!("dt.L{l}")] {
                let d = max_diff(&name, ours.f32(&name), reference.f32(&name));
                assert!(d < 1e-4, "{k}: {name} differs by {d}");
            }
        }
        // The state-spaces naming of the same weights gives the same trace.
        assert_eq!(files[1].i64("tokens"), ours.i64("tokens"));
        assert_eq!(max_diff("logits", files[1].f32("logits"), ours.f32("logits")), 0.0);
        let meta: serde_json::Value = serde_json::from_str(&ours.meta["attnviz"]).unwrap();
        assert_eq!(meta["model"]["family"], "state-space");
    }
}

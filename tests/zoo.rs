//! The zoo built into the binary: every model captures from an empty
//! folder, `models` lists them with their sizes, `heads` scores them, and
//! commands fall back to the default model.

mod common;

use common::StFile;
use serde_json::Value;
use std::process::Command;

const ZOO: [&str; 5] = ["tiny-mha", "tiny-gqa", "tiny-mqa", "tiny-swa", "tiny-mamba"];

/// Run attnviz from a fresh empty folder, with no Hugging Face cache and no network.
fn run_in_empty_dir(args: &[&str]) -> (i32, String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_attnviz"))
        .args(args)
        .current_dir(dir.path())
        .env("HF_HUB_CACHE", dir.path().join("no-cache"))
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("run attnviz");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr), dir)
}

fn meta(t: &StFile) -> Value {
    serde_json::from_str(&t.meta["attnviz"]).expect("trace metadata")
}

#[test]
fn models_lists_the_zoo_with_matching_budgets() {
    let (code, out, err, _dir) = run_in_empty_dir(&["models", "--json"]);
    assert_eq!(code, 0, "{err}");
    let all: Vec<Value> = serde_json::from_str(&out).expect("JSON");
    let names: Vec<&str> = all.iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(names, ZOO, "the zoo, in order, and nothing from an empty cache");
    let params: Vec<f64> = all.iter().map(|e| e["parameters"].as_f64().expect("parameters")).collect();
    let (lo, hi) = params.iter().fold((f64::MAX, 0f64), |(lo, hi), &p| (lo.min(p), hi.max(p)));
    assert!(hi / lo <= 1.10, "parameter counts differ by more than 10%: {params:?}");
    let tokens: Vec<&Value> = all.iter().map(|e| &e["training"]["tokens"]).collect();
    assert!(tokens.iter().all(|t| t.as_u64().is_some() && *t == tokens[0]), "same training tokens: {tokens:?}");
    let mixing: Vec<&str> = all.iter().filter_map(|e| e["mixing"].as_str()).collect();
    assert_eq!(mixing, ["MHA", "GQA", "MQA", "GQA+window", "SSM"]);
    assert_eq!(all[3]["window"], 16);
    // KV per token shrinks with fewer KV heads; Mamba's is a fixed state.
    let kv: Vec<u64> = all.iter().filter_map(|e| e["kv_bytes_per_token"].as_u64()).collect();
    assert!(kv[0] > kv[1] && kv[1] > kv[2] && kv[4] == 0, "{kv:?}");
    assert!(all[4]["state_bytes"].as_u64().is_some_and(|b| b > 0));

    let (code, table, err, _dir) = run_in_empty_dir(&["models"]);
    assert_eq!(code, 0, "{err}");
    assert!(ZOO.iter().all(|m| table.contains(m)), "{table}");
    assert!(table.contains("model_type: llama, mistral,") && table.contains("phi3, mamba2\n"), "{table}");
    let gguf = "GGUF general.architecture: llama, qwen2, qwen3, gemma2, gemma3, gptneox, phi3, mamba, mamba2\n";
    assert!(table.contains(gguf), "{table}");
}

#[test]
fn every_zoo_model_captures_from_an_empty_folder() {
    for m in ZOO {
        let (code, _, err, dir) = run_in_empty_dir(&[
            "capture",
            "--model",
            m,
            "--prompt",
            "Emma was",
            "--max-new-tokens",
            "3",
            "--out",
            "t.st",
        ]);
        assert_eq!(code, 0, "{m}: {err}");
        let t = StFile::read(&dir.path().join("t.st"));
        assert_eq!(meta(&t)["model"]["source"], m);
        if m == "tiny-mamba" {
            assert_eq!(t.f32("ssm.L0").0[0], 3, "{m}: one state row per step");
        } else {
            assert_eq!(t.f32("attn.L0").0.len(), 3, "{m}: attention per layer");
        }
    }
}

#[test]
fn commands_default_to_tiny_gqa() {
    let (code, out, err, _dir) = run_in_empty_dir(&["generate", "--prompt", "Mr. Darcy", "--max-new-tokens", "4"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.trim().is_empty());
    let (code, _, err, dir) = run_in_empty_dir(&["capture", "--prompt", "Mr. Darcy", "--out", "t.st"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(meta(&StFile::read(&dir.path().join("t.st")))["model"]["source"], "tiny-gqa");
}

#[test]
fn an_unknown_zoo_name_is_one_line() {
    let (code, _, err, _dir) = run_in_empty_dir(&["generate", "--model", "tiny-gpt9", "--prompt", "x"]);
    assert_ne!(code, 0);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("tiny-gpt9") && err.contains("tiny-gqa"), "{err}");
}

/// Every transformer of the zoo has a real previous-token head (score ≥ 0.5).
#[test]
fn heads_finds_a_previous_token_head_in_every_transformer() {
    for m in &ZOO[..4] {
        let (code, out, err, _dir) = run_in_empty_dir(&["heads", "--model", m, "--json"]);
        assert_eq!(code, 0, "{m}: {err}");
        let v: Value = serde_json::from_str(&out).expect("JSON");
        let best = v["heads"]
            .as_array()
            .expect("heads")
            .iter()
            .filter_map(|h| h["previous_token"].as_f64())
            .fold(0f64, f64::max);
        assert!(best >= 0.5, "{m}: best previous-token score {best}");
    }
    let (code, _, err, _dir) = run_in_empty_dir(&["heads", "--model", "tiny-mamba"]);
    assert_ne!(code, 0);
    assert!(err.contains("no attention"), "{err}");
}

/// Models in the Hugging Face cache are listed after the zoo, sized from their headers.
#[test]
fn models_lists_the_hugging_face_cache() {
    let cache = tempfile::tempdir().expect("temp dir");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let repo = cache.path().join("models--org--tiny-gqa-fixture");
    std::fs::create_dir_all(repo.join("snapshots")).expect("mkdir");
    let copied = common::copy_fixture("llama_gqa", cache.path());
    std::fs::rename(copied, repo.join("snapshots").join(commit)).expect("rename");
    std::fs::create_dir_all(repo.join("refs")).expect("mkdir");
    std::fs::write(repo.join("refs/main"), commit).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_attnviz"))
        .args(["models", "--json"])
        .env("HF_HUB_CACHE", cache.path())
        .output()
        .expect("run attnviz");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    let e = all.iter().find(|e| e["origin"] == "hf-cache").expect("the cached model is listed");
    assert_eq!(e["name"], "org/tiny-gqa-fixture");
    // Parameters summed from the safetensors header equal the fixture's own tensor sizes.
    let st = StFile::read(&common::fixtures().join("llama_gqa/model.safetensors"));
    let want: usize = st.f32s.values().map(|(shape, _)| shape.iter().product::<usize>()).sum();
    assert_eq!(e["parameters"].as_u64(), Some(want as u64));
    let cfg: Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixtures().join("llama_gqa/config.json")).expect("config"),
    )
    .expect("JSON");
    assert_eq!(e["heads"][0], cfg["num_attention_heads"]);
    assert_eq!(e["heads"][1], cfg["num_key_value_heads"]);
    assert_eq!(e["layers"], cfg["num_hidden_layers"]);
}

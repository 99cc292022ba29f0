//! The command line on bad input: each case must fail with one line that
//! names what is wrong and a non-zero exit, never a panic or backtrace.
//! Also the Hub path, resolved offline from a laid-out cache folder.

mod common;
use common::*;
use std::path::Path;

/// Run a capture that must fail; return its one error line.
fn fails(model: &str, prompt: &str, env: &[(&str, &str)]) -> String {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("t.safetensors");
    error_line(
        &["capture", "--model", model, "--prompt", prompt, "--max-new-tokens", "2", "--out", file.to_str().unwrap()],
        env,
    )
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut j);
    std::fs::write(path, j.to_string()).unwrap();
}

#[test]
fn missing_weights_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_fixture("llama_mha", tmp.path());
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let e = fails(dir.to_str().unwrap(), "hello", &[]);
    assert!(e.contains("model.safetensors") && e.contains("not found"), "{e}");
}

#[test]
fn truncated_weights_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_fixture("llama_mha", tmp.path());
    let w = dir.join("model.safetensors");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
    let e = fails(dir.to_str().unwrap(), "hello", &[]);
    assert!(e.contains("model.safetensors"), "{e}");
}

#[test]
fn corrupt_safetensors_header_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_fixture("gpt2", tmp.path());
    let w = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&w).unwrap();
    bytes[8..40].copy_from_slice(&[b'#'; 32]);
    std::fs::write(&w, &bytes).unwrap();
    let e = fails(dir.to_str().unwrap(), "hello", &[]);
    assert!(e.contains("model.safetensors") && e.contains("not a valid safetensors"), "{e}");
}

#[test]
fn corrupt_gguf_header_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let g = tmp.path().join("broken.gguf");
    let mut bytes = b"GGUF".to_vec();
    bytes.extend_from_slice(&3u32.to_le_bytes());
    bytes.extend_from_slice(&u64::MAX.to_le_bytes()); // absurd tensor count
    bytes.extend_from_slice(&[0xff; 40]);
    std::fs::write(&g, &bytes).unwrap();
    let e = fails(g.to_str().unwrap(), "hello", &[]);
    assert!(e.contains("broken.gguf"), "{e}");
    std::fs::write(&g, b"not a gguf at all").unwrap();
    let e = fails(g.to_str().unwrap(), "hello", &[]);
    assert!(e.contains("broken.gguf") && e.contains("GGUF"), "{e}");
}

#[test]
fn config_disagreeing_with_weights_names_the_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_fixture("llama_gqa", tmp.path());
    edit_config(&dir, |j| j["intermediate_size"] = 96.into());
    let e = fails(dir.to_str().unwrap(), "hello", &[]);
    assert!(e.contains("mlp.gate_proj.weight") && e.contains("[128, 64]") && e.contains("[96, 64]"), "{e}");
}

/// The new families' own tensors are checked by name too: Qwen3's q/k norms, GPT-NeoX's head.
#[test]
fn family_tensors_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_fixture("qwen3", tmp.path());
    edit_config(&dir, |j| j["head_dim"] = 16.into());
    let e = fails(dir.to_str().unwrap(), "hello", &[]);
    assert!(e.contains("self_attn.q_proj.weight") && e.contains("[96, 64]") && e.contains("[64, 64]"), "{e}");
    let dir = copy_fixture("gpt_neox", tmp.path());
    edit_config(&dir, |j| j["rope_parameters"]["partial_rotary_factor"] = 0.1.into());
    let e = fails(dir.to_str().unwrap(), "hello", &[]);
    assert!(e.contains("rotated dimensions: must be even"), "{e}");
    edit_config(&dir, |j| j["rope_parameters"]["partial_rotary_factor"] = 0.25.into());
    let w = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&w).unwrap();
    let at = bytes.windows(10).position(|x| x == b"embed_out.").unwrap();
    bytes[at..at + 10].copy_from_slice(b"embed_oot.");
    std::fs::write(&w, &bytes).unwrap();
    let e = fails(dir.to_str().unwrap(), "hello", &[]);
    assert!(e.contains("embed_out.weight") && e.contains("missing"), "{e}");
}

#[test]
fn missing_tokenizer_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_fixture("llama_mha", tmp.path());
    std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
    let e = fails(dir.to_str().unwrap(), "hello", &[]);
    assert!(e.contains("tokenizer.json") && e.contains("not found"), "{e}");
}

#[test]
fn unknown_architecture_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_fixture("llama_mha", tmp.path());
    edit_config(&dir, |j| j["model_type"] = "bert".into());
    let e = fails(dir.to_str().unwrap(), "hello", &[]);
    assert!(e.contains("\"bert\"") && e.contains("llama, mistral, qwen2, gpt2"), "{e}");
}

#[test]
fn empty_prompt_is_refused() {
    let dir = fixtures().join("llama_mha");
    let e = fails(dir.to_str().unwrap(), "  ", &[]);
    assert!(e.contains("prompt") && e.contains("empty"), "{e}");
}

#[test]
fn prompt_longer_than_context_is_refused() {
    let dir = fixtures().join("gpt2");
    let long = "the cat sat on the mat ".repeat(100);
    let e = fails(dir.to_str().unwrap(), &long, &[]);
    assert!(e.contains("context of 128"), "{e}");
}

#[test]
fn nonexistent_hub_id_offline() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path().to_str().unwrap();
    let e = fails("nobody/no-such-model", "hello", &[("HF_HOME", h), ("HF_HUB_OFFLINE", "1")]);
    assert!(e.contains("nobody/no-such-model") && e.contains("HF_HUB_OFFLINE"), "{e}");
}

#[test]
fn nonexistent_local_path() {
    let e = fails("./no/such/folder", "hello", &[]);
    assert!(e.contains("no/such/folder") && e.contains("not found"), "{e}");
}

/// Lay out `models--org--tiny/{refs/main, snapshots/<commit>/…}` as the Hub
/// client does, then resolve by id offline, by ref and by commit.
#[test]
fn hub_id_resolves_from_cache_offline() {
    let home = tempfile::tempdir().unwrap();
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let repo = home.path().join("hub/models--org--tiny");
    let snap = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(snap.parent().unwrap()).unwrap();
    let copied = copy_fixture("llama_gqa", home.path());
    std::fs::rename(copied, &snap).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    let reference = StFile::read(&fixtures().join("llama_gqa/ref_0.safetensors"));
    let env = [("HF_HOME", home.path().to_str().unwrap()), ("HF_HUB_OFFLINE", "1")];
    for id in ["org/tiny".to_string(), format!("org/tiny@{commit}")] {
        let out = home.path().join("t.safetensors");
        let (code, _, err) = attnviz(
            &[
                "capture",
                "--model",
                &id,
                "--prompt",
                &reference.meta["prompt"],
                "--max-new-tokens",
                "8",
                "--greedy",
                "--ignore-eos",
                "--out",
                out.to_str().unwrap(),
            ],
            &env,
        );
        assert_eq!(code, 0, "{id}: {err}");
        assert_eq!(StFile::read(&out).i64("tokens"), reference.i64("tokens"), "{id}");
    }
}

fn capture_tokens(args: &[&str]) -> Vec<i64> {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("t.safetensors");
    let mut all = vec!["capture"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", out.to_str().unwrap()]);
    let (code, _, err) = attnviz(&all, &[]);
    assert_eq!(code, 0, "{err}");
    StFile::read(&out).i64("tokens").1.clone()
}

#[test]
fn chat_wraps_the_prompt_like_transformers() {
    let dir = fixtures().join("llama_gqa");
    let reference = StFile::read(&dir.join("ref_chat.safetensors"));
    let want = &reference.i64("tokens").1;
    let got = capture_tokens(&[
        "--model",
        dir.to_str().unwrap(),
        "--prompt",
        &reference.meta["prompt"],
        "--chat",
        "--max-new-tokens",
        "1",
    ]);
    assert_eq!(&got[..want.len()], &want[..]);
}

#[test]
fn raw_skips_the_bos() {
    let dir = fixtures().join("llama_mha");
    let with = capture_tokens(&["--model", dir.to_str().unwrap(), "--prompt", "The sea", "--max-new-tokens", "1"]);
    let raw =
        capture_tokens(&["--model", dir.to_str().unwrap(), "--prompt", "The sea", "--raw", "--max-new-tokens", "1"]);
    assert_eq!(with[0], 1); // <s>
    assert_eq!(&with[1..with.len() - 1], &raw[..raw.len() - 1]);
}

#[test]
fn sampling_repeats_with_the_same_seed() {
    let dir = fixtures().join("gpt2");
    let run = |seed: &str| {
        capture_tokens(&[
            "--model",
            dir.to_str().unwrap(),
            "--prompt",
            "The robot",
            "--temperature",
            "1.5",
            "--top-p",
            "0.95",
            "--seed",
            seed,
            "--ignore-eos",
            "--max-new-tokens",
            "12",
        ])
    };
    let (a, b, c) = (run("1"), run("1"), run("2"));
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn cuda_without_the_feature_is_a_clear_error() {
    let dir = fixtures().join("gpt2");
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("t.safetensors");
    let (code, _, err) = attnviz(
        &[
            "capture",
            "--model",
            dir.to_str().unwrap(),
            "--prompt",
            "hi",
            "--device",
            "cuda",
            "--out",
            file.to_str().unwrap(),
        ],
        &[],
    );
    if cfg!(feature = "cuda") {
        return; // a CUDA build on a machine with a GPU may well succeed
    }
    assert_eq!(code, 1);
    assert!(err.contains("--device cuda") && err.contains("--features cuda"), "{err}");
}

/// `heads` scores every family with attention through the same code (no family names outside the
/// model layer): one row per layer and head; Mamba-2 has none and says so in one line.
#[test]
fn heads_scores_every_attention_family() {
    for (case, layers) in [("qwen3", 2), ("gpt_neox", 2), ("gemma2", 2), ("gemma3_text", 3), ("phi3", 2)] {
        let dir = fixtures().join(case);
        let (code, out, err) = attnviz(&["heads", "--model", dir.to_str().unwrap()], &[]);
        assert_eq!(code, 0, "{case}: {err}");
        let rows =
            out.lines().filter(|l| l.split_whitespace().count() == 7 && l.trim_start().starts_with(char::is_numeric));
        assert_eq!(rows.count(), layers * 4, "{case}:\n{out}");
    }
    let dir = fixtures().join("mamba2");
    let msg = error_line(&["heads", "--model", dir.to_str().unwrap()], &[]);
    assert!(msg.contains("has no attention heads"), "{msg}");
}

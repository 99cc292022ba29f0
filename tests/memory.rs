//! `attnviz memory`: with f32 it equals the `kv_bytes` that `capture`
//! records for the same model and length (tiny-gqa, tiny-swa past its
//! window, tiny-mamba's fixed state); it reads only a model's config; it
//! recomputes the article's 96-layer claim; bad input is one error line.

mod common;

use common::*;
use serde_json::Value;

/// `attnviz memory ARGS --json`, parsed.
fn memory(args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut all = vec!["memory", "--json"];
    all.extend_from_slice(args);
    let (code, out, err) = attnviz(&all, env);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
}

/// Capture `model` on a prompt longer than tiny-swa's window of 16; returns
/// (positions fed at each step, kv_bytes recorded at each step).
fn capture(model: &str) -> (Vec<usize>, Vec<u64>) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("t.st");
    let prompt = "Emma had a red ball. She threw the ball to Tom, and Tom threw the ball back to Emma in the park.";
    let (code, _, err) = attnviz(
        &["capture", "--model", model, "--prompt", prompt, "--max-new-tokens", "5", "--ignore-eos", "--out"]
            .iter()
            .copied()
            .chain([out.to_str().unwrap()])
            .collect::<Vec<_>>(),
        &[],
    );
    assert_eq!(code, 0, "{model}: {err}");
    let t = StFile::read(&out);
    let tokens = t.i64("tokens").1.len();
    let kv: Vec<u64> = t.i64("kv_bytes").1.iter().map(|&b| b as u64).collect();
    // Step i has fed the prompt and i generated tokens: T + i positions, T = tokens − steps.
    let prompt_len = tokens - kv.len();
    assert!(prompt_len > 16, "{model}: prompt of {prompt_len} tokens is not past the window");
    ((0..kv.len()).map(|i| prompt_len + i).collect(), kv)
}

#[test]
fn f32_equals_what_capture_records() {
    for model in ["tiny-gqa", "tiny-swa", "tiny-mamba"] {
        let (positions, recorded) = capture(model);
        for (&p, &want) in positions.iter().zip(&recorded) {
            let got = memory(&["--model", model, "--context", &p.to_string(), "--dtype", "f32"], &[]);
            assert_eq!(got["kv_bytes"].as_u64(), Some(want), "{model} at {p} positions");
        }
        let (n, held) = (positions.len() - 1, recorded[positions.len() - 1]);
        let last = memory(&["--model", model, "--context", &positions[n].to_string(), "--dtype", "f32"], &[]);
        match model {
            // Past the window, tiny-swa holds W − 1 = 15 positions per layer; without it, all of them.
            "tiny-swa" => {
                assert_eq!(last["positions_held"], serde_json::json!([15, 15, 15, 15]));
                let per_token = last["bytes_per_token"].as_u64().unwrap();
                assert_eq!(per_token, 2 * 4 * 2 * 32 * 4);
                assert_eq!(last["kv_bytes"].as_u64().unwrap(), per_token * 15);
                assert_eq!(
                    last["variants"]["no_window"]["kv_bytes"].as_u64().unwrap(),
                    per_token * positions[n] as u64
                );
                assert!(recorded.iter().all(|&b| b == recorded[0]), "a full window stays the same size");
            }
            "tiny-gqa" => {
                let v = &last["variants"];
                assert_eq!(v["mha"]["kv_bytes"].as_u64().unwrap(), 2 * held);
                assert_eq!(v["mqa"]["kv_bytes"].as_u64().unwrap(), held / 2);
                assert!(recorded.windows(2).all(|w| w[1] - w[0] == 2 * 4 * 2 * 32 * 4), "grows per token");
            }
            _ => {
                assert_eq!((last["family"].as_str(), last["bytes_per_token"].as_u64()), (Some("state-space"), Some(0)));
                assert_eq!(last["state_bytes"].as_u64(), Some(163_840));
            }
        }
    }
}

#[test]
fn the_articles_claim_and_presets() {
    let claim = ["--layers", "96", "--heads", "96", "--head-dim", "128", "--context", "32768", "--dtype", "f16"];
    let j = memory(&claim, &[]);
    assert_eq!(j["kv_bytes"].as_u64(), Some(154_618_822_656));
    let mut gqa = claim.to_vec();
    gqa.extend(["--kv-heads", "32"]);
    assert_eq!(memory(&gqa, &[])["kv_bytes"].as_u64(), Some(51_539_607_552)); // 48 GiB
    let (code, table, err) = attnviz(&[&["memory"], &claim[..]].concat(), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(table.contains("154,618,822,656") && table.contains("154.6") && table.contains("144.0"), "{table}");

    let l2 = memory(&["--model", "llama-2-7b", "--context", "4096"], &[]);
    assert_eq!((l2["kv_bytes"].as_u64(), l2["dtype"].as_str()), (Some(2_147_483_648), Some("f16")));
    let g3 = memory(&["--model", "GPT-3-175B", "--context", "2048", "--batch", "2", "--dtype", "bf16"], &[]);
    assert_eq!(g3["kv_bytes"].as_u64(), Some(2 * 9_663_676_416));
    // A preset with a flag on top: Llama-3-8B as if it were MHA.
    let l3 = memory(&["--model", "llama-3-8b", "--context", "8192", "--kv-heads", "32"], &[]);
    assert_eq!(l3["kv_bytes"].as_u64(), Some(4 * 1_073_741_824));
    let (_, help, _) = attnviz(&["memory", "--help"], &[]);
    for name in ["llama-2-7b", "llama-2-70b", "llama-3-8b", "mistral-7b", "gpt-3-175b", "smollm2-135m"] {
        assert!(help.contains(name), "--help lists {name}");
    }
}

#[test]
fn reads_only_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    // A folder with nothing but config.json.
    let dir = tmp.path().join("swa");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixtures().join("mistral_swa/config.json"), dir.join("config.json")).unwrap();
    let j = memory(&["--model", dir.to_str().unwrap(), "--context", "10", "--dtype", "f32"], &[]);
    // 2 layers, 2 KV heads of 16, window 6: 5 positions per layer.
    assert_eq!((j["origin"].as_str(), j["kv_bytes"].as_u64()), (Some("folder"), Some(2 * 2 * 2 * 16 * 5 * 4)));
    // A Hub id whose cache holds only config.json, offline.
    let snap = tmp.path().join("hub/models--org--tiny/snapshots/abc");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::copy(dir.join("config.json"), snap.join("config.json")).unwrap();
    std::fs::create_dir_all(tmp.path().join("hub/models--org--tiny/refs")).unwrap();
    std::fs::write(tmp.path().join("hub/models--org--tiny/refs/main"), "abc").unwrap();
    let hub = tmp.path().join("hub");
    let env = [("HF_HUB_CACHE", hub.to_str().unwrap()), ("HF_HUB_OFFLINE", "1")];
    assert_eq!(memory(&["--model", "org/tiny", "--context", "10", "--dtype", "f32"], &env)["kv_bytes"], j["kv_bytes"]);
    // A GGUF Mamba: its state from the header.
    let gguf = fixtures().join("mamba_gguf/mamba-q8_0.gguf");
    let m = memory(&["--model", gguf.to_str().unwrap(), "--context", "10"], &[]);
    assert_eq!((m["origin"].as_str(), m["family"].as_str()), (Some("gguf"), Some("state-space")));
    assert!(m["state_bytes"].as_u64().is_some_and(|b| b > 0));
}

#[test]
fn bad_input_is_one_error_line() {
    let cases: [(&[&str], &str); 7] = [
        (&["--model", "tiny-gqa"], "--context"),
        (&["--layers", "2", "--heads", "0", "--head-dim", "8", "--context", "4"], "--heads 0"),
        (&["--layers", "2", "--heads", "6", "--kv-heads", "4", "--head-dim", "8", "--context", "4"], "does not divide"),
        (&["--model", "llama-9", "--context", "4"], "no such preset"),
        (&["--model", "tiny-gqa", "--context", "4", "--dtype", "int4"], "--dtype"),
        (&["--layers", "2", "--context", "4"], "--heads, --head-dim"),
        (&["--model", "tiny-mamba", "--heads", "4", "--context", "4"], "Mamba"),
    ];
    for (args, want) in cases {
        let e = error_line(&[&["memory"], args].concat(), &[]);
        assert!(e.contains(want), "{args:?}: {e}");
    }
}

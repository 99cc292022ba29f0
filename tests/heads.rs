//! `attnviz heads` on the fixture models: the JSON holds layers × heads
//! scores in [0, 1], equal to scores recomputed here, independently, from the
//! trace `attnviz capture` writes for the same prompt; bad input fails in one line.

mod common;
use common::*;
use serde_json::Value;

const PATTERNS: [&str; 5] = ["previous_token", "first_token", "locality", "entropy", "induction"];

fn model(case: &str) -> String {
    fixtures().join(case).to_str().unwrap().to_string()
}

fn heads_json(case: &str, extra: &[&str]) -> Value {
    let m = model(case);
    let mut args = vec!["heads", "--model", &m, "--json"];
    args.extend_from_slice(extra);
    let (code, out, err) = attnviz(&args, &[]);
    assert_eq!(code, 0, "{case}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{case}: not JSON ({e}): {out}"))
}

/// Run `attnviz heads` expecting failure; return its one error line.
fn fails(args: &[&str]) -> String {
    error_line(args, &[])
}

/// The five scores of one head from its [P, P] attention, by the README's
/// definitions written out plainly (a second implementation, on purpose).
fn expected(a: &[f32], p: usize, tokens: &[i64]) -> [Option<f64>; 5] {
    let at = |i: usize, j: usize| f64::from(a[i * p + j]);
    let (mut prev, mut first, mut local, mut entropy) = (0.0, 0.0, 0.0, 0.0);
    for i in 1..p {
        prev += at(i, i - 1);
        first += at(i, 0);
        for j in 0..=i {
            local += at(i, j) * (1.0 - (i - j) as f64 / i as f64);
            if at(i, j) > 0.0 {
                entropy -= at(i, j) * at(i, j).ln() / ((i + 1) as f64).ln();
            }
        }
    }
    let (mut induction, mut rows) = (0.0, 0);
    for i in 0..p {
        let earlier = (0..i).rev().find(|&k| tokens[k] == tokens[i]);
        if let Some(k) = earlier.filter(|&k| k + 1 < i) {
            induction += at(i, k + 1);
            rows += 1;
        }
    }
    let n = (p - 1) as f64;
    [Some(prev / n), Some(first / n), Some(local / n), Some(entropy / n), (rows > 0).then(|| induction / rows as f64)]
}

fn check_against_trace(case: &str) {
    let report = heads_json(case, &[]);
    assert_eq!(report["builtin_prompt"], true);
    let prompt = report["prompt"].as_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("t.safetensors");
    let (code, _, err) = attnviz(
        &[
            "capture",
            "--model",
            &model(case),
            "--prompt",
            prompt,
            "--max-new-tokens",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{case}: {err}");
    let trace = StFile::read(&out);

    let layers = report["model"]["layers"].as_u64().unwrap() as usize;
    let heads = report["model"]["heads"].as_u64().unwrap() as usize;
    let rows = report["heads"].as_array().unwrap();
    assert_eq!(rows.len(), layers * heads, "{case}: one entry per head");
    let ids: Vec<i64> = report["token_ids"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    let p = ids.len();
    assert_eq!(&trace.i64("tokens").1[..p], &ids[..], "{case}: same prompt tokens");
    assert_eq!(report["tokens"].as_array().unwrap().len(), p);

    for (n, row) in rows.iter().enumerate() {
        let (l, h) = (n / heads, n % heads);
        assert_eq!((row["layer"].as_u64(), row["head"].as_u64()), (Some(l as u64), Some(h as u64)), "{case}: order");
        let (shape, attn) = trace.f32(&format!("attn.L{l}"));
        assert_eq!(shape, &[heads, p, p]);
        let want = expected(&attn[h * p * p..(h + 1) * p * p], p, &ids);
        for (key, want) in PATTERNS.iter().zip(want) {
            let got = row[key].as_f64();
            assert_eq!(got.is_some(), want.is_some(), "{case} L{l}H{h} {key}: {got:?} vs {want:?}");
            if let (Some(got), Some(want)) = (got, want) {
                assert!((0.0..=1.0).contains(&got), "{case} L{l}H{h} {key} = {got} outside [0, 1]");
                assert!((got - want).abs() < 1e-5, "{case} L{l}H{h} {key}: {got} vs recomputed {want}");
            }
        }
    }
    // The probe repeats itself, so induction is scored; the top lists are the best heads, best first.
    for key in PATTERNS {
        let top = report["top"][key].as_array().unwrap();
        assert_eq!(top.len(), 3, "{case}: top {key}");
        let best = rows.iter().map(|r| r[key].as_f64().unwrap()).fold(f64::MIN, f64::max);
        let scores: Vec<f64> = top.iter().map(|t| t["score"].as_f64().unwrap()).collect();
        assert!((scores[0] - best).abs() < 1e-6 && scores.windows(2).all(|w| w[0] >= w[1]), "{case} {key}: {top:?}");
    }
}

#[test]
fn llama_gqa_scores_match_its_trace() {
    check_against_trace("llama_gqa");
}

#[test]
fn mistral_sliding_window_scores_match_its_trace() {
    check_against_trace("mistral_swa");
}

#[test]
fn gpt2_scores_match_its_trace() {
    check_against_trace("gpt2");
}

#[test]
fn a_prompt_without_repeats_has_no_induction_score() {
    let report = heads_json("llama_mha", &["--prompt", "hello", "--top", "2"]);
    assert_eq!(report["prompt"], "hello");
    assert_eq!(report["builtin_prompt"], false);
    let ids: Vec<i64> = report["token_ids"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    let repeats = (2..ids.len()).any(|i| (0..i - 1).any(|k| ids[k] == ids[i] && !ids[k + 1..i].contains(&ids[i])));
    assert!(!repeats, "{ids:?}: pick a prompt whose tokens do not repeat");
    assert!(report["heads"].as_array().unwrap().iter().all(|r| r["induction"].is_null()));
    assert_eq!(report["top"]["induction"].as_array().unwrap().len(), 0);
    assert_eq!(report["top"]["entropy"].as_array().unwrap().len(), 2);
}

#[test]
fn table_lists_every_head_and_the_top_heads() {
    let (code, out, err) = attnviz(&["heads", "--model", &model("qwen2_bias")], &[]);
    assert_eq!(code, 0, "{err}");
    let table: Vec<&str> =
        out.lines().skip_while(|l| !l.starts_with("layer")).skip(1).take_while(|l| !l.is_empty()).collect();
    assert_eq!(table.len(), 2 * 4, "{out}");
    assert!(table.iter().all(|l| l.split_whitespace().count() == 7), "{out}");
    assert!(out.contains("top heads per pattern"), "{out}");
    for label in ["previous-token", "first-token", "locality", "entropy", "induction"] {
        assert!(out.lines().any(|l| l.trim_start().starts_with(label)), "{label} missing: {out}");
    }
}

#[test]
fn mamba_has_no_heads() {
    let e = fails(&["heads", "--model", &model("mamba")]);
    assert!(e.contains("Mamba") && e.contains("no attention"), "{e}");
}

#[test]
fn empty_and_one_token_prompts_fail() {
    let e = fails(&["heads", "--model", &model("llama_gqa"), "--prompt", " "]);
    assert!(e.contains("prompt") && e.contains("empty"), "{e}");
    // gpt2 adds no BOS, so one short word is one token.
    let e = fails(&["heads", "--model", &model("gpt2"), "--prompt", "a"]);
    assert!(e.contains("one token"), "{e}");
}

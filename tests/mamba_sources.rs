//! The same weights from other files (see tests/fixtures/README.md): llama.cpp's GGUF of
//! the `mamba` fixture (f32 and Q8_0, written by llama.cpp's own converter), PyTorch
//! `pytorch_model.bin` of `mamba_ss` and sharded `.bin` of `llama_gqa`. Each must give what
//! the safetensors fixture gives: transformers' references for the f32 GGUF, bit-identical
//! outputs for `.bin`. Broken files fail in one line.

mod common;
use attnviz::model::mamba::Mamba;
use attnviz::model::tokenizer::Tokenizer;
use attnviz::model::{self, Capture, Loaded, Model};
use candle_core::quantized::gguf_file::{self, Content, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use common::*;
use std::path::{Path, PathBuf};

const LOGITS_TOL: f32 = 1e-3;
const STATE_TOL: f32 = 1e-4;

fn gguf(kind: &str) -> PathBuf {
    fixtures().join("mamba_gguf").join(format!("mamba-{kind}.gguf"))
}

fn load(src: &Path) -> Loaded {
    model::load(src.to_str().unwrap(), &Device::Cpu).unwrap_or_else(|e| panic!("{}: {e}", src.display()))
}

fn mamba(src: &Path) -> Mamba {
    match load(src).model {
        Model::Mamba(m) => m,
        _ => panic!("{}: not loaded as a Mamba", src.display()),
    }
}

fn reference(k: usize) -> StFile {
    StFile::read(&fixtures().join("mamba").join(format!("ref_{k}.safetensors")))
}

/// (tokens, prompt length, new tokens) of a reference.
fn ref_tokens(r: &StFile) -> (Vec<u32>, usize, usize) {
    let tokens = r.i64("tokens").1.iter().map(|&t| t as u32).collect();
    (tokens, r.meta_usize("prompt_len"), r.meta_usize("max_new_tokens"))
}

#[derive(Default, Debug)]
struct Worst {
    logits: f32,
    ssm: f32,
    conv: f32,
    dt: f32,
}

/// Prefill the reference prompt, feed its greedy tokens one by one, compare every step.
fn against_ref(m: &mut Mamba, k: usize) -> Worst {
    let r = reference(k);
    let (tokens, t, n) = ref_tokens(&r);
    let di = m.config().d_inner;
    let mut worst = Worst::default();
    let mut dt_pos = 0;
    for s in 0..n {
        let fed = if s == 0 { &tokens[..t] } else { &tokens[t + s - 1..t + s] };
        let f = m.forward(fed, true).unwrap();
        worst.logits = worst.logits.max(max_abs_diff(&f.logits, r.step_row("logits", s).1));
        assert_eq!(argmax(&f.logits), tokens[t + s] as usize, "ref_{k} step {s}: greedy token");
        for (l, cap) in f.layers.iter().enumerate() {
            worst.ssm = worst.ssm.max(max_abs_diff(&cap.ssm, r.step_row(&format!("ssm.L{l}"), s).1));
            worst.conv = worst.conv.max(max_abs_diff(&cap.conv, r.step_row(&format!("conv.L{l}"), s).1));
            let dt = &r.f32(&format!("dt.L{l}")).1[dt_pos * di..(dt_pos + fed.len()) * di];
            worst.dt = worst.dt.max(max_abs_diff(&cap.dt, dt));
        }
        dt_pos += fed.len();
    }
    assert!(worst.logits < LOGITS_TOL, "ref_{k}: {worst:?}");
    assert!(worst.ssm.max(worst.conv).max(worst.dt) < STATE_TOL, "ref_{k}: {worst:?}");
    worst
}

#[test]
fn gguf_f32_matches_transformers() {
    for k in 0..2 {
        let w = against_ref(&mut mamba(&gguf("f32")), k);
        eprintln!("mamba-f32.gguf ref_{k}: max |diff| {w:?}");
    }
}

#[test]
fn gguf_config_equals_the_safetensors_one() {
    let (g, st) = (mamba(&gguf("f32")), mamba(&fixtures().join("mamba")));
    let (g, st) = (g.config().clone(), st.config().clone());
    // GGUF stores the norm epsilon as f32.
    assert_eq!(g.eps as f32, st.eps as f32);
    assert_eq!(attnviz::model::mamba::MambaConfig { eps: st.eps, ..g }, st);
}

#[test]
fn gguf_f32_equals_safetensors_in_this_engine() {
    // Only A differs in how it was made (torch's −exp(A_log) in the file, ours from A_log).
    let r = reference(1);
    let (tokens, t, _) = ref_tokens(&r);
    let (mut g, mut st) = (mamba(&gguf("f32")), mamba(&fixtures().join("mamba")));
    let mut worst = (0f32, 0f32);
    for (i, fed) in std::iter::once(&tokens[..t]).chain(tokens[t..].chunks(1)).enumerate() {
        let (a, b) = (g.forward(fed, true).unwrap(), st.forward(fed, true).unwrap());
        worst.0 = worst.0.max(max_abs_diff(&a.logits, &b.logits));
        for (x, y) in a.layers.iter().zip(&b.layers) {
            worst.1 = worst
                .1
                .max(max_abs_diff(&x.ssm, &y.ssm))
                .max(max_abs_diff(&x.conv, &y.conv))
                .max(max_abs_diff(&x.dt, &y.dt));
        }
        assert!(worst.0 < 1e-5 && worst.1 < 1e-5, "step {i}: {worst:?}");
    }
    eprintln!("mamba-f32.gguf vs model.safetensors: logits {:e}, states {:e}", worst.0, worst.1);
}

#[test]
fn gguf_tokenizer_matches_tokenizer_json() {
    let dir = fixtures().join("mamba");
    let json = Tokenizer::from_files(&dir.join("tokenizer.json"), Some(&dir.join("tokenizer_config.json"))).unwrap();
    let g = load(&gguf("f32")).tokenizer;
    let mut texts: Vec<String> = (0..2).map(|k| reference(k).meta["prompt"].clone()).collect();
    texts.extend(
        [
            "The sea",
            " leading space and  double  spaces",
            "tabs\tand\nnew\r\nlines",
            "don't we'll I'm",
            "digits 12345 and 3.14",
            "<|endoftext|>in the middle<|endoftext|>",
            "<s> is not special here",
            "unicode: naïve café — 日本語 😀",
            "",
        ]
        .map(String::from),
    );
    for text in &texts {
        for special in [true, false] {
            let (a, b) = (g.encode(text, special).unwrap(), json.encode(text, special).unwrap());
            assert_eq!(a, b, "{text:?} (add_special = {special})");
            assert_eq!(g.decode(&a).unwrap(), json.decode(&b).unwrap(), "{text:?}");
        }
    }
    for k in 0..2 {
        let r = reference(k);
        let (tokens, t, _) = ref_tokens(&r);
        assert_eq!(g.encode(&r.meta["prompt"], true).unwrap(), tokens[..t], "ref_{k} prompt");
    }
    assert_eq!((g.bos_token(), g.eos_token()), (json.bos_token(), json.eos_token()));
    assert_eq!(g.vocab_size(), json.vocab_size());
}

#[test]
fn gguf_q8_0_matches_transformers_on_its_dequantized_weights() {
    let path = gguf("q8_0");
    let content = Content::read(&mut std::fs::File::open(&path).unwrap()).unwrap();
    for name in ["token_embd.weight", "blk.0.ssm_in.weight", "blk.1.ssm_x.weight", "blk.1.ssm_out.weight"] {
        assert_eq!(content.tensor_infos[name].ggml_dtype, GgmlDType::Q8_0, "{name}");
    }
    // Rows of 8 do not fill a Q8_0 block of 32: the converter falls back to f16.
    assert_eq!(content.tensor_infos["blk.0.ssm_dt.weight"].ggml_dtype, GgmlDType::F16);
    let q8 = StFile::read(&fixtures().join("mamba_gguf").join("ref_q8_0.safetensors"));
    let mut m = mamba(&path);
    for k in 0..2 {
        let r = reference(k);
        let (tokens, t, n) = ref_tokens(&r);
        assert_eq!(q8.i64(&format!("tokens_{k}")).1, r.i64("tokens").1);
        // Teacher-forced on the f32 reference's tokens, as the Q8_0 reference was made.
        let (mut worst, mut vs_f32, mut same_as_f32) = (0f32, 0f32, 0);
        m.reset();
        for s in 0..n {
            let fed = if s == 0 { &tokens[..t] } else { &tokens[t + s - 1..t + s] };
            let f = m.forward(fed, false).unwrap();
            let want = q8.step_row(&format!("logits_{k}"), s).1;
            worst = worst.max(max_abs_diff(&f.logits, want));
            assert_eq!(argmax(&f.logits), argmax(want), "ref_{k} step {s}: greedy token");
            vs_f32 = vs_f32.max(max_abs_diff(&f.logits, r.step_row("logits", s).1));
            same_as_f32 += usize::from(argmax(&f.logits) == tokens[t + s] as usize);
        }
        eprintln!(
            "mamba-q8_0.gguf ref_{k}: logits max |diff| {worst:e} vs transformers on the dequantized weights; \
             {vs_f32:.3} vs f32, greedy {same_as_f32}/{n} as f32"
        );
        assert!(worst < LOGITS_TOL, "ref_{k}: {worst}");
    }
}

/// Prefill then step through `tokens[t..]`; logits and captures of every forward.
fn run(m: &mut Model, tokens: &[u32], t: usize) -> Vec<(Vec<f32>, Capture)> {
    std::iter::once(&tokens[..t])
        .chain(tokens[t..].chunks(1))
        .map(|fed| {
            let f = m.forward(fed, true).unwrap();
            (f.logits, f.capture)
        })
        .collect()
}

#[test]
fn pytorch_bin_mamba_is_identical_to_safetensors() {
    let (tokens, t, _) = ref_tokens(&reference(1));
    let bin = run(&mut load(&fixtures().join("mamba_bin")).model, &tokens, t);
    let st = run(&mut load(&fixtures().join("mamba_ss")).model, &tokens, t);
    for (i, ((la, ca), (lb, cb))) in bin.iter().zip(&st).enumerate() {
        assert_eq!(la, lb, "step {i}: logits");
        let (Capture::State(a), Capture::State(b)) = (ca, cb) else { panic!("no Mamba state captured") };
        for (x, y) in a.iter().zip(b) {
            assert_eq!((&x.ssm, &x.conv, &x.dt), (&y.ssm, &y.conv, &y.dt), "step {i}: states");
        }
    }
    let w = against_ref(&mut mamba(&fixtures().join("mamba_bin")), 0);
    eprintln!("mamba_bin/pytorch_model.bin ref_0: max |diff| {w:?}");
}

#[test]
fn sharded_pytorch_bin_transformer_is_identical_to_safetensors() {
    let r = StFile::read(&fixtures().join("llama_gqa").join("ref_1.safetensors"));
    let (tokens, t, _) = ref_tokens(&r);
    let bin = run(&mut load(&fixtures().join("llama_gqa_bin")).model, &tokens, t);
    let st = run(&mut load(&fixtures().join("llama_gqa")).model, &tokens, t);
    for (i, ((la, ca), (lb, cb))) in bin.iter().zip(&st).enumerate() {
        assert_eq!(la, lb, "step {i}: logits");
        let (Capture::Attention(a), Capture::Attention(b)) = (ca, cb) else { panic!("no attention captured") };
        for (x, y) in a.iter().zip(b) {
            assert_eq!((&x.q, &x.k), (&y.q, &y.k), "step {i}: queries and keys");
        }
        if let Some(&want) = tokens.get(t + i) {
            assert_eq!(argmax(la), want as usize, "step {i}: greedy token");
        }
    }
}

/// A state-spaces-style Hub repo (only `pytorch_model.bin`) resolved offline from a laid-out cache.
#[test]
fn hub_snapshot_with_only_pytorch_bin() {
    let home = tempfile::tempdir().unwrap();
    let repo = home.path().join("hub/models--org--mamba-bin");
    let snap = repo.join("snapshots/0123456789abcdef0123456789abcdef01234567");
    std::fs::create_dir_all(&snap).unwrap();
    for e in std::fs::read_dir(fixtures().join("mamba_bin")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, snap.join(p.file_name().unwrap())).unwrap();
    }
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "0123456789abcdef0123456789abcdef01234567").unwrap();
    let env = [("HF_HOME", home.path().to_str().unwrap()), ("HF_HUB_OFFLINE", "1")];
    let run = |m: &str, env: &[(&str, &str)]| {
        let (code, out, err) =
            attnviz(&["generate", "--model", m, "--prompt", "The sea", "--max-new-tokens", "4", "--ignore-eos"], env);
        assert_eq!(code, 0, "{m}: {err}");
        out
    };
    assert_eq!(run("org/mamba-bin", &env), run(fixtures().join("mamba_ss").to_str().unwrap(), &[]));
}

// ---------------------------------------------------------------- bad input, through the CLI

/// Run a short generation that must fail; return its one error line.
fn fails(model: &Path) -> String {
    error_line(&["generate", "--model", model.to_str().unwrap(), "--prompt", "The sea", "--max-new-tokens", "1"], &[])
}

#[test]
fn truncated_or_corrupt_pytorch_bin_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_fixture("mamba_bin", tmp.path());
    let w = dir.join("pytorch_model.bin");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
    let e = fails(&dir);
    assert!(e.contains("pytorch_model.bin: not a readable PyTorch checkpoint"), "{e}");
    std::fs::write(&w, b"not a zip at all").unwrap();
    let e = fails(&dir);
    assert!(e.contains("pytorch_model.bin: not a readable PyTorch checkpoint"), "{e}");
}

#[test]
fn missing_shard_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_fixture("llama_gqa_bin", tmp.path());
    std::fs::remove_file(dir.join("pytorch_model-00002-of-00002.bin")).unwrap();
    let e = fails(&dir);
    assert!(e.contains("pytorch_model-00002-of-00002.bin: not found"), "{e}");
}

/// The f32 fixture GGUF rewritten with `edit` applied to its metadata and tensors.
fn edited_gguf(to: &Path, edit: impl FnOnce(&mut Vec<(String, Value)>, &mut Vec<(String, QTensor)>)) -> PathBuf {
    let mut file = std::fs::File::open(gguf("f32")).unwrap();
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

#[test]
fn gguf_rewritten_unchanged_still_loads() {
    // The edits below are all that differ in the failing cases.
    let tmp = tempfile::tempdir().unwrap();
    let generate = |p: &Path| {
        let (code, out, err) =
            attnviz(&["generate", "--model", p.to_str().unwrap(), "--prompt", "The sea", "--max-new-tokens", "3"], &[]);
        assert_eq!(code, 0, "{err}");
        out
    };
    assert_eq!(generate(&edited_gguf(tmp.path(), |_, _| {})), generate(&gguf("f32")));
}

#[test]
fn gguf_missing_tensor_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let path = edited_gguf(tmp.path(), |_, t| t.retain(|(n, _)| n != "blk.1.ssm_a"));
    let e = fails(&path);
    assert!(e.contains("weights: tensor blk.1.ssm_a is missing from") && e.contains("edited.gguf"), "{e}");
}

#[test]
fn gguf_wrong_shape_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let path = edited_gguf(tmp.path(), |_, t| {
        let short = Tensor::zeros(64, candle_core::DType::F32, &Device::Cpu).unwrap();
        let q = QTensor::quantize(&short, GgmlDType::F32).unwrap();
        t.iter_mut().find(|(n, _)| n == "blk.0.ssm_d").unwrap().1 = q;
    });
    let e = fails(&path);
    assert!(
        e.contains("weights: blk.0.ssm_d in ") && e.contains("has shape [64] but the GGUF metadata implies [128]"),
        "{e}"
    );
}

#[test]
fn gguf_missing_metadata_key_is_named() {
    for key in ["mamba.ssm.state_size", "mamba.attention.layer_norm_rms_epsilon", "mamba.ssm.time_step_rank"] {
        let tmp = tempfile::tempdir().unwrap();
        let path = edited_gguf(tmp.path(), |md, _| md.retain(|(k, _)| k != key));
        let e = fails(&path);
        assert!(e.ends_with(&format!("edited.gguf: GGUF metadata has no {key}")), "{e}");
    }
}

#[test]
fn gguf_falcon_mamba_norms_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = edited_gguf(tmp.path(), |md, _| {
        md.iter_mut().filter(|(k, _)| k == "mamba.ssm.dt_b_c_rms").for_each(|(_, v)| *v = Value::Bool(true));
    });
    let e = fails(&path);
    assert!(e.contains("mamba.ssm.dt_b_c_rms") && e.contains("not supported"), "{e}");
}

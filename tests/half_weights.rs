//! bf16 and f16 checkpoints stay 16-bit in memory and are widened exactly in
//! the kernels, so they must decode as the same values stored as f32 do (the
//! f32 path is what `conformance.rs` holds to transformers). Each fixture is
//! rounded to 16 bits and written twice: as 16-bit, and widened back to f32.

use attnviz::model::gemv::{Half, Matrix};
use attnviz::model::weights::Weights;
use attnviz::model::{self, Capture};
use attnviz::sample::Sampling;
use attnviz::session::{self, Control, Options};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(case)
}

/// The fixture's floats rounded to `half`, stored as `store`, beside its config and tokenizer.
fn rounded_copy(case: &str, half: DType, store: DType, tag: &str) -> PathBuf {
    let src = fixture(case);
    let dir = std::env::temp_dir().join(format!("attnviz-half-{case}-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if name.ends_with(".json") {
            std::fs::copy(&p, dir.join(name)).unwrap();
        }
    }
    let tensors = candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap();
    let out: HashMap<String, Tensor> = tensors
        .into_iter()
        .map(|(k, t)| {
            let t = if t.dtype() == DType::F32 { t.to_dtype(half).unwrap().to_dtype(store).unwrap() } else { t };
            (k, t)
        })
        .collect();
    candle_core::safetensors::save(&out, dir.join("model.safetensors")).unwrap();
    dir
}

/// Greedy tokens and the logits and states (Mamba-2) of every step, capture on.
fn run(dir: &Path) -> (Vec<u32>, Vec<Vec<f32>>) {
    let mut m = model::load(dir.to_str().unwrap(), &Device::Cpu).unwrap();
    let prompt = "The robot counted the boats. The sailors sang songs about the wind.";
    let ids = session::prompt_ids(&m.tokenizer, prompt, false, false, m.model.max_positions()).unwrap();
    assert!(ids.len() > 4, "the prefill must take the multi-row path");
    let opts = Options { max_new_tokens: 5, sampling: Sampling::Greedy, ignore_eos: true, capture: true };
    let (mut tokens, mut values) = (vec![], vec![]);
    session::run(&mut m.model, &m.tokenizer, &ids, &opts, &Control::default(), |s| {
        tokens.push(s.token);
        values.push(s.logits.unwrap());
        if let Capture::State(layers) = s.capture {
            values.extend(layers.into_iter().map(|l| l.ssm.to_vec()));
        }
        true
    })
    .unwrap();
    (tokens, values)
}

#[test]
fn half_checkpoints_decode_as_their_f32_values() {
    for (case, half, name) in [
        ("qwen3", DType::BF16, "model.layers.0.mlp.down_proj.weight"),
        ("gpt_neox", DType::F16, "gpt_neox.layers.0.mlp.dense_h_to_4h.weight"),
        ("mamba2", DType::BF16, "backbone.layers.0.mixer.in_proj.weight"),
    ] {
        let (wide, narrow) = (rounded_copy(case, half, DType::F32, "f32"), rounded_copy(case, half, half, "16"));
        // The 16-bit folder really takes the 16-bit kernels.
        let file = narrow.join("model.safetensors");
        let (r, c) = candle_core::safetensors::load(&file, &Device::Cpu).unwrap()[name].dims2().unwrap();
        let w = Weights::from_safetensors(&[file], &Device::Cpu, DType::F32).unwrap();
        let m = w.matrix(name, [r, c]).unwrap();
        let want = if half == DType::BF16 { Half::Bf16 } else { Half::F16 };
        assert!(matches!(&m, Matrix::Half(h) if h.kind() == want), "{case}: {name} is not kept 16-bit");
        let (a, b) = (run(&wide), run(&narrow));
        assert_eq!(a.0, b.0, "{case}: tokens");
        assert_eq!(a.1.len(), b.1.len());
        for (x, y) in a.1.iter().zip(&b.1) {
            let d = x.iter().zip(y).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
            assert!(d < 1e-4, "{case}: logits or states differ by {d}");
        }
        for d in [wide, narrow] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
}

//! Prefill in chunks (how long prompts keep memory flat) must give the same
//! attention, logits and cache as one pass — including across a sliding
//! window that straddles chunk boundaries.

use attnviz::model;
use attnviz::sample::Sampling;
use attnviz::session::{self, Options};
use attnviz::trace::Trace;

fn run(case: &str, chunk: Option<usize>) -> Trace {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(case);
    let mut m = model::load(dir.to_str().unwrap(), &candle_core::Device::Cpu).unwrap();
    let model::Model::Decoder(d) = &mut m.model else { panic!("{case} is a transformer") };
    if let Some(c) = chunk {
        d.set_prefill_chunk(c);
    }
    let prompt = "The robot counted the boats. The sailors sang songs about the wind.";
    let cfg = d.config().clone();
    let ids = session::prompt_ids(&m.tokenizer, prompt, false, false, cfg.max_positions).unwrap();
    let opts = Options { max_new_tokens: 4, sampling: Sampling::Greedy, ignore_eos: true, capture: true };
    let mut trace = Trace::new(&cfg, &ids);
    session::run(&mut m.model, &m.tokenizer, &ids, &opts, &attnviz::session::Control::default(), |s| {
        trace.push(s);
        true
    })
    .unwrap();
    trace
}

#[test]
fn chunked_prefill_equals_one_pass() {
    for case in ["mistral_swa", "qwen2_bias", "gpt2"] {
        let whole = run(case, None);
        let chunked = run(case, Some(5));
        assert_eq!(whole.tokens, chunked.tokens, "{case}");
        assert_eq!(whole.kv_len, chunked.kv_len, "{case}");
        for (a, b) in whole.logits.iter().zip(&chunked.logits) {
            let d = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
            assert!(d < 1e-5, "{case}: logits differ by {d}");
        }
        let p = whole.positions();
        for l in 0..whole.num_layers() {
            for h in 0..whole.geometry[l].heads {
                let (a, b) = (whole.attention(l, h, 0..p), chunked.attention(l, h, 0..p));
                let d = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
                assert!(d < 1e-5, "{case}: layer {l} head {h} differs by {d}");
            }
        }
    }
}

//! `attnviz bench`: prefill and decode speed with capture on and off,
//! alternating runs so both see the same machine conditions.

use attnviz::model;
use attnviz::model::config::Arch;
use attnviz::sample::Sampling;
use attnviz::session::{Options, Session};
use attnviz::trace::Trace;
use clap::Args;
use std::sync::Arc;

#[derive(Args)]
pub struct BenchArgs {
    /// A zoo model (tiny-mha, tiny-gqa, tiny-mqa, tiny-swa, tiny-mamba; see `attnviz models`), a Hugging Face
    /// model folder, a Hub id (org/name[@revision]) or a .gguf file.
    #[arg(long, default_value = attnviz::model::zoo::DEFAULT)]
    pub model: String,
    #[arg(long, default_value_t = 64)]
    pub prompt_tokens: usize,
    #[arg(long, default_value_t = 64)]
    pub new_tokens: usize,
    /// Runs of each kind; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Measure the explorer instead: frame-draw times of the full layout over a long trace, the first frame
    /// after launch, and decode speed inside the UI against a plain run.
    #[arg(long)]
    pub ui: bool,
    /// (--ui) Terminal size to draw, WxH.
    #[arg(long, default_value = "240x70", requires = "ui")]
    pub size: String,
    /// (--ui) Positions of the trace whose frames are drawn.
    #[arg(long, default_value_t = 2048, requires = "ui")]
    pub positions: usize,
}

pub const TEXT: &str = "It is a truth universally acknowledged, that a single man in possession of a good fortune, \
must be in want of a wife. However little known the feelings or views of such a man may be on his first entering \
a neighbourhood, this truth is so well fixed in the minds of the surrounding families, that he is considered the \
rightful property of some one or other of their daughters.";

struct Run {
    prefill_ms: f64,
    decode_tps: f64,
}

pub fn run(a: BenchArgs) -> anyhow::Result<()> {
    if a.ui {
        let size = super::bench_ui::parse_size(&a.size)?;
        return super::bench_ui::run(super::bench_ui::UiBench {
            model: a.model,
            size,
            positions: a.positions,
            device: a.device,
        });
    }
    anyhow::ensure!(
        a.prompt_tokens > 0 && a.new_tokens > 0 && a.repeats > 0,
        "--prompt-tokens, --new-tokens and --repeats must be positive"
    );
    let device = model::device(&a.device)?;
    let loaded = model::load(&a.model, &device)?;
    let summary = loaded.model.summary(&a.model);
    let flops = match &loaded.model {
        model::Model::Decoder(d) => prefill_flops(d.config(), a.prompt_tokens),
        model::Model::Mamba(_) | model::Model::Mamba2(_) => 0.0,
    };
    let max_positions = loaded.model.max_positions();
    let base = loaded.tokenizer.encode(TEXT, false)?;
    anyhow::ensure!(!base.is_empty(), "the tokenizer produced no tokens for the benchmark text");
    let prompt: Vec<u32> = base.iter().copied().cycle().take(a.prompt_tokens).collect();
    anyhow::ensure!(
        a.prompt_tokens + a.new_tokens <= max_positions,
        "the run would exceed the model's context of {max_positions}"
    );
    let tokenizer = Arc::new(loaded.tokenizer);
    let mut model = Some(loaded.model);
    let mut off = vec![];
    let mut on = vec![];
    // One warm-up run, then alternate so both kinds share the machine's mood.
    for i in 0..=2 * a.repeats {
        let capture = i % 2 == 0;
        let opts = Options { max_new_tokens: a.new_tokens + 1, sampling: Sampling::Greedy, ignore_eos: true, capture };
        let m = model.take().ok_or_else(|| anyhow::anyhow!("the model was lost after a failed run"))?;
        let mut trace = Trace::for_model(&m, &prompt);
        let session = Session::start(m, tokenizer.clone(), prompt.clone(), opts);
        let mut times = vec![];
        let (_, back) = session.follow(|s| {
            times.push(s.forward_ms);
            if capture {
                trace.push(s);
            }
        })?;
        model = back;
        let decode: f64 = times.iter().skip(1).sum();
        let r = Run { prefill_ms: times[0], decode_tps: (times.len() - 1) as f64 / decode * 1e3 };
        if i > 0 {
            if capture {
                on.push(r)
            } else {
                off.push(r)
            }
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (mut p_off, mut p_on): (Vec<f64>, Vec<f64>) =
        (off.iter().map(|r| r.prefill_ms).collect(), on.iter().map(|r| r.prefill_ms).collect());
    let (mut d_off, mut d_on): (Vec<f64>, Vec<f64>) =
        (off.iter().map(|r| r.decode_tps).collect(), on.iter().map(|r| r.decode_tps).collect());
    let (d_off, d_on) = (med(&mut d_off), med(&mut d_on));
    let heads = match (summary["heads"].as_u64(), summary["kv_heads"].as_u64()) {
        (Some(h), Some(kv)) => format!(", {h} heads / {kv} KV heads"),
        _ => format!(", d_state {}", summary["d_state"]),
    };
    println!(
        "model {} ({}, {} layers{heads}), {} threads, f32 on {}",
        a.model,
        summary["arch"].as_str().unwrap_or("?"),
        summary["layers"],
        candle_core::utils::get_num_threads(),
        a.device
    );
    let (p_off, p_on) = (med(&mut p_off), med(&mut p_on));
    let rate = if flops > 0.0 { format!(" ({:.1} GFLOP/s with capture)", flops / p_on / 1e6) } else { String::new() };
    println!("prefill {} tokens: capture off {p_off:.0} ms, capture on {p_on:.0} ms{rate}", a.prompt_tokens);
    println!(
        "decode {} tokens after the prompt: capture off {:.1} tokens/s, capture on {:.1} tokens/s (capture costs {:.1}% of decode time)",
        a.new_tokens,
        d_off,
        d_on,
        (d_off / d_on - 1.0) * 100.0
    );
    Ok(())
}

/// Multiply-adds ×2 of a transformer prefill of `t` tokens: the projections and
/// MLP at every position, causal (windowed) attention, and the head once.
fn prefill_flops(cfg: &attnviz::model::config::Config, t: usize) -> f64 {
    let (hid, d) = (cfg.hidden_size as f64, cfg.head_dim as f64);
    let (h, kvh) = (cfg.num_heads as f64, cfg.num_kv_heads as f64);
    let mats = if matches!(cfg.arch, Arch::Gpt2 | Arch::GptNeox) { 2.0 } else { 3.0 };
    let per_token = hid * d * (2.0 * h + 2.0 * kvh) + mats * hid * cfg.intermediate_size as f64;
    let attention: f64 = cfg
        .windows
        .iter()
        .map(|w| (0..t).map(|i| (i + 1).min(w.unwrap_or(usize::MAX)) as f64).sum::<f64>() * 2.0 * h * d)
        .sum();
    2.0 * (per_token * cfg.num_layers as f64 * t as f64 + attention + hid * cfg.vocab_size as f64)
}

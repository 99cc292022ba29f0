//! `attnviz generate`: stream text to stdout, per-step numbers to stderr.

use super::GenArgs;
use attnviz::model;
use attnviz::session::{self, Options, Session};
use std::io::Write;
use std::sync::Arc;

pub fn run(g: GenArgs) -> anyhow::Result<()> {
    let sampling = g.sampling()?;
    let device = model::device(&g.device)?;
    let loaded = model::load(&g.model, &device)?;
    let prompt = session::prompt_ids(&loaded.tokenizer, &g.prompt, g.chat, g.raw, loaded.model.max_positions())?;
    let opts = Options { max_new_tokens: g.max_new_tokens.max(1), sampling, ignore_eos: g.ignore_eos, capture: false };
    let run = Session::start(loaded.model, Arc::new(loaded.tokenizer), prompt, opts);
    let mut out = std::io::stdout();
    let mut decode_ms = 0.0;
    let mut steps = 0;
    let mut last_kv = 0;
    let (reason, _) = run.follow(|s| {
        let _ = write!(out, "{}", s.text);
        let _ = out.flush();
        if s.index > 0 {
            decode_ms += s.forward_ms;
            steps += 1;
        }
        last_kv = s.kv_bytes;
    })?;
    println!();
    eprintln!(
        "stopped: {reason:?}; {steps} decode steps at {:.1} tokens/s; KV cache {:.1} KiB",
        if decode_ms > 0.0 { steps as f64 / decode_ms * 1e3 } else { 0.0 },
        last_kv as f64 / 1024.0
    );
    Ok(())
}

//! `attnviz capture`: generate and write the trace file.

use super::GenArgs;
use anyhow::Context;
use attnviz::capture::Maps;
use attnviz::model;
use attnviz::session::{self, Options, Session, StopReason};
use attnviz::trace::Trace;
use clap::Args;
use serde_json::{json, Map};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args)]
pub struct CaptureArgs {
    #[command(flatten)]
    pub gen: GenArgs,
    /// Only write the attention of these layers (comma separated), e.g. 0,5,29.
    #[arg(long, value_delimiter = ',')]
    pub layers: Option<Vec<usize>>,
    /// Dense attention maps in the file: auto writes them while all together fit in 256 MB; q and k are
    /// always written, and rebuild any map (see the README).
    #[arg(long, value_enum, default_value_t = MapsArg::Auto)]
    pub maps: MapsArg,
    /// Store queries and keys as F16 (half the size).
    #[arg(long)]
    pub half: bool,
    /// The safetensors file to write.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum MapsArg {
    Auto,
    Dense,
    None,
}

pub fn run(a: CaptureArgs) -> anyhow::Result<()> {
    let g = &a.gen;
    let sampling = g.sampling()?;
    let device = model::device(&g.device)?;
    let loaded = model::load(&g.model, &device)?;
    let prompt = session::prompt_ids(&loaded.tokenizer, &g.prompt, g.chat, g.raw, loaded.model.max_positions())?;
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        anyhow::ensure!(dir.is_dir(), "{}: no such folder for --out", dir.display());
    }
    let tokenizer = Arc::new(loaded.tokenizer);
    let opts = Options {
        max_new_tokens: g.max_new_tokens.max(1),
        sampling: sampling.clone(),
        ignore_eos: g.ignore_eos,
        capture: true,
    };
    let mut trace = Trace::for_model(&loaded.model, &prompt);
    let summary = loaded.model.summary(&loaded.source);
    let run = Session::start(loaded.model, tokenizer.clone(), prompt, opts);
    let (reason, _) = run.follow(|step| trace.push(step))?;

    let mut meta = Map::new();
    meta.insert("model".into(), summary);
    meta.insert("prompt".into(), json!(g.prompt));
    let strings: Vec<String> = trace.tokens.iter().map(|&t| tokenizer.token_text(t)).collect();
    meta.insert("token_strings".into(), json!(strings));
    meta.insert("generated_text".into(), json!(tokenizer.decode(trace.generated())?));
    meta.insert(
        "settings".into(),
        json!({
            "max_new_tokens": g.max_new_tokens, "sampling": format!("{sampling:?}"), "ignore_eos": g.ignore_eos,
            "chat": g.chat, "raw": g.raw, "device": g.device, "dtype": "f32",
        }),
    );
    meta.insert("stop_reason".into(), json!(format!("{reason:?}")));
    meta.insert("forward_ms".into(), json!(trace.forward_ms));
    let maps = match a.maps {
        MapsArg::Auto => Maps::Auto,
        MapsArg::Dense => Maps::Dense,
        MapsArg::None => Maps::None,
    };
    let opts = attnviz::capture::Options { maps, half: a.half };
    attnviz::capture::write(&trace, &a.out, a.layers.as_deref(), opts, meta)
        .with_context(|| format!("writing {}", a.out.display()))?;
    let decode: f64 = trace.forward_ms.iter().skip(1).sum();
    let steps = trace.forward_ms.len().saturating_sub(1);
    eprintln!(
        "wrote {}: {} prompt + {} generated tokens, {} positions, prefill {:.0} ms, decode {:.1} tokens/s{}",
        a.out.display(),
        trace.prompt_len,
        trace.generated().len(),
        trace.positions(),
        trace.forward_ms.first().copied().unwrap_or(0.0),
        if decode > 0.0 { steps as f64 / decode * 1e3 } else { 0.0 },
        if reason == StopReason::Eos { " (stopped at end-of-sequence)" } else { "" },
    );
    Ok(())
}

//! `attnviz heads`: run a prompt through the model (prefill only), score
//! every head on the patterns of `attnviz::metrics`, and name the top heads.

use attnviz::metrics::{self, Pattern, ScoredHead};
use attnviz::model;
use attnviz::sample::Sampling;
use attnviz::session::{self, Options, Session};
use attnviz::trace::Trace;
use clap::Args;
use serde_json::{json, Map, Value};
use std::sync::Arc;

#[derive(Args)]
pub struct HeadsArgs {
    /// A zoo model (tiny-mha, tiny-gqa, tiny-mqa, tiny-swa, tiny-mamba; see `attnviz models`), a Hugging Face
    /// model folder, a Hub id (org/name[@revision]) or a .gguf file.
    #[arg(long, default_value = attnviz::model::zoo::DEFAULT)]
    pub model: String,
    /// The text to score on; default: a built-in sentence said twice, so induction heads show.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// How many heads to name per pattern.
    #[arg(long, default_value_t = 3)]
    pub top: usize,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// Ordinary words, then the same words again: the second copy lets an
/// induction head predict each token from its first occurrence.
const PROBE_SEGMENT: &str = "The old fisherman mended his nets by the harbour while the children ran along the wall.";

pub fn run(a: HeadsArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.top > 0, "--top must be at least 1");
    let device = model::device(&a.device)?;
    let loaded = model::load(&a.model, &device)?;
    if loaded.model.is_state_space() {
        anyhow::bail!("{}: a state-space model (Mamba) has no attention heads to score", a.model);
    }
    let max_positions = loaded.model.max_positions();
    let (text, prompt) = match &a.prompt {
        Some(p) => (p.clone(), session::prompt_ids(&loaded.tokenizer, p, false, false, max_positions)?),
        None => {
            let text = format!("{PROBE_SEGMENT} {PROBE_SEGMENT}");
            let mut ids = session::prompt_ids(&loaded.tokenizer, &text, false, false, usize::MAX)?;
            ids.truncate(max_positions); // a tiny context keeps what fits
            (text, ids)
        }
    };
    anyhow::ensure!(prompt.len() >= 2, "prompt: one token is too few to score heads (need at least 2)");
    let tokenizer = Arc::new(loaded.tokenizer);
    let summary = loaded.model.summary(&loaded.source);
    let mut trace = Trace::for_model(&loaded.model, &prompt);
    let opts = Options { max_new_tokens: 1, sampling: Sampling::Greedy, ignore_eos: true, capture: true };
    Session::start(loaded.model, tokenizer.clone(), prompt, opts).follow(|step| trace.push(step))?;
    let heads = metrics::score_trace(&trace)?;
    let ids = &trace.tokens[..trace.positions()];

    if a.json {
        let mut top = Map::new();
        for p in Pattern::ALL {
            let ranked: Vec<Value> = metrics::top_heads(&heads, p, a.top)
                .iter()
                .map(|(h, s)| json!({ "layer": h.layer, "head": h.head, "score": s }))
                .collect();
            top.insert(p.key().into(), ranked.into());
        }
        let strings: Vec<String> = ids.iter().map(|&t| tokenizer.token_text(t)).collect();
        let out = json!({
            "model": summary,
            "prompt": text,
            "builtin_prompt": a.prompt.is_none(),
            "token_ids": ids,
            "tokens": strings,
            "heads": heads,
            "top": top,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_table(&a, &summary, ids.len(), &heads);
    }
    Ok(())
}

fn print_table(a: &HeadsArgs, summary: &Value, tokens: usize, heads: &[ScoredHead]) {
    let what = if a.prompt.is_some() { "prompt" } else { "built-in probe (a sentence said twice)" };
    println!(
        "model {} ({}, {} layers, {} heads), {what}: {tokens} tokens",
        a.model,
        summary["arch"].as_str().unwrap_or("?"),
        summary["layers"],
        summary["heads"]
    );
    println!();
    println!("layer  head   prev  first  local  entropy  induction");
    for h in heads {
        let s = &h.scores;
        let induction = s.induction.map_or("-".to_string(), |x| format!("{x:.3}"));
        println!(
            "{:>5}  {:>4}  {:.3}  {:.3}  {:.3}  {:>7.3}  {induction:>9}",
            h.layer, h.head, s.previous_token, s.first_token, s.locality, s.entropy
        );
    }
    println!();
    println!("top heads per pattern (layer.head score, best first):");
    for p in Pattern::ALL {
        let ranked = metrics::top_heads(heads, p, a.top);
        let line = if ranked.is_empty() {
            "none (no token repeats in the prompt)".to_string()
        } else {
            ranked.iter().map(|(h, s)| format!("L{}.H{} {s:.3}", h.layer, h.head)).collect::<Vec<_>>().join("  ")
        };
        println!("  {:<19} {line}", p.label());
    }
}

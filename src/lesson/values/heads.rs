//! Placeholder values from running a zoo model: every head's pattern
//! scores on the step's prompt (`attnviz::metrics`), computed once per
//! (model, prompt).

use crate::error::{Error, Result};
use crate::metrics::{self, Pattern, ScoredHead};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The pattern a heads panel tints by: a `Pattern` key or name.
pub(super) fn pattern_of(p: &str) -> Result<Pattern> {
    Pattern::ALL.into_iter().find(|x| x.key() == p || x.name() == p).ok_or_else(|| {
        let names: Vec<&str> = Pattern::ALL.iter().map(|x| x.name()).collect();
        Error::Usage(format!("pattern {p:?}: expected one of {}", names.join(", ")))
    })
}

/// The heads panel's prompt when a step gives none: `attnviz heads`' probe, a sentence said twice.
pub const PROBE: &str = "The old fisherman mended his nets by the harbour while the children ran along the wall. \
                         The old fisherman mended his nets by the harbour while the children ran along the wall.";

/// Positions scored, every head's scores, and the model's config.
type Scored = (usize, Vec<ScoredHead>, crate::model::config::Config);

/// Score every head of a model (zoo or file) on `prompt` (prefill only), once per (model, prompt).
pub(super) fn scores(model: &str, prompt: &str) -> Result<Scored> {
    static DONE: Mutex<BTreeMap<(String, String), Scored>> = Mutex::new(BTreeMap::new());
    let key = (model.to_string(), prompt.to_string());
    if let Some(s) = DONE.lock().ok().and_then(|d| d.get(&key).cloned()) {
        return Ok(s);
    }
    let s = run_scores(model, prompt)?;
    if let Ok(mut d) = DONE.lock() {
        d.insert(key, s.clone());
    }
    Ok(s)
}

fn run_scores(model: &str, prompt: &str) -> Result<Scored> {
    use crate::session::{self, Options, Session};
    let device = crate::model::device("cpu")?;
    let loaded = crate::model::load(model, &device)?;
    let config = match &loaded.model {
        crate::model::Model::Decoder(d) => d.config().clone(),
        _ => return Err(Error::Usage(format!("{model} has no attention heads"))),
    };
    let max = loaded.model.max_positions();
    let ids = session::prompt_ids(&loaded.tokenizer, prompt, false, false, max)?;
    let mut trace = crate::trace::Trace::for_model(&loaded.model, &ids);
    let opts =
        Options { max_new_tokens: 1, sampling: crate::sample::Sampling::Greedy, ignore_eos: true, capture: true };
    let tokenizer = std::sync::Arc::new(loaded.tokenizer);
    Session::start(loaded.model, tokenizer, ids, opts).follow(|step| trace.push(step))?;
    Ok((trace.positions(), metrics::score_trace(&trace)?, config))
}

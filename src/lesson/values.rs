//! The numbers lesson prose may state, computed from code: `sim` (masks,
//! head maps, KV arithmetic, presets, tiling counts), the zoo's configs and
//! training records, and head-pattern scores from running a zoo model.
//! Each panel kind fills its own set of `{placeholders}`; every step also
//! gets `{refN}` citations ("Vaswani et al. (2017)") from its lesson.

use super::schema::{Lesson, Panel};
use crate::error::{Error, Result};
use crate::metrics::{self, Pattern, ScoredHead};
use crate::model::config::Config;
use crate::model::mamba::MambaConfig;
use crate::model::{catalog, zoo};
use crate::sim::kv::{gb, gib, Dtype, KvShape, MambaShape};
use crate::sim::mask::{receptive_field, Mask, MaskKind};
use crate::sim::{heads::HeadMap, presets, tiling};
use std::collections::BTreeMap;
use std::sync::Mutex;

type Values = BTreeMap<String, String>;

/// The largest mask a panel draws.
pub const MAX_MASK: usize = 64;

/// Everything step `index` of `lesson` may say: its panel's values and the lesson's citations.
pub fn step_values(lesson: &Lesson, index: usize) -> Result<Values> {
    let step = lesson.steps.get(index).ok_or_else(|| Error::Usage(format!("lesson has no step {}", index + 1)))?;
    values(&step.panel, &lesson.references)
}

/// The placeholders `panel` fills, plus `{refN}` and `{refN_title}` for each reference (from 1).
pub fn values(panel: &Panel, references: &[String]) -> Result<Values> {
    let mut v = Values::new();
    for (i, r) in references.iter().enumerate() {
        let (cite, title) = citation(r).ok_or_else(|| {
            Error::Usage(format!("reference {:?}: write it as \"Authors (year), Title, arXiv:…\"", r))
        })?;
        v.insert(format!("ref{}", i + 1), cite);
        v.insert(format!("ref{}_title", i + 1), title);
    }
    match panel {
        Panel::None => {}
        Panel::Sdpa { model, layer, head, .. } | Panel::Attention { model, layer, head } => {
            let c = transformer(model)?;
            at(&c, *layer, *head)?;
            put(&mut v, "model", model);
            shape_values(&mut v, &c)?;
            put(&mut v, "layer", layer);
            put(&mut v, "head", head);
            put(&mut v, "kv_head", HeadMap::new(c.num_heads, c.num_kv_heads)?.kv_head_of(*head));
            let d = c.head_dim as f64;
            put(&mut v, "sqrt_d", sig(d.sqrt()));
            put(&mut v, "scale", sig(1.0 / d.sqrt()));
        }
        Panel::Heads { model, pattern, prompt } => {
            let c = transformer(model)?;
            put(&mut v, "model", model);
            shape_values(&mut v, &c)?;
            if prompt.as_ref().is_some_and(|p| p.trim().is_empty()) {
                return Err(Error::Usage("empty prompt".into()));
            }
            if let Some(p) = pattern {
                pattern_of(p)?;
            }
            let (tokens, heads) = scores(model, prompt.as_deref().unwrap_or(PROBE))?;
            put(&mut v, "prompt_tokens", tokens);
            for p in Pattern::ALL {
                let best = metrics::top_heads(&heads, p, 1);
                let (head, score) = match best.first() {
                    Some((h, s)) => (format!("L{}.H{}", h.layer, h.head), format!("{s:.3}")),
                    None => ("none".into(), "none".into()),
                };
                put(&mut v, &format!("best_{}_head", p.key()), head);
                put(&mut v, &format!("best_{}", p.key()), score);
            }
        }
        Panel::Mask { kind, size, window, layers } => mask_values(&mut v, kind, *size, *window, *layers)?,
        Panel::Cache { model } => match zoo_model(model)? {
            Arch::Attention(c) => {
                put(&mut v, "model", model);
                shape_values(&mut v, &c)?;
                let s = kv_shape(&c)?;
                put(&mut v, "dtype", Dtype::F32.name());
                put(&mut v, "bytes_per_value", Dtype::F32.bytes_per_value());
                put(&mut v, "max_positions", group(c.max_positions as u64));
                put(&mut v, "kv_at_max", group(s.bytes(c.max_positions, 1, Dtype::F32)?));
                put(&mut v, "kv_at_max_mib", sig(s.bytes(c.max_positions, 1, Dtype::F32)? as f64 / 1048576.0));
            }
            Arch::Mamba(m) => {
                put(&mut v, "model", model);
                mamba_values(&mut v, &m)?;
            }
        },
        Panel::Calculator { model, context, batch, dtype, claim_gb } => {
            calculator_values(&mut v, model, *context, *batch, dtype, *claim_gb)?
        }
        Panel::Compare { models, view, prompt } => {
            if prompt.as_ref().is_some_and(|p| p.trim().is_empty()) {
                return Err(Error::Usage("empty prompt".into()));
            }
            compare_values(&mut v, models, view)?
        }
        Panel::Tiling { model, layer, head, block_rows, block_cols } => {
            let c = transformer(model)?;
            at(&c, *layer, *head)?;
            if *block_rows == 0 || *block_cols == 0 {
                return Err(Error::Usage(format!("block sizes {block_rows} × {block_cols}: both must be positive")));
            }
            put(&mut v, "model", model);
            shape_values(&mut v, &c)?;
            put(&mut v, "layer", layer);
            put(&mut v, "head", head);
            put(&mut v, "block_rows", block_rows);
            put(&mut v, "block_cols", block_cols);
            let n = c.max_positions;
            let (std, tiled) = (tiling::standard_io(n, c.head_dim), tiling::tiled_io(n, c.head_dim, *block_cols));
            put(&mut v, "io_n", group(n as u64));
            put(&mut v, "io_standard_reads", group(std.reads));
            put(&mut v, "io_standard_writes", group(std.writes));
            put(&mut v, "io_standard", group(std.total()));
            put(&mut v, "io_tiled_reads", group(tiled.reads));
            put(&mut v, "io_tiled_writes", group(tiled.writes));
            put(&mut v, "io_tiled", group(tiled.total()));
            put(&mut v, "io_ratio", sig(std.total() as f64 / tiled.total() as f64));
            put(&mut v, "kv_blocks", n.div_ceil(*block_cols));
        }
        Panel::Scan { model, layer } => {
            let Arch::Mamba(m) = zoo_model(model)? else {
                return Err(Error::Usage(format!("{model}: the scan panel needs a Mamba model")));
            };
            if *layer >= m.n_layer {
                return Err(Error::Usage(format!("layer {layer}: {model} has {} layers", m.n_layer)));
            }
            put(&mut v, "model", model);
            put(&mut v, "layer", layer);
            mamba_values(&mut v, &m)?;
        }
    }
    Ok(v)
}

fn put(v: &mut Values, key: &str, value: impl ToString) {
    v.insert(key.to_string(), value.to_string());
}

/// "Vaswani et al. (2017)" and the title, from "Authors (year), Title, arXiv:…".
pub fn citation(reference: &str) -> Option<(String, String)> {
    let open = reference.find(" (")?;
    let (authors, rest) = (&reference[..open], &reference[open + 2..]);
    let close = rest.find(')')?;
    let year = &rest[..close];
    if year.len() != 4 || !year.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let title = rest[close + 1..].trim_start_matches(',').trim();
    let title = title.rsplit_once(", arXiv:").map_or(title, |(t, _)| t).trim();
    let et_al = authors.contains("et al") || authors.contains('…');
    let names: Vec<&str> = authors
        .split(", ")
        .map(|a| a.trim_end_matches("et al.").trim_end_matches('…').trim())
        .filter(|a| !a.is_empty())
        .collect();
    let who = match (names.as_slice(), et_al) {
        ([one], false) => one.to_string(),
        ([a, b], false) => format!("{a} and {b}"),
        ([first, ..], _) => format!("{first} et al."),
        ([], _) => return None,
    };
    (!title.is_empty()).then(|| (format!("{who} ({year})"), title.to_string()))
}

enum Arch {
    Attention(Config),
    Mamba(MambaConfig),
}

/// A zoo model's config, or an error listing the zoo.
fn zoo_model(name: &str) -> Result<Arch> {
    let m =
        zoo::get(name).ok_or_else(|| Error::Usage(format!("no zoo model {name:?}; the zoo has {}", zoo::names())))?;
    let (config, _, _) = m.parts()?;
    let json: serde_json::Value =
        serde_json::from_str(config).map_err(|e| Error::bad_file(format!("{name}/config.json"), e))?;
    if MambaConfig::is_mamba(&json) {
        Ok(Arch::Mamba(MambaConfig::from_json(&json)?))
    } else {
        Ok(Arch::Attention(Config::from_json(&json)?))
    }
}

fn transformer(name: &str) -> Result<Config> {
    match zoo_model(name)? {
        Arch::Attention(c) => Ok(c),
        Arch::Mamba(_) => Err(Error::Usage(format!("{name} is a Mamba model: it has no attention heads"))),
    }
}

/// Fails unless `layer` and `head` exist in the model.
fn at(c: &Config, layer: usize, head: usize) -> Result<()> {
    if layer >= c.num_layers || head >= c.num_heads {
        return Err(Error::Usage(format!(
            "layer {layer}, head {head}: the model has {} layers of {} heads",
            c.num_layers, c.num_heads
        )));
    }
    Ok(())
}

fn kv_shape(c: &Config) -> Result<KvShape> {
    KvShape::new(c.num_layers, c.num_heads, c.num_kv_heads, c.head_dim, c.windows.clone())
}

/// A transformer's shape: layers, heads, kv_heads, group, head_dim, window, held, bytes_per_token.
fn shape_values(v: &mut Values, c: &Config) -> Result<()> {
    let s = kv_shape(c)?;
    put(v, "layers", c.num_layers);
    put(v, "heads", c.num_heads);
    put(v, "kv_heads", c.num_kv_heads);
    put(v, "group", s.head_map()?.group_size());
    put(v, "head_dim", c.head_dim);
    put(v, "mixing", s.head_map()?.sharing().name());
    put(v, "bytes_per_token", group(s.bytes_per_token(Dtype::F32)?));
    if let Some(w) = s.window() {
        put(v, "window", w);
        put(v, "held", crate::sim::kv::held(Some(w), usize::MAX));
    }
    Ok(())
}

fn mamba_values(v: &mut Values, m: &MambaConfig) -> Result<()> {
    let shape = MambaShape { layers: m.n_layer, d_inner: m.d_inner, d_state: m.d_state, d_conv: m.d_conv };
    let bytes = shape.state_bytes(1, Dtype::F32)?;
    put(v, "layers", m.n_layer);
    put(v, "d_model", m.d_model);
    put(v, "d_inner", m.d_inner);
    put(v, "d_state", m.d_state);
    put(v, "d_conv", m.d_conv);
    put(v, "expand", m.expand);
    put(v, "state_bytes", group(bytes));
    put(v, "state_kib", sig(bytes as f64 / 1024.0));
    Ok(())
}

fn mask_values(v: &mut Values, kind: &str, size: usize, window: Option<usize>, layers: usize) -> Result<()> {
    if size == 0 || size > MAX_MASK {
        return Err(Error::Usage(format!("mask size {size}: must be 1 to {MAX_MASK}")));
    }
    if layers == 0 {
        return Err(Error::Usage("layers 0: must be positive".into()));
    }
    let mk = match (kind, window) {
        ("causal", None) => MaskKind::Causal,
        ("full", None) => MaskKind::Full,
        ("sliding", Some(0)) => return Err(Error::Usage("window 0: must be positive".into())),
        ("sliding", Some(w)) => MaskKind::Sliding(w),
        ("sliding", None) => return Err(Error::Usage("a sliding mask needs a window".into())),
        ("causal" | "full", Some(_)) => return Err(Error::Usage(format!("a {kind} mask takes no window"))),
        _ => return Err(Error::Usage(format!("mask kind {kind:?}: expected causal, sliding or full"))),
    };
    let mask = Mask::new(mk, size);
    let last = size - 1;
    put(v, "size", size);
    put(v, "layers", layers);
    put(v, "last", last);
    put(v, "keys_last", mask.count(last));
    put(v, "earliest", mask.through(layers).first(last).unwrap_or(0));
    if let Some(w) = window {
        put(v, "window", w);
        put(v, "window_minus_one", w - 1);
        put(v, "receptive_field", receptive_field(w, layers));
    }
    let m = presets::find("mistral-7b").ok_or_else(|| Error::Usage("no mistral-7b preset".into()))?;
    if let presets::Windows::All(w) = m.windows {
        put(v, "mistral_layers", m.layers);
        put(v, "mistral_window", group(w as u64));
        put(v, "mistral_reach", group(receptive_field(w, m.layers) as u64));
        put(v, "mistral_paper_reach", group((w * m.layers) as u64));
    }
    Ok(())
}

fn calculator_values(
    v: &mut Values,
    model: &str,
    context: usize,
    batch: usize,
    dtype: &str,
    claim_gb: Option<f64>,
) -> Result<()> {
    if context == 0 || batch == 0 {
        return Err(Error::Usage(format!("context {context}, batch {batch}: both must be positive")));
    }
    let dt = Dtype::parse(dtype)?;
    if let Some(p) = presets::find(model) {
        put(v, "max_positions", group(p.max_positions as u64));
        put(v, "max_gib", sig(gib(p.shape()?.bytes(p.max_positions, batch, Dtype::parse(dtype)?)?)));
    }
    let (title, shape) = match presets::find(model) {
        Some(p) => (p.title.to_string(), p.shape()?),
        None => match zoo_model(model) {
            Ok(Arch::Attention(c)) => (model.to_string(), kv_shape(&c)?),
            Ok(Arch::Mamba(_)) => return Err(Error::Usage(format!("{model}: a Mamba model has no KV cache"))),
            Err(_) => {
                return Err(Error::Usage(format!(
                    "no preset or zoo model {model:?}; presets: {}; zoo: {}",
                    presets::names(),
                    zoo::names()
                )))
            }
        },
    };
    let r = shape.report(context, batch, dt)?;
    put(v, "model", &title);
    put(v, "layers", shape.layers);
    put(v, "heads", shape.heads);
    put(v, "kv_heads", shape.kv_heads);
    put(v, "group", shape.head_map()?.group_size());
    put(v, "head_dim", shape.head_dim);
    put(v, "mixing", shape.head_map()?.sharing().name());
    put(v, "context", group(context as u64));
    put(v, "batch", batch);
    put(v, "dtype", dt.name());
    put(v, "bytes_per_value", sig(dt.bytes_per_value()));
    put(v, "bytes_per_token", group(r.bytes_per_token));
    put(v, "kv_bytes", group(r.kv_bytes));
    put(v, "kv_gb", sig(gb(r.kv_bytes)));
    put(v, "kv_gib", sig(gib(r.kv_bytes)));
    put(v, "mha_gib", sig(gib(r.mha)));
    put(v, "mqa_gib", sig(gib(r.mqa)));
    put(v, "mqa_gb", sig(gb(r.mqa)));
    if let Some(w) = shape.window() {
        put(v, "window", group(w as u64));
        put(v, "no_window_gib", sig(gib(r.no_window)));
    }
    if !context.is_multiple_of(1000) && context > 1000 {
        let round = context / 1000 * 1000;
        let b = shape.bytes(round, batch, dt)?;
        put(v, "round_context", group(round as u64));
        put(v, "round_kv_gb", sig(gb(b)));
        put(v, "round_kv_gib", sig(gib(b)));
    }
    if let Some(claim) = claim_gb {
        if claim.is_nan() || claim <= 0.0 {
            return Err(Error::Usage(format!("claim_gb {claim}: must be positive")));
        }
        put(v, "claim", sig(claim));
        put(v, "claim_ratio", sig(gb(r.kv_bytes) / claim));
        // KV-head counts that divide the heads, and what each would hold.
        let fits: Vec<(usize, u64)> = (1..=shape.heads)
            .filter(|k| shape.heads.is_multiple_of(*k))
            .filter_map(|k| Some((k, KvShape { kv_heads: k, ..shape.clone() }.bytes(context, batch, dt).ok()?)))
            .collect();
        let near = |unit: fn(u64) -> f64| {
            fits.iter().copied().min_by(|a, b| (unit(a.1) - claim).abs().total_cmp(&(unit(b.1) - claim).abs()))
        };
        // Only an exact match backs "the figure appears with K KV heads".
        if let Some((k, b)) = near(gib).filter(|&(_, b)| gib(b) == claim) {
            put(v, "claim_kv_heads", k);
            put(v, "claim_kv_heads_gib", sig(gib(b)));
            put(v, "claim_kv_heads_gb", sig(gb(b)));
            put(v, "claim_kv_heads_group", shape.heads / k);
        }
        if let Some((k, b)) = near(gb) {
            put(v, "claim_nearest_gb_kv_heads", k);
            put(v, "claim_nearest_gb", sig(gb(b)));
        }
    }
    Ok(())
}

fn compare_values(v: &mut Values, models: &[String], view: &str) -> Result<()> {
    if !["attention", "heads", "memory"].contains(&view) {
        return Err(Error::Usage(format!("view {view:?}: expected attention, heads or memory")));
    }
    if models.len() < 2 {
        return Err(Error::Usage("compare needs at least two models".into()));
    }
    let entries = catalog::zoo_entries()?;
    let mut states = vec![];
    let mut per_token = vec![];
    for name in models {
        let arch = zoo_model(name)?;
        let e = entries.iter().find(|e| &e.name == name).ok_or_else(|| Error::Usage(format!("no zoo model {name}")))?;
        let p = name.replace('-', "_");
        let key = |k: &str| format!("{p}_{k}");
        put(v, &key("mixing"), &e.mixing);
        if let Some(params) = e.parameters {
            put(v, &key("params"), format!("{}M", sig2(params as f64 / 1e6)));
        }
        if let Some(loss) = e.training.as_ref().and_then(|t| t.get("eval_loss")?.as_f64()) {
            put(v, &key("loss"), format!("{loss:.3}"));
        }
        match arch {
            Arch::Attention(c) => {
                let s = kv_shape(&c)?;
                let map = s.head_map()?;
                put(v, &key("heads"), c.num_heads);
                put(v, &key("kv_heads"), c.num_kv_heads);
                put(v, &key("group"), map.group_size());
                let bpt = s.bytes_per_token(Dtype::F32)?;
                put(v, &key("kv_per_token"), group(bpt));
                put(v, &key("kv_per_token_mha"), group(s.as_mha().bytes_per_token(Dtype::F32)?));
                if let Some(w) = s.window() {
                    put(v, &key("window"), w);
                    put(v, &key("held"), crate::sim::kv::held(Some(w), usize::MAX));
                    put(v, &key("kv_held_max"), group(s.bytes(w, 1, Dtype::F32)?));
                }
                per_token.push((p, bpt));
            }
            Arch::Mamba(m) => {
                let shape = MambaShape { layers: m.n_layer, d_inner: m.d_inner, d_state: m.d_state, d_conv: m.d_conv };
                let bytes = shape.state_bytes(1, Dtype::F32)?;
                put(v, &key("state"), group(bytes));
                put(v, &key("state_kib"), sig(bytes as f64 / 1024.0));
                states.push(bytes);
            }
        }
    }
    // Where a transformer's cache outgrows the (first) Mamba's fixed state.
    if let Some(&state) = states.first() {
        for (p, bpt) in &per_token {
            put(v, &format!("{p}_state_positions"), group(state.div_ceil(*bpt)));
        }
    }
    put(v, "view", view);
    Ok(())
}

/// The pattern a heads panel tints by: a `Pattern` key or name.
fn pattern_of(p: &str) -> Result<Pattern> {
    Pattern::ALL.into_iter().find(|x| x.key() == p || x.name() == p).ok_or_else(|| {
        let names: Vec<&str> = Pattern::ALL.iter().map(|x| x.name()).collect();
        Error::Usage(format!("pattern {p:?}: expected one of {}", names.join(", ")))
    })
}

/// The heads panel's prompt when a step gives none: `attnviz heads`' probe, a sentence said twice.
pub const PROBE: &str = "The old fisherman mended his nets by the harbour while the children ran along the wall. \
                         The old fisherman mended his nets by the harbour while the children ran along the wall.";

type Scored = (usize, Vec<ScoredHead>);

/// Score every head of a zoo model on `prompt` (prefill only), once per (model, prompt).
fn scores(model: &str, prompt: &str) -> Result<Scored> {
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
    let max = loaded.model.max_positions();
    let ids = session::prompt_ids(&loaded.tokenizer, prompt, false, false, max)?;
    let mut trace = crate::trace::Trace::for_model(&loaded.model, &ids);
    let opts =
        Options { max_new_tokens: 1, sampling: crate::sample::Sampling::Greedy, ignore_eos: true, capture: true };
    let tokenizer = std::sync::Arc::new(loaded.tokenizer);
    Session::start(loaded.model, tokenizer, ids, opts).follow(|step| trace.push(step))?;
    Ok((trace.positions(), metrics::score_trace(&trace)?))
}

/// 1234567 → "1,234,567".
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Four significant digits, trailing zeros dropped: 154.6, 144, 1.5, 0.1768.
pub fn sig(x: f64) -> String {
    trim(x, 4)
}

/// Three significant digits: 1.15.
fn sig2(x: f64) -> String {
    trim(x, 3)
}

fn trim(x: f64, digits: i32) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let decimals = (digits - 1 - x.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!([sig(154.618_822_656), sig(144.0), sig(1.5), sig(0.176_776_7)], ["154.6", "144", "1.5", "0.1768"]);
        assert_eq!(group(154_618_822_656), "154,618,822,656");
        assert_eq!(sig2(1.148_032), "1.15");
    }

    #[test]
    fn citations_from_references() {
        let c = |r: &str| citation(r).map(|c| c.0);
        assert_eq!(
            c("Vaswani, Shazeer, Parmar (2017), Attention Is All You Need, arXiv:1706.03762").as_deref(),
            Some("Vaswani et al. (2017)")
        );
        assert_eq!(c("Shazeer (2019), Fast Transformer Decoding, arXiv:1911.02150").as_deref(), Some("Shazeer (2019)"));
        assert_eq!(c("Gu, Dao (2023), Mamba, arXiv:2312.00752").as_deref(), Some("Gu and Dao (2023)"));
        assert_eq!(c("Brown, Mann et al. (2020), GPT-3, arXiv:2005.14165").as_deref(), Some("Brown et al. (2020)"));
        assert_eq!(citation("no year here"), None);
    }
}

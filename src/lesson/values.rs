//! The numbers lesson prose may state, computed from code: `sim` (masks,
//! head maps, KV arithmetic, presets, tiling counts), the zoo's configs and
//! training records, and head-pattern scores from running a zoo model.
//! Each panel kind fills its own set of `{placeholders}`; every step also
//! gets `{refN}` citations ("Vaswani et al. (2017)") from its lesson.

use super::schema::{Lesson, Panel};
use crate::error::{Error, Result};
use crate::metrics::{self, Pattern};
use crate::model::config::Config;
use crate::model::mamba::MambaConfig;
use crate::model::zoo;
use crate::sim::kv::group_digits;
use crate::sim::kv::{Dtype, KvShape, MambaShape};
use crate::sim::{heads::HeadMap, tiling};
use std::collections::BTreeMap;

mod heads;
mod sizes;

pub use heads::PROBE;
use heads::{pattern_of, scores};
use sizes::{calculator_values, compare_values, mask_values};

pub(super) type Values = BTreeMap<String, String>;

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
        Panel::Heads { model, pattern, prompt, prefer_cached } => {
            transformer(model)?;
            if prompt.as_ref().is_some_and(|p| p.trim().is_empty()) {
                return Err(Error::Usage("empty prompt".into()));
            }
            if let Some(p) = pattern {
                pattern_of(p)?;
            }
            let prompt = prompt.as_deref().unwrap_or(PROBE);
            let used = crate::lesson::schema::heads_model(model, *prefer_cached);
            let (tokens, heads, c) = scores(&used, prompt)?;
            let zoo = used == *model;
            put(&mut v, "model", if zoo { model.clone() } else { "SmolLM2-135M-Instruct".into() });
            shape_values(&mut v, &c)?;
            put(&mut v, "prompt_tokens", tokens);
            let best = |heads: &[metrics::ScoredHead], p: Pattern| match metrics::top_heads(heads, p, 1).first() {
                Some((h, s)) => (format!("L{}.H{}", h.layer, h.head), format!("{s:.3}")),
                None => ("none".into(), "none".into()),
            };
            for p in Pattern::ALL {
                let (head, score) = best(&heads, p);
                put(&mut v, &format!("best_{}_head", p.key()), head);
                put(&mut v, &format!("best_{}", p.key()), score);
            }
            heads_notes(&mut v, zoo, model, prompt)?;
        }
        Panel::Mask { kind, size, window, layers } => mask_values(&mut v, kind, *size, *window, *layers)?,
        Panel::Cache { model } => match zoo_model(model)? {
            Arch::Attention(c) => {
                put(&mut v, "model", model);
                shape_values(&mut v, &c)?;
                let s = kv_shape(&c)?;
                put(&mut v, "dtype", Dtype::F32.name());
                put(&mut v, "bytes_per_value", Dtype::F32.bytes_per_value());
                put(&mut v, "max_positions", group_digits(c.max_positions as u64));
                put(&mut v, "kv_at_max", group_digits(s.bytes(c.max_positions, 1, Dtype::F32)?));
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
            put(&mut v, "io_n", group_digits(n as u64));
            put(&mut v, "io_standard_reads", group_digits(std.reads));
            put(&mut v, "io_standard_writes", group_digits(std.writes));
            put(&mut v, "io_standard", group_digits(std.total()));
            put(&mut v, "io_tiled_reads", group_digits(tiled.reads));
            put(&mut v, "io_tiled_writes", group_digits(tiled.writes));
            put(&mut v, "io_tiled", group_digits(tiled.total()));
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
    Attention(Box<Config>),
    Mamba(MambaConfig),
}

/// The sentences that depend on which model ran: the zoo's soft heads said
/// honestly, or SmolLM2's set beside the zoo model's scores on the same prompt.
fn heads_notes(v: &mut BTreeMap<String, String>, zoo: bool, model: &str, prompt: &str) -> Result<()> {
    let (previous, induction) = if zoo {
        (
            "That is clear but **soft**: the zoo's models are small and briefly trained, they spread much of \
             their weight elsewhere, and their scores move with the prompt."
                .to_string(),
            "honestly, the zoo's models have not formed an induction head yet. Larger trained models can have \
             sharp ones; score one with `attnviz heads --model …` to compare."
                .to_string(),
        )
    } else {
        let (_, zoo_heads, _) = scores(model, prompt)?;
        let top = |p: Pattern| metrics::top_heads(&zoo_heads, p, 1).first().map_or(0.0, |(_, s)| *s);
        (
            format!(
                "The zoo's `{model}`, small and briefly trained, reaches {:.3} on the same prompt: its heads are \
                 softer.",
                top(Pattern::PreviousToken)
            ),
            format!(
                "a head that copies what followed last time. The zoo's `{model}` reaches only {:.3} on the same \
                 prompt: it has not formed one yet.",
                top(Pattern::Induction)
            ),
        )
    };
    put(v, "previous_note", previous);
    put(v, "induction_note", induction);
    Ok(())
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
        Ok(Arch::Attention(Box::new(Config::from_json(&json)?)))
    }
}

fn transformer(name: &str) -> Result<Config> {
    match zoo_model(name)? {
        Arch::Attention(c) => Ok(*c),
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
    put(v, "bytes_per_token", group_digits(s.bytes_per_token(Dtype::F32)?));
    if let Some(w) = s.window() {
        put(v, "window", w);
        put(v, "held", crate::sim::kv::held(Some(w), usize::MAX));
    }
    Ok(())
}

fn mamba_values(v: &mut Values, m: &MambaConfig) -> Result<()> {
    let shape = MambaShape::mamba(m.n_layer, m.d_inner, m.d_state, m.d_conv);
    let bytes = shape.state_bytes(1, Dtype::F32)?;
    put(v, "layers", m.n_layer);
    put(v, "d_model", m.d_model);
    put(v, "d_inner", m.d_inner);
    put(v, "d_state", m.d_state);
    put(v, "d_conv", m.d_conv);
    put(v, "expand", m.expand);
    put(v, "state_bytes", group_digits(bytes));
    put(v, "state_kib", sig(bytes as f64 / 1024.0));
    Ok(())
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
        assert_eq!(group_digits(154_618_822_656), "154,618,822,656");
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

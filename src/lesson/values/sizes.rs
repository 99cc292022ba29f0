//! Placeholder values about sizes: masks and reach, the KV-cache
//! calculator on presets and zoo configs, and zoo models side by side.

use super::{kv_shape, MAX_MASK};
use super::{put, sig, sig2, zoo_model, Arch, Values};
use crate::error::{Error, Result};
use crate::model::{catalog, zoo};
use crate::sim::kv::group_digits;
use crate::sim::kv::{gb, gib, Dtype, KvShape, MambaShape};
use crate::sim::mask::{receptive_field, Mask, MaskKind};
use crate::sim::presets;

pub(super) fn mask_values(v: &mut Values, kind: &str, size: usize, window: Option<usize>, layers: usize) -> Result<()> {
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
        put(v, "mistral_window", group_digits(w as u64));
        put(v, "mistral_reach", group_digits(receptive_field(w, m.layers) as u64));
        put(v, "mistral_paper_reach", group_digits((w * m.layers) as u64));
    }
    Ok(())
}

pub(super) fn calculator_values(
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
        put(v, "max_positions", group_digits(p.max_positions as u64));
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
    put(v, "context", group_digits(context as u64));
    put(v, "batch", batch);
    put(v, "dtype", dt.name());
    put(v, "bytes_per_value", sig(dt.bytes_per_value()));
    put(v, "bytes_per_token", group_digits(r.bytes_per_token));
    put(v, "kv_bytes", group_digits(r.kv_bytes));
    put(v, "kv_gb", sig(gb(r.kv_bytes)));
    put(v, "kv_gib", sig(gib(r.kv_bytes)));
    put(v, "mha_gib", sig(gib(r.mha)));
    put(v, "mqa_gib", sig(gib(r.mqa)));
    put(v, "mqa_gb", sig(gb(r.mqa)));
    if let Some(w) = shape.window() {
        put(v, "window", group_digits(w as u64));
        put(v, "no_window_gib", sig(gib(r.no_window)));
    }
    if !context.is_multiple_of(1000) && context > 1000 {
        let round = context / 1000 * 1000;
        let b = shape.bytes(round, batch, dt)?;
        put(v, "round_context", group_digits(round as u64));
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

pub(super) fn compare_values(v: &mut Values, models: &[String], view: &str) -> Result<()> {
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
                put(v, &key("kv_per_token"), group_digits(bpt));
                put(v, &key("kv_per_token_mha"), group_digits(s.as_mha().bytes_per_token(Dtype::F32)?));
                if let Some(w) = s.window() {
                    put(v, &key("window"), w);
                    put(v, &key("held"), crate::sim::kv::held(Some(w), usize::MAX));
                    put(v, &key("kv_held_max"), group_digits(s.bytes(w, 1, Dtype::F32)?));
                }
                per_token.push((p, bpt));
            }
            Arch::Mamba(m) => {
                let shape = MambaShape::mamba(m.n_layer, m.d_inner, m.d_state, m.d_conv);
                let bytes = shape.state_bytes(1, Dtype::F32)?;
                put(v, &key("state"), group_digits(bytes));
                put(v, &key("state_kib"), sig(bytes as f64 / 1024.0));
                states.push(bytes);
            }
        }
    }
    // Where a transformer's cache outgrows the (first) Mamba's fixed state.
    if let Some(&state) = states.first() {
        for (p, bpt) in &per_token {
            put(v, &format!("{p}_state_positions"), group_digits(state.div_ceil(*bpt)));
        }
    }
    put(v, "view", view);
    Ok(())
}

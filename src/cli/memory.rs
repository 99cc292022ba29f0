//! `attnviz memory`: the bytes of keys and values a model holds at N
//! positions, as configured and as MHA, MQA and without its window; for a
//! Mamba or Mamba-2, its fixed state. Reads only the config where it can (zoo, folder,
//! Hub id, GGUF header) or takes a preset of a published config; the
//! arithmetic is `attnviz::sim::kv`.

use anyhow::{bail, Context};
use attnviz::model::config::Config;
use attnviz::model::gguf::Gguf;
use attnviz::model::json::read_json;
use attnviz::model::mamba::MambaConfig;
use attnviz::model::mamba2::Mamba2Config;
use attnviz::model::source::{self, Source};
use attnviz::sim::kv::group_digits;
use attnviz::sim::kv::{gb, gib, Dtype, KvShape, MambaShape};
use attnviz::sim::presets;
use clap::Args;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct MemoryArgs {
    /// A zoo model, folder, Hub id or .gguf file (only its config is read), or a published config (see --help).
    #[arg(long, value_name = "SRC", long_help = model_help())]
    model: Option<String>,
    /// Layers (overrides the model's).
    #[arg(long, value_name = "L")]
    layers: Option<usize>,
    /// Query heads.
    #[arg(long, value_name = "H")]
    heads: Option<usize>,
    /// Key/value heads (without --model: as many as --heads).
    #[arg(long, value_name = "K")]
    kv_heads: Option<usize>,
    /// Dimensions per head.
    #[arg(long, value_name = "D")]
    head_dim: Option<usize>,
    /// Sliding window W on every layer: a layer holds W − 1 positions.
    #[arg(long, value_name = "W")]
    window: Option<usize>,
    /// Positions fed (prompt + generated tokens); required.
    #[arg(long, value_name = "N")]
    context: Option<usize>,
    /// Sequences held at once.
    #[arg(long, value_name = "B", default_value_t = 1)]
    batch: usize,
    /// How each value is stored: f32 (what attnviz itself holds), f16, bf16 or q8_0 (ggml: 34 bytes per 32).
    #[arg(long, default_value = "f16")]
    dtype: String,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

impl MemoryArgs {
    /// The flags that set the attention shape, with their values.
    fn shape_flags(&self) -> [(&'static str, Option<usize>); 5] {
        [
            ("--layers", self.layers),
            ("--heads", self.heads),
            ("--kv-heads", self.kv_heads),
            ("--head-dim", self.head_dim),
            ("--window", self.window),
        ]
    }
}

fn model_help() -> String {
    let list: Vec<String> = presets::PRESETS
        .iter()
        .map(|p| {
            let w = match p.windows {
                presets::Windows::None => String::new(),
                presets::Windows::All(w) => format!(", window {w}"),
                presets::Windows::EvenLayers(w) => format!(", window {w} on even layers"),
            };
            let dims = format!("{} layers, {}/{} heads, head_dim {}{w}", p.layers, p.heads, p.kv_heads, p.head_dim);
            format!("  {:<14} {} ({dims})", p.name, p.title)
        })
        .collect();
    format!(
        "A zoo model, Hugging Face folder, Hub id (org/name[@revision]) or .gguf file (only its config is read), \
         or one of these published configs:\n{}\n--layers, --heads, --kv-heads, --head-dim and --window override \
         what the model says.",
        list.join("\n")
    )
}

/// What the cache size depends on.
enum Shape {
    Attention(KvShape),
    Mamba(MambaShape),
}

/// A described model: its name, where it came from, its architecture.
struct Described {
    name: Option<String>,
    /// preset, zoo, folder, hub, gguf or custom.
    origin: &'static str,
    /// The config's architecture (none for presets and custom shapes).
    arch: Option<String>,
    preset: Option<&'static presets::Preset>,
    shape: Shape,
}

impl Described {
    /// "tiny-swa (zoo, mistral)", "llama-3-8b (Llama-3-8B, meta-llama/Meta-Llama-3-8B)", "custom shape".
    fn title(&self) -> String {
        match (&self.name, self.preset, &self.arch) {
            (Some(n), Some(p), _) => format!("{n} ({}, {})", p.title, p.source),
            (Some(n), None, Some(a)) => format!("{n} ({}, {a})", self.origin),
            (Some(n), None, None) => format!("{n} ({})", self.origin),
            (None, _, _) => "custom shape".into(),
        }
    }
}

pub fn run(a: MemoryArgs) -> anyhow::Result<()> {
    let Some(context) = a.context else { bail!("--context N is required: the positions held") };
    if a.batch == 0 {
        bail!("--batch 0: must be positive");
    }
    let dtype = Dtype::parse(&a.dtype).map_err(|e| anyhow::anyhow!("--{e}"))?;
    if let Some((flag, _)) = a.shape_flags().iter().find(|(_, v)| *v == Some(0)) {
        bail!("{flag} 0: must be positive");
    }
    let d = match &a.model {
        Some(src) => with_overrides(describe(src)?, &a)?,
        None => custom(&a)?,
    };
    let out = report(&d, context, a.batch, dtype)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_table(&d, &out);
    }
    Ok(())
}

/// The shape from --layers, --heads, --kv-heads, --head-dim and --window alone.
fn custom(a: &MemoryArgs) -> anyhow::Result<Described> {
    let missing: Vec<&str> = [("--layers", a.layers), ("--heads", a.heads), ("--head-dim", a.head_dim)]
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| *n)
        .collect();
    let (Some(layers), Some(heads), Some(head_dim)) = (a.layers, a.heads, a.head_dim) else {
        bail!("give --model SRC, or --layers, --heads and --head-dim (missing {})", missing.join(", "))
    };
    let kv_heads = a.kv_heads.unwrap_or(heads);
    divides(heads, kv_heads)?;
    let shape = KvShape::uniform(layers, heads, kv_heads, head_dim, a.window)?;
    Ok(Described { name: None, origin: "custom", arch: None, preset: None, shape: Shape::Attention(shape) })
}

/// GQA needs whole groups: each KV head serves the same number of query heads.
fn divides(heads: usize, kv_heads: usize) -> anyhow::Result<()> {
    if !heads.is_multiple_of(kv_heads) {
        bail!("--kv-heads {kv_heads} does not divide the {heads} query heads into equal groups");
    }
    Ok(())
}

/// Apply the shape flags on top of a model's config.
fn with_overrides(mut d: Described, a: &MemoryArgs) -> anyhow::Result<Described> {
    match &mut d.shape {
        Shape::Mamba(_) => {
            if let Some((flag, _)) = a.shape_flags().iter().find(|(_, v)| v.is_some()) {
                bail!(
                    "{flag}: {} is a Mamba model, with no attention heads or window",
                    d.name.as_deref().unwrap_or("")
                );
            }
        }
        Shape::Attention(s) => {
            let layers = a.layers.unwrap_or(s.layers);
            let windows = match a.window {
                Some(w) => vec![Some(w); layers],
                None if layers == s.layers => s.windows.clone(),
                None if s.windows.iter().all(|w| *w == s.windows[0]) => vec![s.windows[0]; layers],
                None => bail!("--layers: the model's layers have different windows; give --window too"),
            };
            let (heads, kv_heads) = (a.heads.unwrap_or(s.heads), a.kv_heads.unwrap_or(s.kv_heads));
            divides(heads, kv_heads)?;
            *s = KvShape::new(layers, heads, kv_heads, a.head_dim.unwrap_or(s.head_dim), windows)?;
        }
    }
    Ok(d)
}

/// A preset, or the config of anything the engine loads, without its weights.
fn describe(src: &str) -> anyhow::Result<Described> {
    let named = |origin, arch: &str, shape| Described {
        name: Some(src.into()),
        origin,
        arch: Some(arch.into()),
        preset: None,
        shape,
    };
    if !Path::new(src).exists() {
        if let Some(p) = presets::find(src) {
            let shape = Shape::Attention(p.shape()?);
            return Ok(Described { name: Some(p.name.into()), origin: "preset", arch: None, preset: Some(p), shape });
        }
    }
    let (origin, cfg) = match Source::parse(src) {
        Ok(Source::Zoo(m)) => {
            let text = m.config.with_context(|| format!("zoo model {src} was built without its config.json"))?;
            ("zoo", serde_json::from_str(text).with_context(|| format!("{src}/config.json: not valid JSON"))?)
        }
        Ok(Source::Folder(dir)) => ("folder", read_json(&dir.join("config.json"))?),
        Ok(Source::Hub { id, revision }) => ("hub", read_json(&hub_config(&id, &revision)?)?),
        Ok(Source::Gguf(path)) => {
            let (g, mut file) = Gguf::open(&path)?;
            let shape = match g.arch.as_str() {
                "mamba" => mamba_shape(&g.mamba_config(&path)?),
                "mamba2" => mamba2_shape(&g.mamba2_config(&path)?),
                _ => Shape::Attention(kv_shape(&g.config(&mut file, &path)?)?),
            };
            return Ok(named("gguf", &g.arch, shape));
        }
        Err(attnviz::Error::NotFound { .. }) if !src.contains(['/', '\\']) && !src.ends_with(".gguf") => {
            bail!("--model {src}: no such preset, zoo model or path (presets: {})", presets::names())
        }
        Err(e) => return Err(e.into()),
    };
    if MambaConfig::is_mamba(&cfg) {
        return Ok(named(origin, "mamba", mamba_shape(&MambaConfig::from_json(&cfg)?)));
    }
    if Mamba2Config::is_mamba2(&cfg) {
        return Ok(named(origin, "mamba2", mamba2_shape(&Mamba2Config::from_json(&cfg)?)));
    }
    let c = Config::from_json(&cfg)?;
    Ok(named(origin, c.arch.name(), Shape::Attention(kv_shape(&c)?)))
}

fn kv_shape(c: &Config) -> attnviz::Result<KvShape> {
    KvShape::new(c.num_layers, c.num_heads, c.num_kv_heads, c.head_dim, c.windows.clone())
}

fn mamba_shape(c: &MambaConfig) -> Shape {
    Shape::Mamba(MambaShape::mamba(c.n_layer, c.d_inner, c.d_state, c.d_conv))
}

fn mamba2_shape(c: &Mamba2Config) -> Shape {
    Shape::Mamba(MambaShape::mamba2(c.n_layer, c.heads, c.head_dim, c.d_state, c.n_groups, c.d_conv))
}

/// A Hub model's config.json alone: from the cache, else downloaded (unless offline).
fn hub_config(id: &str, revision: &str) -> anyhow::Result<PathBuf> {
    let root = source::cache_root().join(format!("models--{}", id.replace('/', "--")));
    let commit = std::fs::read_to_string(root.join("refs").join(revision))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| revision.to_string());
    let cached = root.join("snapshots").join(commit).join("config.json");
    if cached.is_file() {
        return Ok(cached);
    }
    if std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false" | "False")) {
        bail!("model {id}@{revision} is not in the Hugging Face cache at {} (HF_HUB_OFFLINE is set)", root.display());
    }
    let cache = hf_hub::Cache::new(source::cache_root());
    let api = hf_hub::api::sync::ApiBuilder::from_cache(cache).with_progress(false).build()?;
    let repo = hf_hub::Repo::with_revision(id.into(), hf_hub::RepoType::Model, revision.into());
    api.repo(repo).get("config.json").with_context(|| format!("model {id}@{revision}: config.json"))
}

fn report(d: &Described, context: usize, batch: usize, dtype: Dtype) -> anyhow::Result<Value> {
    let head = json!({
        "model": d.name, "origin": d.origin, "arch": d.arch,
        "preset": d.preset.map(|p| json!({ "title": p.title, "source": p.source, "max_positions": p.max_positions })),
        "context": context, "batch": batch,
        "dtype": dtype.name(), "bytes_per_value": dtype.bytes_per_value(),
    });
    let body = match &d.shape {
        Shape::Attention(s) => {
            let r = s.report(context, batch, dtype)?;
            let map = s.head_map()?;
            let mixing = if s.window().is_some() {
                format!("{}+window", map.sharing().name())
            } else {
                map.sharing().name().into()
            };
            json!({
                "family": "transformer", "mixing": mixing, "layers": s.layers, "heads": s.heads,
                "kv_heads": s.kv_heads, "head_dim": s.head_dim, "windows": s.windows,
                "kv_bytes": r.kv_bytes, "bytes_per_token": r.bytes_per_token, "positions_held": r.positions_held,
                "variants": {
                    "mha": { "kv_heads": s.heads, "kv_bytes": r.mha },
                    "mqa": { "kv_heads": 1, "kv_bytes": r.mqa },
                    "no_window": { "kv_bytes": r.no_window },
                },
            })
        }
        Shape::Mamba(m) => {
            let state = m.state_bytes(batch, dtype)?;
            let mut v = json!({
                "family": "state-space", "mixing": "SSM", "layers": m.layers, "d_inner": m.d_inner,
                "d_state": m.d_state, "d_conv": m.d_conv, "conv_channels": m.conv_channels(),
                // The cache a Mamba holds is its state, as `capture` records it under kv_bytes.
                "kv_bytes": state, "state_bytes": state, "bytes_per_token": 0, "variants": null,
            });
            if let Some(ssd) = m.ssd {
                v["mixing"] = format!("SSM, {} heads", ssd.heads).into();
                v["ssm_heads"] = ssd.heads.into();
                v["head_dim"] = (m.d_inner / ssd.heads.max(1)).into();
                v["n_groups"] = ssd.n_groups.into();
            }
            v
        }
    };
    let (Value::Object(mut out), Value::Object(rest)) = (head, body) else { bail!("report is not an object") };
    out.extend(rest);
    Ok(Value::Object(out))
}

fn print_table(d: &Described, r: &Value) {
    let n = |k: &str| r[k].as_u64().unwrap_or(0);
    let dtype = match Dtype::parse(r["dtype"].as_str().unwrap_or("")) {
        Ok(Dtype::Q8_0) => "q8_0 (34 bytes per 32 values)".to_string(),
        Ok(t) => format!("{} ({} bytes per value)", t.name(), t.bytes_per_value()),
        Err(_) => String::new(),
    };
    let context = group_digits(n("context"));
    let mut rows: Vec<(String, u64)> = vec![];
    match &d.shape {
        Shape::Attention(s) => {
            let windowed = s.windows.iter().filter(|w| w.is_some()).count();
            let window = match s.window() {
                None => String::new(),
                Some(w) if windowed == s.layers => format!(", window {w} on every layer"),
                Some(w) => format!(", window {w} on {windowed} of {} layers", s.layers),
            };
            let mixing = r["mixing"].as_str().unwrap_or("");
            println!(
                "{}: {} layers, {} query heads over {} KV heads ({mixing}), head_dim {}{window}",
                d.title(),
                s.layers,
                s.heads,
                s.kv_heads,
                s.head_dim
            );
            let held = match s.window() {
                Some(w) => format!("; a windowed layer holds min(N, W − 1) = {} of them", kv_held(w, n("context"))),
                None => String::new(),
            };
            println!("keys and values at {context} positions, batch {}, {dtype}{held}", n("batch"));
            let variant = |k: &str| r["variants"][k]["kv_bytes"].as_u64().unwrap_or(0);
            rows.push((format!("as configured ({mixing})"), n("kv_bytes")));
            if s.kv_heads != s.heads {
                rows.push((format!("as MHA ({} KV heads)", s.heads), variant("mha")));
            }
            if s.kv_heads != 1 {
                rows.push(("as MQA (1 KV head)".into(), variant("mqa")));
            }
            if s.window().is_some() {
                rows.push(("without the window".into(), variant("no_window")));
            }
            rows.push(("per token (one sequence, no window)".into(), n("bytes_per_token")));
        }
        Shape::Mamba(m) => {
            let (title, batch) = (d.title(), n("batch"));
            let (layers, di, ds, dc) = (m.layers, m.d_inner, m.d_state, m.d_conv);
            match m.ssd {
                None => {
                    println!("{title}: {layers} layers, d_inner {di}, d_state {ds}, d_conv {dc}");
                    println!(
                        "no KV cache: a fixed state of layers × d_inner × (d_state + d_conv) values at any context \
                         (here {context} positions), batch {batch}, {dtype}"
                    );
                }
                Some(s) => {
                    let (h, g, cc) = (s.heads, s.n_groups, m.conv_channels());
                    println!(
                        "{title}: {layers} layers, {h} SSM heads × head_dim {} (d_inner {di}) in {g} B/C group{}, \
                         d_state {ds}, d_conv {dc} over {cc} channels (x, B, C)",
                        di / h.max(1),
                        if g == 1 { "" } else { "s" }
                    );
                    println!(
                        "no KV cache: a fixed state of layers × (heads × head_dim × d_state + (d_inner + 2 × groups × \
                         d_state) × d_conv) values at any context (here {context} positions), batch {batch}, {dtype}"
                    );
                }
            }
            rows.push(("state".into(), n("state_bytes")));
        }
    }
    let width = rows.iter().map(|(l, _)| l.chars().count()).max().unwrap_or(0);
    println!("\n{:<width$}  {:>19}  {:>11}  {:>11}", "", "bytes", "GB", "GiB");
    for (label, b) in rows {
        println!("{label:<width$}  {:>19}  {:>11}  {:>11}", group_digits(b), sig(gb(b)), sig(gib(b)));
    }
}

fn kv_held(window: usize, context: u64) -> u64 {
    attnviz::sim::kv::held(Some(window), context as usize) as u64
}

/// Four significant digits: 154.6, 144.0, 0.0001229.
fn sig(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let decimals = (3 - x.abs().log10().floor() as i32).clamp(0, 12) as usize;
    format!("{x:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(group_digits(154_618_822_656), "154,618,822,656");
        assert_eq!(
            (group_digits(0), group_digits(999), group_digits(1000)),
            ("0".into(), "999".into(), "1,000".into())
        );
        assert_eq!(
            (sig(154.618_822_656), sig(144.0), sig(0.000_122_88)),
            ("154.6".into(), "144.0".into(), "0.0001229".into())
        );
        assert_eq!((sig(0.0), sig(9.663_676_416), sig(12_345.6)), ("0".into(), "9.664".into(), "12346".into()));
    }
}

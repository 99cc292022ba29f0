//! The trace file written by `attnviz capture`: one safetensors file that
//! numpy, PyTorch and candle read, with a JSON description under the
//! metadata key `attnviz`. Written by hand so attention maps stream to disk
//! one head at a time instead of being held in memory.
//!
//! With T prompt tokens, N generated and P = T + N − 1 positions fed:
//! `tokens` I64 [T+N], `q.L{l}` F32 (or F16) [P, H, D] and `k.L{l}` [P, KVH, D]
//! post-RoPE, `attn.L{l}` F32 [H, P, P] only while the maps are small (format 2;
//! `geometry` in the metadata says how to rebuild them), `logits` F32 [N, V],
//! `kv_len` I64 [N, L], `kv_bytes` I64 [N]. For state-space models, instead
//! of attention and `kv_len`: `ssm.L{l}` F32 [K, d_inner, d_state],
//! `conv.L{l}` F32 [K, d_inner, d_conv] (K = N unless a long run thinned
//! the history; `state_steps` I64 [K] names the steps), `dt.L{l}` F32 [P, d_inner];
//! Mamba-2: `ssm.L{l}` [K, heads, head_dim, d_state], `conv.L{l}`
//! [K, d_inner + 2·n_groups·d_state, d_conv], `dt.L{l}` [P, heads].

use crate::error::{Error, Result};
use crate::trace::Trace;
use serde_json::{json, Map, Value};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

pub const FORMAT_VERSION: u32 = 2;

/// Dense maps of every written layer together up to this size with `Maps::Auto`.
pub const AUTO_MAPS_BYTES: usize = 256 << 20;

/// Whether the dense `attn.L{l}` maps go into the file (q and k always do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Maps {
    /// Dense while all maps together fit in `AUTO_MAPS_BYTES`.
    #[default]
    Auto,
    Dense,
    None,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub maps: Maps,
    /// Store q and k as F16 (half the size; maps rebuilt from them then differ by ~1e-3).
    pub half: bool,
}

enum Data<'a> {
    I64(Vec<i64>),
    /// Consecutive pieces of one F32 tensor (stored as F16 when the entry's dtype says so).
    F32(Vec<&'a [f32]>),
    Attention(usize),
}

struct Entry<'a> {
    name: String,
    dtype: &'static str,
    shape: Vec<usize>,
    data: Data<'a>,
}

impl Entry<'_> {
    fn bytes(&self) -> usize {
        self.shape.iter().product::<usize>()
            * match self.dtype {
                "F16" => 2,
                "F32" => 4,
                _ => 8,
            }
    }
}

/// Write `trace` to `path`. `layers` limits which attention maps are written
/// and their queries and keys (None: all); `meta` is merged into the JSON description.
pub fn write(
    trace: &Trace,
    path: &Path,
    layers: Option<&[usize]>,
    opts: Options,
    meta: Map<String, Value>,
) -> Result<()> {
    let n = trace.logits.len();
    let p = trace.positions();
    let l = trace.num_layers();
    let chosen: Vec<usize> = match layers {
        Some(ls) => ls.to_vec(),
        None => (0..l).collect(),
    };
    if let Some(bad) = chosen.iter().find(|&&x| x >= l) {
        return Err(Error::Usage(format!("--layers: layer {bad} does not exist (the model has {l})")));
    }
    if !chosen.is_empty() && !trace.has_attention() && trace.state.is_none() {
        return Err(Error::Usage("the trace holds no queries and keys (capture was off)".into()));
    }
    let vocab = trace.logits.first().map_or(0, Vec::len);
    let mut entries = vec![
        Entry {
            name: "tokens".into(),
            dtype: "I64",
            shape: vec![trace.tokens.len()],
            data: Data::I64(trace.tokens.iter().map(|&t| t as i64).collect()),
        },
        Entry {
            name: "logits".into(),
            dtype: "F32",
            shape: vec![n, vocab],
            data: Data::F32(trace.logits.iter().map(Vec::as_slice).collect()),
        },
        Entry {
            name: "kv_bytes".into(),
            dtype: "I64",
            shape: vec![n],
            data: Data::I64(trace.kv_bytes.iter().map(|&x| x as i64).collect()),
        },
    ];
    match &trace.state {
        None => {
            entries.push(Entry {
                name: "kv_len".into(),
                dtype: "I64",
                shape: vec![n, l],
                data: Data::I64(trace.kv_len.iter().flatten().map(|&x| x as i64).collect()),
            });
            let qk_dtype = if opts.half { "F16" } else { "F32" };
            for &layer in &chosen {
                let (g, (q, k)) = (&trace.geometry[layer], trace.layer_qk(layer));
                for (name, n, data) in [("q", g.heads, q), ("k", g.kv_heads, k)] {
                    let (name, shape) = (format!("{name}.L{layer}"), vec![p, n, g.head_dim]);
                    entries.push(Entry { name, dtype: qk_dtype, shape, data: Data::F32(vec![data]) });
                }
            }
            for &layer in map_layers(trace, &chosen, opts.maps) {
                let h = trace.geometry[layer].heads;
                entries.push(Entry {
                    name: format!("attn.L{layer}"),
                    dtype: "F32",
                    shape: vec![h, p, p],
                    data: Data::Attention(layer),
                });
            }
        }
        Some(s) => {
            let k = s.steps.len();
            let steps = s.steps.iter().map(|&x| x as i64).collect();
            entries.push(Entry { name: "state_steps".into(), dtype: "I64", shape: vec![k], data: Data::I64(steps) });
            for &layer in &chosen {
                let (ssm, conv) = (Data::F32(s.ssm(layer)), Data::F32(s.conv(layer)));
                for (name, shape, data) in [
                    ("ssm", [vec![k], s.ssm_shape.clone()].concat(), ssm),
                    ("conv", vec![k, s.conv_channels, s.d_conv], conv),
                    ("dt", vec![p, s.dt_width], Data::F32(vec![&s.dt[layer]])),
                ] {
                    entries.push(Entry { name: format!("{name}.L{layer}"), dtype: "F32", shape, data });
                }
            }
        }
    }
    let mut meta = meta;
    meta.insert("format_version".into(), json!(FORMAT_VERSION));
    meta.insert("prompt_len".into(), json!(trace.prompt_len));
    let key = if trace.state.is_some() { "state_layers" } else { "attention_layers" };
    meta.insert(key.into(), json!(chosen));
    if trace.state.is_none() {
        meta.insert("map_layers".into(), json!(map_layers(trace, &chosen, opts.maps)));
        meta.insert("qk_dtype".into(), json!(if opts.half { "F16" } else { "F32" }));
        meta.insert("geometry".into(), geometry(trace));
    }

    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    write_all(&mut out, trace, &entries, &meta).map_err(|e| Error::io(path, e))?;
    out.flush().map_err(|e| Error::io(path, e))
}

/// The layers whose dense maps are written.
fn map_layers<'a>(trace: &Trace, chosen: &'a [usize], maps: Maps) -> &'a [usize] {
    let p = trace.positions();
    let bytes: usize = chosen.iter().map(|&l| trace.geometry[l].heads * p * p * 4).sum();
    match maps {
        Maps::Dense => chosen,
        Maps::Auto if bytes <= AUTO_MAPS_BYTES => chosen,
        _ => &[],
    }
}

/// Per layer, what turns q and k into the map: scale, soft-cap, window, which KV head each query head reads.
fn geometry(trace: &Trace) -> Value {
    let layers = trace.geometry.iter().map(|g| {
        let group = (g.heads / g.kv_heads.max(1)).max(1);
        json!({
            "heads": g.heads, "kv_heads": g.kv_heads, "head_dim": g.head_dim, "scale": g.scale,
            "softcap": g.softcap, "window": g.window,
            "kv_head_of": (0..g.heads).map(|h| h / group).collect::<Vec<_>>(),
        })
    });
    Value::Array(layers.collect())
}

fn write_all(out: &mut impl Write, trace: &Trace, entries: &[Entry], meta: &Map<String, Value>) -> std::io::Result<()> {
    let mut header = Map::new();
    header.insert("__metadata__".into(), json!({ "attnviz": Value::Object(meta.clone()).to_string() }));
    let mut offset = 0;
    for e in entries {
        let size = e.bytes();
        header.insert(
            e.name.clone(),
            json!({"dtype": e.dtype, "shape": e.shape, "data_offsets": [offset, offset + size]}),
        );
        offset += size;
    }
    let mut text = Value::Object(header).to_string().into_bytes();
    // The data must start 8-byte aligned; safetensors pads the header with spaces.
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    out.write_all(&(text.len() as u64).to_le_bytes())?;
    out.write_all(&text)?;
    for e in entries {
        match &e.data {
            Data::I64(v) => v.iter().try_for_each(|x| out.write_all(&x.to_le_bytes()))?,
            Data::F32(pieces) if e.dtype == "F16" => pieces.iter().try_for_each(|v| write_f16(out, v))?,
            Data::F32(pieces) => pieces.iter().try_for_each(|v| write_f32(out, v))?,
            Data::Attention(layer) => {
                let p = trace.positions();
                for head in 0..trace.geometry[*layer].heads {
                    // Blocks of rows keep memory flat for long traces.
                    for start in (0..p).step_by(256) {
                        write_f32(out, &trace.attention(*layer, head, start..(start + 256).min(p)))?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn write_f32(out: &mut impl Write, v: &[f32]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(v.len() * 4);
    v.iter().for_each(|x| buf.extend_from_slice(&x.to_le_bytes()));
    out.write_all(&buf)
}

fn write_f16(out: &mut impl Write, v: &[f32]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(v.len() * 2);
    v.iter().for_each(|&x| buf.extend_from_slice(&half::f16::from_f32(x).to_le_bytes()));
    out.write_all(&buf)
}
